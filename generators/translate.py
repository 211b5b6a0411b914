"""``sim2real translate``: run a generator checkpoint over an image, a folder or a video."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import imageio.v2 as imageio
import numpy as np

from generators.checkpoint import load_generator
from generators.data import IMAGE_SUFFIXES
from sim2real_env.video import VIDEO_FORMATS, write_video
from sim2real_env.wrappers import resize_frames


def translate_frames(generator: Any, frames: list[np.ndarray], side_by_side: bool) -> list[np.ndarray]:
    """Translate RGB frames of any size: resized to the generator's size and back."""
    batch = np.concatenate([resize_frames(f[None], generator.image_size) for f in frames])
    out = generator.translate(batch)
    results = []
    for original, translated in zip(frames, out, strict=True):
        translated = resize_frames(translated[None], original.shape[:2])[0]
        results.append(np.concatenate([original, translated], axis=1) if side_by_side else translated)
    return results


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"translate: cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def translate_path(
    checkpoint: Path, source: Path, target: Path, side_by_side: bool = False, batch_size: int = 8
) -> int:
    """Translate ``source`` (image, folder or video) into ``target`` of the same kind; returns frames."""
    if batch_size < 1:
        raise ValueError(f"translate: batch size must be >= 1, got {batch_size}")
    if not source.exists():
        raise FileNotFoundError(f"translate: input {source} does not exist")
    generator = load_generator(checkpoint)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"translate: folder {source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        if target.suffix:
            raise ValueError(f"translate: input is a folder, so the output must be a folder, got {target}")
        target.mkdir(parents=True, exist_ok=True)
        for chunk in _batches(files, batch_size):
            for path, frame in zip(
                chunk, translate_frames(generator, [_read_rgb(p) for p in chunk], side_by_side), strict=True
            ):
                cv2.imwrite(str(target / f"{path.stem}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        return len(files)
    if source.suffix.lower() in VIDEO_FORMATS:
        if target.suffix.lower() not in VIDEO_FORMATS:
            raise ValueError(f"translate: input is a video, so the output must end in {VIDEO_FORMATS}, got {target}")
        reader = imageio.get_reader(source)
        fps = float(reader.get_meta_data().get("fps", 30.0))
        frames = [np.asarray(f)[..., :3] for f in reader]  # type: ignore[attr-defined]
        reader.close()
        if not frames:
            raise ValueError(f"translate: video {source} has no frames")
        out: list[np.ndarray] = []
        for chunk in _batches(frames, batch_size):
            out.extend(translate_frames(generator, chunk, side_by_side))
        return write_video(target, out, fps=fps)
    if source.suffix.lower() in IMAGE_SUFFIXES:
        (frame,) = translate_frames(generator, [_read_rgb(source)], side_by_side)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
            raise ValueError(f"translate: cannot write image {target} (use .png or .jpg)")
        return 1
    raise ValueError(
        f"translate: input {source} is not a folder, an image ({IMAGE_SUFFIXES}) or a video ({VIDEO_FORMATS})"
    )
