"""Paired views on the real simulator are pixel-aligned."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sim2real_env.paired import PairedRenderer
from sim2real_env.segmentation import SegClass, classes_from_render
from tests.conftest import make_env

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module", params=[False, True], ids=["pinhole", "fisheye"])
def udem1(request: pytest.FixtureRequest) -> object:
    """udem1 at 160x120, rendered pinhole and through the calibrated fisheye lens (labels too)."""
    env = make_env(map_name="udem1", camera_width=160, camera_height=120, spawn="random", distortion=request.param)
    yield env
    env.close()


def test_segmentation_lines_coincide_with_line_colours(udem1: object) -> None:
    renderer = PairedRenderer(udem1, seed=0)
    counts = dict.fromkeys(SegClass, 0)
    yellow_ok = white_ok = red_ok = yellow_n = white_n = red_n = 0
    for seed in range(8):
        udem1.reset(seed=seed)  # type: ignore[attr-defined]
        views = renderer.render()
        assert views.canonical.shape == views.randomized.shape == (120, 160, 3)
        assert views.segmentation.shape == (120, 160) and views.segmentation.dtype == np.uint8
        hsv = cv2.cvtColor(views.canonical, cv2.COLOR_RGB2HSV).astype(int)
        # Judge pixels away from class edges (anti-aliasing blends both images there).
        for cls in SegClass:
            mask = (views.segmentation == cls).astype(np.uint8)
            inner = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
            counts[cls] += int(inner.sum())
            h, s, v = hsv[..., 0][inner], hsv[..., 1][inner], hsv[..., 2][inner]
            if cls == SegClass.YELLOW_LINE:
                yellow_ok += int(((h >= 15) & (h <= 40) & (s > 60)).sum())
                yellow_n += inner.sum()
            elif cls == SegClass.WHITE_LINE:
                white_ok += int(((s < 70) & (v > 120)).sum())
                white_n += inner.sum()
            elif cls == SegClass.RED_LINE:
                red_ok += int((((h <= 10) | (h >= 165)) & (s > 90)).sum())
                red_n += inner.sum()
    assert yellow_n > 100 and white_n > 500 and red_n > 50, counts
    assert yellow_ok / yellow_n > 0.9
    assert white_ok / white_n > 0.9
    assert red_ok / red_n > 0.9
    assert counts[SegClass.ROAD] > counts[SegClass.WHITE_LINE]


def test_randomized_view_has_same_geometry_new_appearance(udem1: object) -> None:
    renderer = PairedRenderer(udem1, seed=1)
    udem1.reset(seed=4)  # type: ignore[attr-defined]
    views = renderer.render()
    again = renderer.randomized()
    # Same geometry: the randomized simulator's own segmentation equals the env's.
    other_segmentation = classes_from_render(renderer._randomized_sim.render_obs(segment=True))
    assert (other_segmentation == views.segmentation).mean() > 0.99
    # New appearance: differs from the canonical frame and from the previous draw.
    assert np.abs(views.randomized.astype(int) - views.canonical).mean() > 3
    assert not np.array_equal(again, views.randomized)


def test_paired_renderer_refuses_randomized_env() -> None:
    env = make_env(map_name="small_loop", camera_width=32, camera_height=24, domain_rand=True)
    with pytest.raises(ValueError, match="needs an env with domain_rand=False"):
        PairedRenderer(env)
    env.close()


def _frame(distortion: bool, width: int, height: int) -> np.ndarray:
    env = make_env(map_name="small_loop", camera_width=width, camera_height=height, distortion=distortion)
    frame, _ = env.reset(seed=3)
    env.close()
    return cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA).astype(np.float64)


def test_fisheye_lens_is_the_same_at_every_camera_size() -> None:
    """Upstream built the remap from the 640x480 intrinsics at any size (the bug _compat fixes)."""
    small, large = _frame(True, 160, 120), _frame(True, 640, 480)
    pinhole = _frame(False, 160, 120)
    across_sizes = np.abs(small - large).mean()
    assert across_sizes < 8.0, across_sizes
    assert np.abs(small - pinhole).mean() > 2 * across_sizes  # and the lens does change the frame
