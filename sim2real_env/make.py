"""``make_env``: build env + wrappers from one YAML file in ``configs/envs/`` or a dataclass.

Example::

    env = make_env("configs/envs/sim2real_cyclegan.yaml")
    env = make_env(EnvBuild(env={"map_name": "small_loop"}, translate={"checkpoint": "runs/.../checkpoint"}))

YAML keys (unknown keys are an error naming the key)::

    env: {map_name: small_loop, camera_width: 160, ...}        # EnvConfig fields
    translate: {checkpoint: DIR, device: cpu, keep_original: false}   # optional, sim->real
    canonicalize: {checkpoint: DIR, device: cpu}                    # optional, real->canonical
    preprocess: {crop_top: 40, resize: [60, 80], frame_stack: 1}    # for agents

Order: simulator -> translate -> canonicalize -> crop -> resize -> frame stack.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from sim2real_env.env import ENV_ID, EnvConfig
from sim2real_env.errors import ConfigError
from sim2real_env.names import unknown_name_message
from sim2real_env.preprocess import ChannelFrameStack, CropObservation, ResizeObservation
from sim2real_env.wrappers import CanonicalizeObservation, Sim2RealObservation
from sim2real_env.yaml_config import load_yaml_config

_GENERATOR_KEYS = ("checkpoint", "device", "backend", "keep_original", "output_size")
_PREPROCESS_KEYS = ("crop_top", "resize", "frame_stack")


def _check_keys(section: str, values: dict[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"make_env: '{section}' must be a mapping, got {type(values).__name__}")
    for key in values:
        if key not in allowed:
            raise ConfigError(unknown_name_message(f"make_env '{section}' key", str(key), allowed))
    return dict(values)


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
            section = _check_keys(name, getattr(self, name), _GENERATOR_KEYS)
            if getattr(self, name) is not None and "checkpoint" not in section:
                raise ConfigError(f"make_env: '{name}' needs 'checkpoint' (a generator checkpoint directory)")
        _check_keys("preprocess", self.preprocess, _PREPROCESS_KEYS)

    @classmethod
    def from_yaml(cls, path: str | Path) -> EnvBuild:
        """Read and validate a ``configs/envs/*.yaml`` file."""
        return cls(**load_yaml_config(path, "env config", [f.name for f in dataclasses.fields(cls)]))


def _wrap_generator(
    env: gym.Env[Any, Any], wrapper: type, section: dict[str, Any], direction: str
) -> gym.Env[Any, Any]:
    from generators.checkpoint import load_generator

    device = section.get("device", "cpu")
    generator = load_generator(section["checkpoint"], direction=direction, device="cpu")
    size = section.get("output_size")
    return wrapper(
        env,
        generator,
        device=device,
        keep_original=bool(section.get("keep_original", False)),
        output_size=tuple(size) if size else None,
    )


def make_env(config: str | Path | EnvBuild, **env_overrides: Any) -> gym.Env[Any, Any]:
    """Build the env and its wrappers; ``env_overrides`` replace fields of the ``env`` section."""
    build = config if isinstance(config, EnvBuild) else EnvBuild.from_yaml(config)
    env: gym.Env[Any, Any] = gym.make(ENV_ID, **{**build.env, **env_overrides})
    if build.translate is not None:
        env = _wrap_generator(env, Sim2RealObservation, build.translate, "sim->real")
    if build.canonicalize is not None:
        env = _wrap_generator(env, CanonicalizeObservation, build.canonicalize, "real->canonical")
    pre = build.preprocess or {}
    if pre.get("crop_top"):
        env = CropObservation(env, int(pre["crop_top"]))
    if pre.get("resize"):
        env = ResizeObservation(env, tuple(int(v) for v in pre["resize"]))  # type: ignore[arg-type]
    if int(pre.get("frame_stack", 1)) > 1:
        env = ChannelFrameStack(env, int(pre["frame_stack"]))
    return env
