"""``sim2real translate``: run a generator checkpoint over an image, a folder or a video.

Everything that can be checked without the model (kinds and suffixes, output name collisions,
an output that would overwrite the input) is checked before the checkpoint is loaded, and
nothing is written until every frame has been read and translated: a folder's outputs go to a
hidden temporary folder inside the output folder and are moved into place at the end, a single
image or video is written under a temporary name and renamed. A failure (an unreadable frame,
a full disk) raises ``InputError`` (a ``ValueError``) naming the file and leaves the output as it was.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import imageio.v2 as imageio
import numpy as np

from generators.checkpoint import load_generator
from generators.data import IMAGE_SUFFIXES, is_truncated_jpeg
from generators.protocol import Generator
from sim2real_env.errors import ConfigError, InputError
from sim2real_env.frames import resize_frames
from sim2real_env.video import IMAGE_WRITE_SUFFIXES, VIDEO_FORMATS, write_image, write_video


def translate_frames(generator: Generator, frames: list[np.ndarray], side_by_side: bool) -> list[np.ndarray]:
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
    if bgr is None or bgr.size == 0:
        raise InputError(f"translate: cannot read image {path} (missing, corrupt or not an image)")
    if is_truncated_jpeg(path):
        raise InputError(f"translate: image {path} is a truncated JPEG (no end-of-image marker)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_video(path: Path) -> tuple[list[np.ndarray], float]:
    """``(H, W, 3) uint8`` RGB frames and frames per second; any decoder failure names ``path``."""
    try:
        reader = imageio.get_reader(path)
        try:
            meta = reader.get_meta_data()
            frames = [np.asarray(f) for f in reader]  # type: ignore[attr-defined]
        finally:
            reader.close()
    except Exception as exc:  # ffmpeg / pillow raise many types; all mean "this file does not decode"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"translate: cannot read video {path} ({reason})") from exc
    if not frames:
        raise InputError(f"translate: video {path} has no frames")
    frames = [np.repeat(f[..., None], 3, axis=2) if f.ndim == 2 else f[..., :3] for f in frames]
    if any(f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3 for f in frames):
        raise InputError(f"translate: video {path} does not decode to 8-bit RGB frames")
    fps = meta.get("fps")
    if fps is None and meta.get("duration"):  # GIFs store milliseconds per frame
        fps = 1000.0 / float(meta["duration"])
    fps = float(fps) if fps is not None else 30.0
    if not math.isfinite(fps) or fps <= 0:
        raise InputError(f"translate: video {path} reports {fps} frames per second")
    return frames, fps


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def folder_images(source: Path, owner: str = "translate") -> list[Path]:
    """The folder's images, sorted; two that would be written as one ``<stem>.png`` are an error."""
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{owner}: folder {source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    # Case-folded: on a case-insensitive file system a.PNG and A.jpg land on one file too.
    claimed: dict[str, Path] = {}
    for path in files:
        key = f"{path.stem}.png".casefold()
        if key in claimed:
            raise InputError(
                f"{owner}: {claimed[key].name} and {path.name} in {source} would both be written as "
                f"{path.stem}.png; rename one of them"
            )
        claimed[key] = path
    return files


@contextlib.contextmanager
def _output_folder(folder: Path) -> Iterator[None]:
    """Create ``folder`` and its missing parents; remove the ones created here if the block fails."""
    created = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"translate: cannot create the output folder {folder}: {exc.strerror or exc}") from exc
    try:
        yield
    except BaseException:
        for made in created:  # deepest first; only if nothing else appeared in them
            with contextlib.suppress(OSError):
                made.rmdir()
        raise


def _cannot_write(target: Path, exc: OSError) -> InputError:
    return InputError(f"translate: cannot write {target}: {exc.strerror if exc.errno else exc}")


def translate_path(
    checkpoint: Path, source: Path, target: Path, side_by_side: bool = False, batch_size: int = 8
) -> int:
    """Translate ``source`` (image, folder or video) into ``target`` of the same kind; returns frames.

    A folder's images are written as ``<stem>.png``. Example::

        translate_path(Path("pretrained:cyclegan"), Path("runs/harvest/canonical"), Path("runs/fake_real"))
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"translate: batch size must be an integer >= 1, got {batch_size!r}")
    if not source.exists():
        raise FileNotFoundError(f"translate: input {source} does not exist")
    if source.resolve() == target.resolve():
        raise InputError(f"translate: the output {target} is the input; choose another output")
    if source.is_dir():
        if target.suffix:
            raise ConfigError(f"translate: input is a folder, so the output must be a folder, got {target}")
        if target.exists() and not target.is_dir():
            raise InputError(f"translate: input is a folder, but the output {target} is a file")
        files = folder_images(source)
        generator = load_generator(checkpoint)
        return _translate_folder(generator, files, target, side_by_side, batch_size)
    suffix = source.suffix.lower()
    if suffix in VIDEO_FORMATS:
        if target.suffix.lower() not in VIDEO_FORMATS:
            raise ConfigError(f"translate: input is a video, so the output must end in {VIDEO_FORMATS}, got {target}")
        frames, fps = _read_video(source)
        generator = load_generator(checkpoint)
        out: list[np.ndarray] = []
        for chunk in _batches(frames, batch_size):
            out.extend(translate_frames(generator, chunk, side_by_side))
        with _output_folder(target.parent):
            try:
                return write_video(target, out, fps=fps)
            except OSError as exc:
                raise _cannot_write(target, exc) from exc
    if suffix in IMAGE_SUFFIXES:
        if target.suffix.lower() not in IMAGE_WRITE_SUFFIXES:
            raise ConfigError(
                f"translate: input is an image, so the output must end in {IMAGE_WRITE_SUFFIXES}, got {target}"
            )
        if target.is_dir():
            raise InputError(f"translate: input is an image, but the output {target} is a folder")
        frame = _read_rgb(source)
        generator = load_generator(checkpoint)
        (translated,) = translate_frames(generator, [frame], side_by_side)
        with _output_folder(target.parent):
            try:
                write_image(target, translated)
            except OSError as exc:
                raise _cannot_write(target, exc) from exc
        return 1
    raise InputError(
        f"translate: input {source} is not a folder, an image ({IMAGE_SUFFIXES}) or a video ({VIDEO_FORMATS})"
    )


def _translate_folder(
    generator: Generator, files: list[Path], target: Path, side_by_side: bool, batch_size: int
) -> int:
    """Translate into a temporary folder inside ``target``, then move every frame into place."""
    with _output_folder(target):
        try:
            staging = Path(tempfile.mkdtemp(prefix=".translate-partial-", dir=target))
        except OSError as exc:
            raise _cannot_write(target, exc) from exc
        try:
            for chunk in _batches(files, batch_size):
                frames = translate_frames(generator, [_read_rgb(p) for p in chunk], side_by_side)
                for path, frame in zip(chunk, frames, strict=True):
                    try:
                        write_image(staging / f"{path.stem}.png", frame)
                    except OSError as exc:
                        raise _cannot_write(target / f"{path.stem}.png", exc) from exc
            for path in files:
                try:
                    os.replace(staging / f"{path.stem}.png", target / f"{path.stem}.png")
                except OSError as exc:
                    raise _cannot_write(target / f"{path.stem}.png", exc) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return len(files)
