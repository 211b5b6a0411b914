"""``sim2real video``: drive the expert and write simulator | translated side by side (the seed's headline artefact)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from agents.expert import PurePursuitExpert
from generators.checkpoint import load_generator
from sim2real_env import ENV_ID
from sim2real_env.provenance import provenance, write_json_atomic
from sim2real_env.video import write_video
from sim2real_env.wrappers import Sim2RealObservation


def side_by_side_video(
    checkpoint: Path,
    out: Path,
    map_name: str = "small_loop",
    steps: int = 300,
    seed: int = 0,
    camera: tuple[int, int] = (160, 120),
    scale: int = 2,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out`` (.mp4 or .gif): each frame is [simulator | translated] at camera size x ``scale``."""
    if steps < 1:
        raise ValueError(f"video: steps must be >= 1, got {steps}")
    generator = load_generator(checkpoint, direction="sim->real")
    env = Sim2RealObservation(
        gym.make(ENV_ID, map_name=map_name, camera_width=camera[0], camera_height=camera[1], episode_length=steps + 1),
        generator,
        keep_original=True,
    )
    expert = PurePursuitExpert()
    translated, info = env.reset(seed=seed)
    frames = [np.concatenate([info["untranslated_obs"], translated], axis=1)]
    for _ in tqdm(range(steps), unit="step", disable=not progress, desc=f"video {map_name}"):
        translated, _, terminated, truncated, info = env.step(expert.act(env))
        frames.append(np.concatenate([info["untranslated_obs"], translated], axis=1))
        if terminated or truncated:
            translated, info = env.reset()
    fps = env.metadata.get("render_fps", 30)
    env.close()
    count = write_video(out, frames, fps=fps, scale=scale)
    summary = {
        "video": str(out),
        "frames": count,
        "map": map_name,
        "checkpoint": str(checkpoint),
        "checkpoint_id": generator.checkpoint_id,
        "layout": "left: simulator, right: translated",
        "provenance": provenance(),
    }
    write_json_atomic(out.with_suffix(".json"), summary)
    return summary
