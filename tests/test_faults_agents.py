"""Faults of the agent commands (issue 17): ``kill -9`` at a random point, then rerun or ``--resume``.

Each test runs the real ``sim2real`` command line in a subprocess on the real simulator, kills it
with SIGKILL at a seeded random moment, checks that nothing it left claims to be finished while
half-written, reruns (BC, evaluate) or resumes (PPO) it in the same folder and compares with an
uninterrupted run. The kill moment is a seeded fraction of the time an uninterrupted run spends
after its first file appears, so it falls inside the run on a fast or a loaded machine; should the
run still finish first, the kill is retried sooner in a fresh folder.

A kill that lands inside a write can leave that write's temporary behind; after the rerun none
may be left. The next write of an atomic directory (an agent) removes a dead writer's temporary
folder. A kill inside a single-file write (``write_bytes_atomic``: JSON, PNG; milliseconds each)
would leave its ``.<name>.<hex>.partial``, which nothing removes yet: a kill moment here rarely
lands in such a window, but a ``.partial`` reported by these tests is that known gap.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.saved import load_agent
from sim2real_env.checkpoints import last_folder

pytestmark = [pytest.mark.sim, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SIM2REAL = [sys.executable, "-m", "sim2real_env.cli"]
KILL_SEED = 17  # of the kill moments
#: Names of temporaries: atomic_directory's ``.<name>.tmp-<owner>`` and ``.<name>.old``,
#: write_bytes_atomic's ``.<name>.<hex>.partial``, the PPO checkpoint's ``.ppo.zip.tmp``, others' ``.tmp*``.
TEMPORARY = re.compile(r"^\.tmp|\.tmp$|^\..+\.tmp-|\.partial|^\..+\.old$")
SMALL_ENV = [
    "env.map_name=small_loop",
    "env.camera_width=80",
    "env.camera_height=60",
    "env.action_space=speed_steer",
    "preprocess.crop_top=20",
]
TINY_BC = [
    *SMALL_ENV,
    "preprocess.resize=[20, 40]",
    "preprocess.frame_stack=1",
    "bc.maps=[small_loop]",
    "bc.demo_episodes=2",
    "bc.episode_actions=30",
    "bc.dagger_rounds=1",
    "bc.dagger_episodes=1",
    "bc.val_episodes=1",
    "bc.epochs=2",
    "bc.eval_episodes=1",
    "bc.torch_threads=1",
    "bc.net.width=4",
    "bc.net.hidden=8",
]


def temporaries(folder: Path) -> list[str]:
    """Paths under ``folder`` (relative) whose names look like a writer's temporary."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if TEMPORARY.search(p.name))


def run_to_end(argv: list[str], marker: Path) -> float:
    """Run a command to its end; returns the seconds it ran after ``marker`` appeared."""
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    appeared = None
    while process.poll() is None:
        if appeared is None and marker.exists():
            appeared = time.perf_counter()
        time.sleep(0.02)
    output = process.communicate()[0]
    assert process.returncode == 0, output
    assert appeared is not None, f"{marker} never appeared while the run ran"
    return time.perf_counter() - appeared


def kill_at(argv: list[str], marker: Path, delay_s: float) -> bool:
    """Start a command, SIGKILL it ``delay_s`` after ``marker`` appears; False when it ended first."""
    process = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.perf_counter() + 300
        while not marker.exists() and process.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.02)
        assert marker.exists() or process.poll() is not None, f"{marker} did not appear within 300 s"
        time.sleep(delay_s)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the command and anything it started
    finally:
        output = process.communicate(timeout=60)[0]
    if process.returncode == -signal.SIGKILL:
        return True
    assert process.returncode == 0, output
    return False


def killed_folder(argv_for: Callable[[Path], list[str]], base: Path, marker: str, delays: list[float]) -> Path:
    """The folder of the first run killed; each delay (after ``<folder>/<marker>`` appears) gets a fresh folder."""
    for attempt, delay in enumerate(delays):
        folder = base.with_name(f"{base.name}_{attempt}")
        if kill_at(argv_for(folder), folder / marker, delay):
            return folder
    raise AssertionError(f"every run finished before its kill (delays {delays} s after {marker} appeared)")


def random_delays(rng: random.Random, span_s: float) -> list[float]:
    """A seeded moment in the middle of ``span_s``, then sooner ones for retries."""
    first = rng.uniform(0.05, 0.7) * span_s
    return [first, first / 4, 0.0]


def scalars(tb: Path, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of a TensorBoard tag as TensorBoard shows it (purged events dropped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tb))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def check_agent_folder(folder: Path) -> None:
    """An agent folder is absent or complete: ``agent.json`` parses and the weights load."""
    if folder.exists():
        json.loads((folder / "agent.json").read_text())
        load_agent(folder)


