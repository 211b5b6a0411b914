"""Pure tests of name lookup and EnvConfig validation (no simulator)."""

from __future__ import annotations

from pathlib import Path

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


def test_renamed_keys_have_one_unit_and_the_old_names_still_load(tmp_path: Path) -> None:
    """``episode_steps`` was frames in evaluation and actions in PPO/BC; "noise" was wheels or actions."""
    from agents.bc import BCConfig
    from agents.evaluate import load_eval_config
    from agents.ppo import PPOConfig
    from sim2real_env.errors import ConfigError

    with pytest.warns(FutureWarning) as warned:
        bc = BCConfig.from_dict({"episode_steps": 30, "expert_noise": 0.1})
    assert [str(w.message) for w in warned] == [
        "bc.episode_steps is now bc.episode_actions; rename it in your config",
        "bc.expert_noise is now bc.action_noise_std; rename it in your config",
    ]
    assert (bc.episode_actions, bc.action_noise_std) == (30, 0.1)
    with pytest.warns(FutureWarning, match=r"ppo\.episode_steps is now ppo\.episode_actions"):
        assert PPOConfig.from_dict({"episode_steps": 40}).episode_actions == 40
    with pytest.raises(ConfigError, match="give 'episode_actions' only"):
        PPOConfig.from_dict({"episode_steps": 40, "episode_actions": 40})
    config = tmp_path / "eval.yaml"
    config.write_text("agents: [{name: expert, expert: true}]\ndomains: [canonical]\nepisode_steps: 60\n")
    with pytest.warns(FutureWarning, match=r"eval config\.episode_steps is now eval config\.episode_frames"):
        assert load_eval_config(config).episode_frames == 60
    with pytest.raises(ConfigError, match="give 'episode_frames' only"):
        load_eval_config(config, ["episode_frames=70"])
