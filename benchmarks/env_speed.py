"""Simulator speed and memory: steps/s for maps x camera sizes x domain randomization.

Run with ``sim2real bench-env``; writes ``env_speed.json`` and ``env_speed.md``. Each cell drives
the expert (so episodes last) and times only ``env.step`` (render included), ``repeats`` times,
reporting the median. Memory is the process RSS growth when the env is created (the simulator's
GL buffers and meshes) and the RSS after the cell.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import psutil

from agents.expert import PurePursuitExpert
from sim2real_env._compat import load_simulator
from sim2real_env.env import EnvConfig
from sim2real_env.errors import ConfigError
from sim2real_env.make import build_env
from sim2real_env.maps import resolve_map
from sim2real_env.provenance import provenance, write_json_atomic, write_text_atomic
from sim2real_env.rollout import rollout


def _time_steps(env: Any, steps: int, seed: int) -> float:
    expert = PurePursuitExpert()
    run = rollout(env, lambda obs: expert.act(env), seed=seed, max_steps=steps, restart="always")
    return steps / run.step_s


def run(
    maps: list[str],
    cameras: list[tuple[int, int]],
    randomization: list[bool],
    steps: int,
    repeats: int,
    out_dir: Path,
    stem: str = "env_speed",
) -> list[Path]:
    """Measure every cell and write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``."""
    if steps < 1 or repeats < 1:
        raise ConfigError(f"bench-env: steps and repeats must be >= 1, got {steps} and {repeats}")
    for name in maps:
        resolve_map(name)
    process = psutil.Process()
    load_simulator()  # imports count once, not against the first cell's memory
    rows: list[dict[str, Any]] = []
    for map_name in maps:
        for width, height in cameras:
            for domain_rand in randomization:
                rss_before = process.memory_info().rss
                # A private simulator: the cell measures what building one costs, not the pool.
                env = build_env(
                    EnvConfig(
                        map_name=map_name,
                        camera_width=width,
                        camera_height=height,
                        domain_rand=domain_rand,
                        episode_length=10**6,
                    ),
                    reuse_simulator=False,
                )
                rss_created = process.memory_info().rss
                _time_steps(env, 20, seed=0)  # warm-up: texture uploads, caches
                rates = [_time_steps(env, steps, seed=r) for r in range(repeats)]
                rows.append(
                    {
                        "map": map_name,
                        "camera": f"{width}x{height}",
                        "domain_rand": domain_rand,
                        "steps_per_s_median": round(statistics.median(rates), 1),
                        "steps_per_s_runs": [round(r, 1) for r in rates],
                        "env_create_rss_mib": round((rss_created - rss_before) / 2**20, 1),
                        "rss_after_mib": round(process.memory_info().rss / 2**20, 1),
                    }
                )
                env.close()
                print(f"bench-env: {rows[-1]}", flush=True)
    result = {
        "benchmark": "env_speed",
        "settings": {"steps_per_repeat": steps, "repeats": repeats, "statistic": "median"},
        "provenance": provenance(),
        "results": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    write_json_atomic(json_path, result)
    write_text_atomic(md_path, _markdown(result))
    return [json_path, md_path]


def _markdown(result: dict[str, Any]) -> str:
    prov = result["provenance"]
    settings = result["settings"]
    lines = [
        "# Simulator speed (`sim2real/Duckietown-v0`)",
        "",
        f"Command: `{prov['command']}`; git `{prov['git_sha']}`; {prov['cpu_count']} CPUs; "
        f"median of {settings['repeats']} repeats of {settings['steps_per_repeat']} expert-driven steps, "
        "timing `env.step` only (physics + render).",
        "",
        "| map | camera | domain rand | steps/s (median) | runs | RSS on create (MiB) | RSS after (MiB) |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for row in result["results"]:
        lines.append(
            f"| {row['map']} | {row['camera']} | {'on' if row['domain_rand'] else 'off'} | "
            f"{row['steps_per_s_median']} | {', '.join(str(r) for r in row['steps_per_s_runs'])} | "
            f"{row['env_create_rss_mib']} | {row['rss_after_mib']} |"
        )
    versions = ", ".join(f"{k} {v}" for k, v in prov["versions"].items())
    lines += ["", f"Versions: {versions}.", ""]
    return "\n".join(lines)
