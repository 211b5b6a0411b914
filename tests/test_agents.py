"""Agents: pipelines, saved agents, BC and PPO on the real simulator, the train-agent CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.bc import BCConfig, BCPolicy, _fit, action_error, train_bc
from agents.config import load_agent_config
from agents.episodes import OUT_OF_LANE_M, EpisodeTracker, episode_seeds, run_episode
from agents.pipeline import Pipeline, PipelineMismatchError, Preprocess
from agents.ppo import PPOConfig, save_ppo_agent, train_ppo
from agents.saved import AgentError, load_agent, save_agent
from generators.checkpoint import save_generator
from generators.cyclegan.model import CycleGAN, CycleGANConfig
from sim2real_env.checkpoints import last_folder
from sim2real_env.cli import main

SMALL_ENV = {"map_name": "small_loop", "camera_width": 80, "camera_height": 60, "action_space": "speed_steer"}
SMALL_PRE = {"crop_top": 20, "resize": [20, 40], "frame_stack": 2}
PPO_PRE = {"crop_top": 20, "resize": [40, 80], "frame_stack": 2}
TINY_BC = {
    "demo_episodes": 1,
    "episode_actions": 30,
    "dagger_rounds": 1,
    "dagger_episodes": 1,
    "val_episodes": 1,
    "epochs": 2,
    "eval_episodes": 1,
    "torch_threads": 1,
    "net": {"width": 4, "hidden": 8},
}


@pytest.fixture(scope="module")
def sim2real_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig.from_dict({"image_size": [60, 80], "width": 4, "blocks": 1}), "sim->real")
    return save_generator(model, tmp_path_factory.mktemp("gen") / "cyclegan")


# -- pipelines (no simulator) -------------------------------------------------------------------


def test_pipelines_fix_domain_and_require_the_right_checkpoint(sim2real_checkpoint: Path) -> None:
    assert Pipeline.build("raw").env == {"domain_rand": False, "distortion": False}
    assert Pipeline.build("randomized").env["domain_rand"] is True
    with pytest.raises(ValueError, match="needs a real->canonical generator checkpoint"):
        Pipeline.build("canonicalized", canonicalize_from="distorted")
    with pytest.raises(ValueError, match="Unknown canonicalize_from 'distort'"):
        Pipeline.build("canonicalized", canonicalize_from="distort")
    with pytest.raises(ValueError, match="Did you mean 'sim2real'"):
        Pipeline.build("sim2rea1")
    with pytest.raises(ValueError, match="needs a sim->real generator checkpoint"):
        Pipeline.build("sim2real")
    with pytest.raises(ValueError, match="uses no generator"):
        Pipeline.build("raw", checkpoint=sim2real_checkpoint)
    with pytest.raises(ValueError, match="needs a 'real->canonical' checkpoint"):
        Pipeline.build("canonicalized", checkpoint=sim2real_checkpoint)
    with pytest.raises(ValueError, match="sets env.domain_rand=False"):
        Pipeline.build("raw", env={"domain_rand": True})
    with pytest.raises(ValueError, match="Unknown EnvConfig key 'mapname'"):
        Pipeline.build("raw", env={"mapname": "small_loop"})
    with pytest.raises(ValueError, match="Unknown preprocess key 'crop'"):
        Pipeline.build("raw", preprocess={"crop": 3})
    with pytest.raises(ValueError, match="frame_stack must be an integer in"):
        Preprocess(frame_stack=0)
    pipeline = Pipeline.build("sim2real", checkpoint=sim2real_checkpoint)
    assert pipeline.checkpoint_id is not None and pipeline.checkpoint_id.startswith("cyclegan-")


def test_pipeline_differences_name_what_changes(sim2real_checkpoint: Path) -> None:
    raw = Pipeline.build("raw", env=SMALL_ENV, preprocess=SMALL_PRE)
    assert raw.differences(raw.record()) == []
    assert raw.differences(raw.with_env(map_name="loop_empty")) == []  # the map is not part of it
    translated = Pipeline.build("sim2real", env=SMALL_ENV, preprocess=SMALL_PRE, checkpoint=sim2real_checkpoint)
    diffs = raw.differences(translated)
    assert any(d.startswith("name:") for d in diffs) and any(d.startswith("checkpoint_id:") for d in diffs)
    bigger = Pipeline.build("raw", env={**SMALL_ENV, "camera_width": 160}, preprocess=SMALL_PRE)
    assert raw.differences(bigger) == ["observation.camera_width: 80 vs 160"]
    rebuilt = Pipeline.from_record(json.loads(json.dumps(translated.record())))
    assert rebuilt.differences(translated) == []
    with pytest.raises(ValueError, match="fixes \\['camera_width'\\]"):
        raw.make_env(camera_width=160)
    tilted = Pipeline.build("raw", env={**SMALL_ENV, "camera_tilt_deg": 25.0}, preprocess=SMALL_PRE)
    assert raw.differences(tilted) == ["observation.camera_tilt_deg: None vs 25.0"]


def test_episode_tracker_measures_a_hand_made_episode() -> None:
    tracker = EpisodeTracker(seed=3, map_name="small_loop", step_s=0.1)
    steps = [
        {"progress_m": 0.1, "lane_lateral_m": 0.02, "lane_heading_rad": -0.1, "termination": ""},
        {"progress_m": 0.1, "lane_lateral_m": -0.04, "lane_heading_rad": 0.3, "termination": ""},
        {"progress_m": 0.2, "lane_lateral_m": OUT_OF_LANE_M + 0.01, "lane_heading_rad": 0.2, "termination": ""},
        {"progress_m": 0.1, "lane_lateral_m": 0.0, "lane_heading_rad": 0.0, "termination": "off_road"},
    ]
    for info in steps:
        tracker.update(1.5, info)
    result = tracker.result()
    assert result.steps == 4 and math.isclose(result.survival_s, 0.4)
    assert math.isclose(result.distance_m, 0.5)
    assert math.isclose(result.distance_in_lane_m, 0.2)  # stops counting when the lane is first left
    assert math.isclose(result.mean_abs_lateral_m, (0.02 + 0.04 + 0.11 + 0.0) / 4)
    assert math.isclose(result.mean_abs_heading_rad, 0.6 / 4)
    assert result.out_of_lane_fraction == 0.25
    assert result.off_road == 1.0 and result.collision == 0.0 and result.return_ == 6.0


def test_training_and_evaluation_seeds_never_overlap() -> None:
    from agents.episodes import SEED_BASES, episode_seeds

    ranges: dict[str, set[int]] = {kind: set() for kind in SEED_BASES}
    for kind in SEED_BASES:
        for seed in range(100):
            for dagger_round in range(5):  # DAgger rounds use offsets of 100
                ranges[kind].update(episode_seeds(kind, seed, 50, offset=100 * dagger_round))
    kinds = list(SEED_BASES)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1 :]:
            assert not ranges[a] & ranges[b], (a, b)


def test_agent_config_rejects_bad_keys(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("algo: bc\nbc: {epochz: 3}\n")
    with pytest.raises(ValueError, match="Unknown bc key 'epochz'.*Did you mean 'epochs'"):
        load_agent_config(path)
    path.write_text("algo: bc\npreproces: {}\n")
    with pytest.raises(ValueError, match="Did you mean 'preprocess'"):
        load_agent_config(path)
    path.write_text("algo: bc\nppo: {}\n")
    with pytest.raises(ValueError, match="has a 'ppo' section"):
        load_agent_config(path)
    path.write_text("algo: ppo\nppo: {batch_size: 100}\n")
    with pytest.raises(ValueError, match="batch_size"):
        load_agent_config(path)
    config = load_agent_config("configs/agents/bc.yaml", ["bc.epochs=2"])
    assert config.algo_config().epochs == 2 and isinstance(config.algo_config(), BCConfig)
    assert isinstance(load_agent_config("configs/agents/ppo.yaml").algo_config(), PPOConfig)
    assert main(["train-agent", "--algo", "ppo", "--pipeline", "raw", "--config", "configs/agents/bc.yaml"]) == 2


def test_load_agent_errors(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="does not exist"):
        load_agent(tmp_path / "nope")
    (tmp_path / "a").mkdir()
    with pytest.raises(AgentError, match="no agent.json"):
        load_agent(tmp_path / "a")
    (tmp_path / "a" / "agent.json").write_text("{not json")
    with pytest.raises(AgentError, match="not valid JSON"):
        load_agent(tmp_path / "a")


# -- PPO agent files (no simulator) -------------------------------------------------------------


def tiny_ppo(seed: int = 0) -> Any:
    """An SB3 PPO on fake frames of the PPO_PRE pipeline's shape, weights jittered off their init."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

    from tests.test_wrappers import FakeImageEnv

    vec = VecTransposeImage(DummyVecEnv([lambda: FakeImageEnv(shape=(40, 80, 6))]))
    kwargs = {"features_extractor_kwargs": {"features_dim": 16}, "log_std_init": -0.5}
    model = PPO("CnnPolicy", vec, n_steps=8, batch_size=8, policy_kwargs=kwargs, seed=seed, device="cpu")
    torch.manual_seed(seed)
    with torch.no_grad():  # orthogonal init gives near-zero actions; spread them so equality means something
        for parameter in model.policy.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model


