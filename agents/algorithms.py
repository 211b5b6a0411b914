"""Agent algorithms by name: each entry builds its config, trains, loads a saved agent and reports.

The entries live in this module and import their implementation (torch, stable-baselines3) inside
their methods, so validating an agent config or listing the choices loads neither. A new
algorithm is one more ``@register_algorithm`` class here; the CLI, :mod:`agents.config` and
:func:`agents.saved.load_agent` dispatch through :data:`ALGORITHMS` instead of comparing names.

Example::

    algorithm = ALGORITHMS.lookup("bc")        # ConfigError with suggestions for "bcc"
    config = algorithm.config(raw["bc"])
    summary = algorithm.train(pipeline, config, Path("runs/agents/bc_raw"), resume=False, progress=True)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sim2real_env.checkpoints import last_folder
from sim2real_env.errors import ConfigError
from sim2real_env.names import Registry

if TYPE_CHECKING:
    from agents.pipeline import Pipeline
    from agents.saved import Agent


class Algorithm(Protocol):
    """What a registered agent algorithm provides (an entry is a class of static methods)."""

    def config(self, section: dict[str, Any] | None) -> Any:
        """The validated algorithm config (``BCConfig``, ``PPOConfig``) from the run config's section."""
        ...

    def train(self, pipeline: Pipeline, config: Any, out: Path, *, resume: bool, progress: bool) -> dict[str, Any]:
        """Train on ``pipeline`` into ``out``; returns the run summary."""
        ...

    def load(self, path: Path, meta: dict[str, Any], device: str) -> Agent:
        """The saved agent at ``path`` whose ``agent.json`` (``meta``) was already read and checked."""
        ...

    def report(self, pipeline: str, summary: dict[str, Any], out: Path) -> list[str]:
        """The lines ``sim2real train-agent`` prints after a run."""
        ...


#: Registered algorithms, in the order ``sim2real train-agent --algo`` lists them.
ALGORITHMS: Registry[Algorithm] = Registry("agent algorithm")

A = TypeVar("A", bound=Algorithm)


def register_algorithm(name: str) -> Callable[[A], A]:
    """Class decorator: register an :class:`Algorithm` as ``name`` (a taken name is refused)."""
    return ALGORITHMS.register(name)  # type: ignore[return-value]


@register_algorithm("ppo")
class PPO:
    """Proximal policy optimisation with stable-baselines3 (:mod:`agents.ppo`); resumable."""

    @staticmethod
    def config(section: dict[str, Any] | None) -> Any:
        """:class:`agents.ppo.PPOConfig`."""
        from agents.ppo import PPOConfig

        return PPOConfig.from_dict(section)

    @staticmethod
    def train(pipeline: Pipeline, config: Any, out: Path, *, resume: bool, progress: bool) -> dict[str, Any]:
        """:func:`agents.ppo.train_ppo`."""
        from agents.ppo import train_ppo

        return train_ppo(pipeline, config, out, resume=resume, progress=progress)

    @staticmethod
    def load(path: Path, meta: dict[str, Any], device: str) -> Agent:
        """:meth:`agents.ppo.PPOAgent.load` (nothing is unpickled)."""
        from agents.ppo import PPOAgent

        return PPOAgent.load(path, meta, device=device)

    @staticmethod
    def report(pipeline: str, summary: dict[str, Any], out: Path) -> list[str]:
        """Final evaluation, target, best policy, outputs, and how to continue a stopped run."""
        import json

        best = summary["best"]
        lines = [
            f"train-agent ppo/{pipeline}: {json.dumps(summary['final_eval'])}",
            f"train-agent: target {summary['target_distance_m']} m reached at {summary['target_reached']}",
            f"train-agent: best evaluation {best['distance_in_lane_m']:.2f} m in lane at {best['env_steps']} "
            f"env steps; that policy is in {best['agent']}",
            f"train-agent: agent {last_folder(out)}, curve {out / 'learning_curve.png'}, TensorBoard {out / 'tb'}",
        ]
        if summary["interrupted"]:
            lines.append(f"train-agent: stopped by signal at {summary['env_steps']} env steps; continue with --resume")
        return lines


@register_algorithm("bc")
class BC:
    """Behaviour cloning of the expert with DAgger rounds (:mod:`agents.bc`); short, never resumed."""

    @staticmethod
    def config(section: dict[str, Any] | None) -> Any:
        """:class:`agents.bc.BCConfig`."""
        from agents.bc import BCConfig

        return BCConfig.from_dict(section)

    @staticmethod
    def train(pipeline: Pipeline, config: Any, out: Path, *, resume: bool, progress: bool) -> dict[str, Any]:
        """:func:`agents.bc.train_bc`; ``resume`` is refused."""
        if resume:
            raise ConfigError("--resume is for PPO; a BC run is short and starts afresh")
        from agents.bc import train_bc

        return train_bc(pipeline, config, out, progress=progress)

    @staticmethod
    def load(path: Path, meta: dict[str, Any], device: str) -> Agent:
        """:meth:`agents.bc.BCAgent.load`."""
        from agents.bc import BCAgent

        return BCAgent.load(path, meta, device=device)

    @staticmethod
    def report(pipeline: str, summary: dict[str, Any], out: Path) -> list[str]:
        """Samples, held-out error, closed-loop check, outputs."""
        return [
            f"train-agent bc/{pipeline}: {summary['samples']} samples, held-out action MAE "
            f"{summary['final_val_action_mae']:.3f}, closed loop {summary['closed_loop']}",
            f"train-agent: agent {last_folder(out)}, curve {out / 'bc_curve.png'}, TensorBoard {out / 'tb'}",
        ]