def check_run_folder(folder: Path) -> None:
    """Every agent a run left is absent or complete: the step folders, ``best``, what ``last`` names."""
    checkpoints = folder / "checkpoints"
    if checkpoints.is_dir():
        for child in checkpoints.iterdir():
            if child.is_dir() and not child.name.startswith("."):
                check_agent_folder(child)
        last = last_folder(folder)  # a pointer that exists names a whole folder
        assert last is None or (last / "agent.json").exists()


def check_pngs(folder: Path) -> None:
    """Every PNG in ``folder`` decodes whole (a plot written as it was drawn could be cut off)."""
    import cv2

    for path in folder.glob("*.png"):
        assert cv2.imread(str(path)) is not None, f"{path} is not a whole PNG"


def checkpoint_steps(zip_path: Path) -> int:
    """``num_timesteps`` of an SB3 archive, from its JSON ``data`` member (nothing unpickled)."""
    with zipfile.ZipFile(zip_path) as archive:
        return int(json.loads(archive.read("data"))["num_timesteps"])


# -- train-agent --algo bc ----------------------------------------------------------------------------


def test_bc_killed_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """A BC run starts afresh: rerun into the killed run's folder, it gives the uninterrupted agent.

    BC is deterministic per seed, so the rerun's weights equal, byte for byte, those of a run that
    was never killed. TensorBoard shows the rerun's curves only, not the killed (or an earlier
    finished) run's on top of them.
    """

    def argv(out: Path) -> list[str]:
        command = ["train-agent", "--algo", "bc", "--pipeline", "raw", "--config", "configs/agents/bc.yaml"]
        return [*SIM2REAL, *command, "--out", str(out), "--quiet", *TINY_BC]

    full = tmp_path / "full"
    span = run_to_end(argv(full), full / "tb")
    killed = killed_folder(argv, tmp_path / "killed", "tb", random_delays(random.Random(KILL_SEED), span))
    check_run_folder(killed)
    if (killed / "bc_history.json").exists():
        json.loads((killed / "bc_history.json").read_text())
    check_pngs(killed)
    # An earlier finished run's events in the folder as well: the rerun must hide them too.
    finished_events = next((full / "tb").glob("events.out.tfevents.*"))
    (killed / "tb" / finished_events.name).write_bytes(finished_events.read_bytes())

    subprocess.run(argv(killed), cwd=ROOT, check=True, capture_output=True)
    assert temporaries(killed) == []
    weights = [(last_folder(f) / "policy.safetensors").read_bytes() for f in (killed, full)]  # type: ignore[operator]
    assert weights[0] == weights[1]
    rerun, uninterrupted = (json.loads((f / "bc_history.json").read_text()) for f in (killed, full))
    assert rerun["history"] == uninterrupted["history"]
    for tag in ("bc/train_mse", "closed_loop/distance_m"):
        assert scalars(killed / "tb", tag) == scalars(full / "tb", tag), tag
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["000000004", "last"]
    assert load_agent(killed).algo == "bc"


# -- train-agent --algo ppo ---------------------------------------------------------------------------

PPO_STEPS, PPO_INTERVAL = 160, 32
TINY_PPO = [
    *SMALL_ENV,
    "preprocess.resize=[40, 80]",
    "preprocess.frame_stack=1",
    "ppo.vec_env=dummy",
    "ppo.n_envs=1",
    f"ppo.total_steps={PPO_STEPS}",
    f"ppo.n_steps={PPO_INTERVAL}",
    f"ppo.batch_size={PPO_INTERVAL}",
    "ppo.n_epochs=1",
    "ppo.features_dim=16",
    "ppo.episode_actions=20",
    f"ppo.eval_every={PPO_INTERVAL}",
    "ppo.eval_episodes=1",
    f"ppo.checkpoint_every={PPO_INTERVAL}",
]


