"""PPO (stable-baselines3) for lane following, on any observation pipeline.

Training runs ``n_envs`` simulator worker processes (``SubprocVecEnv``, each building the whole
pipeline, generator included, with one thread), TensorBoard logging, closed-loop evaluation every
``eval_every`` env steps on fixed seeds (the same lane measures as the evaluation harness),
resumable checkpoints every ``checkpoint_every`` and a learning-curve PNG, all through SB3
callbacks (:mod:`agents.ppo_callbacks`). The first evaluation whose mean "distance in lane"
reaches ``target_distance_m`` is reported with its env steps and wall time. SIGINT/SIGTERM stop
training at the next env step; the run then saves its checkpoint and agent as at the end
(``summary["interrupted"]``), so ``--resume`` continues it.

A run keeps the layout of :mod:`sim2real_env.checkpoints`: ``checkpoints/<env steps>/`` holds the
agent of that step (``agent.json`` + ``policy.safetensors``) beside the resume state (``ppo.zip``
+ ``progress.json``), ``checkpoints/last`` names the newest, ``checkpoints/best`` is the best
evaluated agent. An agent is rebuilt from the recorded pipeline and architecture, nothing is
unpickled, so an agent folder from elsewhere is safe to load. The SB3 archive ``ppo.zip``
(optimiser, schedules, RNG) is only read by ``--resume``; SB3 loads it with cloudpickle, which
runs code stored in it, so a resume folder is trusted input.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import pickle
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from safetensors.torch import load_model, save_model
from torch import nn

from agents.episodes import episode_seeds
from agents.pipeline import Pipeline, make_pipeline_env
from agents.saved import AGENT_FILE, AgentError, check_observation, write_agent
from generators.configs import config_from_dict, config_to_dict, rename_deprecated
from sim2real_env.checkpoints import (
    LAST,
    adopt_legacy_best,
    best_folder,
    checkpoints_dir,
    discard_after,
    has_saved,
    last_folder,
    save_step,
)
from sim2real_env.errors import ConfigError
from sim2real_env.maps import resolve_map
from sim2real_env.names import resolve_name
from sim2real_env.provenance import atomic_directory, provenance, write_json_atomic
from sim2real_env.signals import StopFlag

#: The SB3 archive of a run's checkpoint (for ``--resume`` only: loading it unpickles code).
MODEL_FILE = "ppo.zip"
#: The run's progress record (evaluations, updates, best, wall time), in each step folder and in ``<out>``.
PROGRESS_FILE = "progress.json"
#: Where a run of the layout before ``checkpoints/`` kept its resume state and its best agent.
LEGACY_CHECKPOINT, LEGACY_BEST = "checkpoint", "best_agent"
#: A saved agent's policy weights.
WEIGHTS_FILE = "policy.safetensors"
#: Activations a saved policy may name (SB3's default is Tanh).
ACTIVATIONS: dict[str, type[nn.Module]] = {"Tanh": nn.Tanh, "ReLU": nn.ReLU}
VEC_ENVS = ("subproc", "dummy")


#: Keys renamed so that each name has one unit: old name -> new name (old names still load).
RENAMED = {"episode_steps": "episode_actions"}


@dataclass(frozen=True)
class PPOConfig:
    """PPO settings (``ppo:`` section of ``configs/agents/*.yaml``); SB3 names where they exist."""

    total_steps: int = 100_000
    n_envs: int = 2
    vec_env: str = "subproc"
    n_steps: int = 256
    batch_size: int = 128
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    features_dim: int = 256
    #: Initial log standard deviation of the Gaussian policy (SB3's default is 0: std 1).
    log_std_init: float = 0.0
    #: Stop an update's epochs early once the approximate KL to the old policy passes this (SB3's
    #: ``target_kl``); 0 turns it off. Keeps one bad batch from wrecking a policy that drives.
    target_kl: float = 0.0
    #: Episode length in agent actions (``frame_skip`` simulator frames each).
    episode_actions: int = 500
    eval_every: int = 10_000
    eval_episodes: int = 3
    checkpoint_every: int = 10_000
    #: Step checkpoints kept in ``<out>/checkpoints`` (the newest ones; 0: every one).
    keep_last: int = 3
    target_distance_m: float = 3.0
    seed: int = 0
    torch_threads: int = 1
    #: Expert demonstration episodes, collected through the pipeline, that the actor is fitted to
    #: (behaviour cloning) before PPO starts; 0: PPO from a random policy. From scratch PPO needs
    #: ~90k env steps to drive on this task; from a cloned actor it fine-tunes a policy that drives.
    bc_init_episodes: int = 0
    #: Epochs of that fit (MSE of the Gaussian mean to the expert's action).
    bc_init_epochs: int = 10
    #: Maps of the demonstrations (cycled); empty: the pipeline's map.
    bc_init_maps: tuple[str, ...] = ()
    #: Env steps at the start during which the actor (features included, as SB3's CnnPolicy shares
    #: them) and its std are frozen and only the value head learns, so the first policy updates use
    #: a value head fitted to the cloned policy's returns instead of a random one.
    critic_warmup_steps: int = 0

    def __post_init__(self) -> None:
        resolve_name("ppo vec_env", self.vec_env, VEC_ENVS)
        ints = {
            "total_steps": 1,
            "n_envs": 1,
            "n_steps": 2,
            "batch_size": 2,
            "n_epochs": 1,
            "features_dim": 8,
            "episode_actions": 10,
            "eval_every": 1,
            "eval_episodes": 1,
            "checkpoint_every": 1,
            "keep_last": 0,
            "seed": 0,
            "torch_threads": 1,
            "bc_init_episodes": 0,
            "bc_init_epochs": 1,
            "critic_warmup_steps": 0,
        }
        if not isinstance(self.bc_init_maps, tuple):
            raise ConfigError(f"ppo.bc_init_maps must be a list of map names, got {self.bc_init_maps!r}")
        for map_name in self.bc_init_maps:
            resolve_map(map_name)
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"ppo.{name} must be an integer >= {low}, got {value!r}")
        floats = {
            "learning_rate": (1e-8, 1.0),
            "gamma": (0.0, 1.0),
            "gae_lambda": (0.0, 1.0),
            "clip_range": (1e-3, 1.0),
            "ent_coef": (0.0, 1.0),
            "vf_coef": (0.0, 10.0),
            "max_grad_norm": (1e-3, 100.0),
            "target_distance_m": (0.0, 1e4),
            "log_std_init": (-5.0, 2.0),
            "target_kl": (0.0, 10.0),
        }
        for name, (lo, hi) in floats.items():
            number = getattr(self, name)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not lo <= number <= hi:
                raise ConfigError(f"ppo.{name} must be a number in [{lo}, {hi}], got {number!r}")
        if (self.n_steps * self.n_envs) % self.batch_size:
            raise ConfigError(
                f"ppo.batch_size ({self.batch_size}) must divide n_steps x n_envs ({self.n_steps * self.n_envs})"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> PPOConfig:
        """From a mapping; unknown keys are an error naming the key (``episode_steps``: the old name)."""
        return config_from_dict(cls, values or {}, "ppo", renamed=RENAMED)


def observation_shape(pipeline_record: dict[str, Any]) -> tuple[int, int, int]:
    """``(H, W, C)`` of what a pipeline shows the agent, from its record (no env, no checkpoint)."""
    pre = pipeline_record["preprocess"]
    height, width = (int(v) for v in pre["resize"])
    return height, width, 3 * int(pre.get("frame_stack", 1))


def pipeline_observation_shape(pipeline: Pipeline) -> tuple[int, int, int]:
    """``(H, W, C)`` frames ``pipeline`` shows the agent."""
    return observation_shape(pipeline.record())


def policy_spaces(shape: tuple[int, ...]) -> tuple[spaces.Box, spaces.Box]:
    """The spaces SB3's policy is built on: uint8 ``(C, H, W)`` frames and ``[-1, 1]^2`` actions.

    Every pipeline gives channel-last uint8 frames and every env action space is ``Box(-1, 1, (2,))``
    (:mod:`sim2real_env.env`); the training env is wrapped in ``VecTransposeImage`` to match.
    """
    height, width, channels = shape
    observation = spaces.Box(0, 255, (channels, height, width), dtype=np.uint8)
    return observation, spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)


def policy_record(policy: Any) -> dict[str, Any]:
    """What rebuilds ``policy`` (an SB3 ``ActorCriticCnnPolicy``) around its weights; JSON-able."""
    from stable_baselines3.common.torch_layers import NatureCNN

    if policy.features_extractor_class is not NatureCNN or policy.use_sde:
        raise ConfigError("ppo: only the CnnPolicy with NatureCNN features and no gSDE is saved as an agent")
    activation = policy.activation_fn.__name__
    if activation not in ACTIVATIONS:
        raise ConfigError(f"ppo: activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    return {
        "policy": "CnnPolicy",
        "weights": WEIGHTS_FILE,
        "features_dim": int(policy.features_dim),
        "net_arch": policy.net_arch,
        "activation_fn": activation,
        "log_std_init": float(policy.log_std_init),
        "share_features_extractor": bool(policy.share_features_extractor),
        "normalize_images": bool(policy.normalize_images),
    }


def build_policy(shape: tuple[int, ...], model: dict[str, Any]) -> Any:
    """An untrained ``ActorCriticCnnPolicy`` with the architecture of :func:`policy_record`.

    A record without ``net_arch`` (agents saved before the safetensors format) gets SB3's
    default for the CnnPolicy, which is what those agents were trained with.
    """
    from stable_baselines3.common.policies import ActorCriticCnnPolicy

    activation = model.get("activation_fn", "Tanh")
    if activation not in ACTIVATIONS:
        raise AgentError(f"ppo agent: activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    observation_space, action_space = policy_spaces(shape)
    return ActorCriticCnnPolicy(
        observation_space,
        action_space,
        lambda _: 0.0,  # the optimiser is never stepped
        net_arch=model.get("net_arch"),
        activation_fn=ACTIVATIONS[activation],
        log_std_init=float(model.get("log_std_init", 0.0)),
        features_extractor_kwargs={"features_dim": int(model["features_dim"])},
        share_features_extractor=bool(model.get("share_features_extractor", True)),
        normalize_images=bool(model.get("normalize_images", True)),
    )


def _legacy_state_dict(zip_path: Path, device: str) -> dict[str, torch.Tensor]:
    """Weights of an agent saved as an SB3 archive, read without unpickling its code.

    Only the ``policy.pth`` member is read, with torch's weights-only loader (tensors and plain
    containers; anything else is refused). The ``data`` member, whose ``:serialized:`` entries SB3
    would cloudpickle-load, is never opened.
    """
    advice = f"re-train the agent, or re-save it as {WEIGHTS_FILE} from a copy you trust"
    try:
        with zipfile.ZipFile(zip_path) as archive:
            raw = archive.read("policy.pth")
        state = torch.load(io.BytesIO(raw), map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise AgentError(
            f"agent model {zip_path}: its policy.pth holds more than tensors (refused by torch's weights-only "
            f"loader, not run); {advice}"
        ) from exc
    except Exception as exc:  # not a zip, no policy.pth, a truncated file
        raise AgentError(f"agent model {zip_path} does not load as weights ({exc}); {advice}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AgentError(f"agent model {zip_path}: policy.pth is not a state dict of tensors")
    return state


class PPOAgent:
    """A trained SB3 PPO policy (implements :class:`agents.saved.Agent`).

    ``policy`` is an SB3 ``ActorCriticCnnPolicy`` on ``(C, H, W)`` frames (:func:`policy_spaces`);
    :meth:`act` takes the pipeline's ``(H, W, C)`` frames and transposes them itself.
    """

    algo = "ppo"

    def __init__(self, policy: Any, observation_shape: tuple[int, ...], record: dict[str, Any]) -> None:
        self.policy = policy
        self.observation_shape = observation_shape
        self.record = record

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action(s) for uint8 observation(s)."""
        batch, single = check_observation(obs, self.observation_shape, "PPOAgent")
        # A transposed view, as SB3's own predict makes it: a contiguous copy picks other conv kernels
        # and moves actions by ~1e-7, and a loaded agent should act exactly as the policy it saved.
        actions, _ = self.policy.predict(batch.transpose(0, 3, 1, 2), deterministic=True)
        actions = np.clip(actions, -1.0, 1.0).astype(np.float32)
        return actions[0] if single else actions

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any], device: str = "cpu") -> PPOAgent:
        """From an agent directory whose ``agent.json`` was already read; nothing is unpickled."""
        shape = tuple(int(v) for v in meta["observation_shape"])
        try:
            expected = observation_shape(meta["pipeline"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentError(f"agent {path}: its pipeline record lacks the preprocessing ({exc})") from exc
        if shape != expected:
            raise AgentError(
                f"agent {path} records observation_shape {list(shape)}; its pipeline gives {list(expected)}"
            )
        model = meta.get("model", {})
        if not isinstance(model.get("features_dim"), int):
            raise AgentError(f"agent {path}: model.features_dim in agent.json is {model.get('features_dim')!r}")
        weights = path / WEIGHTS_FILE
        try:
            policy = build_policy(shape, model)
            if weights.exists():
                load_model(policy, str(weights), strict=True, device=device)
            elif (path / MODEL_FILE).exists():  # saved before policy.safetensors existed
                policy.load_state_dict(_legacy_state_dict(path / MODEL_FILE, device))
            else:
                raise AgentError(f"agent {path} lacks {WEIGHTS_FILE}")
        except AgentError:
            raise
        except Exception as exc:  # a bad architecture record, safetensors header errors, missing keys, shapes
            raise AgentError(f"agent weights in {path} do not load: {exc}") from exc
        return cls(policy.to(device).eval(), shape, meta)


def save_ppo_agent(
    folder: Path,
    policy: Any,
    *,
    pipeline: Pipeline,
    cfg: PPOConfig,
    summary: dict[str, Any],
    source_git_sha: str | None = None,
) -> Path:
    """Save an SB3 policy as an agent directory (atomically): ``agent.json`` + ``policy.safetensors``."""
    with atomic_directory(folder) as tmp:
        write_ppo_agent(tmp, policy, pipeline=pipeline, cfg=cfg, summary=summary, source_git_sha=source_git_sha)
    return Path(folder)


def write_ppo_agent(
    folder: Path,
    policy: Any,
    *,
    pipeline: Pipeline,
    cfg: PPOConfig,
    summary: dict[str, Any],
    source_git_sha: str | None = None,
) -> None:
    """The agent files of an SB3 policy into an existing (temporary) ``folder``; see :func:`save_ppo_agent`."""
    shape = pipeline_observation_shape(pipeline)
    if policy.observation_space != policy_spaces(shape)[0]:
        raise ConfigError(f"ppo: the policy sees {policy.observation_space}, the pipeline gives {shape} frames")
    write_agent(
        folder,
        algo="ppo",
        pipeline=pipeline,
        observation_shape=shape,
        config=config_to_dict(cfg),
        summary=summary,
        model=policy_record(policy),
        source_git_sha=source_git_sha,
        # save_model drops the aliases of the shared features extractor (safetensors refuses shared tensors).
        write_weights=lambda target: save_model(policy, str(target / WEIGHTS_FILE)),
    )


#: Config fields a ``--resume`` may change (the rest are baked into the saved model or the run).
RESUMABLE_CHANGES = (
    "total_steps",
    "eval_every",
    "eval_episodes",
    "checkpoint_every",
    "keep_last",
    "target_distance_m",
)


def _vec_env(pipeline: Pipeline, cfg: PPOConfig) -> Any:
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor, VecTransposeImage

    subproc = cfg.vec_env == "subproc"
    # Ctrl-C reaches the whole process group; workers ignore it and are closed by the main process.
    factories: list[Callable[[], Any]] = [
        functools.partial(
            make_pipeline_env, pipeline, seed=None, episode_length=cfg.episode_actions, ignore_sigint=subproc
        )
        for _ in range(cfg.n_envs)
    ]
    vec = SubprocVecEnv(factories, start_method="forkserver") if subproc else DummyVecEnv(factories)
    # The policy sees (C, H, W) frames (policy_spaces), transposed here rather than by SB3's guess.
    return VecTransposeImage(VecMonitor(vec))


def clone_expert(model: Any, pipeline: Pipeline, cfg: PPOConfig, *, progress: bool = True) -> dict[str, Any]:
    """Fit the actor of an SB3 PPO ``model`` to expert demonstrations driven through ``pipeline``.

    The demonstrations come from the behaviour-cloning collector (noisy executed actions, clean
    labels) on the BC agent's episode seeds, at PPO's frame skip and episode length.
    Returns what the fit did (samples, final MSE, seconds) for the run's summary.
    """
    from tqdm import tqdm

    from agents.bc import BCConfig, collect_demonstrations

    started = time.perf_counter()
    demo = BCConfig(maps=cfg.bc_init_maps, episode_actions=cfg.episode_actions, seed=cfg.seed)
    bar = tqdm(total=cfg.bc_init_episodes * cfg.episode_actions, desc="ppo bc-init", unit="step", disable=not progress)
    seeds = episode_seeds("bc_demo", cfg.seed, cfg.bc_init_episodes)  # the BC agent's episodes
    frames, labels = collect_demonstrations(pipeline, demo, seeds, bar=bar)
    bar.close()
    policy = model.policy
    frames_chw = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
    targets = torch.from_numpy(labels)
    actor = [
        *policy.pi_features_extractor.parameters(),
        *policy.mlp_extractor.policy_net.parameters(),
        *policy.action_net.parameters(),
    ]
    optimiser = torch.optim.Adam(actor, lr=1e-3)
    rng = np.random.default_rng(cfg.seed)
    policy.set_training_mode(True)
    loss_value = math.nan
    for _ in range(cfg.bc_init_epochs):
        order = rng.permutation(len(frames_chw))
        losses = []
        for start in range(0, len(order), 64):
            idx = torch.from_numpy(order[start : start + 64])
            mean = policy.get_distribution(frames_chw[idx].float()).distribution.mean
            loss = torch.nn.functional.mse_loss(mean, targets[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        loss_value = float(np.mean(losses))
    policy.set_training_mode(False)
    return {
        "episodes": cfg.bc_init_episodes,
        "samples": len(frames),
        "epochs": cfg.bc_init_epochs,
        "final_mse": loss_value,
        "wall_s": time.perf_counter() - started,
    }


class _Run:
    """What the callbacks of one training share: the model, the run's progress record, its folder.

    ``state`` is what ``progress.json`` holds: config, pipeline, evaluations, training episodes,
    per-update losses, best, wall time.
    """

    def __init__(
        self,
        model: Any,
        pipeline: Pipeline,
        cfg: PPOConfig,
        out: Path,
        state: dict[str, Any],
        started_provenance: dict[str, Any],
    ) -> None:
        self.model, self.pipeline, self.cfg, self.out, self.state = model, pipeline, cfg, out, state
        self.provenance = started_provenance
        self.started = time.perf_counter() - float(state["wall_s"])

    def wall_s(self) -> float:
        """Seconds of training so far, summed over resumes."""
        return time.perf_counter() - self.started

    def _write_agent(self, folder: Path, summary: dict[str, Any]) -> None:
        write_ppo_agent(
            folder,
            self.model.policy,
            pipeline=self.pipeline,
            cfg=self.cfg,
            summary=summary,
            source_git_sha=self.provenance["git_sha"],
        )

    def save_best(self) -> None:
        """``checkpoints/best``: the policy just evaluated best, with where it was selected."""
        summary = {"selected_at": self.state["best"], "provenance": self.provenance}
        with atomic_directory(best_folder(self.out)) as tmp:
            self._write_agent(tmp, summary)

    def checkpoint(self) -> Path:
        """A periodic step folder (its agent's summary says it is not the run's end)."""
        self.state["wall_s"] = self.wall_s()
        steps = int(self.model.num_timesteps)
        return self.save({"env_steps": steps, "final": False, "provenance": self.provenance})

    def save(self, summary: dict[str, Any]) -> Path:
        """Write ``checkpoints/<env steps>`` and ``<out>/progress.json``; returns the step folder.

        The agent (``summary`` in its ``agent.json``), ``ppo.zip`` and ``progress.json`` go in one
        atomic folder, so a kill cannot pair a model with another step's state; then the copy of
        ``progress.json`` that readers (reports, plots) use.
        """

        def write(folder: Path) -> None:
            self._write_agent(folder, summary)
            self.model.save(str(folder / MODEL_FILE))
            write_json_atomic(folder / PROGRESS_FILE, self.state)

        folder = save_step(self.out, int(self.model.num_timesteps), write, keep_last=self.cfg.keep_last)
        write_json_atomic(self.out / PROGRESS_FILE, self.state)
        return folder


def _resume_point(out: Path) -> tuple[Path, Path]:
    """``(ppo.zip, progress.json)`` that ``--resume`` continues from: ``checkpoints/last``, else the older layout's.

    Runs of the older layout kept ``<out>/checkpoint/ppo.zip`` with its paired progress.json
    (older still: only ``<out>/progress.json``).
    """
    last = last_folder(out)
    if last is not None:
        if not (last / MODEL_FILE).exists() or not (last / PROGRESS_FILE).exists():
            raise FileNotFoundError(f"--resume: {last} lacks {MODEL_FILE} or {PROGRESS_FILE}; it cannot be resumed")
        return last / MODEL_FILE, last / PROGRESS_FILE
    legacy = out / LEGACY_CHECKPOINT / MODEL_FILE
    progress_file = out / PROGRESS_FILE
    if not legacy.exists() or not progress_file.exists():
        raise FileNotFoundError(
            f"--resume: no checkpoint at {checkpoints_dir(out) / LAST} nor {legacy} (with {progress_file.name})"
        )
    paired = legacy.parent / PROGRESS_FILE
    return legacy, paired if paired.exists() else progress_file


def _resumed_state(pipeline: Pipeline, cfg: PPOConfig, out: Path, progress_file: Path) -> dict[str, Any]:
    """The progress record of the checkpoint to resume, checked against this pipeline and config."""
    state: dict[str, Any] = json.loads(progress_file.read_text())
    diffs = pipeline.differences(state.get("pipeline", {}))
    if diffs:
        raise ConfigError(f"--resume: {out} was trained on another pipeline ({'; '.join(diffs)}); use a new out")
    # The best agent is written when it improves, progress.json at checkpoints: after a hard crash
    # the folder may hold a better policy than the checkpoint's state knows of.
    for best_record in (best_folder(out) / AGENT_FILE, out / LEGACY_BEST / AGENT_FILE):
        if best_record.exists():
            selected = json.loads(best_record.read_text()).get("summary", {}).get("selected_at")
            best = state.get("best")
            if selected and (best is None or selected["distance_in_lane_m"] > best["distance_in_lane_m"]):
                state["best"] = selected
            break
    # A key the saved run predates had its default then; a renamed one is read under its new name.
    recorded = rename_deprecated(state.get("config", {}), RENAMED, "ppo", warn=False)
    saved = {**config_to_dict(PPOConfig()), **recorded}
    changed = [k for k, v in config_to_dict(cfg).items() if k not in RESUMABLE_CHANGES and saved[k] != v]
    if changed:
        raise ConfigError(
            f"--resume: {changed} differ from the run in {out}; only {list(RESUMABLE_CHANGES)} may change"
        )
    return state


def _new_model(vec: Any, cfg: PPOConfig, out: Path) -> Any:
    """A fresh SB3 PPO with the CnnPolicy on ``vec``."""
    from stable_baselines3 import PPO

    return PPO(
        "CnnPolicy",
        vec,
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs,
        learning_rate=cfg.learning_rate,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=cfg.clip_range,
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        target_kl=cfg.target_kl or None,
        policy_kwargs={
            "features_extractor_kwargs": {"features_dim": cfg.features_dim},
            "log_std_init": cfg.log_std_init,
        },
        tensorboard_log=str(out / "tb"),
        seed=cfg.seed,
        device="cpu",
        verbose=0,
    )


def _check_pipeline_frames(pipeline: Pipeline) -> None:
    height, width = pipeline.preprocess.resize
    if min(height, width) < 36:
        raise ConfigError(
            f"ppo: SB3's CnnPolicy (NatureCNN) needs frames of at least 36x36; preprocess.resize is {[height, width]}"
        )


def _callbacks(run: _Run, evaluation: Any, stop: StopFlag) -> Any:
    """Every callback of ``learn``, in the order they see each env step."""
    from stable_baselines3.common.callbacks import CallbackList

    from agents.ppo_callbacks import CriticWarmup, OnMultiplesOf, StepCheckpoint, StopOnSignal, UpdateLog

    cfg = run.cfg
    return CallbackList(
        [
            UpdateLog(run.state, rollout_steps=cfg.n_steps * cfg.n_envs),
            CriticWarmup(cfg.critic_warmup_steps),
            OnMultiplesOf(cfg.eval_every, evaluation),
            OnMultiplesOf(cfg.checkpoint_every, StepCheckpoint(run.checkpoint, str(checkpoints_dir(run.out)))),
            StopOnSignal(stop),  # last: the step's evaluation and checkpoint happen first
        ]
    )


def _final_summary(run: _Run, interrupted: bool) -> dict[str, Any]:
    state, final = run.state, run.state["evaluations"][-1]
    return {
        "env_steps": int(run.model.num_timesteps),
        "wall_s": state["wall_s"],
        "final_eval": {k: v for k, v in final.items() if k != "distance_in_lane_each"},
        "target_distance_m": run.cfg.target_distance_m,
        "target_reached": state["target_reached"],
        "interrupted": interrupted,
        "bc_init": state.get("bc_init"),
        "provenance": run.provenance,
        "final": True,
        "best": {**state["best"], "agent": str(best_folder(run.out))},
    }


def train_ppo(
    pipeline: Pipeline, cfg: PPOConfig, out: Path, *, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) PPO on ``pipeline``; returns the run's summary (also ``out/ppo_summary.json``).

    Writes ``out/checkpoints/<env steps>/`` every ``checkpoint_every`` env steps and at the end
    (agent + ``ppo.zip`` + ``progress.json``; the newest ``keep_last`` kept, ``checkpoints/last``
    naming the newest), ``out/checkpoints/best`` (the best evaluated policy), ``out/progress.json``
    and ``out/learning_curve.png``. ``resume`` continues ``checkpoints/last`` (or a run of the older
    layout, ``out/checkpoint/ppo.zip``); its archive is unpickled by SB3: trusted input only.
    """
    from stable_baselines3 import PPO

    from agents.ppo_callbacks import LaneEvalCallback, SaveBestAgent

    started_provenance = provenance()  # the code that runs is the code of now, not of the end
    torch.set_num_threads(cfg.torch_threads)
    out.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"evaluations": [], "train_episodes": [], "wall_s": 0.0, "target_reached": None}
    if resume:
        model_file, progress_file = _resume_point(out)
        state = _resumed_state(pipeline, cfg, out, progress_file)
    elif has_saved(out) or (out / LEGACY_CHECKPOINT / MODEL_FILE).exists():
        raise FileExistsError(f"{out} already holds a PPO run; pass --resume to continue it or pick another out")
    _check_pipeline_frames(pipeline)
    state["pipeline"] = pipeline.record()
    state["config"] = config_to_dict(cfg)
    vec = _vec_env(pipeline, cfg)
    eval_env = pipeline.make_env(episode_length=cfg.episode_actions)
    if resume:
        model = PPO.load(str(model_file), env=vec, device="cpu")
        discard_after(out, int(model.num_timesteps))  # step folders of a killed stretch past this checkpoint
        adopt_legacy_best(out, LEGACY_BEST)
    else:
        model = _new_model(vec, cfg, out)
    if not resume and cfg.bc_init_episodes:
        state["bc_init"] = clone_expert(model, pipeline, cfg, progress=progress)
        state["wall_s"] = state["bc_init"]["wall_s"]
    # SB3 seeds the workers with cfg.seed + i on construction and load; a resumed run continues
    # from fresh episode seeds instead of replaying the first run's.
    vec.seed(episode_seeds("ppo_train", cfg.seed, 1, offset=len(state["evaluations"]) * 100)[0])
    shape = pipeline_observation_shape(pipeline)
    if eval_env.observation_space.shape != shape:
        raise RuntimeError(f"ppo: the pipeline env gives {eval_env.observation_space.shape}, expected {shape}")
    run = _Run(model, pipeline, cfg, out, state, started_provenance)
    evaluation = LaneEvalCallback(
        eval_env,
        PPOAgent(model.policy, shape, {}).act,
        episode_seeds("ppo_eval", cfg.seed, cfg.eval_episodes),
        state,
        target_distance_m=cfg.target_distance_m,
        wall_s=run.wall_s,
        callback_on_new_best=SaveBestAgent(run.save_best),
    )
    evaluation.init_callback(model)  # it also evaluates outside learn: before (a cloned actor) and after
    if not resume and cfg.bc_init_episodes:
        evaluation.evaluate()  # the cloned policy before any PPO update: the learning curve's first point
    remaining = cfg.total_steps - int(model.num_timesteps)
    # A signal only sets the flag, checked after every env step (StopOnSignal); the flag stays
    # armed through the final save, and a second signal raises KeyboardInterrupt (stop unsaved).
    with StopFlag() as stop:
        try:
            if remaining > 0:
                model.learn(
                    total_timesteps=remaining,
                    callback=_callbacks(run, evaluation, stop),
                    reset_num_timesteps=not resume,
                    progress_bar=progress,
                    tb_log_name="ppo",
                )
            interrupted = stop.requested
            # (A run that predates the best agent and is resumed at its end has no "best": evaluate once.)
            evaluations = state["evaluations"]
            if not evaluations or evaluations[-1]["env_steps"] != model.num_timesteps or state.get("best") is None:
                evaluation.evaluate()
            state["wall_s"] = run.wall_s()
        finally:
            eval_env.close()
            with contextlib.suppress(EOFError, BrokenPipeError, OSError):
                vec.close()  # after a second Ctrl-C the workers may be gone already
        summary = _final_summary(run, interrupted)
        run.save(summary)
        write_json_atomic(out / "ppo_summary.json", summary)
        plot_learning_curve(state, out / "learning_curve.png", pipeline.name, cfg.target_distance_m)
    return summary


def plot_learning_curve(state: dict[str, Any], path: Path, title: str, target: float) -> None:
    """Evaluation distance in lane (mean and per episode) and training returns against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim2real_env.video import write_figure

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    evals = state["evaluations"]
    steps = [e["env_steps"] for e in evals]
    ax.plot(steps, [e["distance_in_lane_m"] for e in evals], "o-", label="mean distance in lane")
    ax.plot(steps, [e["distance_m"] for e in evals], "s--", label="mean distance", alpha=0.7)
    for e in evals:
        ax.scatter([e["env_steps"]] * len(e["distance_in_lane_each"]), e["distance_in_lane_each"], s=8, c="grey")
    if math.isfinite(target) and target > 0:
        ax.axhline(target, color="green", lw=0.8, ls=":", label=f"target {target} m")
    if state.get("best"):
        best = state["best"]
        ax.plot([best["env_steps"]], [best["distance_in_lane_m"]], "*", ms=14, color="red", label="best agent")
    ax.set_xlabel("env steps")
    ax.set_ylabel("m (deterministic policy, fixed seeds)")
    ax.set_title(f"PPO evaluation, pipeline {title}")
    ax.legend(fontsize=8)
    episodes = state["train_episodes"]
    if episodes:
        x = np.array([e["env_steps"] for e in episodes])
        y = np.array([e["return"] for e in episodes])
        ax2.plot(x, y, ".", ms=2, alpha=0.4)
        window = max(1, len(y) // 20)
        if len(y) >= window:
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            ax2.plot(x[window - 1 :], smooth, lw=1.5)
    ax2.set_xlabel("env steps")
    ax2.set_ylabel("training episode return")
    fig.tight_layout()
    write_figure(path, fig)
    plt.close(fig)
