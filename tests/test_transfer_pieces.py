"""The transfer benchmark's agents: the augmented and sim2real+randomization pipelines, PPO from a cloned actor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.pipeline import PIPELINES, Pipeline
from agents.ppo import PPOConfig, train_ppo
from generators.checkpoint import save_generator
from generators.cyclegan.model import CycleGAN, CycleGANConfig
from sim2real_env.domains import AUGMENT_RANGES, IMAGE_OPS, RandomImageOps, draw_image_ops
from sim2real_env.errors import ConfigError

PPO_ENV = {"map_name": "small_loop", "camera_width": 80, "camera_height": 60, "action_space": "speed_steer"}
PPO_PRE = {"crop_top": 20, "resize": [40, 80], "frame_stack": 1}


def test_drawn_chains_use_the_registry_within_their_ranges_and_repeat_by_seed() -> None:
    chains = [draw_image_ops(np.random.default_rng(seed)) for seed in range(200)]
    assert chains[3] == draw_image_ops(np.random.default_rng(3))
    names = [op["op"] for chain in chains for op in chain]
    assert set(names) == set(AUGMENT_RANGES) and set(AUGMENT_RANGES) <= set(IMAGE_OPS)
    assert 0.35 < len(names) / (200 * len(AUGMENT_RANGES)) < 0.65  # each op with probability 0.5
    for chain in chains:
        order = [list(AUGMENT_RANGES).index(op["op"]) for op in chain]
        assert order == sorted(order)  # colour first, JPEG last, as a camera pipeline
        for op in chain:
            for key, value in op.items():
                if key != "op":
                    low, high = AUGMENT_RANGES[op["op"]][key]
                    assert low <= value <= high
    assert all(isinstance(op["quality"], int) for chain in chains for op in chain if op["op"] == "jpeg")


class _Still:
    """A one-frame env: what RandomImageOps does to a fixed frame."""

    def __init__(self) -> None:
        import gymnasium as gym

        self.observation_space = gym.spaces.Box(0, 255, (24, 32, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.frame = np.tile(np.linspace(40, 220, 32, dtype=np.uint8)[None, :, None], (24, 1, 3))


def _wrapped() -> RandomImageOps:
    import gymnasium as gym

    class Env(gym.Env):  # type: ignore[type-arg]
        def __init__(self) -> None:
            still = _Still()
            self.observation_space, self.action_space = still.observation_space, still.action_space
            self.frame = still.frame

        def reset(self, *, seed: int | None = None, options: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
            super().reset(seed=seed)
            return self.frame.copy(), {}

        def step(self, action):  # type: ignore[no-untyped-def]
            return self.frame.copy(), 0.0, False, False, {}

    return RandomImageOps(Env())


def test_random_image_ops_change_frames_per_episode_and_repeat_with_the_seed() -> None:
    env = _wrapped()
    first, _ = env.reset(seed=11)
    chain = env.ops
    again, _ = env.reset(seed=11)
    assert env.ops == chain and np.array_equal(first, again)
    looks = {env.reset(seed=s)[0].tobytes() for s in range(12)}
    assert len(looks) >= 10  # a new camera nearly every episode
    with pytest.raises(ConfigError, match="probability"):
        RandomImageOps(env.env, probability=0)


def test_new_pipelines_fix_their_domain_and_generator(tmp_path: Path) -> None:
    assert {"augmented", "sim2real_randomized"} <= set(PIPELINES)
    assert Pipeline.build("augmented").env == {"domain_rand": False, "distortion": False}
    with pytest.raises(ConfigError, match="needs a sim->real generator checkpoint"):
        Pipeline.build("sim2real_randomized")
    with pytest.raises(ConfigError, match="uses no generator"):
        Pipeline.build("augmented", checkpoint="pretrained:student")
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig.from_dict({"image_size": [60, 80], "width": 4, "blocks": 1}), "sim->real")
    checkpoint = save_generator(model, tmp_path / "g")
    both = Pipeline.build("sim2real_randomized", env=PPO_ENV, checkpoint=checkpoint)
    assert both.env["domain_rand"] is True and both.checkpoint_id
    assert Pipeline.build("sim2real", env=PPO_ENV, checkpoint=checkpoint).differences(both) == [
        "name: 'sim2real' vs 'sim2real_randomized'",
        "observation.domain_rand: False vs True",
    ]


@pytest.mark.sim
def test_augmented_pipeline_env_draws_a_chain_on_the_real_simulator() -> None:
    env = Pipeline.build("augmented", env=PPO_ENV, preprocess=PPO_PRE).make_env(episode_length=5)
    wrapper = env
    while not isinstance(wrapper, RandomImageOps):
        wrapper = wrapper.env  # type: ignore[attr-defined]
    chains = set()
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        chains.add(json.dumps(wrapper.ops))
        assert obs.shape == (40, 80, 3)
    env.close()
    assert len(chains) >= 4


def test_ppo_config_checks_the_cloning_keys() -> None:
    with pytest.raises(ConfigError, match="bc_init_episodes"):
        PPOConfig.from_dict({"bc_init_episodes": -1})
    with pytest.raises(ConfigError, match="Did you mean 'small_loop'"):
        PPOConfig.from_dict({"bc_init_maps": ["smal_loop"]})
    with pytest.raises(ConfigError, match="critic_warmup_steps"):
        PPOConfig.from_dict({"critic_warmup_steps": 1.5})


@pytest.mark.sim
@pytest.mark.slow
def test_ppo_from_a_cloned_actor_starts_where_the_expert_drives_and_warms_the_critic_first(tmp_path: Path) -> None:
    """The cloned actor fits the expert (low MSE), drives before any PPO update, and stays frozen
    while only the critic learns; after the warm-up the actor moves."""
    from agents.pipeline import Pipeline

    pipeline = Pipeline.build("raw", env=PPO_ENV, preprocess=PPO_PRE)
    base = {
        "n_envs": 1,
        "vec_env": "dummy",
        "n_steps": 64,
        "batch_size": 32,
        "n_epochs": 2,
        "episode_actions": 60,
        "eval_every": 64,
        "eval_episodes": 1,
        "checkpoint_every": 64,
        "features_dim": 32,
        "log_std_init": -1.0,
        "bc_init_epochs": 15,
        "torch_threads": 1,
    }
    frozen = train_ppo(
        pipeline,
        PPOConfig.from_dict({**base, "total_steps": 128, "bc_init_episodes": 3, "critic_warmup_steps": 10_000}),
        tmp_path / "frozen",
        progress=False,
    )
    state = json.loads((tmp_path / "frozen" / "progress.json").read_text())
    assert frozen["bc_init"]["samples"] == 180 and frozen["bc_init"]["final_mse"] < 0.05
    evaluations = state["evaluations"]
    assert evaluations[0]["env_steps"] == 0
    # Frozen actor: every evaluation is the cloned policy's, to the bit; the critic did learn.
    assert {e["distance_in_lane_m"] for e in evaluations} == {evaluations[0]["distance_in_lane_m"]}
    assert state["updates"] and all(abs(u["approx_kl"]) < 1e-6 for u in state["updates"])
    assert evaluations[0]["distance_m"] > 0.1  # the cloned actor drives forward before any update
    scratch_config = PPOConfig.from_dict({**base, "total_steps": 64})
    scratch = train_ppo(pipeline, scratch_config, tmp_path / "scratch", progress=False)
    assert scratch["bc_init"] is None
    assert json.loads((tmp_path / "scratch" / "progress.json").read_text())["evaluations"][0]["env_steps"] == 64
    thawed = train_ppo(
        pipeline,
        PPOConfig.from_dict({**base, "total_steps": 192, "bc_init_episodes": 3, "critic_warmup_steps": 64}),
        tmp_path / "thawed",
        progress=False,
    )
    updates = json.loads((tmp_path / "thawed" / "progress.json").read_text())["updates"]
    assert thawed["env_steps"] == 192
    assert abs(updates[0]["approx_kl"]) < 1e-6 and any(abs(u["approx_kl"]) > 1e-5 for u in updates[1:])