def frames(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 40, 80, 6), dtype=np.uint8)


def saved_by_sb3(model: Any, folder: Path, pipeline: Pipeline) -> Path:
    """An agent folder as train_ppo wrote it before policy.safetensors: agent.json + SB3's ppo.zip."""
    return save_agent(
        folder,
        algo="ppo",
        pipeline=pipeline,
        observation_shape=(40, 80, 6),
        config={},
        summary={},
        model={"policy": "CnnPolicy", "features_dim": 16},
        write_weights=lambda target: model.save(str(target / "ppo.zip")),
    )


class Payload:
    """Unpickling this creates ``marker`` (harmless stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def rewrite_zip(zip_path: Path, change: dict[str, Any]) -> None:
    """Replace members of an SB3 archive: ``change`` maps a member name to its new bytes."""
    import zipfile

    with zipfile.ZipFile(zip_path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, content in {**members, **change}.items():
            archive.writestr(name, content)


def arm_zip(zip_path: Path, marker: Path) -> None:
    """Put a payload that creates ``marker`` when unpickled into the archive's observation_space."""
    import base64
    import pickle
    import zipfile

    with zipfile.ZipFile(zip_path) as archive:
        data = json.loads(archive.read("data"))
    data["observation_space"][":serialized:"] = base64.b64encode(pickle.dumps(Payload(marker), protocol=2)).decode()
    rewrite_zip(zip_path, {"data": json.dumps(data).encode()})


