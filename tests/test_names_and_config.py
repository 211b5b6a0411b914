"""Pure tests of name lookup and EnvConfig validation (no simulator)."""

from __future__ import annotations

import pytest

from sim2real_env.env import EnvConfig, RewardConfig
from sim2real_env.maps import available_maps, resolve_map
from sim2real_env.names import resolve_name, unknown_name_message


def test_unknown_name_suggests_nearest() -> None:
    message = unknown_name_message("colour", "yelow", ["yellow", "white", "red"])
    assert "Did you mean 'yellow'" in message
    assert "Choices: red, white, yellow" in message


def test_resolve_name_returns_known() -> None:
    assert resolve_name("thing", "a", ["a", "b"]) == "a"


def test_maps_are_listed_without_the_simulator() -> None:
    maps = available_maps()
    assert {"loop_empty", "small_loop", "udem1"} <= set(maps)


def test_unknown_map_did_you_mean() -> None:
    with pytest.raises(ValueError, match=r"Unknown Duckietown map 'smal_loop'\. Did you mean 'small_loop'"):
        resolve_map("smal_loop")
    with pytest.raises(ValueError, match="Did you mean 'loop_empty'"):
        EnvConfig(map_name="loop_emty")


@pytest.mark.parametrize(
    ("width", "height"), [(0, 120), (160, -1), (160.5, 120), (True, 120), (5000, 120), ("160", 120)]
)
def test_bad_camera_size(width: object, height: object) -> None:
    with pytest.raises(ValueError, match=r"EnvConfig\.camera_(width|height) must be an integer"):
        EnvConfig(camera_width=width, camera_height=height)  # type: ignore[arg-type]


def test_unknown_config_key_is_named() -> None:
    with pytest.raises(ValueError, match=r"Unknown EnvConfig key 'camera_widht'\. Did you mean 'camera_width'"):
        EnvConfig.from_dict({"camera_widht": 80})


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("action_space", "wheel", "Did you mean 'wheels'"),
        ("reward", "progres", "Did you mean 'progress'"),
        ("spawn", "lanes", "Did you mean 'lane'"),
        ("frame_skip", 0, "frame_skip must be an integer >= 1"),
        ("episode_length", -5, "episode_length must be an integer >= 1"),
        ("domain_rand", "yes", "domain_rand must be true or false"),
        ("spawn_lateral_m", 1.0, "spawn_lateral_m must be in"),
    ],
)
def test_bad_config_values(field: str, value: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        EnvConfig.from_dict({field: value})


def test_reward_weights_from_mapping_and_validation() -> None:
    config = EnvConfig.from_dict({"reward_weights": {"progress_per_metre": 50.0}})
    assert config.reward_weights == RewardConfig(progress_per_metre=50.0)
    with pytest.raises(ValueError, match="RewardConfig.failure must be a finite number >= 0"):
        RewardConfig(failure=float("nan"))
