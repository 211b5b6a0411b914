"""The one env builder: simulator -> image ops -> generator -> preprocessing, through ``gymnasium.make``.

:func:`build_env` builds every env of the project: :func:`make_env` (from one YAML file in
``configs/envs/`` or an :class:`EnvBuild`), the agents' pipelines (``agents.pipeline``), the
evaluation domains (``sim2real_env.domains``), ``drive``, ``harvest`` and the benchmarks. The base
env comes from ``gymnasium.make``, so ``env.spec`` is set and lists every wrapper with its
arguments (a generator wrapper's include its checkpoint id); the simulator comes from the
process's pool (``sim2real_env.env.SIMULATORS``).

Example::

    env = make_env("configs/envs/sim2real_cyclegan.yaml")
    env = make_env(EnvBuild(env={"map_name": "small_loop"}, translate={"checkpoint": "runs/.../checkpoint"}))
    env = build_env(EnvConfig(map_name="loop_empty"), preprocess=Preprocess())

YAML keys (unknown keys are an error naming the key)::

    env: {map_name: small_loop, camera_width: 160, ...}        # EnvConfig fields
    translate: {checkpoint: DIR, device: cpu, backend: onnxruntime, keep_original: false}  # optional, sim->real
    canonicalize: {checkpoint: DIR, device: cpu}                    # optional, real->canonical
    preprocess: {crop_top: 40, resize: [60, 80], frame_stack: 1}    # optional, for agents

A ``preprocess`` section's missing keys take :class:`~sim2real_env.preprocess.Preprocess`'s
defaults (the agents'); without the section nothing is cropped, resized or stacked.

Order: simulator -> domain image ops -> random image ops -> translate -> canonicalize -> crop ->
resize -> frame stack.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from sim2real_env.domains import DomainImage, RandomImageOps
from sim2real_env.env import ENV_ID, EnvConfig
from sim2real_env.errors import ConfigError
from sim2real_env.names import unknown_name_message
from sim2real_env.preprocess import Preprocess
from sim2real_env.wrappers import CanonicalizeObservation, Sim2RealObservation
from sim2real_env.yaml_config import load_yaml_config


@dataclass(frozen=True)
class GeneratorStage:
    """A generator checkpoint between the camera and the agent, and how it runs."""

    checkpoint: str
    device: str = "cpu"
    #: ``None``: ONNX Runtime on the CPU, torch on CUDA (``sim2real_env.wrappers.default_backend``).
    backend: str | None = None
    keep_original: bool = False
    #: ``(height, width)`` of the translated frame; ``None``: the camera's.
    output_size: tuple[int, int] | None = None
    #: ONNX Runtime intra-op threads.
    threads: int = 2

    @classmethod
    def from_dict(cls, section: str, values: Any) -> GeneratorStage:
        """From a YAML section (``translate`` or ``canonicalize``); unknown keys are an error naming the key."""
        if not isinstance(values, dict):
            raise ConfigError(f"make_env: '{section}' must be a mapping, got {type(values).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in known:
                raise ConfigError(unknown_name_message(f"make_env '{section}' key", str(key), known))
        if "checkpoint" not in values:
            raise ConfigError(f"make_env: '{section}' needs 'checkpoint' (a generator checkpoint directory)")
        values = dict(values)
        values["checkpoint"] = str(values["checkpoint"])
        if values.get("output_size") is not None:
            values["output_size"] = tuple(values["output_size"])
        values["keep_original"] = bool(values.get("keep_original", False))
        return cls(**values)


def _wrap_generator(env: gym.Env[Any, Any], stage: GeneratorStage, direction: str) -> gym.Env[Any, Any]:
    from generators.checkpoint import load_generator

    wrapper = Sim2RealObservation if direction == "sim->real" else CanonicalizeObservation
    generator = load_generator(stage.checkpoint, direction=direction, device="cpu")
    return wrapper(
        env,
        generator,
        device=stage.device,
        backend=stage.backend,
        keep_original=stage.keep_original,
        output_size=stage.output_size,
        threads=stage.threads,
    )


def build_env(
    config: EnvConfig,
    *,
    image_ops: tuple[dict[str, Any], ...] = (),
    augment: bool = False,
    translate: GeneratorStage | None = None,
    canonicalize: GeneratorStage | None = None,
    preprocess: Preprocess | None = None,
    reuse_simulator: bool = True,
) -> gym.Env[Any, Any]:
    """The simulator env of ``config`` with the wrappers asked for, in the module docstring's order.

    ``image_ops``: an evaluation domain's fixed image chain (:class:`~sim2real_env.domains.DomainImage`);
    ``augment``: a fresh random chain every episode (:class:`~sim2real_env.domains.RandomImageOps`);
    ``translate``/``canonicalize``: a ``sim->real`` / ``real->canonical`` generator;
    ``preprocess``: the agent's crop, resize and frame stack (``None``: none).
    """
    if not isinstance(config, EnvConfig):
        raise TypeError(f"build_env: config must be an EnvConfig, got {type(config).__name__}")
    env: gym.Env[Any, Any] = gym.make(ENV_ID, config=config, reuse_simulator=reuse_simulator)
    if image_ops:
        env = DomainImage(env, tuple(image_ops))
    if augment:
        env = RandomImageOps(env)
    if translate is not None:
        env = _wrap_generator(env, translate, "sim->real")
    if canonicalize is not None:
        env = _wrap_generator(env, canonicalize, "real->canonical")
    if preprocess is not None:
        env = preprocess.wrap(env)
    return env


@dataclass(frozen=True)
class EnvBuild:
    """Everything :func:`make_env` builds; validated on construction."""

    env: dict[str, Any] = field(default_factory=dict)
    translate: dict[str, Any] | None = None
    canonicalize: dict[str, Any] | None = None
    preprocess: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        EnvConfig.from_dict(self.env)
        for name in ("translate", "canonicalize"):
            if getattr(self, name) is not None:
                GeneratorStage.from_dict(name, getattr(self, name))
        if self.preprocess is not None:
            if not isinstance(self.preprocess, dict):
                raise ConfigError(f"make_env: 'preprocess' must be a mapping, got {type(self.preprocess).__name__}")
            known = [f.name for f in dataclasses.fields(Preprocess)]
            for key in self.preprocess:
                if key not in known:
                    raise ConfigError(unknown_name_message("make_env 'preprocess' key", str(key), known))
            Preprocess.from_dict(self.preprocess)

    @classmethod
    def from_yaml(cls, path: str | Path) -> EnvBuild:
        """Read and validate a ``configs/envs/*.yaml`` file."""
        return cls(**load_yaml_config(path, "env config", [f.name for f in dataclasses.fields(cls)]))


def make_env(config: str | Path | EnvBuild, **env_overrides: Any) -> gym.Env[Any, Any]:
    """Build the env and its wrappers; ``env_overrides`` replace fields of the ``env`` section."""
    build = config if isinstance(config, EnvBuild) else EnvBuild.from_yaml(config)
    return build_env(
        EnvConfig.from_dict({**build.env, **env_overrides}),
        translate=GeneratorStage.from_dict("translate", build.translate) if build.translate is not None else None,
        canonicalize=(
            GeneratorStage.from_dict("canonicalize", build.canonicalize) if build.canonicalize is not None else None
        ),
        preprocess=Preprocess.from_dict(build.preprocess) if build.preprocess is not None else None,
    )
