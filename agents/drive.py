"""``sim2real drive``: run the expert on a map, write a video of the camera and a summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from agents.expert import ExpertConfig, PurePursuitExpert
from sim2real_env.env import ENV_ID
from sim2real_env.errors import ConfigError
from sim2real_env.provenance import provenance, write_json_atomic, write_text_atomic
from sim2real_env.video import write_video


def drive(
    out: Path,
    map_name: str = "small_loop",
    steps: int = 600,
    seed: int = 0,
    camera: tuple[int, int] = (160, 120),
    video_format: str = "mp4",
    wheel_noise_std: float = 0.0,
    progress: bool = True,
) -> dict[str, Any]:
    """Drive the expert for ``steps`` steps (resetting on failure); returns the summary."""
    if steps < 1:
        raise ConfigError(f"drive: steps must be >= 1, got {steps}")
    if video_format not in ("mp4", "gif"):
        raise ConfigError(f"drive: video format must be 'mp4' or 'gif', got {video_format!r}")
    env = gym.make(ENV_ID, map_name=map_name, camera_width=camera[0], camera_height=camera[1], episode_length=steps)
    expert = PurePursuitExpert(ExpertConfig(wheel_noise_std=wheel_noise_std), seed=seed)
    obs, info = env.reset(seed=seed)
    frames = [obs]
    lateral: list[float] = []
    heading: list[float] = []
    failures: list[str] = []
    distance = 0.0
    step_time = 0.0
    visited = {info["tile"]}
    for _ in tqdm(range(steps), unit="step", disable=not progress, desc=f"drive {map_name}"):
        action = expert.act(env)
        start = time.perf_counter()
        obs, _, terminated, truncated, info = env.step(action)
        step_time += time.perf_counter() - start
        frames.append(obs)
        distance += info["progress_m"]
        visited.add(info["tile"])
        if info["in_lane"]:
            lateral.append(abs(info["lane_lateral_m"]))
            heading.append(abs(info["lane_heading_rad"]))
        if terminated:
            failures.append(info["termination"])
            obs, info = env.reset()
        elif truncated:
            break
    drivable = {tuple(t["coords"]) for t in env.unwrapped.sim.drivable_tiles}  # type: ignore[attr-defined]
    fps = env.metadata["render_fps"]
    env.close()
    out.mkdir(parents=True, exist_ok=True)
    video = out / f"drive_{map_name}.{video_format}"
    write_video(video, frames, fps=fps, scale=2)
    summary = {
        "map": map_name,
        "steps": steps,
        "seed": seed,
        "camera": list(camera),
        "simulated_seconds": steps / fps,
        "distance_along_lane_m": round(distance, 3),
        "mean_abs_lateral_m": round(float(np.mean(lateral)), 4) if lateral else None,
        "max_abs_lateral_m": round(float(np.max(lateral)), 4) if lateral else None,
        "mean_abs_heading_rad": round(float(np.mean(heading)), 4) if heading else None,
        "failures": failures,
        "drivable_tiles_visited": f"{len(visited & drivable)}/{len(drivable)}",
        "env_steps_per_second": round(steps / step_time, 1) if step_time else None,
        "video": str(video),
        "provenance": provenance(),
    }
    write_json_atomic(out / "summary.json", summary)
    lines = [f"# Expert drive on `{map_name}`", ""]
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in summary.items() if k != "provenance"]
    lines += ["", f"Produced by `{summary['provenance']['command']}` at git {summary['provenance']['git_sha']}."]
    write_text_atomic(out / "summary.md", "\n".join(lines) + "\n")
    return summary