def test_ppo_agent_round_trip_through_safetensors_acts_identically(tmp_path: Path) -> None:
    model = tiny_ppo()
    pipeline = Pipeline.build("raw", env=SMALL_ENV, preprocess=PPO_PRE)
    config = PPOConfig(features_dim=16, log_std_init=-0.5)
    folder = save_ppo_agent(tmp_path / "agent", model.policy, pipeline=pipeline, cfg=config, summary={"note": "t"})
    assert sorted(p.name for p in folder.iterdir()) == ["agent.json", "policy.safetensors"]  # no pickle inside
    agent = load_agent(folder, pipeline=pipeline)
    obs = frames(16)
    expected, _ = model.predict(obs, deterministic=True)
    assert np.ptp(expected) > 0.05  # the policy does not answer every frame alike
    np.testing.assert_array_equal(agent.act(obs), np.clip(expected, -1, 1).astype(np.float32))
    single, _ = model.predict(obs[3], deterministic=True)
    np.testing.assert_array_equal(agent.act(obs[3]), np.clip(single, -1, 1).astype(np.float32))
    assert agent.record["model"]["net_arch"] == model.policy.net_arch
    # An SB3 archive planted beside the weights is never opened.
    marker = tmp_path / "payload_ran"
    model.save(str(folder / "ppo.zip"))
    arm_zip(folder / "ppo.zip", marker)
    np.testing.assert_array_equal(load_agent(folder).act(obs), agent.act(obs))
    assert not marker.exists()
    (folder / "ppo.zip").unlink()
    with pytest.raises(ValueError, match="expects uint8 observations of shape \\(40, 80, 6\\)"):
        agent.act(obs[..., :3])
    (folder / "policy.safetensors").write_bytes(b"garbage")
    with pytest.raises(AgentError, match="do not load"):
        load_agent(folder)
    (folder / "policy.safetensors").unlink()
    with pytest.raises(AgentError, match="lacks policy.safetensors"):
        load_agent(folder)


