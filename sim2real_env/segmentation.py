"""Semantic classes of a segmentation render, and the mapping from its colours to class ids.

The simulator's segmentation render (with the fixes in :mod:`sim2real_env._compat`) draws the
sky, ground and non-road tiles in :data:`BACKGROUND_RGB`, asphalt black, lane markings in their
own (unlit) texture colours, duckies in :data:`DUCKIE_RGB` and every other object in
:data:`OTHER_OBJECT_RGB`. Multisampling blends colours at edges, so each pixel is mapped to the
nearest class colour rather than matched exactly.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class SegClass(IntEnum):
    """Class ids of :func:`classes_from_render` (stored as uint8)."""

    BACKGROUND = 0  # sky, ground, grass and other non-road tiles
    ROAD = 1
    WHITE_LINE = 2
    YELLOW_LINE = 3
    RED_LINE = 4
    DUCKIE = 5
    OTHER = 6  # any other object: duckiebots, signs, cones, buildings, ...


BACKGROUND_RGB: tuple[int, int, int] = (255, 0, 255)
DUCKIE_RGB: tuple[int, int, int] = (0, 0, 255)
OTHER_OBJECT_RGB: tuple[int, int, int] = (0, 255, 255)
#: Object meshes that count as duckies (the rest are OTHER).
DUCKIE_MESHES: frozenset[str] = frozenset({"duckie", "duckie2", "duckie-gltf"})

#: Reference colour of each class in a segmentation render. Line colours are the medians measured
#: on unlit segmented tile textures (white ~ (235, 230, 227), yellow (237, 224, 70), red (234, 53, 65)).
RENDER_PALETTE: dict[SegClass, tuple[int, int, int]] = {
    SegClass.BACKGROUND: BACKGROUND_RGB,
    SegClass.ROAD: (0, 0, 0),
    SegClass.WHITE_LINE: (235, 231, 228),
    SegClass.YELLOW_LINE: (237, 224, 70),
    SegClass.RED_LINE: (234, 53, 65),
    SegClass.DUCKIE: DUCKIE_RGB,
    SegClass.OTHER: OTHER_OBJECT_RGB,
}

#: Colours for showing class maps to people.
DISPLAY_PALETTE: dict[SegClass, tuple[int, int, int]] = {
    SegClass.BACKGROUND: (40, 40, 40),
    SegClass.ROAD: (110, 110, 110),
    SegClass.WHITE_LINE: (255, 255, 255),
    SegClass.YELLOW_LINE: (255, 210, 0),
    SegClass.RED_LINE: (220, 30, 30),
    SegClass.DUCKIE: (255, 140, 0),
    SegClass.OTHER: (40, 120, 255),
}


def _reference_colours() -> tuple[np.ndarray, np.ndarray]:
    """Class colours plus blends of every pair (10%..90%), each labelled with its larger share.

    Why: an anti-aliased edge between two classes is a blend of their colours, and a plain nearest
    colour can send it to a third class (half-white, half-asphalt grey is nearer red than either).
    """
    colours = [np.array(RENDER_PALETTE[c], dtype=np.float64) for c in SegClass]
    refs, labels = list(colours), list(SegClass)
    for a in SegClass:
        for b in SegClass:
            if a < b:
                for weight in np.linspace(0.1, 0.9, 9):
                    refs.append(weight * colours[a] + (1 - weight) * colours[b])
                    labels.append(a if weight >= 0.5 else b)
    return np.round(np.stack(refs)).astype(np.int32), np.array(labels, dtype=np.uint8)


_REFERENCE, _LABELS = _reference_colours()  # (R, 3) int32, (R,) uint8


def classes_from_render(segmentation_rgb: np.ndarray) -> np.ndarray:
    """Map a segmentation render ``(H, W, 3) uint8`` to class ids ``(H, W) uint8`` (nearest colour)."""
    if segmentation_rgb.ndim != 3 or segmentation_rgb.shape[2] != 3 or segmentation_rgb.dtype != np.uint8:
        raise ValueError(
            "classes_from_render expects an (H, W, 3) uint8 image, "
            f"got {segmentation_rgb.shape} {segmentation_rgb.dtype}"
        )
    # Most pixels repeat a few colours: classify each distinct colour once.
    flat = segmentation_rgb.reshape(-1, 3)
    keys = (flat[:, 0].astype(np.int32) << 16) | (flat[:, 1].astype(np.int32) << 8) | flat[:, 2]
    unique, inverse = np.unique(keys, return_inverse=True)
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1)
    distance = ((colours[:, None, :] - _REFERENCE[None, :, :]) ** 2).sum(axis=2)  # (U, R)
    return _LABELS[distance.argmin(axis=1)][inverse].reshape(segmentation_rgb.shape[:2])


def colorize(class_ids: np.ndarray) -> np.ndarray:
    """Class ids ``(H, W)`` to an RGB picture ``(H, W, 3) uint8`` with :data:`DISPLAY_PALETTE`."""
    lut = np.array([DISPLAY_PALETTE[c] for c in SegClass], dtype=np.uint8)
    if class_ids.max(initial=0) >= len(lut):
        raise ValueError(f"colorize: class id {int(class_ids.max())} is not a SegClass")
    return lut[class_ids]
