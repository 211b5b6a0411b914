"""Smoke and behaviour tests of the ``sim2real`` commands on the real simulator."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from agents.harvest import DatasetMismatchError, HarvestConfig, harvest
from sim2real_env.cli import main
from sim2real_env.errors import ConfigError
from sim2real_env.segmentation import SegClass

pytestmark = pytest.mark.sim

TINY = ["--maps", "small_loop", "--episodes", "2", "--steps", "12", "--every", "4", "--camera", "64x48", "--quiet"]


def test_harvest_writes_paired_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert main(["harvest", "--out", str(out), *TINY]) == 0
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 3
    assert {r["episode"] for r in rows} == {"0", "1"}
    for row in rows:
        canonical = cv2.imread(str(out / "canonical" / f"{row['frame']}.png"))
        randomized = cv2.imread(str(out / "randomized" / f"{row['frame']}.png"))
        segmentation = cv2.imread(str(out / "segmentation" / f"{row['frame']}.png"), cv2.IMREAD_UNCHANGED)
        assert canonical.shape == randomized.shape == (48, 64, 3)
        assert segmentation.shape == (48, 64) and segmentation.max() < len(SegClass)
        assert -1 <= float(row["expert_left"]) <= 1 and row["in_lane"] == "1"
    meta = json.loads((out / "harvest.json").read_text())
    assert meta["config"]["maps"] == ["small_loop"] and "git_sha" in meta["provenance"]


def test_harvest_resumes_exactly_and_refuses_a_different_dataset(tmp_path: Path) -> None:
    config = HarvestConfig(
        maps=("small_loop",), episodes_per_map=2, steps_per_episode=12, every=4, camera_width=64, camera_height=48
    )
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    harvest(full, config, progress=False)
    harvest(resumed, config, progress=False)
    # Simulate a crash during episode 1: its CSV (the completion record) and a frame are gone.
    (resumed / "episodes" / "small_loop_001.csv").unlink()
    (resumed / "manifest.csv").unlink()
    frame = next((resumed / "canonical").glob("small_loop_001_*.png"))
    frame.unlink()
    # ... and the write that was under way when kill -9 came left its temporary file.
    leftover = resumed / "canonical" / f".{frame.name}.0badc0de.partial"
    leftover.write_bytes(b"\x89PNG half")
    harvest(resumed, config, progress=False)
    assert not leftover.exists() and not list(resumed.rglob("*.partial"))
    assert (full / "manifest.csv").read_text() == (resumed / "manifest.csv").read_text()
    for sub in ("canonical", "randomized", "segmentation"):
        for path in sorted((full / sub).glob("*.png")):
            a, b = cv2.imread(str(path)), cv2.imread(str(resumed / sub / path.name))
            assert np.array_equal(a, b), path.name
    other = HarvestConfig(
        maps=("small_loop",), episodes_per_map=3, steps_per_episode=12, every=4, camera_width=64, camera_height=48
    )
    with pytest.raises(DatasetMismatchError, match="different settings.*episodes_per_map"):
        harvest(resumed, other, progress=False)
    # A harvest recorded before the lens option existed is a pinhole one: it resumes, and a
    # fisheye request for that folder is refused.
    meta = json.loads((resumed / "harvest.json").read_text())
    del meta["config"]["distortion"]
    (resumed / "harvest.json").write_text(json.dumps(meta))
    assert harvest(resumed, config, progress=False)["frames"] == 6
    with pytest.raises(DatasetMismatchError, match="different settings.*distortion"):
        harvest(resumed, dataclasses.replace(config, distortion=True), progress=False)
    with pytest.raises(ConfigError, match="distortion must be true or false"):
        dataclasses.replace(config, distortion="yes")


def test_harvest_refuses_non_dataset_folder_and_bad_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["harvest", "--out", str(tmp_path), *TINY]) == 2
    assert "holds no harvest.json" in capsys.readouterr().err
    assert main(["harvest", "--out", str(tmp_path / "x"), "--maps", "small_lop", "--quiet"]) == 2
    assert "Did you mean 'small_loop'" in capsys.readouterr().err


def test_drive_writes_video_and_summary(tmp_path: Path) -> None:
    assert (
        main(["drive", "--out", str(tmp_path), "--steps", "40", "--camera", "64x48", "--format", "gif", "--quiet"]) == 0
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failures"] == [] and summary["distance_along_lane_m"] > 0.2
    video = Path(summary["video"])
    assert video.exists() and video.stat().st_size > 1000
    assert (tmp_path / "summary.md").read_text().startswith("# Expert drive")


def test_drive_mp4(tmp_path: Path) -> None:
    assert main(["drive", "--out", str(tmp_path), "--steps", "20", "--camera", "64x48", "--quiet"]) == 0
    import imageio.v2 as imageio

    frames = imageio.mimread(tmp_path / "drive_small_loop.mp4")
    assert len(frames) == 21 and frames[0].shape == (96, 128, 3)


def test_bench_env_writes_json_and_markdown(tmp_path: Path) -> None:
    args = [
        "bench-env",
        "--maps",
        "small_loop",
        "--cameras",
        "32x24",
        "--randomization",
        "off",
        "--steps",
        "20",
        "--repeats",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    result = json.loads((tmp_path / "env_speed.json").read_text())
    (row,) = result["results"]
    assert row["steps_per_s_median"] > 0 and len(row["steps_per_s_runs"]) == 2
    assert result["provenance"]["git_sha"]
    assert "| small_loop | 32x24 | off |" in (tmp_path / "env_speed.md").read_text()


def test_bench_wrapper_writes_json_and_markdown(tmp_path: Path) -> None:
    args = ["bench-wrapper", "--cameras", "32x24,40x30", "--envs", "1", "--kinds", "dummy", "--generators"]
    args += ["cyclegan default", "--steps", "3", "--repeats", "1", "--ppo-steps", "0", "--out", str(tmp_path)]
    assert main(args) == 0
    result = json.loads((tmp_path / "wrapper_speed.json").read_text())
    assert [r["camera"] for r in result["results"]] == ["32x24", "40x30"]
    for row in result["results"]:
        assert row["raw_env_steps_per_s"] > 0 and row["wrapped_env_steps_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["wrapped_env_steps_per_s"] / row["raw_env_steps_per_s"], abs=0.01)
    assert "| 40x30 | dummy | 1 | cyclegan default |" in (tmp_path / "wrapper_speed.md").read_text()


def test_bad_camera_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["drive", "--camera", "160by120"])
    assert "camera size must look like 160x120" in capsys.readouterr().err
