"""The env on the real gym_duckietown simulator (headless EGL): API, checkers, determinism, errors."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sim2real_env
from tests.conftest import make_env

pytestmark = pytest.mark.sim

INFO_KEYS = {
    "lane_lateral_m",
    "lane_heading_rad",
    "in_lane",
    "speed_mps",
    "position_m",
    "heading_rad",
    "tile",
    "on_road",
    "collision",
    "progress_m",
    "distance_m",
    "step",
    "termination",
}


def test_registered_and_spaces(small_loop_env: Any) -> None:
    assert sim2real_env.ENV_ID in gym.registry
    space = small_loop_env.observation_space
    assert space == gym.spaces.Box(0, 255, (60, 80, 3), np.uint8)
    obs, info = small_loop_env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (60, 80, 3)
    assert set(info) >= INFO_KEYS
    assert info["in_lane"] and info["on_road"] and not info["collision"]


def test_gymnasium_and_sb3_checkers_pass_without_warnings(small_loop_env: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(small_loop_env.unwrapped, skip_render_check=False)
        sb3_check_env(small_loop_env.unwrapped, warn=True)


def _rollout(env: Any, seed: int, steps: int = 25) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for k in range(steps):
        obs, *_ = env.step(np.array([0.4, 0.45 + 0.002 * k], dtype=np.float32))
        frames.append(obs)
    return frames


def test_same_seed_bit_identical_frames_even_after_other_episodes() -> None:
    first = make_env(map_name="small_loop", camera_width=80, camera_height=60)
    second = make_env(map_name="small_loop", camera_width=80, camera_height=60)
    reference = _rollout(first, seed=7)
    _rollout(second, seed=3)  # leaves GL state (modelview, lights) from another episode
    again = _rollout(second, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(reference, again, strict=True))
    different = _rollout(first, seed=8)
    assert not np.array_equal(reference[0], different[0])
    first.close()
    second.close()


def test_numpy_compat_step_and_randomized_reset() -> None:
    """numpy >= 1.24 breaks upstream dynamics and the randomizer; our compat layer fixes both."""
    assert tuple(int(v) for v in np.__version__.split(".")[:2]) >= (1, 24)
    env = make_env(map_name="loop_empty", camera_width=80, camera_height=60, domain_rand=True)
    frames = []
    for seed in (1, 2):
        obs, _ = env.reset(seed=seed)
        frames.append(obs)
        for _ in range(10):
            obs, _, terminated, _, info = env.step(np.array([0.5, 0.5], dtype=np.float32))
            assert not terminated
        assert info["speed_mps"] > 0.05
    assert not np.array_equal(frames[0], frames[1])
    env.close()


def test_driving_forward_earns_progress_and_standing_still_does_not(small_loop_env: Any) -> None:
    small_loop_env.reset(seed=0)
    still = [small_loop_env.step(np.zeros(2, np.float32))[1] for _ in range(10)]
    assert max(abs(r) for r in still) < 0.5  # only the small lateral penalty
    from agents.expert import PurePursuitExpert

    expert = PurePursuitExpert()
    moving = []
    for _ in range(30):
        _, reward, *_ = small_loop_env.step(expert.act(small_loop_env))
        moving.append(reward)
    assert sum(moving[10:]) > 5.0 > sum(still)


def test_upstream_reward_pays_for_standing_still() -> None:
    env = make_env(map_name="small_loop", camera_width=80, camera_height=60, reward="upstream", spawn_lateral_m=0.0)
    env.reset(seed=0)
    rewards = [env.step(np.zeros(2, np.float32))[1] for _ in range(5)]
    assert min(rewards) > 0.5  # the constant-speed bug, kept as an option
    env.close()


def test_terminated_off_road_and_truncated_at_limit(small_loop_env: Any) -> None:
    env = make_env(map_name="small_loop", camera_width=80, camera_height=60, episode_length=15)
    env.reset(seed=0)
    for _ in range(15):
        _, _, terminated, truncated, info = env.step(np.array([0.3, 0.3], np.float32))
        assert not terminated
    assert truncated and info["step"] == 15
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(2, np.float32))
    env.close()
    small_loop_env.reset(seed=0)
    for _ in range(300):  # straight ahead, off the road at the next curve
        _, reward, terminated, truncated, info = small_loop_env.step(np.array([0.8, 0.8], np.float32))
        if terminated:
            break
    assert terminated and not truncated
    assert info["termination"] == "off_road" and not info["on_road"]
    assert reward < -10


def test_lateral_sign_positive_is_left(small_loop_env: Any) -> None:
    small_loop_env.reset(seed=0)
    _, _, _, _, start = small_loop_env.step(np.zeros(2, np.float32))
    for _ in range(12):  # turn left, then drive
        _, _, _, _, info = small_loop_env.step(np.array([0.1, 0.5], np.float32))
    for _ in range(10):
        _, _, _, _, info = small_loop_env.step(np.array([0.4, 0.4], np.float32))
    assert info["lane_lateral_m"] > start["lane_lateral_m"]


@pytest.mark.parametrize(
    ("action", "error", "pattern"),
    [
        (np.zeros(3, np.float32), ValueError, r"shape \(2,\)"),
        (np.zeros((2, 1), np.float32), ValueError, r"shape \(2,\)"),
        (np.array(["a", "b"]), TypeError, "float or int array"),
        (np.array([np.nan, 0.1], np.float32), ValueError, "must be finite"),
    ],
)
def test_bad_actions_give_one_clear_error(small_loop_env: Any, action: Any, error: type, pattern: str) -> None:
    small_loop_env.reset(seed=0)
    with pytest.raises(error, match=pattern):
        small_loop_env.unwrapped.step(action)


def test_bad_reset_options(small_loop_env: Any) -> None:
    with pytest.raises(ValueError, match="Unknown DuckietownEnv.reset option 'start_til'"):
        small_loop_env.reset(seed=0, options={"start_til": (1, 1)})
    with pytest.raises(ValueError, match="not a drivable tile"):
        small_loop_env.reset(seed=0, options={"start_tile": (1, 1)})


def test_start_tile_option(small_loop_env: Any) -> None:
    tile = tuple(small_loop_env.unwrapped.sim.drivable_tiles[3]["coords"])
    _, info = small_loop_env.reset(seed=0, options={"start_tile": tile})
    assert info["tile"] == tile


def test_make_rejects_unknown_map_and_key() -> None:
    with pytest.raises(ValueError, match="Did you mean 'small_loop'"):
        make_env(map_name="smallloop")
    with pytest.raises(ValueError, match="Unknown EnvConfig key 'cam_width'"):
        make_env(cam_width=80)


def test_speed_steer_action_space_drives() -> None:
    env = make_env(map_name="small_loop", camera_width=80, camera_height=60, action_space="speed_steer")
    env.reset(seed=0)
    for _ in range(30):
        _, _, terminated, _, info = env.step(np.array([0.0, 0.0], np.float32))  # half speed, straight
    assert info["speed_mps"] > 0.2 and not terminated
    env.close()


def test_render_rgb_array_and_frame_skip() -> None:
    env = make_env(map_name="small_loop", camera_width=80, camera_height=60, frame_skip=3, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), obs)
    assert env.metadata["render_fps"] == 10
    for _ in range(10):
        env.step(np.array([0.5, 0.5], np.float32))
    assert env.unwrapped.sim.step_count == 30
    env.close()


def _episode(env: Any, seed: int, steps: int = 25) -> tuple[list[np.ndarray], list[float], list[tuple[float, ...]]]:
    """Frames, rewards and poses of one seeded episode under a fixed action sequence."""
    obs, info = env.reset(seed=seed)
    frames, rewards, poses = [obs], [], [(*info["position_m"], info["heading_rad"])]
    for k in range(steps):
        obs, reward, terminated, truncated, info = env.step(np.array([0.4, 0.45 + 0.002 * k], dtype=np.float32))
        frames.append(obs)
        rewards.append(reward)
        poses.append((*info["position_m"], info["heading_rad"]))
        if terminated or truncated:
            break
    return frames, rewards, poses


def test_a_reused_simulator_gives_the_same_episodes_as_a_fresh_one() -> None:
    import dataclasses

    from sim2real_env.env import SIMULATORS, DuckietownEnv, EnvConfig

    config = EnvConfig(map_name="small_loop", camera_width=80, camera_height=60)
    fresh = DuckietownEnv(config, reuse_simulator=False)
    reference = [_episode(fresh, seed) for seed in (7, 8)]
    idle = SIMULATORS.idle()
    fresh.close()
    assert SIMULATORS.idle() == idle  # a private simulator never enters the pool

    # Same simulator settings, every per-env setting changed: it leaves its camera, spawn and pose behind.
    changed = dataclasses.replace(
        config,
        camera_height_m=0.15,
        camera_tilt_deg=5.0,
        camera_fov_y_deg=90.0,
        spawn="random",
        frame_skip=2,
        action_space="speed_steer",
        episode_length=40,
    )
    other = make_env(config=changed)
    _episode(other, seed=3)
    _episode(other, seed=4)
    simulator = other.unwrapped.sim
    other.close()
    built, reused = SIMULATORS.built, SIMULATORS.reused
    again = make_env(config=config)
    assert again.unwrapped.sim is simulator and (SIMULATORS.built, SIMULATORS.reused) == (built, reused + 1)
    # While it is open, another env with the same settings gets a simulator of its own.
    beside = make_env(config=config)
    assert beside.unwrapped.sim is not simulator
    for seed, (frames, rewards, poses) in zip((7, 8), reference, strict=True):
        got_frames, got_rewards, got_poses = _episode(again, seed)
        assert all(np.array_equal(a, b) for a, b in zip(frames, got_frames, strict=True))
        assert got_rewards == rewards and got_poses == poses
    beside.close()
    again.close()
    with pytest.raises(RuntimeError, match="after close"):
        again.reset(seed=0)
    again.close()  # closing twice hands nothing back twice
    assert SIMULATORS.idle() == len({id(s) for v in SIMULATORS._idle.values() for s in v})


def test_a_simulator_with_moving_objects_is_not_reused() -> None:
    """Upstream's reset leaves moving duckiebots where the last episode left them: such a simulator is dropped."""
    from sim2real_env.env import SIMULATORS

    env = make_env(map_name="loop_dyn_duckiebots", camera_width=32, camera_height=24)
    assert env.unwrapped._has_moving_objects
    idle = SIMULATORS.idle()
    env.close()
    assert SIMULATORS.idle() == idle
