"""Behaviour cloning from the pure-pursuit expert, with optional DAgger rounds.

Demonstrations are collected through the agent's own pipeline (so a ``sim2real`` agent learns
from translated frames), with DART-style noise on the *executed* action while the label stays the
expert's clean action; that shows the policy how to recover from small errors. DAgger rounds then
drive with a mixture of expert and policy (expert share ``beta ** round``) and label every visited
state with the expert. Frames can also come from a ``sim2real harvest`` folder (``source:
harvest``, single frames only).

Held-out action error is measured on separate seeded episodes that are never trained on; after
each round the policy drives closed-loop episodes and their lane measures are logged.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from agents.episodes import episode_seeds, run_episode, summarize
from agents.expert import PurePursuitExpert
from agents.pipeline import GENERATOR_DIRECTION, Pipeline
from agents.saved import AgentError, check_observation, write_agent
from generators.configs import config_from_dict, config_to_dict
from sim2real_env.checkpoints import save_step
from sim2real_env.errors import ConfigError, InputError
from sim2real_env.maps import resolve_map
from sim2real_env.names import resolve_name
from sim2real_env.provenance import provenance, write_json_atomic
from sim2real_env.rollout import rollout

WEIGHTS_FILE = "policy.safetensors"
SOURCES = ("rollout", "harvest")


@dataclass(frozen=True)
class BCNetConfig:
    """The CNN policy: four strided convolutions, one hidden layer, tanh actions."""

    width: int = 32
    hidden: int = 128

    def __post_init__(self) -> None:
        for name in ("width", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 4 <= value <= 1024:
                raise ConfigError(f"bc.net.{name} must be an integer in [4, 1024], got {value!r}")


class BCPolicy(nn.Module):
    """uint8 ``(N, H, W, C)`` frames -> actions in ``[-1, 1]^2``; normalisation inside the model."""

    def __init__(self, observation_shape: tuple[int, int, int], config: BCNetConfig) -> None:
        super().__init__()
        height, width, channels = observation_shape
        w = config.width
        self.features = nn.Sequential(
            nn.Conv2d(channels, w, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels, height, width)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 2), nn.Tanh())

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Actions for a uint8 NHWC batch."""
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.head(self.features(x))


#: Keys renamed so that each name has one unit: old name -> new name (old names still load).
RENAMED = {"episode_steps": "episode_actions", "expert_noise": "action_noise_std"}


@dataclass(frozen=True)
class BCConfig:
    """Behaviour-cloning settings (``bc:`` section of ``configs/agents/*.yaml``)."""

    source: str = "rollout"
    #: Maps demonstrations and DAgger episodes are collected on (cycled); empty: the pipeline's map.
    maps: tuple[str, ...] = ()
    demo_episodes: int = 8
    #: Episode length in agent actions (``frame_skip`` simulator frames each).
    episode_actions: int = 400
    #: Std of Gaussian noise on the executed action, in the agent's action units, during
    #: demonstrations (labels stay clean).
    action_noise_std: float = 0.2
    dagger_rounds: int = 2
    dagger_episodes: int = 4
    #: Expert share of executed actions in DAgger round r is ``dagger_beta ** r``.
    dagger_beta: float = 0.5
    val_episodes: int = 2
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    eval_episodes: int = 2
    seed: int = 0
    torch_threads: int = 2
    #: ``source: harvest``: the harvest folder; frames from ``canonical/`` or ``randomized/``
    #: according to the pipeline.
    harvest_root: str | None = None
    net: BCNetConfig = dataclasses.field(default_factory=BCNetConfig)

    def __post_init__(self) -> None:
        resolve_name("bc source", self.source, SOURCES)
        if not isinstance(self.maps, tuple):
            raise ConfigError(f"bc.maps must be a list of map names, got {self.maps!r}")
        for m in self.maps:
            resolve_map(m)
        ints = {
            "demo_episodes": 1,
            "episode_actions": 10,
            "dagger_rounds": 0,
            "dagger_episodes": 1,
            "val_episodes": 1,
            "epochs": 1,
            "batch_size": 1,
            "eval_episodes": 0,
            "torch_threads": 1,
            "seed": 0,
        }
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"bc.{name} must be an integer >= {low}, got {value!r}")
        for name, lo, hi in (("action_noise_std", 0.0, 1.0), ("dagger_beta", 0.0, 1.0), ("lr", 1e-7, 1.0)):
            number = getattr(self, name)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not lo <= number <= hi:
                raise ConfigError(f"bc.{name} must be a number in [{lo}, {hi}], got {number!r}")
        if self.source == "harvest" and not self.harvest_root:
            raise ConfigError("bc.source 'harvest' needs bc.harvest_root (a `sim2real harvest` folder)")
        if isinstance(self.net, dict):
            object.__setattr__(self, "net", config_from_dict(BCNetConfig, self.net, "bc.net"))

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> BCConfig:
        """From a mapping; unknown keys are an error naming the key."""
        return config_from_dict(cls, values or {}, "bc", renamed=RENAMED)


