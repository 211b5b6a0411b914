"""Pure unit tests of the env's reward, action checks and action mapping (no simulator)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium import spaces

from sim2real_env.env import (
    EnvConfig,
    RewardConfig,
    check_action,
    lane_progress_reward,
    progress_reward,
    wheels_from_action,
)

BOX = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)


def test_progress_reward_pays_for_progress_not_for_standing_still() -> None:
    weights = RewardConfig()
    still = progress_reward(0.0, 0.0, False, weights)
    moving = progress_reward(0.01, 0.0, False, weights)
    backwards = progress_reward(-0.01, 0.0, False, weights)
    assert still == 0.0
    assert moving == pytest.approx(1.0)
    assert backwards == pytest.approx(-1.0)


def test_progress_reward_penalties() -> None:
    weights = RewardConfig(progress_per_metre=100, lateral_per_metre=5, failure=20)
    assert progress_reward(0.0, -0.1, False, weights) == pytest.approx(-0.5)
    assert progress_reward(0.0, math.nan, True, weights) == pytest.approx(-20.0)


def test_lane_progress_reward_pays_only_for_centred_progress() -> None:
    weights = RewardConfig(progress_per_metre=100, failure=20, lane_half_width_m=0.1)
    assert lane_progress_reward(0.01, 0.0, False, weights) == pytest.approx(1.0)
    assert lane_progress_reward(0.01, -0.05, False, weights) == pytest.approx(0.5)
    assert lane_progress_reward(0.01, 0.2, False, weights) == 0.0  # out of the lane: no pay, no penalty
    assert lane_progress_reward(0.0, 0.2, False, weights) == 0.0
    assert lane_progress_reward(0.01, math.nan, True, weights) == pytest.approx(-20.0)
    with pytest.raises(ValueError, match="lane_half_width_m must be > 0"):
        RewardConfig(lane_half_width_m=0.0)


def test_lane_progress_heading_weight_stops_paying_for_zigzags() -> None:
    plain = RewardConfig(progress_per_metre=100, lane_half_width_m=0.1)
    weighted = RewardConfig(progress_per_metre=100, lane_half_width_m=0.1, heading_weight=1.5)
    assert lane_progress_reward(0.01, 0.0, False, plain, heading_rad=0.7) == pytest.approx(1.0)  # default ignores it
    assert lane_progress_reward(0.01, 0.0, False, weighted, heading_rad=0.2) == pytest.approx(0.7)
    assert lane_progress_reward(0.01, 0.0, False, weighted, heading_rad=-0.2) == pytest.approx(0.7)
    assert lane_progress_reward(0.01, 0.05, False, weighted, heading_rad=0.2) == pytest.approx(0.35)
    assert lane_progress_reward(0.01, 0.0, False, weighted, heading_rad=0.8) == 0.0
    assert lane_progress_reward(0.01, 0.0, True, weighted, heading_rad=math.nan) == pytest.approx(-20.0)
    # Driving the wrong way (facing away from the lane) still costs its full negative progress.
    assert lane_progress_reward(-0.01, 0.0, False, weighted, heading_rad=3.0) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="heading_weight"):
        RewardConfig(heading_weight=-1.0)


def test_check_action_clips_and_accepts_lists_and_ints() -> None:
    np.testing.assert_array_equal(check_action([2.0, -3.0], BOX), [1.0, -1.0])
    np.testing.assert_array_equal(check_action(np.array([0, 1]), BOX), [0.0, 1.0])
    assert check_action([0.5, 0.5], BOX).dtype == np.float32


@pytest.mark.parametrize("action", [[0.1], [0.1, 0.2, 0.3], np.zeros((1, 2)), 0.5])
def test_check_action_wrong_shape(action: object) -> None:
    with pytest.raises(ValueError, match=r"action must have shape \(2,\)"):
        check_action(action, BOX)


@pytest.mark.parametrize("action", [["a", "b"], np.array([True, False]), [None, 1.0]])
def test_check_action_wrong_dtype(action: object) -> None:
    with pytest.raises(TypeError, match="action must be a float or int array"):
        check_action(action, BOX)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_check_action_not_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="action must be finite"):
        check_action([0.1, bad], BOX)


def test_speed_steer_mapping() -> None:
    np.testing.assert_allclose(wheels_from_action(np.array([1.0, 0.0]), "speed_steer"), [1.0, 1.0])
    np.testing.assert_allclose(wheels_from_action(np.array([-1.0, 0.0]), "speed_steer"), [0.0, 0.0])
    left, right = wheels_from_action(np.array([0.0, 0.4]), "speed_steer")
    assert right > left  # positive steer turns left
    np.testing.assert_allclose(wheels_from_action(np.array([0.3, -0.2]), "wheels"), [0.3, -0.2])


def test_steer_scale_narrows_the_wheel_difference() -> None:
    full = wheels_from_action(np.array([0.0, 1.0]), "speed_steer")
    scaled = wheels_from_action(np.array([0.0, 1.0]), "speed_steer", steer_scale=0.4)
    assert full[1] - full[0] == pytest.approx(1.0)
    assert scaled[1] - scaled[0] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="steer_scale must be a number in"):
        EnvConfig(steer_scale=0.0)


def test_action_from_wheels_inverts_wheels_from_action() -> None:
    from sim2real_env.env import action_from_wheels

    for scale in (1.0, 0.4):
        action = np.array([0.2, -0.3])
        wheels = wheels_from_action(action, "speed_steer", steer_scale=scale)
        np.testing.assert_allclose(action_from_wheels(wheels, "speed_steer", scale), action, atol=1e-6)
    batch = np.array([[0.5, 0.5], [0.4, 0.6]])
    np.testing.assert_allclose(action_from_wheels(batch, "speed_steer"), [[0.0, 0.0], [0.0, 0.2]], atol=1e-6)
    np.testing.assert_array_equal(action_from_wheels(batch, "wheels"), batch.astype(np.float32))
