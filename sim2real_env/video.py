"""Writing frames to MP4 (imageio-ffmpeg, which ships its own ffmpeg) or GIF."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import imageio.v2 as imageio
import numpy as np

VIDEO_FORMATS = (".mp4", ".gif")


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float, scale: int = 1) -> int:
    """Write ``(H, W, 3) uint8`` RGB frames; format from the suffix. Returns the frame count.

    ``scale`` enlarges frames (nearest neighbour) so small camera frames are watchable. Written
    to a temporary name and renamed, so a crash leaves no half-written video.
    """
    if path.suffix not in VIDEO_FORMATS:
        raise ValueError(f"video path must end in one of {VIDEO_FORMATS}, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    count = 0
    kwargs: dict[str, object] = (
        {"fps": fps, "codec": "libx264", "quality": 7, "macro_block_size": 1}
        if path.suffix == ".mp4"
        else {"duration": 1000.0 / fps, "loop": 0}
    )
    try:
        with imageio.get_writer(tmp, **kwargs) as writer:  # type: ignore[arg-type]
            for frame in frames:
                if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                    raise ValueError(f"video frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
                if scale != 1:
                    frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
                writer.append_data(frame)  # type: ignore[attr-defined]
                count += 1
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def labelled_grid(rows: list[list[np.ndarray]], labels: list[str], scale: int = 2) -> np.ndarray:
    """Rows of equally sized RGB panels under a header of column labels, enlarged ``scale`` times."""
    if not rows or any(len(r) != len(labels) for r in rows):
        raise ValueError(f"labelled_grid: every row needs {len(labels)} panels, one per label")
    body = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    body = cv2.resize(body, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    panel_w = body.shape[1] // len(labels)
    header = np.full((28, body.shape[1], 3), 255, np.uint8)
    for i, label in enumerate(labels):
        font_scale = 0.6
        while font_scale > 0.3 and cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[0][0] > panel_w - 8:
            font_scale -= 0.05  # shrink a long label to its panel
        cv2.putText(
            header, label, (i * panel_w + 4, 20), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    return np.concatenate([header, body], axis=0)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG via a temporary name, so a crash leaves no half-written file."""
    if path.suffix != ".png":
        raise ValueError(f"image path must end in .png, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not write {path}")
    tmp.replace(path)