class BCAgent:
    """A trained behaviour-cloning policy (implements :class:`agents.saved.Agent`)."""

    algo = "bc"

    def __init__(self, policy: BCPolicy, observation_shape: tuple[int, ...], record: dict[str, Any]) -> None:
        self.policy = policy.eval()
        self.observation_shape = observation_shape
        self.record = record

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action(s) for uint8 observation(s)."""
        batch, single = check_observation(obs, self.observation_shape, "BCAgent")
        device = next(self.policy.parameters()).device
        with torch.no_grad():
            actions = self.policy(torch.from_numpy(np.ascontiguousarray(batch)).to(device)).cpu().numpy()
        return actions[0] if single else actions

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any], device: str = "cpu") -> BCAgent:
        """From an agent directory whose ``agent.json`` was already read."""
        shape = tuple(int(v) for v in meta["observation_shape"])
        net = config_from_dict(BCNetConfig, meta.get("model", {}), "bc model")
        policy = BCPolicy(shape, net)  # type: ignore[arg-type]
        weights = path / WEIGHTS_FILE
        if not weights.exists():
            raise AgentError(f"agent {path} lacks {WEIGHTS_FILE}")
        try:
            policy.load_state_dict(load_file(str(weights)))
        except Exception as exc:  # safetensors header errors, shape mismatches
            raise AgentError(f"agent weights {weights} do not load: {exc}") from exc
        return cls(policy.to(device), shape, meta)


# -- data ---------------------------------------------------------------------------------------


class _Envs:
    """One env per map for a whole BC run (demonstrations, DAgger rounds and closed-loop checks).

    Every episode starts with a seeded reset, so reusing an env changes no episode; it saves
    building the simulator and loading the generator again for every round.
    """

    def __init__(self, pipeline: Pipeline, episode_actions: int) -> None:
        self.pipeline, self.episode_actions = pipeline, episode_actions
        self.envs: dict[str, Any] = {}

    def __call__(self, map_name: str) -> Any:
        if map_name not in self.envs:
            self.envs[map_name] = self.pipeline.make_env(map_name=map_name, episode_length=self.episode_actions)
        return self.envs[map_name]

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()


def _collect_episode(
    env: Any,
    seed: int,
    *,
    policy: BCPolicy | None,
    beta: float,
    noise: float,
    frames: list[np.ndarray],
    labels: list[np.ndarray],
    bar: Any,
) -> None:
    """One seeded episode; every visited frame is labelled with the clean expert action."""
    expert = PurePursuitExpert()
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        label = expert.act(env)
        frames.append(obs)
        labels.append(label)
        if policy is None or rng.random() < beta:
            executed = label + rng.normal(0.0, noise, size=2) if noise > 0 else label
        else:
            with torch.no_grad():
                executed = policy(torch.from_numpy(obs[None]))[0].numpy()
        return np.clip(executed, -1, 1).astype(np.float32)

    rollout(env, act, seed=seed, on_step=lambda step: bar.update(1))


def _collect(
    pipeline: Pipeline,
    cfg: BCConfig,
    seeds: list[int],
    *,
    policy: BCPolicy | None,
    beta: float,
    noise: float,
    bar: Any,
    envs: _Envs | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Drive one episode per seed, executing expert (share ``beta``) or policy actions; label all.

    ``envs``: the run's envs (built here, and closed again, when not given).
    """
    maps = cfg.maps or (pipeline.env_config().map_name,)
    frames: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    own = envs is None
    envs = envs or _Envs(pipeline, cfg.episode_actions)
    for i, seed in enumerate(seeds):
        env = envs(maps[i % len(maps)])
        _collect_episode(env, seed, policy=policy, beta=beta, noise=noise, frames=frames, labels=labels, bar=bar)
    if own:
        envs.close()
    return np.stack(frames), np.stack(labels).astype(np.float32)


