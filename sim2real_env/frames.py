"""Batches of uint8 frames through a generator, at any size: resize in, translate, resize out.

Gym-free (numpy and OpenCV only), so that ``generators`` (offline translation, image metrics,
training samples) and the observation wrappers share one implementation without ``generators``
importing Gymnasium. Frames are ``(N, H, W, 3) uint8`` RGB throughout.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(N, H, W, 3) uint8`` to ``size`` = (H, W): INTER_AREA to shrink (no aliasing), linear to grow."""
    if frames.shape[1:3] == size:
        return frames
    height, width = size
    shrinking = frames.shape[1] * frames.shape[2] > height * width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = np.empty((frames.shape[0], height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(frame, (width, height), interpolation=interpolation)
    return out


def translate_batch(generator: Any, frames: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """One generator pass for a batch ``(N, H, W, 3) uint8``; returns ``(N, *output_size, 3) uint8``."""
    translated = generator.translate(resize_frames(frames, generator.image_size))
    return resize_frames(np.asarray(translated), output_size)


def translate_in_batches(generator: Any, frames: np.ndarray, batch: int = 32) -> np.ndarray:
    """Translate a whole array of frames in batches of ``batch``; output at the input's size."""
    size = (int(frames.shape[1]), int(frames.shape[2]))
    return np.concatenate(
        [translate_batch(generator, frames[i : i + batch], size) for i in range(0, len(frames), batch)]
    )
