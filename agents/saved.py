"""Saved agents: a directory with ``agent.json`` (algorithm, pipeline, config, provenance) + weights.

A training run keeps its agents in the layout of :mod:`sim2real_env.checkpoints`
(``<out>/checkpoints/<step>/``, ``last``, ``best``); the loaders here also take a run folder or
its ``last`` pointer, and the folders of the older layout (``<out>/agent``, ``<out>/best_agent``).

A saved agent carries the pipeline it was trained on (including the generator checkpoint id).
:func:`load_agent` refuses to run it under another pipeline unless the caller passes
``allow_pipeline_mismatch=True``, because that is a transfer experiment, not an accident.

Example::

    agent = load_agent("runs/agents/bc_raw")  # its checkpoints/last; or .../checkpoints/best
    env = agent.pipeline.make_env(map_name="small_loop")
    obs, _ = env.reset(seed=0)
    action = agent.act(obs)
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agents.algorithms import ALGORITHMS
from agents.pipeline import Pipeline, PipelineMismatchError
from sim2real_env import __version__ as package_version
from sim2real_env.checkpoints import LAST, resolve_run_path
from sim2real_env.errors import ConfigError, Sim2RealError
from sim2real_env.names import unknown_name_message
from sim2real_env.provenance import atomic_directory, git_sha, versions

AGENT_FILE = "agent.json"
FORMAT_VERSION = 1
ALGOS: tuple[str, ...] = tuple(ALGORITHMS)  # ("ppo", "bc")


class AgentError(Sim2RealError, ValueError):
    """A saved agent is missing, corrupt or of an unknown kind."""


@runtime_checkable
class Agent(Protocol):
    """What evaluation needs from an agent."""

    algo: str
    record: dict[str, Any]

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action for one observation ``(H, W, C)`` or a batch ``(N, H, W, C)``."""
        ...


def save_agent(
    path: str | Path,
    *,
    algo: str,
    pipeline: Pipeline,
    observation_shape: tuple[int, ...],
    config: dict[str, Any],
    summary: dict[str, Any],
    write_weights: Callable[[Path], None],
    model: dict[str, Any] | None = None,
    source_git_sha: str | None = None,
) -> Path:
    """Write an agent directory atomically; ``write_weights(folder)`` writes the weight files.

    ``source_git_sha``: the commit the training started from (the tree may have moved on since).
    """
    if algo not in ALGOS:
        raise ConfigError(unknown_name_message("agent algorithm", algo, ALGOS))
    with atomic_directory(path) as tmp:
        write_agent(
            tmp,
            algo=algo,
            pipeline=pipeline,
            observation_shape=observation_shape,
            config=config,
            summary=summary,
            write_weights=write_weights,
            model=model,
            source_git_sha=source_git_sha,
        )
    return Path(path)