def test_loading_a_ppo_agent_never_unpickles_its_sb3_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pickle

    from stable_baselines3 import PPO

    model = tiny_ppo(seed=1)
    pipeline = Pipeline.build("raw", env=SMALL_ENV, preprocess=PPO_PRE)
    folder = saved_by_sb3(model, tmp_path / "old_agent", pipeline)
    marker = tmp_path / "payload_ran"
    arm_zip(folder / "ppo.zip", marker)
    # An agent folder from before policy.safetensors still loads (its policy.pth read as weights only) ...
    agent = load_agent(folder, pipeline=pipeline)
    obs = frames(8, seed=1)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(agent.act(obs), np.clip(expected, -1, 1).astype(np.float32))
    assert not marker.exists()
    # ... and `sim2real evaluate` loads its agents the same way (it stops here at the pipeline check).
    eval_config = tmp_path / "eval.yaml"
    eval_config.write_text(
        f"out: {tmp_path / 'report'}\nepisodes: 1\ndomains: [canonical, randomized]\n"
        f"agents:\n  - {{name: old, path: {folder}}}\n"
    )
    assert main(["evaluate", "--config", str(eval_config), "--quiet"]) == 2
    assert "trained on pipeline 'raw'" in capsys.readouterr().err  # loaded, then refused the randomized domain
    assert not marker.exists()
    # A policy.pth that is not plain tensors is refused by the weights-only loader, not run.
    rewrite_zip(
        folder / "ppo.zip",
        {"policy.pth": pickle.dumps({"features_extractor.cnn.0.weight": Payload(marker)}, protocol=2)},
    )
    with pytest.raises(AgentError, match="holds more than tensors.*re-train"):
        load_agent(folder)
    assert not marker.exists()
    # The payload is live: SB3's own loader (what load_agent used to call) runs it.
    model.save(str(folder / "ppo.zip"))
    arm_zip(folder / "ppo.zip", marker)
    with pytest.raises(ValueError, match="not a Gymnasium space"):  # the payload's file object as a space
        PPO.load(str(folder / "ppo.zip"), device="cpu")
    assert marker.exists()


def test_bc_policy_learns_a_frame_dependent_action() -> None:
    """The BC model and its training epoch, on frames whose steer label is where a bar is drawn.

    The baseline is the best constant action for the held-out frames (their median): a policy that
    ignores the frame, or a pipeline that scrambles frames and labels, cannot beat it.
    """
    rng = np.random.default_rng(0)

    def frames_and_labels(n: int) -> tuple[np.ndarray, np.ndarray]:
        columns = rng.integers(0, 36, n)
        frames = rng.integers(0, 60, (n, 20, 40, 6), dtype=np.uint8)
        for i, column in enumerate(columns):
            frames[i, :, column : column + 4] = 230
        labels = np.stack([np.full(n, 0.4), (columns - 17.5) / 35.0], axis=1).astype(np.float32)
        return frames, labels

    train_frames, train_labels = frames_and_labels(256)
    val_frames, val_labels = frames_and_labels(64)
    constant = float(np.abs(val_labels - np.median(val_labels, axis=0)).mean())
    config = BCConfig.from_dict({"batch_size": 32, "net": {"width": 8, "hidden": 16}})
    torch.manual_seed(0)
    policy = BCPolicy((20, 40, 6), config.net)
    optimiser = torch.optim.Adam(policy.parameters(), lr=config.lr)
    before = action_error(policy, val_frames, val_labels)
    for _ in range(15):
        _fit(policy, optimiser, train_frames, train_labels, config, rng)
    after = action_error(policy, val_frames, val_labels)
    assert after < 0.25 * constant < before  # seen: 0.010 vs a constant's 0.130, from 0.37 untrained


# -- real simulator -----------------------------------------------------------------------------


