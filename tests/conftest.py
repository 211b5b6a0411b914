"""Shared fixtures. Real-simulator envs are built once per module: each costs ~1 s and leaks upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import pytest

import sim2real_env


def make_env(**kwargs: Any) -> Any:
    return gym.make(sim2real_env.ENV_ID, **kwargs)


@pytest.fixture(scope="module")
def small_loop_env() -> Iterator[Any]:
    env = make_env(map_name="small_loop", camera_width=80, camera_height=60)
    yield env
    env.close()
