"""Wrapper overhead: env-steps/s raw vs wrapped, for 1/4/8 envs, Dummy and Subproc, per generator size.

Run with ``sim2real bench-wrapper``; writes ``wrapper_speed.json`` and ``wrapper_speed.md``. The
same vector env is measured raw and then wrapped (one batched generator call per step, in the
main process), so each ratio comes from one run on one set of simulators. Actions are a fixed
forward command (episodes end and auto-reset, as in training). A second table times SB3 PPO
training (collection + updates) raw vs wrapped. Generators are freshly initialised: speed does
not depend on the weights.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from benchmarks.generator_speed import CASES
from generators.registry import method_class
from sim2real_env.env import ENV_ID, EnvConfig
from sim2real_env.errors import ConfigError
from sim2real_env.maps import resolve_map
from sim2real_env.provenance import provenance, write_json_atomic, write_text_atomic
from sim2real_env.vector import Sim2RealVecEnv

VEC_KINDS = ("dummy", "subproc")


def _factory(map_name: str, camera: tuple[int, int]) -> gym.Env[Any, Any]:
    import sim2real_env  # noqa: F401  (registers the env id in worker processes)

    return gym.make(ENV_ID, map_name=map_name, camera_width=camera[0], camera_height=camera[1])


def _env_steps_per_s(venv: VecEnv, steps: int) -> float:
    actions = np.tile(np.array([0.4, 0.4], np.float32), (venv.num_envs, 1))
    venv.reset()
    for _ in range(3):
        venv.step(actions)
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(actions)
    return steps * venv.num_envs / (time.perf_counter() - start)


def _generator(case: str) -> Any:
    for label, method, model_cfg, _ in CASES:
        if label == case:
            cls = method_class(method)
            torch.manual_seed(0)
            return cls(cls.config_class.from_dict(model_cfg)).eval()
    raise ConfigError(f"bench-wrapper: unknown generator case {case!r}; known: {', '.join(c[0] for c in CASES)}")


def run(
    out_dir: Path,
    map_name: str = "small_loop",
    cameras: tuple[tuple[int, int], ...] = ((160, 120), (80, 60)),
    env_counts: tuple[int, ...] = (1, 4, 8),
    kinds: tuple[str, ...] = ("dummy", "subproc"),
    cases: tuple[str, ...] = ("cyclegan default", "cyclegan w8 b6 k7"),
    steps: int = 100,
    repeats: int = 3,
    ppo_steps: int = 1024,
) -> list[Path]:
    """Measure and write ``wrapper_speed.{json,md}``; the PPO table uses the first camera.

    The wrapped env translates at the generator's size (60x80 for the defaults), so a larger camera
    costs the simulator more but the generator only two ``INTER_AREA`` resizes more.
    """
    if not cameras:
        raise ConfigError("bench-wrapper: give at least one camera size")
    unknown = [k for k in kinds if k not in VEC_KINDS]
    if unknown or not kinds:  # anything but "dummy" used to be measured as subproc
        raise ConfigError(f"bench-wrapper: kinds must be among {VEC_KINDS}, got {list(kinds)}")
    if not env_counts or any(n < 1 for n in env_counts):
        raise ConfigError(f"bench-wrapper: env counts must be >= 1, got {list(env_counts)}")
    if steps < 1 or repeats < 1 or ppo_steps < 0:
        raise ConfigError(
            f"bench-wrapper: steps and repeats must be >= 1 and PPO steps >= 0, got {steps}, {repeats}, {ppo_steps}"
        )
    resolve_map(map_name)
    for width, height in cameras:
        EnvConfig(map_name=map_name, camera_width=width, camera_height=height)  # the env's camera limits
    generators = {case: _generator(case) for case in cases}
    rows: list[dict[str, Any]] = []
    for camera, kind, n in ((c, k, n) for c in cameras for k in kinds for n in env_counts):
        # Stepping and translating alternate (the workers wait while the main process translates),
        # so the generator may use both cores without competing with the simulators.
        torch.set_num_threads(2)
        factories: list[Callable[[], gym.Env[Any, Any]]] = [
            functools.partial(_factory, map_name, camera) for _ in range(n)
        ]
        base: VecEnv = (
            DummyVecEnv(factories) if kind == "dummy" else SubprocVecEnv(factories, start_method="forkserver")
        )
        try:
            for case in cases:
                wrapped = Sim2RealVecEnv(base, generators[case])
                raw_rates, wrapped_rates = [], []
                for _ in range(repeats):  # interleaved, so drift hits both alike
                    raw_rates.append(_env_steps_per_s(base, steps))
                    wrapped_rates.append(_env_steps_per_s(wrapped, steps))
                raw, wr = statistics.median(raw_rates), statistics.median(wrapped_rates)
                rows.append(
                    {
                        "camera": f"{camera[0]}x{camera[1]}",
                        "vec_env": kind,
                        "n_envs": n,
                        "generator": case,
                        "raw_env_steps_per_s": round(raw, 1),
                        "wrapped_env_steps_per_s": round(wr, 1),
                        "ratio": round(wr / raw, 3),
                        "threads": torch.get_num_threads(),
                        "backend": getattr(wrapped, "generator", None).__class__.__name__,
                    }
                )
                print(f"bench-wrapper: {rows[-1]}", flush=True)
        finally:
            base.close()
    ppo_rows = _ppo_rows(map_name, cameras[0], cases[0], generators[cases[0]], ppo_steps) if ppo_steps else []
    result = {
        "benchmark": "wrapper_speed",
        "settings": {
            "map": map_name,
            "cameras": [list(c) for c in cameras],
            "ppo_camera": list(cameras[0]),
            "generator_sizes": sorted({f"{c}: {g.image_size[0]}x{g.image_size[1]}" for c, g in generators.items()}),
            "steps": steps,
            "repeats": repeats,
            "statistic": "median",
        },
        "provenance": provenance(),
        "results": rows,
        "ppo": ppo_rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "wrapper_speed.json", out_dir / "wrapper_speed.md"
    write_json_atomic(json_path, result)
    write_text_atomic(md_path, _markdown(result))
    return [json_path, md_path]


def _ppo_rows(map_name: str, camera: tuple[int, int], case: str, generator: Any, total: int) -> list[dict[str, Any]]:
    from stable_baselines3 import PPO

    torch.set_num_threads(2)
    rows: list[dict[str, Any]] = []
    rates: list[float] = []
    for label in ("raw", "wrapped"):
        factories: list[Callable[[], gym.Env[Any, Any]]] = [functools.partial(_factory, map_name, camera)] * 4
        venv: VecEnv = DummyVecEnv(factories)
        if label == "wrapped":
            venv = Sim2RealVecEnv(venv, generator)
        model = PPO("CnnPolicy", venv, n_steps=128, batch_size=128, n_epochs=2, seed=0, device="cpu", verbose=0)
        start = time.perf_counter()
        model.learn(total_timesteps=total)
        elapsed = time.perf_counter() - start
        rates.append(model.num_timesteps / elapsed)
        rows.append(
            {
                "pipeline": label,
                "generator": case if label == "wrapped" else None,
                "env_steps": model.num_timesteps,
                "env_steps_per_s": round(model.num_timesteps / elapsed, 1),
            }
        )
        venv.close()
        print(f"bench-wrapper: PPO {rows[-1]}", flush=True)
    rows[1]["ratio"] = round(rates[1] / rates[0], 3)
    return rows


def _markdown(result: dict[str, Any]) -> str:
    prov, s = result["provenance"], result["settings"]
    lines = [
        "# Wrapper overhead (env-steps/s, raw vs wrapped)",
        "",
        f"Command: `{prov['command']}`; git `{prov['git_sha']}`; "
        f"map {s['map']}; median of {s['repeats']} interleaved repeats of {s['steps']} vector steps. "
        "Target: wrapped/raw >= 0.8. 160x120 is the env's default camera; frames are resized to the "
        f"generator's size ({', '.join(s['generator_sizes'])}), translated and resized back.",
        "",
        "| camera | vec env | envs | generator | runner | raw | wrapped | wrapped/raw |",
        "|---|---|---:|---|---|---:|---:|---:|",
    ]
    for r in result["results"]:
        lines.append(
            f"| {r['camera']} | {r['vec_env']} | {r['n_envs']} | {r['generator']} | {r['backend']} | "
            f"{r['raw_env_steps_per_s']} | {r['wrapped_env_steps_per_s']} | {r['ratio']} |"
        )
    if result["ppo"]:
        lines += [
            "",
            f"SB3 PPO training (CnnPolicy, 4 DummyVecEnv envs, n_steps 128, 2 epochs, camera "
            f"{s['ppo_camera'][0]}x{s['ppo_camera'][1]}, generator {result['ppo'][1]['generator']}):",
            "",
            "| pipeline | env steps | env-steps/s | wrapped/raw |",
            "|---|---:|---:|---:|",
        ]
        for r in result["ppo"]:
            lines.append(f"| {r['pipeline']} | {r['env_steps']} | {r['env_steps_per_s']} | {r.get('ratio', '')} |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()) + ".", ""]
    return "\n".join(lines)