@pytest.mark.sim
def test_bc_learns_saves_and_refuses_another_pipeline(tmp_path: Path, sim2real_checkpoint: Path) -> None:
    pipeline = Pipeline.build("raw", env=SMALL_ENV, preprocess=SMALL_PRE)
    summary = train_bc(pipeline, BCConfig.from_dict(TINY_BC), tmp_path, progress=False)
    history = json.loads((tmp_path / "bc_history.json").read_text())["history"]
    assert history[-1]["samples"] > history[0]["samples"]  # the DAgger round added data
    # Two epochs on 30 frames are too few to beat the best constant action (learning itself is
    # test_bc_policy_learns_a_frame_dependent_action), but labels in the wrong units or a policy
    # stuck at zero land far above it (seen: 0.079 against the constant's 0.074).
    assert summary["final_val_action_mae"] < 1.5 * summary["val_constant_action_mae"]
    assert (tmp_path / "bc_curve.png").stat().st_size > 0
    # One step folder per run, named by the epochs trained (2 rounds x 2 epochs); BC selects nothing: no best.
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["000000004", "last"]
    saved = last_folder(tmp_path)
    assert saved == tmp_path / "checkpoints" / "000000004"
    agent = load_agent(tmp_path, pipeline=pipeline)  # the run folder means its checkpoints/last
    env = pipeline.make_env()
    obs, _ = env.reset(seed=1)
    action = agent.act(obs)
    assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
    assert agent.act(np.stack([obs, obs])).shape == (2, 2)
    with pytest.raises(ValueError, match="expects uint8 observations of shape"):
        agent.act(obs[..., :3])
    env.close()
    translated = Pipeline.build("sim2real", env=SMALL_ENV, preprocess=SMALL_PRE, checkpoint=sim2real_checkpoint)
    with pytest.raises(PipelineMismatchError, match="trained on pipeline 'raw'.*allow_pipeline_mismatch"):
        load_agent(saved, pipeline=translated)
    allowed = load_agent(tmp_path / "checkpoints" / "last", pipeline=translated, allow_pipeline_mismatch=True)
    assert allowed.record["pipeline_differences"]
    (saved / "policy.safetensors").write_bytes(b"garbage")
    with pytest.raises(AgentError, match="do not load"):
        load_agent(tmp_path)


@pytest.mark.sim
def test_pipeline_and_evaluation_envs_name_their_wrappers_and_checkpoint_in_env_spec(sim2real_checkpoint: Path) -> None:
    from agents.evaluate import AgentVariant, EvalConfig, _agent_env, _effective_pipeline
    from sim2real_env.domains import load_domain

    pipeline = Pipeline.build("sim2real", env=SMALL_ENV, preprocess=SMALL_PRE, checkpoint=sim2real_checkpoint)
    env = pipeline.make_env(episode_length=5)
    assert env.spec is not None and env.spec.id == "sim2real/Duckietown-v0"
    wrappers = {w.name: w.kwargs for w in env.spec.additional_wrappers}
    assert wrappers["Sim2RealObservation"]["generator_checkpoint"] == pipeline.checkpoint_id
    assert wrappers["CropObservation"] == {"top": 20} and wrappers["ChannelFrameStack"] == {"k": 2}
    env.close()
    # Evaluation: a domain's camera and image chain under the agent's pipeline, through the same builder.
    domain = load_domain("real_proxy_image")
    config = EvalConfig(name="spec", agents=(AgentVariant(name="a", path="unused"),), episode_frames=10)
    variant = AgentVariant(name="a", path="unused", translate=str(sim2real_checkpoint))
    shown = _effective_pipeline(variant, pipeline.record(), domain)
    env = _agent_env(config, shown, domain, "small_loop", threads=1)
    names = [w.name for w in env.spec.additional_wrappers] if env.spec else []
    assert names[:2] == ["DomainImage", "Sim2RealObservation"] and names[-1] == "ChannelFrameStack"
    obs, _ = env.reset(seed=0)
    assert obs.shape == (20, 40, 6)
    env.close()


@pytest.mark.sim
def test_bc_on_the_sim2real_pipeline_records_the_checkpoint(tmp_path: Path, sim2real_checkpoint: Path) -> None:
    config = {**TINY_BC, "dagger_rounds": 0, "eval_episodes": 0, "episode_actions": 15}
    pipeline = Pipeline.build("sim2real", env=SMALL_ENV, preprocess=SMALL_PRE, checkpoint=sim2real_checkpoint)
    train_bc(pipeline, BCConfig.from_dict(config), tmp_path, progress=False)
    record = json.loads((tmp_path / "checkpoints" / "000000002" / "agent.json").read_text())
    assert record["pipeline"]["name"] == "sim2real"
    assert record["pipeline"]["checkpoint_id"] == pipeline.checkpoint_id
    assert load_agent(tmp_path, pipeline=pipeline).algo == "bc"


