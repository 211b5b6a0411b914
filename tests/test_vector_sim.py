"""The env inside SB3 vector envs, simulators built in spawned/forkserver worker processes."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import sim2real_env

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def _factory(seed: int) -> gym.Env:
    env = gym.make(sim2real_env.ENV_ID, map_name="small_loop", camera_width=32, camera_height=24)
    env.reset(seed=seed)
    return env


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_subproc_vec_env_matches_dummy(start_method: str) -> None:
    factories = [functools.partial(_factory, seed=i) for i in range(2)]
    subproc = SubprocVecEnv(factories, start_method=start_method)
    dummy = DummyVecEnv(factories)
    try:
        subproc.seed(5)
        dummy.seed(5)
        a, b = subproc.reset(), dummy.reset()
        np.testing.assert_array_equal(a, b)
        actions = np.full((2, 2), 0.4, dtype=np.float32)
        for _ in range(5):
            a, ra, _, _ = subproc.step(actions)
            b, rb, _, _ = dummy.step(actions)
        assert a.shape == (2, 24, 32, 3) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(ra, rb)
    finally:
        subproc.close()
        dummy.close()