def write_agent(
    folder: Path,
    *,
    algo: str,
    pipeline: Pipeline,
    observation_shape: tuple[int, ...],
    config: dict[str, Any],
    summary: dict[str, Any],
    write_weights: Callable[[Path], None],
    model: dict[str, Any] | None = None,
    source_git_sha: str | None = None,
) -> None:
    """The files of an agent (``agent.json`` + weights) into an existing (temporary) ``folder``.

    For a checkpoint step folder that holds more than the agent (:mod:`sim2real_env.checkpoints`);
    :func:`save_agent` is this in a folder of its own, written atomically.
    """
    if algo not in ALGOS:
        raise ConfigError(unknown_name_message("agent algorithm", algo, ALGOS))
    meta = {
        "kind": "agent",
        "format_version": FORMAT_VERSION,
        "algo": algo,
        "pipeline": pipeline.record(),
        "observation_shape": list(observation_shape),
        "model": model or {},
        "config": config,
        "summary": summary,
        "package_version": package_version,
        "git_sha": source_git_sha or git_sha(),
        "versions": versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    write_weights(folder)
    (folder / AGENT_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")


#: Where a training run of the layout before ``checkpoints/`` kept its final and best agents.
LEGACY_RUN_LAYOUT = {"last": "agent", "best": "best_agent"}


def resolve_agent_path(path: str | Path, default: str = LAST) -> Path:
    """The agent folder ``path`` means.

    Itself when it holds ``agent.json``; for a training run's folder, its ``checkpoints/`` or its
    ``checkpoints/last`` pointer, the step folder ``last`` names
    (``default="best"``: ``checkpoints/best``); for a run of the older layout its ``agent/``
    (``best_agent/``). See :mod:`sim2real_env.checkpoints`.
    """
    return resolve_run_path(path, marker=AGENT_FILE, default=default, legacy=LEGACY_RUN_LAYOUT)


def read_agent_record(path: str | Path) -> dict[str, Any]:
    """``agent.json`` of a saved agent (or of the agent a run folder or pointer means), checked."""
    path = resolve_agent_path(path)
    if not path.is_dir():
        raise AgentError(f"agent {path} does not exist (expected a directory with {AGENT_FILE})")
    meta_path = path / AGENT_FILE
    if not meta_path.exists():
        raise AgentError(f"agent {path} has no {AGENT_FILE}; is it an agent directory?")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AgentError(f"agent {meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise AgentError(f"{meta_path} must hold a JSON object describing an agent, got {type(meta).__name__}")
    if meta.get("kind") != "agent":
        raise AgentError(f"{meta_path} does not describe an agent (kind={meta.get('kind')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise AgentError(f"agent {path} has format_version {meta.get('format_version')!r}; expected {FORMAT_VERSION}")
    if meta.get("algo") not in ALGOS:
        raise AgentError(unknown_name_message(f"agent algorithm in {meta_path}", str(meta.get("algo")), ALGOS))
    return meta


def check_pipeline(record: dict[str, Any], pipeline: Pipeline | None, allow_mismatch: bool, where: str) -> list[str]:
    """Differences between the agent's recorded pipeline and ``pipeline``; raise unless allowed."""
    if pipeline is None:
        return []
    diffs = pipeline.differences(record["pipeline"])
    if diffs and not allow_mismatch:
        raise PipelineMismatchError(
            f"agent {where} was trained on pipeline {record['pipeline']['name']!r} and is asked to run under "
            f"{pipeline.name!r}; differences: {'; '.join(diffs)}. Pass allow_pipeline_mismatch=True "
            "(CLI: --allow-pipeline-mismatch) to run this transfer experiment on purpose."
        )
    return diffs


def check_observation(obs: np.ndarray, shape: tuple[int, ...], owner: str) -> tuple[np.ndarray, bool]:
    """Batch ``obs`` and check its shape/dtype against the agent's; returns (batch, was_single)."""
    obs = np.asarray(obs)
    single = obs.ndim == len(shape)
    batch = obs[None] if single else obs
    if batch.shape[1:] != shape or obs.dtype != np.uint8:
        raise ValueError(
            f"{owner}.act expects uint8 observations of shape {shape} (or a batch of them), "
            f"got {obs.dtype} {obs.shape}; is it running under its own pipeline?"
        )
    return batch, single


def load_agent(
    path: str | Path,
    *,
    pipeline: Pipeline | None = None,
    allow_pipeline_mismatch: bool = False,
    device: str = "cpu",
) -> Agent:
    """Load a saved agent; with ``pipeline`` given, refuse a mismatch unless explicitly allowed.

    ``path``: an agent folder, or a training run's folder or ``checkpoints/last`` (its last agent;
    :func:`resolve_agent_path`).
    """
    path = resolve_agent_path(path)
    meta = read_agent_record(path)
    diffs = check_pipeline(meta, pipeline, allow_pipeline_mismatch, str(path))
    agent = ALGORITHMS.lookup(meta["algo"]).load(Path(path), meta, device=device)
    agent.record["pipeline_differences"] = diffs
    return agent


def agent_pipeline(agent: Agent, checkpoint: str | Path | None = None) -> Pipeline:
    """The pipeline an agent was trained on, rebuilt (its generator checkpoint must still exist)."""
    return Pipeline.from_record(agent.record["pipeline"], checkpoint=checkpoint)
