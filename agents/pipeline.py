"""Observation pipelines: what an agent sees, named, built in one place and recorded with the agent.

Six pipelines (``PIPELINES``):

* ``raw``: the canonical simulator render;
* ``randomized``: the simulator with upstream domain randomization;
* ``augmented``: the canonical render through a random chain of the domain image ops, drawn
  afresh every episode (``sim2real_env.domains.RandomImageOps``; training-time augmentation);
* ``sim2real``: the canonical render through a ``sim->real`` generator checkpoint;
* ``sim2real_randomized``: domain-randomized renders through a ``sim->real`` checkpoint;
* ``canonicalized``: randomized (or camera-distorted) renders through a ``real->canonical``
  checkpoint, the robot-side setting of Lomnitz et al. 2020.

Agent preprocessing (crop the horizon, resize, frame stack) is part of the pipeline, so agent
code never resizes or stacks. :meth:`Pipeline.record` is what a saved agent stores;
:meth:`Pipeline.differences` is how loading an agent under another pipeline is caught.

Example::

    pipeline = Pipeline.build("sim2real", env={"map_name": "small_loop"}, checkpoint="runs/cyclegan/checkpoint")
    env = pipeline.make_env()
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from generators.configs import config_to_dict
from sim2real_env.env import EnvConfig
from sim2real_env.errors import ConfigError, InputError, Sim2RealError
from sim2real_env.make import GeneratorStage, build_env
from sim2real_env.names import resolve_name
from sim2real_env.preprocess import Preprocess as Preprocess  # re-exported: its home before the one builder

PIPELINES: tuple[str, ...] = ("raw", "randomized", "augmented", "sim2real", "sim2real_randomized", "canonicalized")
CANONICALIZE_SOURCES: tuple[str, ...] = ("randomized", "distorted")

#: Env fields that change what the agent observes or how its actions act; a pipeline pins them.
#: The map, episode length, reward and spawn are not among them: an agent may be run on another map.
OBSERVATION_FIELDS: tuple[str, ...] = (
    "camera_width",
    "camera_height",
    "frame_skip",
    "domain_rand",
    "distortion",
    "action_space",
    "steer_scale",
    "frame_rate",
    "camera_height_m",
    "camera_tilt_deg",
    "camera_fov_y_deg",
)

#: Direction of the generator each generator pipeline needs.
GENERATOR_DIRECTION = {"sim2real": "sim->real", "sim2real_randomized": "sim->real", "canonicalized": "real->canonical"}

#: Pipelines whose simulator renders with upstream domain randomization.
RANDOMIZED_PIPELINES: tuple[str, ...] = ("randomized", "sim2real_randomized")


class PipelineMismatchError(Sim2RealError, ValueError):
    """An agent is asked to run under a pipeline other than the one it was trained on."""


@dataclass(frozen=True)
class Pipeline:
    """One named observation pipeline; build with :meth:`build` (which validates everything)."""

    name: str
    env: dict[str, Any] = field(default_factory=dict)
    preprocess: Preprocess = field(default_factory=Preprocess)
    checkpoint: str | None = None
    checkpoint_id: str | None = None
    canonicalize_from: str = "randomized"

    @classmethod
    def build(
        cls,
        name: str,
        *,
        env: dict[str, Any] | None = None,
        preprocess: Preprocess | dict[str, Any] | None = None,
        checkpoint: str | Path | None = None,
        canonicalize_from: str = "randomized",
    ) -> Pipeline:
        """Validate and resolve a pipeline.

        The pipeline fixes ``domain_rand``/``distortion``; a generator pipeline needs a checkpoint
        of the right direction, the others refuse one.
        """
        resolve_name("pipeline", name, PIPELINES)
        resolve_name("canonicalize_from", canonicalize_from, CANONICALIZE_SOURCES)
        env = dict(env or {})
        wanted = {"domain_rand": name in RANDOMIZED_PIPELINES, "distortion": False}
        if name == "canonicalized":
            wanted = {"domain_rand": canonicalize_from == "randomized", "distortion": canonicalize_from == "distorted"}
        for key, value in wanted.items():
            if key in env and env[key] != value:
                raise ConfigError(
                    f"pipeline {name!r} sets env.{key}={value}; the config asks for {env[key]!r}. "
                    "Remove the key, or pick the pipeline that matches it."
                )
            env[key] = value
        config = EnvConfig.from_dict(env)  # validates every key
        env = {k: v for k, v in config_to_dict(config).items() if k in env}
        if isinstance(preprocess, dict) or preprocess is None:
            preprocess = Preprocess.from_dict(preprocess)
        checkpoint_id = None
        if name in GENERATOR_DIRECTION:
            if checkpoint is None:
                raise ConfigError(
                    f"pipeline {name!r} needs a {GENERATOR_DIRECTION[name]} generator checkpoint "
                    f"(--checkpoint or checkpoints.{name} in the agent config)"
                )
            from generators.checkpoint import checkpoint_id as id_of
            from generators.checkpoint import read_config

            direction = read_config(checkpoint)["direction"]
            if direction != GENERATOR_DIRECTION[name]:
                raise ConfigError(
                    f"pipeline {name!r} needs a {GENERATOR_DIRECTION[name]!r} checkpoint; {checkpoint} is {direction!r}"
                )
            checkpoint_id = id_of(checkpoint)
            checkpoint = str(checkpoint)
        elif checkpoint is not None:
            raise ConfigError(f"pipeline {name!r} uses no generator, but a checkpoint was given: {checkpoint}")
        return cls(name, env, preprocess, checkpoint, checkpoint_id, canonicalize_from)

    # -- what it is ---------------------------------------------------------------------------

    def env_config(self, **overrides: Any) -> EnvConfig:
        """The full env config.

        ``overrides`` may change the map, episode length and the like, not what the agent
        observes (that would be another pipeline).
        """
        base = EnvConfig.from_dict(self.env)
        clash = [k for k in overrides if k in OBSERVATION_FIELDS and overrides[k] != getattr(base, k)]
        if clash:
            raise ConfigError(f"pipeline {self.name!r} fixes {clash}; build another pipeline to change them")
        return EnvConfig.from_dict({**self.env, **overrides})

    def record(self) -> dict[str, Any]:
        """JSON-able description stored with every agent (observation fields, preprocess, generator)."""
        config = config_to_dict(self.env_config())
        return {
            "name": self.name,
            "observation": {k: config[k] for k in OBSERVATION_FIELDS},
            "preprocess": config_to_dict(self.preprocess),
            "checkpoint_id": self.checkpoint_id,
            "checkpoint": self.checkpoint,
            "canonicalize_from": self.canonicalize_from if self.name == "canonicalized" else None,
            "env": dict(self.env),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], checkpoint: str | Path | None = None) -> Pipeline:
        """Rebuild from :meth:`record` (``checkpoint`` replaces a moved checkpoint folder)."""
        try:
            pipeline = cls.build(
                record["name"],
                env=record["env"],
                preprocess=record["preprocess"],
                checkpoint=checkpoint or record.get("checkpoint"),
                canonicalize_from=record.get("canonicalize_from") or "randomized",
            )
        except KeyError as exc:
            raise InputError(f"pipeline record lacks key {exc}") from exc
        if record.get("checkpoint_id") and pipeline.checkpoint_id != record["checkpoint_id"]:
            raise PipelineMismatchError(
                f"the generator checkpoint {pipeline.checkpoint} is {pipeline.checkpoint_id}, "
                f"the agent was trained with {record['checkpoint_id']}"
            )
        return pipeline

    def differences(self, other: Pipeline | dict[str, Any]) -> list[str]:
        """Human-readable differences in what the agent would observe (empty: same pipeline)."""
        mine = self.record()
        theirs = other.record() if isinstance(other, Pipeline) else dict(other)
        # Records written before a field existed hold the field's default.
        defaults = config_to_dict(EnvConfig())
        observed = theirs.get("observation", {})
        theirs["observation"] = {k: observed.get(k, defaults.get(k)) for k in set(observed) | set(OBSERVATION_FIELDS)}
        out = []
        for key in ("name", "checkpoint_id", "canonicalize_from"):
            if mine.get(key) != theirs.get(key):
                out.append(f"{key}: {mine.get(key)!r} vs {theirs.get(key)!r}")
        for section in ("observation", "preprocess"):
            for key in sorted(set(mine[section]) | set(theirs.get(section, {}))):
                a, b = mine[section].get(key), theirs.get(section, {}).get(key)
                if a != b:
                    out.append(f"{section}.{key}: {a!r} vs {b!r}")
        return out

    # -- building envs ------------------------------------------------------------------------

    def build_options(self, *, device: str = "cpu", threads: int = 2) -> dict[str, Any]:
        """Keywords of :func:`sim2real_env.make.build_env` that put this pipeline's wrappers on an env."""
        options: dict[str, Any] = {"augment": self.name == "augmented", "preprocess": self.preprocess}
        if self.checkpoint is not None:
            stage = GeneratorStage(self.checkpoint, device=device, threads=threads)
            options["canonicalize" if self.name == "canonicalized" else "translate"] = stage
        return options

    def make_env(
        self,
        *,
        device: str = "cpu",
        threads: int = 2,
        config: EnvConfig | None = None,
        image_ops: tuple[dict[str, Any], ...] = (),
        **env_overrides: Any,
    ) -> gym.Env[Any, Any]:
        """The simulator env with this pipeline's wrappers (``env_overrides``: map, episode length...).

        Evaluation shows an agent a domain's camera instead: ``config`` (the domain's env config)
        then replaces the pipeline's, and ``image_ops`` are the domain's image chain, applied
        before the pipeline's generator and preprocessing.
        """
        if config is not None and env_overrides:
            raise ConfigError("Pipeline.make_env: give either config or env overrides, not both")
        if config is None:
            config = self.env_config(**env_overrides)
        return build_env(config, image_ops=image_ops, **self.build_options(device=device, threads=threads))

    def with_env(self, **env: Any) -> Pipeline:
        """Same pipeline, other non-observation env fields (e.g. the map)."""
        for key in env:
            if key in OBSERVATION_FIELDS:
                raise ConfigError(f"Pipeline.with_env: {key!r} defines the observation; build a new pipeline instead")
        return dataclasses.replace(self, env={**self.env, **env})


def make_pipeline_env(
    pipeline: Pipeline, seed: int | None, threads: int = 1, ignore_sigint: bool = False, **env_overrides: Any
) -> gym.Env[Any, Any]:
    """Module-level factory for vector-env workers (picklable with ``functools.partial``).

    ``ignore_sigint``: for worker processes only. Ctrl-C reaches the whole process group; a worker
    that died of it would take the rollout down with it, while the main process stops and closes
    its workers itself.
    """
    import signal

    import torch

    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    env = pipeline.make_env(threads=threads, **env_overrides)
    env.reset(seed=seed)
    return env
