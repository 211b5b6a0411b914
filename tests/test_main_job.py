"""README command 1 (the main job) end to end at toy sizes, as CI can afford."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agents.saved import read_agent_record

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
    agents = {f"bc_{p}_s{seed}" for p in ("raw", "color_transfer", "sim2real") for seed in (0, 1)}
    for agent in agents:
        assert (out / "agents" / agent / "checkpoints" / "last").is_file()
    matrix = json.loads((out / "report" / "matrix" / "results.json").read_text())
    assert set(matrix["summary"]) == agents | {"expert"}
    assert set(matrix["summary"]["bc_raw_s0"]) == {"canonical", "real_proxy_image"}
    results = json.loads((out / "report" / "results.json").read_text())
    # 3 pipelines x 2 seeds x 2 domains x 2 maps x 1 episode, each normalised by the expert's episode.
    assert len(results["episodes"]) == 24
    assert {row["map_name"] for row in results["episodes"]} == {"small_loop", "loop_empty"}
    report = (out / "report" / "report.md").read_text()
    assert report.startswith("# Transfer benchmark: quickstart")
    assert report.index("## Verdict: the best pipeline per domain") < report.index("## BC: IQM")
    # The comparison is never printed without how certain it is: interval, seeds, episodes, maps.
    said = [line for line in done.stdout.splitlines() if line.startswith("transfer-benchmark: On ")]
    assert len(said) >= 2
    assert all("95% CI" in line and "2 training seeds x 2 episodes on 2 maps" in line for line in said)
    record = read_agent_record(out / "agents" / "bc_sim2real_s0")  # its checkpoints/last
    assert record["pipeline"]["checkpoint_id"].startswith("student-")
