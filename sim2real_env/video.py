"""Writing frames to MP4 (imageio-ffmpeg, which ships its own ffmpeg) or GIF."""

from __future__ import annotations

import errno
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np

from sim2real_env.errors import ConfigError, InputError
from sim2real_env.provenance import write_bytes_atomic

VIDEO_FORMATS = (".mp4", ".gif")


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float, scale: int = 1) -> int:
    """Write ``(H, W, 3) uint8`` RGB frames; format from the suffix. Returns the frame count.

    ``scale`` enlarges frames (nearest neighbour) so small camera frames are watchable. Nothing
    appears under ``path`` unless the whole video was written and checked: an MP4 is encoded to
    a temporary name, decoded again to count its frames and renamed; a GIF is encoded in memory
    and written with :func:`~sim2real_env.provenance.write_bytes_atomic`. A full disk raises
    ``OSError``.
    """
    if path.suffix not in VIDEO_FORMATS:
        raise ConfigError(f"video path must end in one of {VIDEO_FORMATS}, got {path.name!r}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < float("inf"):
        raise ConfigError(f"{path.name}: frames per second must be a positive number, got {fps!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    gif = io.BytesIO()
    count = 0
    try:
        writer = (
            imageio.get_writer(tmp, fps=fps, codec="libx264", quality=7, macro_block_size=1)
            if path.suffix == ".mp4"
            else imageio.get_writer(gif, format="GIF", duration=1000.0 / fps, loop=0)
        )
        with writer:
            for frame in frames:
                if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                    raise ValueError(f"video frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
                if scale != 1:
                    frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
                writer.append_data(frame)
                count += 1
        if count == 0:
            raise InputError(f"{path.name}: no frames to write")
        if path.suffix == ".mp4":
            _check_mp4(tmp, count, path)
            tmp.replace(path)
        else:
            write_bytes_atomic(path, gif.getvalue())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def _check_mp4(written: Path, expected: int, path: Path) -> None:
    """Decode what ffmpeg wrote, and count the frames.

    imageio-ffmpeg ignores ffmpeg's exit status, so a full disk would otherwise leave a truncated
    video behind a reported success.
    """
    try:
        frames, _ = imageio_ffmpeg.count_frames_and_secs(str(written))
    except RuntimeError as exc:
        raise OSError(errno.EIO, "ffmpeg wrote an unreadable file (disk full?)", str(path)) from exc
    if frames != expected:
        raise OSError(errno.EIO, f"ffmpeg wrote {frames} of {expected} frames (disk full?)", str(path))


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


#: Image formats :func:`write_image` writes (OpenCV chooses the encoder by suffix).
IMAGE_WRITE_SUFFIXES = (".png", ".jpg", ".jpeg")


def write_image(path: Path, image: np.ndarray) -> None:
    """Write an RGB ``(H, W, 3)`` (or single-channel ``(H, W)``) uint8 image, atomically.

    Encoded in memory, then written through :func:`~sim2real_env.provenance.write_bytes_atomic`:
    a full disk or an unwritable folder raises ``OSError`` naming ``path`` and leaves no file,
    where ``cv2.imwrite`` would only return ``False``.
    """
    suffix = path.suffix.lower()
    if suffix not in IMAGE_WRITE_SUFFIXES:
        raise ConfigError(f"image path must end in one of {IMAGE_WRITE_SUFFIXES}, got {path.name!r}")
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"{path.name}: images must be (H, W, 3) or (H, W) uint8, got {image.shape} {image.dtype}")
    ok, encoded = cv2.imencode(suffix, image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"could not encode {path} as {suffix}")
    write_bytes_atomic(path, encoded.tobytes())


def write_figure(path: Path, figure: Any, dpi: int = 120) -> None:
    """Write a matplotlib ``figure`` as PNG, atomically: a kill while it is drawn leaves no truncated file.

    ``figure.savefig(path)`` writes the file as it encodes it; this encodes in memory and writes
    through :func:`~sim2real_env.provenance.write_bytes_atomic`. The caller closes the figure.
    """
    if path.suffix != ".png":
        raise ConfigError(f"figure path must end in .png, got {path.name!r}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    write_bytes_atomic(path, buffer.getvalue())


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG, atomically (see :func:`write_image`)."""
    if path.suffix != ".png":
        raise ConfigError(f"image path must end in .png, got {path.name!r}")
    write_image(path, image)