def collect_demonstrations(
    pipeline: Pipeline, cfg: BCConfig, seeds: list[int], *, bar: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Expert-driven episodes (one per seed, ``cfg.action_noise_std`` on the executed action) and labels."""
    return _collect(pipeline, cfg, seeds, policy=None, beta=1.0, noise=cfg.action_noise_std, bar=bar)


def _check_harvest_source(pipeline: Pipeline, cfg: BCConfig) -> None:
    """``source: harvest`` fits this pipeline (checked before any episode is collected)."""
    root = Path(str(cfg.harvest_root))
    if not (root / "manifest.csv").exists():
        raise FileNotFoundError(f"bc.harvest_root {root} has no manifest.csv; is it a `sim2real harvest` folder?")
    if pipeline.preprocess.frame_stack != 1:
        raise ConfigError("bc.source 'harvest' gives single frames; set preprocess.frame_stack: 1 or use 'rollout'")
    if pipeline.env.get("distortion"):
        raise ConfigError("bc.source 'harvest' has no distorted frames; use source 'rollout' with distortion")


def _harvest_data(pipeline: Pipeline, cfg: BCConfig) -> tuple[np.ndarray, np.ndarray]:
    """Frames and expert labels from a harvest folder, through the pipeline's transforms."""
    import cv2

    from generators.checkpoint import load_generator
    from sim2real_env.env import action_from_wheels
    from sim2real_env.wrappers import resize_frames, translate_in_batches

    _check_harvest_source(pipeline, cfg)
    root = Path(str(cfg.harvest_root))
    manifest = root / "manifest.csv"
    folder = "randomized" if pipeline.env.get("domain_rand") else "canonical"
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise InputError(f"{manifest} lists no frames")
    images = []
    for row in rows:
        image = cv2.imread(str(root / folder / f"{row['frame']}.png"), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"harvest frame {root / folder / row['frame']}.png is missing or unreadable")
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    frames = np.stack(images)
    config = pipeline.env_config()
    if frames.shape[1:3] != (config.camera_height, config.camera_width):
        frames = resize_frames(frames, (config.camera_height, config.camera_width))
    if pipeline.checkpoint is not None:
        generator = load_generator(pipeline.checkpoint, direction=GENERATOR_DIRECTION[pipeline.name])
        frames = translate_in_batches(generator, frames)
    frames = pipeline.preprocess.frames(frames)  # the wrappers' crop and resize, offline
    wheels = np.array([[float(r["expert_left"]), float(r["expert_right"])] for r in rows])
    return frames, action_from_wheels(wheels, config.action_space, config.steer_scale)


# -- training -----------------------------------------------------------------------------------


def _fit(
    policy: BCPolicy,
    optimiser: torch.optim.Optimizer,
    frames: np.ndarray,
    labels: np.ndarray,
    cfg: BCConfig,
    rng: np.random.Generator,
) -> float:
    """One epoch of MSE regression; mean loss."""
    policy.train()
    order = rng.permutation(len(frames))
    losses = []
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        pred = policy(torch.from_numpy(frames[idx]))
        loss = torch.nn.functional.mse_loss(pred, torch.from_numpy(labels[idx]))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    policy.eval()
    return float(np.mean(losses))


def action_error(policy: BCPolicy, frames: np.ndarray, labels: np.ndarray) -> float:
    """Mean absolute action error over a held-out set."""
    with torch.no_grad():
        preds = torch.cat([policy(torch.from_numpy(frames[i : i + 256])) for i in range(0, len(frames), 256)])
    return float((preds - torch.from_numpy(labels)).abs().mean())


def train_bc(pipeline: Pipeline, cfg: BCConfig, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Collect, train (with DAgger rounds), evaluate and save the agent; returns the summary.

    The agent is ``out/checkpoints/<epochs>/`` (``checkpoints/last`` names it; BC selects nothing,
    so there is no ``best``). A rerun into ``out`` starts afresh and leaves only its own step folder.
    """
    from torch.utils.tensorboard import SummaryWriter

    if cfg.source == "harvest":
        _check_harvest_source(pipeline, cfg)
    started_provenance = provenance()  # the code that runs is the code of now, not of the end
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.torch_threads)
    rng = np.random.default_rng(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    # A rerun into the same folder starts afresh: purge_step=0 makes TensorBoard drop the events of
    # an earlier (finished or killed) run there, instead of drawing both runs' curves on top of each other.
    writer = SummaryWriter(str(out / "tb"), purge_step=0)
    started = time.perf_counter()
    eval_map = pipeline.env_config().map_name
    total_steps = cfg.episode_actions * (cfg.val_episodes + (cfg.demo_episodes if cfg.source == "rollout" else 0))
    total_steps += cfg.episode_actions * cfg.dagger_rounds * cfg.dagger_episodes
    bar = tqdm(total=total_steps, desc="bc collect", unit="step", disable=not progress)
    envs = _Envs(pipeline, cfg.episode_actions)  # one per map for the whole run
    # Held-out states: expert-driven with the same noise, seeds disjoint from training seeds.
    val_frames, val_labels = _collect(
        pipeline,
        cfg,
        episode_seeds("bc_val", cfg.seed, cfg.val_episodes),
        policy=None,
        beta=1.0,
        noise=cfg.action_noise_std,
        bar=bar,
        envs=envs,
    )
    if cfg.source == "rollout":
        frames, labels = _collect(
            pipeline,
            cfg,
            episode_seeds("bc_demo", cfg.seed, cfg.demo_episodes),
            policy=None,
            beta=1.0,
            noise=cfg.action_noise_std,
            bar=bar,
            envs=envs,
        )
    else:
        frames, labels = _harvest_data(pipeline, cfg)
    shape = tuple(int(v) for v in frames.shape[1:])
    policy = BCPolicy(shape, cfg.net)  # type: ignore[arg-type]
    optimiser = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    history: list[dict[str, Any]] = []
    epoch_index = 0
    for round_index in range(cfg.dagger_rounds + 1):
        if round_index > 0:
            beta = cfg.dagger_beta**round_index
            seeds = episode_seeds("bc_dagger", cfg.seed, cfg.dagger_episodes, offset=round_index * 100)
            new_frames, new_labels = _collect(
                pipeline, cfg, seeds, policy=policy, beta=beta, noise=0.0, bar=bar, envs=envs
            )
            frames = np.concatenate([frames, new_frames])
            labels = np.concatenate([labels, new_labels])
        for _ in range(cfg.epochs):
            loss = _fit(policy, optimiser, frames, labels, cfg, rng)
            val = action_error(policy, val_frames, val_labels)
            writer.add_scalar("bc/train_mse", loss, epoch_index)
            writer.add_scalar("bc/val_action_mae", val, epoch_index)
            history.append(
                {
                    "epoch": epoch_index,
                    "round": round_index,
                    "train_mse": loss,
                    "val_action_mae": val,
                    "samples": len(frames),
                }
            )
            epoch_index += 1
            bar.set_postfix(round=round_index, mse=f"{loss:.4f}", val_mae=f"{val:.3f}")
        closed: dict[str, float] = {}
        if cfg.eval_episodes:
            env = envs(eval_map)
            agent = BCAgent(policy, shape, {})
            results = [run_episode(env, agent.act, s) for s in episode_seeds("bc_eval", cfg.seed, cfg.eval_episodes)]
            closed = summarize(results)
            for key in ("distance_m", "distance_in_lane_m", "out_of_lane_fraction", "survival_s"):
                writer.add_scalar(f"closed_loop/{key}", closed[key], round_index)
        history[-1]["closed_loop"] = closed
    envs.close()
    bar.close()
    writer.close()
    wall = time.perf_counter() - started
    summary = {
        "samples": len(frames),
        "val_samples": len(val_frames),
        "final_train_mse": history[-1]["train_mse"],
        "final_val_action_mae": history[-1]["val_action_mae"],
        # The same error of the best constant action for these held-out states (their own
        # per-dimension median): no policy that ignores the frame does better.
        "val_constant_action_mae": float(np.abs(val_labels - np.median(val_labels, axis=0)).mean()),
        "closed_loop": history[-1].get("closed_loop", {}),
        "wall_s": wall,
        "history": history,
        "provenance": started_provenance,
    }
    model_config = config_to_dict(cfg.net)

    def write(folder: Path) -> None:
        write_agent(
            folder,
            algo="bc",
            pipeline=pipeline,
            observation_shape=shape,
            config=json.loads(json.dumps(config_to_dict(cfg), default=str)),
            summary={k: v for k, v in summary.items() if k != "history"},
            model=model_config,
            source_git_sha=started_provenance["git_sha"],
            write_weights=lambda target: save_file(
                {k: v.detach().contiguous() for k, v in policy.state_dict().items()}, str(target / WEIGHTS_FILE)
            ),
        )

    save_step(out, epoch_index, write, keep_last=1)  # one agent per run: an earlier run's folder goes
    write_json_atomic(out / "bc_history.json", summary)
    plot_bc(history, out / "bc_curve.png", pipeline.name)
    return summary


def plot_bc(history: list[dict[str, Any]], path: Path, title: str) -> None:
    """Training MSE and held-out action error per epoch; DAgger rounds shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim2real_env.video import write_figure

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, [h["train_mse"] for h in history], label="train MSE")
    ax.plot(epochs, [h["val_action_mae"] for h in history], label="held-out action MAE")
    for h in history:
        if h.get("closed_loop"):
            d = h["closed_loop"].get("distance_in_lane_m", math.nan)
            ax.annotate(f"{d:.1f} m in lane", (h["epoch"], h["val_action_mae"]), fontsize=7)
    rounds = sorted({h["round"] for h in history})
    for r in rounds[1:]:
        first = min(h["epoch"] for h in history if h["round"] == r)
        ax.axvline(first - 0.5, color="grey", lw=0.5, ls="--")
    ax.set_xlabel("epoch (dashed: DAgger round starts)")
    ax.set_yscale("log")
    ax.set_title(f"behaviour cloning, pipeline {title}")
    ax.legend()
    fig.tight_layout()
    write_figure(path, fig)
    plt.close(fig)
