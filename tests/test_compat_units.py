"""The compatibility layer's checks that need no simulator."""

from __future__ import annotations

import ctypes.util

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
