"""Expert drives: ``sim2real drive`` (a video of the camera and a summary) and the frames of one drive.

:func:`expert_drive_frames` is the frame source that the flicker measure of
``generators.image_metrics`` is handed (generators build no simulator themselves).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agents.expert import ExpertConfig, PurePursuitExpert
from sim2real_env.env import EnvConfig
from sim2real_env.errors import ConfigError
from sim2real_env.make import build_env
from sim2real_env.provenance import provenance, write_json_atomic, write_text_atomic
from sim2real_env.rollout import Step, rollout
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
    env = build_env(EnvConfig(map_name=map_name, camera_width=camera[0], camera_height=camera[1], episode_length=steps))
    expert = PurePursuitExpert(ExpertConfig(wheel_noise_std=wheel_noise_std), seed=seed)
    frames: list[np.ndarray] = []
    lateral: list[float] = []
    heading: list[float] = []
    failures: list[str] = []
    visited: set[tuple[int, int]] = set()
    distance = 0.0
    bar = tqdm(total=steps, unit="step", disable=not progress, desc=f"drive {map_name}")

    def first(obs: np.ndarray, info: dict[str, Any], episode: int) -> None:
        if episode == 0:  # the video runs on across a restart: the restart's first frame is not shown
            frames.append(obs)
            visited.add(info["tile"])

    def record(step: Step) -> None:
        nonlocal distance
        frames.append(step.next_obs)
        info = step.info
        distance += info["progress_m"]
        visited.add(info["tile"])
        if info["in_lane"]:
            lateral.append(abs(info["lane_lateral_m"]))
            heading.append(abs(info["lane_heading_rad"]))
        if step.terminated:
            failures.append(info["termination"])
        bar.update(1)

    run = rollout(
        env,
        lambda obs: expert.act(env),
        seed=seed,
        max_steps=steps,
        restart="on_termination",
        on_reset=first,
        on_step=record,
    )
    bar.close()
    step_time = run.step_s
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


def expert_drive_frames(map_name: str, steps: int, seed: int = 0, *, distortion: bool = False) -> np.ndarray:
    """``(N, 120, 160, 3)`` uint8 camera frames of the pure-pursuit expert driving ``steps`` steps.

    The first frame is the reset's; the drive stops early if the episode ends (``N <= steps + 1``).
    ``distortion``: through the calibrated fisheye lens, as a fisheye harvest was rendered.
    """
    env = build_env(EnvConfig(map_name=map_name, episode_length=steps + 1, distortion=distortion))
    expert = PurePursuitExpert()
    frames: list[np.ndarray] = []
    rollout(
        env,
        lambda obs: expert.act(env),
        seed=seed,
        max_steps=steps,
        on_reset=lambda obs, info, episode: frames.append(obs),
        on_step=lambda step: frames.append(step.next_obs),
    )
    env.close()
    return np.stack(frames)
