"""Ray fan-out of ``harvest`` and ``evaluate``: the same bytes and numbers as the serial run.

One local Ray (2 CPUs) serves the whole module; every case is tiny (1 map, 2 episodes, few steps).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.cluster import RayOptions
from agents.harvest import HarvestConfig, harvest

pytestmark = pytest.mark.sim

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    from agents.cluster import THREAD_VARIABLES

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": dict.fromkeys(THREAD_VARIABLES, "1")})  # fmt: skip
    yield
    ray.shutdown()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _same_dataset(a: Path, b: Path) -> None:
    """Every file byte-identical, except ``harvest.json``'s provenance (command line, time)."""
    files_a, files_b = _files(a), _files(b)
    assert files_a.keys() == files_b.keys()
    for name in files_a:
        if name == "harvest.json":
            assert json.loads(files_a[name])["config"] == json.loads(files_b[name])["config"]
        else:
            assert files_a[name] == files_b[name], name


CONFIG = HarvestConfig(
    maps=("small_loop",), episodes_per_map=2, steps_per_episode=12, every=4, camera_width=64, camera_height=48
)


def test_harvest_on_two_ray_workers_is_byte_identical_to_serial(tmp_path: Path) -> None:
    from sim2real_env.cli import main

    assert harvest(tmp_path / "serial", CONFIG, progress=False)["frames"] == 6
    tiny = ["--maps", "small_loop", "--episodes", "2", "--steps", "12", "--every", "4", "--camera", "64x48", "--quiet"]
    assert main(["harvest", "--out", str(tmp_path / "ray"), *tiny, "--workers", "2"]) == 0
    _same_dataset(tmp_path / "serial", tmp_path / "ray")
    with pytest.raises(SystemExit, match="2"):  # argparse: usage and one line
        main(["harvest", "--out", str(tmp_path / "bad"), *tiny, "--workers", "0"])
    assert not (tmp_path / "bad").exists()


def _kill_first_worker(killed: list[int], stop: threading.Event) -> None:
    """Kill (SIGKILL) the first harvest actor process once it has run for a moment."""
    import psutil

    while not stop.is_set():
        for process in psutil.process_iter(["cmdline", "create_time"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if "_HarvestWorker" in cmdline and time.time() - process.info["create_time"] > 1.0:
                process.kill()
                killed.append(process.pid)
                return
        time.sleep(0.05)


def test_a_worker_killed_mid_harvest_is_retried_and_the_dataset_is_exact(tmp_path: Path) -> None:
    config = HarvestConfig(
        maps=("small_loop",), episodes_per_map=2, steps_per_episode=60, every=4, camera_width=64, camera_height=48
    )
    harvest(tmp_path / "serial", config, progress=False)
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        harvest(tmp_path / "ray", config, progress=False, ray=RayOptions(workers=2))
    finally:
        stop.set()
        killer.join(5)
    assert killed, "no harvest worker was seen (and killed) while the harvest ran"
    _same_dataset(tmp_path / "serial", tmp_path / "ray")


def _eval_config(tmp_path: Path, out: str, extra: str = "") -> Path:
    path = tmp_path / f"{out}.yaml"
    path.write_text(
        f"name: tiny\nout: {tmp_path / out}\nepisodes: 2\nepisode_steps: 15\nbootstrap: 200\n"
        "domains: [canonical, real_proxy_image]\nallow_pipeline_mismatch: true\n"
        f"agents:\n  - {{name: bc, path: {tmp_path / 'bc'}}}\n"
        f"  - {{name: bc_canonicalized, path: {tmp_path / 'bc'}, canonicalize: {tmp_path / 'stn'}}}\n"
        "  - {name: expert, expert: true}\n" + extra
    )
    return path


def _comparable(results: dict[str, Any]) -> dict[str, Any]:
    return {k: results[k] for k in ("episodes", "summary", "improvement", "differences", "checkpoints")}


def test_evaluate_on_two_ray_workers_equals_serial(tmp_path: Path) -> None:
    """A BC agent (torch), the same agent behind an untrained STN-U-Net (ONNX Runtime), the expert."""
    import torch

    from agents.bc import BCConfig, train_bc
    from agents.evaluate import evaluate, load_eval_config
    from agents.pipeline import Pipeline
    from generators.checkpoint import save_generator
    from generators.stn_unet.model import STNUNet, STNUNetConfig

    env = {"map_name": "small_loop", "camera_width": 80, "camera_height": 60, "action_space": "speed_steer"}
    pipeline = Pipeline.build("raw", env=env, preprocess={"crop_top": 20, "resize": [20, 40], "frame_stack": 1})
    bc = {
        "demo_episodes": 1,
        "episode_steps": 20,
        "dagger_rounds": 0,
        "val_episodes": 1,
        "epochs": 1,
        "eval_episodes": 0,
        "torch_threads": 1,
        "net": {"width": 4, "hidden": 8},
    }
    train_bc(pipeline, BCConfig.from_dict(bc), tmp_path / "bc", progress=False)
    torch.manual_seed(0)
    stn = STNUNet(STNUNetConfig.from_dict({"image_size": [16, 16], "width": 4, "depth": 2, "loc_width": 4}))
    save_generator(stn, tmp_path / "stn")
    serial = evaluate(load_eval_config(_eval_config(tmp_path, "serial")), progress=False)
    fanned = evaluate(load_eval_config(_eval_config(tmp_path, "ray")), progress=False, ray=RayOptions(workers=2))
    assert _comparable(serial) == _comparable(fanned)
    assert (tmp_path / "serial" / "views.png").read_bytes() == (tmp_path / "ray" / "views.png").read_bytes()
