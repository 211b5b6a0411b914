"""Agent training configs (``configs/agents/*.yaml``), validated at load.

Keys (unknown keys anywhere are an error naming the key)::

    algo: bc                     # bc | ppo; must match --algo
    out: runs/agents/{algo}_{pipeline}
    env: {map_name: small_loop, action_space: speed_steer}    # EnvConfig fields
    preprocess: {crop_top: 40, resize: [40, 80], frame_stack: 3}
    checkpoints: {sim2real: DIR, canonicalized: DIR}          # generator per generator pipeline
    canonicalize_from: randomized                            # or distorted
    bc: {...}                    # agents.bc.BCConfig, with algo: bc
    ppo: {...}                   # agents.ppo.PPOConfig, with algo: ppo
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.algorithms import ALGORITHMS
from agents.pipeline import GENERATOR_DIRECTION, PIPELINES, Pipeline
from generators.configs import load_yaml_config
from sim2real_env.errors import ConfigError
from sim2real_env.names import resolve_name, unknown_name_message


@dataclass(frozen=True)
class AgentRunConfig:
    """One agent training run: the algorithm's settings and what its pipelines are made of."""

    algo: str
    out: str = "runs/agents/{algo}_{pipeline}"
    env: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)
    checkpoints: dict[str, str | None] = field(default_factory=dict)
    canonicalize_from: str = "randomized"
    bc: dict[str, Any] | None = None
    ppo: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        algorithm = ALGORITHMS.lookup(self.algo)
        for name in ("env", "preprocess", "checkpoints"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"agent config: '{name}' must be a mapping, got {getattr(self, name)!r}")
        try:
            self.out.format(algo=self.algo, pipeline="raw")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"agent config: out {self.out!r} may use only {{algo}} and {{pipeline}} ({exc})"
            ) from None
        for key in self.checkpoints:
            if key not in GENERATOR_DIRECTION:
                raise ConfigError(unknown_name_message("checkpoints key", str(key), tuple(GENERATOR_DIRECTION)))
        for other in ALGORITHMS:
            if other != self.algo and getattr(self, other) is not None:
                raise ConfigError(f"agent config with algo {self.algo!r} has a '{other}' section; remove it")
        algorithm.config(getattr(self, self.algo))  # validates the section now, not after the data is collected

    def algo_config(self) -> Any:
        """The validated algorithm config (``BCConfig``, ``PPOConfig``) from the section named by ``algo``."""
        return ALGORITHMS.lookup(self.algo).config(getattr(self, self.algo))

    def pipeline(self, name: str, checkpoint: str | None = None) -> Pipeline:
        """Build the named pipeline; ``checkpoint`` overrides ``checkpoints.<name>``."""
        resolve_name("pipeline", name, PIPELINES)
        return Pipeline.build(
            name,
            env=self.env,
            preprocess=self.preprocess,
            checkpoint=checkpoint or self.checkpoints.get(name),
            canonicalize_from=self.canonicalize_from,
        )

    def out_dir(self, pipeline: str) -> Path:
        """``out`` with ``{algo}`` and ``{pipeline}`` filled in."""
        return Path(self.out.format(algo=self.algo, pipeline=pipeline))


def load_agent_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> AgentRunConfig:
    """Read ``configs/agents/<name>.yaml`` and apply ``key.sub=value`` overrides."""
    path = Path(path)
    raw = load_yaml_config(path, "agent config", [f.name for f in dataclasses.fields(AgentRunConfig)], overrides)
    if "algo" not in raw:
        raise ConfigError(f"agent config {path} needs 'algo' ({' or '.join(ALGORITHMS)})")
    for key in ("env", "preprocess", "checkpoints"):
        if raw.get(key) is None:
            raw.pop(key, None)
    return AgentRunConfig(**raw)
