"""Pure tests of the segmentation colour -> class mapping."""

from __future__ import annotations

import numpy as np
import pytest

from sim2real_env.segmentation import RENDER_PALETTE, SegClass, classes_from_render, colorize


def test_exact_palette_colours_map_to_their_class() -> None:
    image = np.array([[RENDER_PALETTE[c] for c in SegClass]], dtype=np.uint8)
    np.testing.assert_array_equal(classes_from_render(image)[0], [int(c) for c in SegClass])


# Pairs of classes that meet at edges in renders: the road and the background border everything.
NEIGHBOURS = [(a, b) for a in (SegClass.ROAD, SegClass.BACKGROUND) for b in SegClass if b != a]


@pytest.mark.parametrize(("first", "second"), NEIGHBOURS, ids=lambda c: c.name)
def test_anti_aliased_blends_go_to_one_of_the_two_classes(first: SegClass, second: SegClass) -> None:
    # E.g. half white line, half asphalt: plain nearest-colour would call that grey a red line.
    one, two = np.array(RENDER_PALETTE[first]), np.array(RENDER_PALETTE[second])
    for weight in np.linspace(0.05, 0.95, 19):
        blend = np.round(weight * one + (1 - weight) * two).astype(np.uint8)
        label = classes_from_render(blend.reshape(1, 1, 3))[0, 0]
        assert label in (first, second), (weight, blend.tolist(), SegClass(label).name)


def test_measured_line_colours() -> None:
    samples = {
        (245, 236, 132): SegClass.YELLOW_LINE,
        (216, 201, 61): SegClass.YELLOW_LINE,
        (232, 40, 49): SegClass.RED_LINE,
        (224, 221, 217): SegClass.WHITE_LINE,
        (250, 5, 250): SegClass.BACKGROUND,
        (0, 0, 200): SegClass.DUCKIE,
    }
    image = np.array([list(samples)], dtype=np.uint8)
    np.testing.assert_array_equal(classes_from_render(image)[0], [int(c) for c in samples.values()])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"expects an \(H, W, 3\) uint8 image"):
        classes_from_render(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"expects an \(H, W, 3\) uint8 image"):
        classes_from_render(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="is not a SegClass"):
        colorize(np.full((2, 2), 9, np.uint8))


def test_colorize_shape() -> None:
    ids = np.arange(7, dtype=np.uint8).reshape(1, 7)
    assert colorize(ids).shape == (1, 7, 3)
