"""Reading a ``sim2real harvest`` folder: its manifest and the pixel-aligned PNG views of each frame.

Gym-free (numpy and OpenCV only), so the generators layer and the agents layer read harvests the
same way. The folder, as :mod:`agents.harvest` writes it::

    manifest.csv               one row per frame; its ``frame`` column names the PNGs below
    canonical/<frame>.png      plain simulator frames (RGB)
    randomized/<frame>.png     same pose, domain-randomized appearance (RGB)
    segmentation/<frame>.png   class ids, single channel (see :class:`sim2real_env.segmentation.SegClass`)

Example::

    names = harvest_frame_names("runs/harvest")
    frames, classes = read_harvest("runs/harvest", ("canonical",), names[:16])
    frames.shape, classes.shape  # (16, H, W, 3) uint8 RGB, (16, H, W) uint8 class ids
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from sim2real_env.errors import InputError

MANIFEST = "manifest.csv"
#: The RGB views of a frame (folders of the harvest), beside its ``segmentation`` class map.
VIEWS = ("canonical", "randomized")


def harvest_frame_names(root: str | Path) -> list[str]:
    """The ``frame`` column of ``root/manifest.csv``, in manifest order; ``InputError`` if there is none."""
    root = Path(root)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise InputError(f"{root} has no {MANIFEST}; give a `sim2real harvest` folder")
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "frame" not in rows[0]:
        raise InputError(f"{manifest} lists no frames (expected a 'frame' column)")
    return [row["frame"] for row in rows]


def harvest_distortion(root: str | Path) -> bool:
    """Whether the harvest was rendered through the fisheye lens (its ``harvest.json``).

    A folder without the record (older or hand-made, a manifest and PNGs only) is a pinhole one,
    which is what every harvest was before the lens option; a record that does not parse is an error.
    """
    path = Path(root) / "harvest.json"
    if not path.is_file():
        return False
    try:
        value = json.loads(path.read_text())["config"].get("distortion", False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} is not a `sim2real harvest` record ({exc}); give a harvest folder") from exc
    if not isinstance(value, bool):
        raise InputError(f"{path}: config.distortion must be true or false, got {value!r}")
    return value


def read_harvest(
    root: str | Path, views: Sequence[str] = ("canonical",), frames: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(N * len(views), H, W, 3)`` uint8 RGB and class maps ``(N * len(views), H, W)`` uint8.

    ``frames`` (default: every manifest row) are names from :func:`harvest_frame_names`; for each,
    its views in the order given, each paired with the frame's segmentation. A missing, unreadable
    or misaligned PNG is an ``InputError`` naming it.
    """
    root = Path(root)
    for view in views:
        if view not in VIEWS:
            raise ValueError(f"read_harvest: unknown view {view!r}; the views are {', '.join(VIEWS)}")
    names = harvest_frame_names(root) if frames is None else frames
    images, classes = [], []
    for name in names:
        seg_path = root / "segmentation" / f"{name}.png"
        seg = cv2.imread(str(seg_path), cv2.IMREAD_UNCHANGED)
        if seg is None or seg.ndim != 2:
            raise InputError(f"segmentation {seg_path} is missing or not a single-channel class map")
        for view in views:
            path = root / view / f"{name}.png"
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError(f"frame {path} is missing or unreadable")
            if bgr.shape[:2] != seg.shape:
                raise InputError(f"{path} is {bgr.shape[1]}x{bgr.shape[0]} but its segmentation is not")
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            classes.append(seg)
    if not images:
        raise InputError(f"read_harvest: no frames asked of {root}")
    return np.stack(images), np.stack(classes)
