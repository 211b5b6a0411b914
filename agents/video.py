"""``sim2real video``: drive the expert and write simulator | translated side by side (the seed's headline artefact)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agents.expert import PurePursuitExpert
from generators.checkpoint import load_generator
from sim2real_env.checkpoints import run_label
from sim2real_env.env import EnvConfig
from sim2real_env.errors import ConfigError
from sim2real_env.make import build_env
from sim2real_env.provenance import provenance, write_json_atomic
from sim2real_env.rollout import Step, rollout
from sim2real_env.video import VIDEO_FORMATS, labelled_grid, write_png, write_video
from sim2real_env.wrappers import Sim2RealObservation


def side_by_side_video(
    checkpoint: Path | Sequence[Path],
    out: Path,
    map_name: str = "small_loop",
    steps: int = 300,
    seed: int = 0,
    camera: tuple[int, int] = (160, 120),
    scale: int = 2,
    stills: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out`` (.mp4 or .gif): each frame is [simulator | translated...] at camera size x ``scale``.

    Several checkpoints give one panel each, all translating the same frame, so methods compare
    side by side. ``stills > 0`` also writes ``<out>.png``: that many evenly spaced moments as
    labelled rows (the picture for a README or a paper).
    """
    if Path(out).suffix not in VIDEO_FORMATS:  # before driving, not after
        raise ConfigError(f"video: the output must end in one of {VIDEO_FORMATS}, got {Path(out).name!r}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # a file in the way fails now, not after the drive
    if steps < 1:
        raise ConfigError(f"video: steps must be >= 1, got {steps}")
    if stills < 0 or stills > steps + 1:
        raise ConfigError(f"video: stills must be between 0 and steps + 1 = {steps + 1}, got {stills}")
    checkpoints = [Path(checkpoint)] if isinstance(checkpoint, (str, Path)) else [Path(c) for c in checkpoint]
    if not checkpoints:
        raise ConfigError("video: give at least one checkpoint")
    generators = [load_generator(c, direction="sim->real") for c in checkpoints]
    base = build_env(
        EnvConfig(map_name=map_name, camera_width=camera[0], camera_height=camera[1], episode_length=steps + 1)
    )
    env = Sim2RealObservation(base, generators[0], keep_original=True)
    # The other generators translate the same simulator frame through the same resize logic.
    others = [Sim2RealObservation(base, g) for g in generators[1:]]
    expert = PurePursuitExpert()

    def panels(translated: np.ndarray, info: dict[str, Any]) -> list[np.ndarray]:
        sim = info["untranslated_obs"]
        return [sim, translated, *(w.observation(sim) for w in others)]

    frames: list[list[np.ndarray]] = []
    bar = tqdm(total=steps, unit="step", disable=not progress, desc=f"video {map_name}")

    def record(step: Step) -> None:
        frames.append(panels(step.next_obs, step.info))
        bar.update(1)

    rollout(
        env,
        lambda obs: expert.act(env),
        seed=seed,
        max_steps=steps,
        restart="always",  # a restart's first frame is not shown: the video runs on
        on_reset=lambda obs, info, episode: frames.append(panels(obs, info)) if episode == 0 else None,
        on_step=record,
    )
    bar.close()
    fps = env.metadata.get("render_fps", 30)
    env.close()
    count = write_video(out, (np.concatenate(f, axis=1) for f in frames), fps=fps, scale=scale)
    labels = [
        "simulator",
        *(f"{g.method} ({run_label(c)})" for g, c in zip(generators, checkpoints, strict=True)),
    ]
    summary: dict[str, Any] = {
        "video": str(out),
        "frames": count,
        "map": map_name,
        "checkpoint": [str(c) for c in checkpoints] if len(checkpoints) > 1 else str(checkpoints[0]),
        "checkpoint_id": [g.checkpoint_id for g in generators] if len(generators) > 1 else generators[0].checkpoint_id,
        "layout": "left to right: " + ", ".join(labels),
        "provenance": provenance(),
    }
    if stills:
        picks = np.linspace(0, len(frames) - 1, stills).round().astype(int)  # distinct while stills <= frames
        chosen = [frames[i] for i in picks]
        still_path = out.with_suffix(".png")
        write_png(still_path, labelled_grid(chosen, labels, scale=scale))
        summary["stills"] = str(still_path)
    write_json_atomic(out.with_suffix(".json"), summary)
    return summary
