"""Unpaired image folders for generator training, loaded once into memory, augmented on device.

Real frames default to ``../shared/data/duckietown_real`` (override with a config value, the
``--real-dir`` flag or ``SIM2REAL_REAL_DATA``); the project never commits them. A ``MANIFEST.csv``
at the folder root (columns ``path``, ``split``, ``lighting``, ...) enables filters. Sim frames
come from ``sim2real harvest`` (its ``canonical/`` folder).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import kornia.augmentation as K
import numpy as np
import torch

from sim2real_env.errors import Sim2RealError
from sim2real_env.provenance import REPO_ROOT

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
REAL_DATA_ENV = "SIM2REAL_REAL_DATA"
DEFAULT_REAL_DIR = REPO_ROOT.parent / "shared" / "data" / "duckietown_real"


class DatasetError(Sim2RealError, ValueError):
    """An image folder is missing, empty, filtered to nothing, or holds unreadable images."""


def default_real_dir() -> Path:
    """``$SIM2REAL_REAL_DATA`` if set, else ``../shared/data/duckietown_real`` beside the repo."""
    env = os.environ.get(REAL_DATA_ENV)
    return Path(env) if env else DEFAULT_REAL_DIR


@dataclass(frozen=True)
class FolderSpec:
    """Which images of a folder to use.

    ``filters`` keep MANIFEST rows whose column value is in the list, e.g.
    ``{"lighting": ["bright", "normal"]}``. ``split`` uses the MANIFEST's ``split`` column when
    present, else a deterministic hash of the file path (``val_percent`` of files go to ``val``).
    """

    root: str
    split: str = "train"
    filters: dict[str, list[str]] = field(default_factory=dict)
    val_percent: int = 10
    on_corrupt: str = "skip"  # "skip" (report and count) or "fail"

    def __post_init__(self) -> None:
        if self.split not in ("train", "val", "all"):
            raise DatasetError(f"FolderSpec.split must be 'train', 'val' or 'all', got {self.split!r}")
        if self.on_corrupt not in ("skip", "fail"):
            raise DatasetError(f"FolderSpec.on_corrupt must be 'skip' or 'fail', got {self.on_corrupt!r}")
        if not 0 <= self.val_percent < 100:
            raise DatasetError(f"FolderSpec.val_percent must be in [0, 100), got {self.val_percent!r}")


def _hash_split(relative: str, val_percent: int) -> str:
    bucket = int(hashlib.sha256(relative.encode()).hexdigest()[:8], 16) % 100
    return "val" if bucket < val_percent else "train"


def list_images(spec: FolderSpec) -> list[Path]:
    """Image files selected by ``spec``, sorted; errors name the folder and what was expected.

    Without a ``MANIFEST.csv`` every image under the folder is used (split by path hash). With
    one, its rows are the dataset, and a MANIFEST that cannot say which files those are is an
    error whether or not filters are given: one without a ``path`` column or without rows used
    to fall back to globbing the folder, so a filtered run trained on everything (and a split
    column was ignored) while its checkpoint recorded the filter as applied. The file exists
    to declare the dataset; when it is broken, repairing or deleting it is the user's one-step
    fix, and guessing is the silent misreading this avoids. Each row must name a file inside
    the folder (no absolute paths, no ``..`` leading out), once, and that file must exist.
    """
    root = Path(spec.root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist")
    manifest = root / "MANIFEST.csv"
    if not manifest.exists():
        if spec.filters:
            raise DatasetError(f"filters {spec.filters} need {manifest}, which does not exist")
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        selected = [
            p
            for p in files
            if spec.split == "all" or _hash_split(p.relative_to(root).as_posix(), spec.val_percent) == spec.split
        ]
    else:
        selected = _manifest_images(root, manifest, spec)
    if not selected:
        what = f" matching {spec.filters}" if spec.filters else ""
        raise DatasetError(f"image folder {root} has no {spec.split} images{what} ({', '.join(IMAGE_SUFFIXES)})")
    return sorted(selected)


def _manifest_images(root: Path, manifest: Path, spec: FolderSpec) -> list[Path]:
    try:
        with open(manifest, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{manifest} cannot be read as CSV: {exc}") from exc
    if "path" not in columns:
        found = ", ".join(columns) if columns else "none"
        raise DatasetError(
            f"{manifest} has no 'path' column (columns: {found}); fix it or delete it to use every image"
        )
    if not rows:
        raise DatasetError(f"{manifest} lists no images (a header and no rows); fix it or delete it to use every image")
    for column in spec.filters:
        if column not in columns:
            raise DatasetError(f"{manifest} has no column {column!r}; columns: {', '.join(columns)}")
    seen: dict[str, int] = {}
    selected = []
    for line, row in rows:
        relative = (row.get("path") or "").strip()
        where = f"{manifest} line {line} (path {relative!r})"
        if not relative:
            raise DatasetError(f"{where}: the path is empty")
        normal = os.path.normpath(relative)
        if os.path.isabs(relative) or normal == os.pardir or normal.startswith(os.pardir + os.sep):
            raise DatasetError(f"{where}: paths must be relative to {root} and stay inside it")
        if normal in seen:
            raise DatasetError(f"{where}: the same file as line {seen[normal]}")
        seen[normal] = line
        if not (root / normal).is_file():
            raise DatasetError(f"{where}: no such file in {root}")
        if any(row.get(c) not in allowed for c, allowed in spec.filters.items()):
            continue
        split = row.get("split") or _hash_split(relative, spec.val_percent)
        if spec.split != "all" and split != spec.split:
            continue
        selected.append(root / normal)
    return selected


def is_truncated_jpeg(path: Path) -> bool:
    """Whether ``path`` is a JPEG whose last scan has no end-of-image marker (a cut-off file).

    OpenCV decodes such a file without an error (it only warns "Premature end of JPEG file" on
    stderr) and fills the missing rows with grey, so a truncated copy would otherwise count as
    a good frame. Entropy-coded data cannot contain ``FF D9`` (a data ``FF`` byte is always
    followed by ``00``), so a complete file has that end marker after its last start-of-scan
    (``FF DA``); an embedded EXIF thumbnail's marker comes before it and does not count.
    PNGs need no check: OpenCV refuses truncated ones.
    """
    if path.suffix.lower() not in (".jpg", ".jpeg"):
        return False
    try:
        data = path.read_bytes()
    except OSError:
        return True
    if not data.startswith(b"\xff\xd8"):
        return False  # not a JPEG inside; the decoder decides
    return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")


@dataclass
class ImageSet:
    """Images of one domain as a uint8 tensor ``(N, H, W, 3)`` plus where they came from."""

    images: torch.Tensor
    paths: list[str]
    skipped: list[str]
    root: str

    def summary(self) -> dict[str, Any]:
        """What a checkpoint records about its training data."""
        return {"root": self.root, "images": len(self.paths), "skipped_unreadable": len(self.skipped)}


def load_images(spec: FolderSpec, size: tuple[int, int]) -> ImageSet:
    """Read, convert to RGB and resize (``INTER_AREA``) every selected image to ``size`` = (H, W)."""
    paths = list_images(spec)
    height, width = size
    images = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    kept: list[str] = []
    skipped: list[str] = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None or bgr.size == 0 or is_truncated_jpeg(path):
            if spec.on_corrupt == "fail":
                raise DatasetError(f"unreadable or corrupt image: {path}")
            skipped.append(str(path))
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if rgb.shape[:2] != (height, width):
            interpolation = cv2.INTER_AREA if rgb.shape[0] > height else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, (width, height), interpolation=interpolation)
        images[len(kept)] = rgb
        kept.append(str(path))
    if skipped:
        print(f"data: skipped {len(skipped)} unreadable image(s) in {spec.root}, e.g. {skipped[0]}")
    if not kept:
        raise DatasetError(f"image folder {spec.root}: all {len(paths)} images are unreadable")
    return ImageSet(torch.from_numpy(images[: len(kept)].copy()), kept, skipped, str(spec.root))


class Augment:
    """Random resized crop (and optional flip) of a batch, on the batch's device (kornia).

    Horizontal flips are off by default: Duckietown drives on the right, with the yellow line on
    the left, and a mirrored frame shows a road that does not exist.
    """

    def __init__(self, size: tuple[int, int], scale: tuple[float, float] = (0.7, 1.0), flip: bool = False) -> None:
        aspect = size[1] / size[0]
        ops: list[Any] = [K.RandomResizedCrop(size, scale=scale, ratio=(aspect * 0.9, aspect * 1.1))]
        if flip:
            ops.append(K.RandomHorizontalFlip())
        self.pipeline = K.AugmentationSequential(*ops, data_keys=["input"])

    def __call__(self, batch_uint8_nhwc: torch.Tensor) -> torch.Tensor:
        """``(N, H0, W0, 3) uint8`` -> ``(N, 3, H, W) float`` in ``[-1, 1]``."""
        x = batch_uint8_nhwc.permute(0, 3, 1, 2).float().div_(255.0)
        return self.pipeline(x).mul_(2.0).sub_(1.0)


def sample_batch(
    images: torch.Tensor, batch_size: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """A random batch (with replacement across calls) of uint8 images, moved to ``device``."""
    index = torch.randint(0, images.shape[0], (batch_size,), generator=generator)
    return images[index].to(device, non_blocking=True)