@pytest.mark.sim
def test_ppo_trains_resumes_and_loads(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 36x36"):
        train_ppo(Pipeline.build("raw", preprocess=SMALL_PRE), PPOConfig(), tmp_path / "small", progress=False)
    pipeline = Pipeline.build("raw", env=SMALL_ENV, preprocess=PPO_PRE)
    settings: dict[str, Any] = {
        "total_steps": 64,
        "n_envs": 2,
        "vec_env": "dummy",
        "n_steps": 32,
        "batch_size": 32,
        "n_epochs": 1,
        "features_dim": 16,
        "episode_actions": 20,
        "eval_every": 64,
        "eval_episodes": 1,
        "checkpoint_every": 64,
    }
    first = train_ppo(pipeline, PPOConfig.from_dict(settings), tmp_path, progress=False)
    assert first["env_steps"] == 64
    checkpoints = tmp_path / "checkpoints"
    at_first = {name: (checkpoints / "000000064" / name).read_bytes() for name in ("ppo.zip", "progress.json")}
    with pytest.raises(FileExistsError, match="--resume"):
        train_ppo(pipeline, PPOConfig.from_dict(settings), tmp_path, progress=False)
    resumed = train_ppo(
        pipeline, PPOConfig.from_dict({**settings, "total_steps": 128}), tmp_path, resume=True, progress=False
    )
    assert resumed["env_steps"] == 128
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert [e["env_steps"] for e in progress["evaluations"]] == [64, 128]
    # The layout: a step folder per checkpoint, last naming the newest, best the best evaluated policy.
    assert sorted(p.name for p in checkpoints.iterdir()) == ["000000064", "000000128", "best", "last"]
    assert (checkpoints / "last").read_text() == "000000128\n"
    # The resume continued the first run's checkpoint and left it as it was.
    assert {name: (checkpoints / "000000064" / name).read_bytes() for name in at_first} == at_first
    assert progress["evaluations"][0] == json.loads(at_first["progress.json"])["evaluations"][0]
    # The best evaluated policy is kept beside the last one and loads like any agent: driven on the
    # evaluation's seeds it drives the distance it was selected for (the policy of that evaluation,
    # not of the step folder: an evaluation at the last env step of a rollout precedes its update).
    best = max(progress["evaluations"], key=lambda e: e["distance_in_lane_m"])
    assert progress["best"]["env_steps"] == resumed["best"]["env_steps"] == best["env_steps"]
    assert resumed["best"]["distance_in_lane_m"] == best["distance_in_lane_m"]
    assert resumed["best"]["agent"] == str(checkpoints / "best")
    best_agent = load_agent(tmp_path / "checkpoints" / "best", pipeline=pipeline)
    assert best_agent.record["summary"]["selected_at"] == progress["best"]
    env = pipeline.make_env(episode_length=settings["episode_actions"])
    (seed,) = episode_seeds("ppo_eval", 0, 1)
    assert run_episode(env, best_agent.act, seed).distance_in_lane_m == best["distance_in_lane_each"][0]
    env.close()
    # The step folder holds the state saved with its ppo.zip, the same as the readers' copy; its agent
    # is the run's final one.
    assert json.loads((checkpoints / "000000128" / "progress.json").read_text()) == progress
    final = json.loads((checkpoints / "000000128" / "agent.json").read_text())["summary"]
    assert final["final"] is True and final["env_steps"] == 128
    # A finished run of the older layout (<out>/checkpoint/ppo.zip, <out>/agent; before best_agent
    # and the paired state existed): it loads, and resuming it at its end reads <out>/progress.json,
    # evaluates once and keeps that as the best, in the new layout.
    last = checkpoints / "000000128"
    (tmp_path / "checkpoint").mkdir()
    shutil.move(last / "ppo.zip", tmp_path / "checkpoint" / "ppo.zip")
    (last / "progress.json").unlink()
    shutil.move(last, tmp_path / "agent")
    shutil.rmtree(checkpoints)
    progress.pop("best")
    (tmp_path / "progress.json").write_text(json.dumps(progress))
    assert load_agent(tmp_path, pipeline=pipeline).record["summary"]["env_steps"] == 128  # its agent/
    with pytest.raises(FileExistsError, match="--resume"):
        train_ppo(pipeline, PPOConfig.from_dict(settings), tmp_path, progress=False)
    again = train_ppo(
        pipeline, PPOConfig.from_dict({**settings, "total_steps": 128}), tmp_path, resume=True, progress=False
    )
    assert again["best"]["env_steps"] == 128 and (checkpoints / "best" / "agent.json").exists()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["000000128", "best", "last"]
    assert (tmp_path / "learning_curve.png").stat().st_size > 0
    agent = load_agent(tmp_path, pipeline=pipeline)
    assert agent.record["summary"]["final"] is True
    env = pipeline.make_env()
    obs, _ = env.reset(seed=0)
    assert agent.act(obs).shape == (2,)
    env.close()
    other = Pipeline.build("randomized", env=SMALL_ENV, preprocess=PPO_PRE)
    with pytest.raises(ValueError, match="another pipeline"):
        train_ppo(other, PPOConfig.from_dict({**settings, "total_steps": 192}), tmp_path, resume=True, progress=False)


@pytest.mark.sim
@pytest.mark.slow
def test_train_agent_cli_with_subprocess_envs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = [f"env.{k}={v}" for k, v in SMALL_ENV.items()] + [
        "preprocess.crop_top=20",
        "preprocess.resize=[40, 80]",
        "ppo.total_steps=64",
        "ppo.n_steps=32",
        "ppo.batch_size=32",
        "ppo.n_epochs=1",
        "ppo.episode_actions=20",
        "ppo.eval_every=64",
        "ppo.eval_episodes=1",
    ]
    args = ["train-agent", "--algo", "ppo", "--pipeline", "raw", "--config", "configs/agents/ppo.yaml"]
    assert main([*args, "--out", str(tmp_path), "--quiet", *overrides]) == 0
    assert "train-agent ppo/raw" in capsys.readouterr().out
    assert load_agent(tmp_path).algo == "ppo"


@pytest.mark.sim
def test_sigint_stops_ppo_saves_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C in a DummyVecEnv run used to surface as upstream's "The rotation is not a rotation", exit 2."""
    import os
    import signal
    import subprocess
    import sys
    import time

    overrides = [f"env.{k}={v}" for k, v in SMALL_ENV.items()] + [
        "preprocess.crop_top=20",
        "preprocess.resize=[40, 80]",
        "preprocess.frame_stack=2",
        "ppo.vec_env=dummy",
        "ppo.total_steps=100000",
        "ppo.n_steps=32",
        "ppo.batch_size=32",
        "ppo.n_epochs=1",
        "ppo.features_dim=16",
        "ppo.episode_actions=20",
        "ppo.eval_every=100000",
        "ppo.eval_episodes=1",
        "ppo.checkpoint_every=100000",
    ]
    out = tmp_path / "run"
    args = ["train-agent", "--algo", "ppo", "--pipeline", "raw", "--config", "configs/agents/ppo.yaml"]
    args += ["--out", str(out), "--quiet"]
    process = subprocess.Popen(
        [sys.executable, "-m", "sim2real_env.cli", *args, *overrides],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 120
    while not (out / "tb").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)  # SB3 makes tb/ when learning starts, after the signal handler is in place
    time.sleep(2.0)  # well into the rollouts: the signal lands inside simulator steps
    os.kill(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 130, output
    assert "stopped by signal at" in output
    summary = json.loads((out / "ppo_summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["env_steps"] < 100000
    agent = load_agent(out / "checkpoints" / "last")
    assert agent.record["summary"]["interrupted"] and agent.record["summary"]["final"]
    assert agent.act(np.zeros((40, 80, 6), np.uint8)).shape == (2,)
    # The checkpoint continues where the signal stopped it.
    steps = summary["env_steps"]
    assert main([*args, "--resume", *overrides, f"ppo.total_steps={steps + 32}"]) == 0
    resumed = json.loads((out / "ppo_summary.json").read_text())
    assert resumed["env_steps"] >= steps + 32 and not resumed["interrupted"]