def test_ppo_killed_after_a_checkpoint_resumes_to_the_end(tmp_path: Path) -> None:
    """``--resume`` after ``kill -9`` finishes the run from its last checkpoint.

    Loss bound: at most one checkpoint interval (``checkpoint_every``, here 32 env steps, one
    rollout) of env steps is redone; everything before the last checkpoint is kept as it was. The
    resumed run is not the uninterrupted one bit for bit: the rollout under way at the kill is
    lost and the resumed run draws fresh episode seeds (``agents.ppo``).
    """

    def argv(out: Path) -> list[str]:
        command = ["train-agent", "--algo", "ppo", "--pipeline", "raw", "--config", "configs/agents/ppo.yaml"]
        return [*SIM2REAL, *command, "--out", str(out), "--quiet", *TINY_PPO]

    rng = random.Random(KILL_SEED)
    delay = rng.uniform(0.0, 1.0)  # after the first checkpoint (progress.json) appears
    killed = killed_folder(argv, tmp_path / "run", "progress.json", [delay, delay / 4, 0.0])
    check_run_folder(killed)
    check_pngs(killed)
    at_kill = json.loads((killed / "progress.json").read_text())
    last = last_folder(killed)
    assert last is not None
    steps = checkpoint_steps(last / "ppo.zip")
    assert last.name == f"{steps:09d}"
    assert steps >= PPO_INTERVAL and steps % PPO_INTERVAL == 0
    # The evaluation and the checkpoint of a step are written together (eval_every == checkpoint_every).
    assert at_kill["evaluations"][-1]["env_steps"] == steps

    result = subprocess.run([*argv(killed), "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((killed / "ppo_summary.json").read_text())
    assert summary["env_steps"] == PPO_STEPS and not summary["interrupted"]
    assert checkpoint_steps(last_folder(killed) / "ppo.zip") == PPO_STEPS  # type: ignore[operator]
    # keep_last (3): the newest step folders of the whole run, resumed or not.
    newest = [f"{s:09d}" for s in range(PPO_STEPS - 2 * PPO_INTERVAL, PPO_STEPS + 1, PPO_INTERVAL)]
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == [*newest, "best", "last"]
    resumed = json.loads((killed / "progress.json").read_text())
    kept = len(at_kill["evaluations"])
    assert resumed["evaluations"][:kept] == at_kill["evaluations"]
    assert [e["env_steps"] for e in resumed["evaluations"][kept:]] == list(
        range(steps + PPO_INTERVAL, PPO_STEPS + 1, PPO_INTERVAL)
    )
    assert resumed["train_episodes"][: len(at_kill["train_episodes"])] == at_kill["train_episodes"]
    assert load_agent(killed).algo == "ppo" and load_agent(killed / "checkpoints" / "best").algo == "ppo"
    assert temporaries(killed) == []


# -- evaluate -----------------------------------------------------------------------------------------


def test_evaluate_killed_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """An evaluation is all or nothing: results.json and report.md are whole or absent after a kill.

    Rerun into the same folder, its episodes equal an uninterrupted run's (same seeds, same agents).
    """
    from agents.bc import BCConfig, train_bc
    from agents.pipeline import Pipeline

    env = {"map_name": "small_loop", "camera_width": 80, "camera_height": 60, "action_space": "speed_steer"}
    pipeline = Pipeline.build("raw", env=env, preprocess={"crop_top": 20, "resize": [20, 40], "frame_stack": 1})
    bc = {
        "demo_episodes": 1,
        "episode_actions": 20,
        "dagger_rounds": 0,
        "val_episodes": 1,
        "epochs": 1,
        "eval_episodes": 0,
        "torch_threads": 1,
        "net": {"width": 4, "hidden": 8},
    }
    train_bc(pipeline, BCConfig.from_dict(bc), tmp_path / "bc", progress=False)
    config = tmp_path / "eval.yaml"
    config.write_text(
        "name: tiny\nepisodes: 2\nepisode_frames: 30\nbootstrap: 100\ndomains: [canonical]\ncamera: [80, 60]\n"
        f"agents:\n  - {{name: bc, path: {tmp_path / 'bc'}}}\n  - {{name: expert, expert: true}}\n"
    )

    def argv(out: Path) -> list[str]:
        return [*SIM2REAL, "evaluate", "--config", str(config), "--quiet", f"out={out}"]

    full = tmp_path / "full"
    span = run_to_end(argv(full), full)  # evaluate makes its out folder first, writes into it last
    killed = killed_folder(argv, tmp_path / "killed", ".", random_delays(random.Random(KILL_SEED), span))
    if (killed / "results.json").exists():
        assert set(json.loads((killed / "results.json").read_text())["episodes"]) == {"bc", "expert"}
    if (killed / "report.md").exists():
        report = (killed / "report.md").read_text()
        assert report.startswith("# Transfer report: tiny") and "## Files" in report
    check_pngs(killed)

    subprocess.run(argv(killed), cwd=ROOT, check=True, capture_output=True)
    assert temporaries(killed) == []
    rerun, uninterrupted = (json.loads((f / "results.json").read_text()) for f in (killed, full))
    assert rerun["episodes"] == uninterrupted["episodes"]
    assert rerun["summary"] == uninterrupted["summary"]
    assert "## Files" in (killed / "report.md").read_text()
