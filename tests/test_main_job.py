"""README command 1 (the main job) end to end at toy sizes, as CI can afford."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.sim
@pytest.mark.slow
def test_main_job_runs_end_to_end_in_tiny_mode(tmp_path: Path) -> None:
    out = tmp_path / "quick"
    env = {**os.environ, "SIM2REAL_MAIN_JOB": "tiny"}
    done = subprocess.run(
        ["bash", str(REPO / "run.sh"), str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Main job done:" in done.stdout
    assert (out / "video" / "side_by_side.mp4").stat().st_size > 0
    for agent in ("bc_raw", "bc_sim2real"):
        assert (out / "agents" / agent / "agent" / "agent.json").exists()
    results = json.loads((out / "report" / "results.json").read_text())
    assert set(results["summary"]) == {"bc_raw", "bc_sim2real", "expert"}
    assert set(results["summary"]["bc_raw"]) == {"canonical", "real_proxy_image"}
    assert (out / "report" / "report.md").read_text().startswith("# Transfer report: quickstart")
    record = json.loads((out / "agents" / "bc_sim2real" / "agent" / "agent.json").read_text())
    assert record["pipeline"]["checkpoint_id"].startswith("student-")
