"""The compatibility layer's checks that need no simulator."""

from __future__ import annotations

import ctypes.util

import numpy as np
import pytest

from sim2real_env import _compat


def test_missing_gl_libraries_named_with_their_debian_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ctypes.util.find_library
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name in ("GLU", "EGL") else real(name))
    with pytest.raises(_compat.MissingSystemLibraryError) as info:
        _compat.check_system_libraries()
    message = str(info.value)
    assert "libGLU (Debian package libglu1-mesa)" in message
    assert "libEGL (Debian package libegl1)" in message
    assert "apt-get install -y libegl1 libglu1-mesa" in message


def test_libraries_present_here() -> None:
    _compat.check_system_libraries()


K = np.array([[305.57, 0.0, 303.08], [0.0, 308.83, 231.88], [0.0, 0.0, 1.0]])
K_PINHOLE = np.array([[220.0, 0.0, 318.0], [0.0, 225.0, 240.0], [0.0, 0.0, 1.0]])
BARREL = np.array([-0.2, 0.0305, 0.0, 0.0, 0.0])


def test_fisheye_maps_scale_the_calibration_to_the_frame() -> None:
    small = _compat.fisheye_maps(K, K_PINHOLE, BARREL, 120, 160)
    large = _compat.fisheye_maps(K, K_PINHOLE, BARREL, 480, 640)
    assert small[0].shape == (120, 160)
    # The same ray at both sizes: pixel (x, y) at 160x120 is pixel (4x, 4y) at 640x480.
    for y, x in ((10, 10), (60, 80), (100, 150)):
        assert abs(small[0][y, x] * 4 - large[0][y * 4, x * 4]) < 0.5
        assert abs(small[1][y, x] * 4 - large[1][y * 4, x * 4]) < 0.5
    # The fisheye principal point looks along the optical axis: the pinhole frame's principal point.
    cy, cx = round(231.88 / 4), round(303.08 / 4)
    assert abs(small[0][cy, cx] - 318.0 / 4) < 1.0 and abs(small[1][cy, cx] - 240.0 / 4) < 1.0


def test_fisheye_maps_bend_straight_lines_like_a_barrel_lens() -> None:
    map_x, _ = _compat.fisheye_maps(K, K, BARREL, 120, 160)
    # With the same intrinsics on both sides, a barrel lens shows a pinhole point nearer the centre:
    # the fisheye pixel at the frame's edge samples the pinhole frame beyond that edge.
    assert map_x[60, 0] < 0.0 and map_x[60, 159] > 159.0
    assert abs(map_x[58, 76] - 76) < 0.5  # and leaves the centre alone
