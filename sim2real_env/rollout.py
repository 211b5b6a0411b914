"""One rollout loop: drive an env step by step with a policy, with hooks per step and per episode.

Every place that drives the simulator (``sim2real drive``, ``video``, ``harvest``, BC demonstration
and DAgger collection, the evaluation episodes, ``bench-env``, the flicker measure's expert drive)
runs :func:`rollout`; what each one records is its hooks. The loop is gym-free (it only calls
``env.reset`` and ``env.step``), so any layer may use it; the policy is the caller's callable, so
this module needs no agent code (the privileged expert is ``lambda obs: expert.act(env)``).

Stopping: after ``max_steps`` steps (counted across restarts), or when an episode ends and
``restart`` does not ask for another one. ``restart="on_termination"`` starts an unseeded new
episode after a failure (the env's RNG goes on from the first seeded reset, so the run is still
reproducible) and stops at the time limit; ``"always"`` also restarts after the time limit.

Example::

    expert = PurePursuitExpert()
    frames = []
    run = rollout(env, lambda obs: expert.act(env), seed=0, max_steps=100,
                  on_reset=lambda obs, info, episode: frames.append(obs) if episode == 0 else None,
                  on_step=lambda step: frames.append(step.next_obs))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sim2real_env.errors import ConfigError

Policy = Callable[[Any], Any]
Restart = Literal["never", "on_termination", "always"]
RESTARTS: tuple[str, ...] = ("never", "on_termination", "always")


@dataclass(frozen=True)
class Step:
    """One transition, as the ``on_step`` hook sees it."""

    #: Steps before this one in the rollout (0-based; counts across restarts).
    index: int
    #: Episodes started before this step's episode (0 for the first).
    episode: int
    #: The observation the action was chosen on, and the ``info`` that came with it.
    obs: Any
    obs_info: dict[str, Any]
    action: Any
    reward: float
    next_obs: Any
    terminated: bool
    truncated: bool
    #: The ``info`` returned by this step.
    info: dict[str, Any]
    #: Wall time of ``env.step`` alone (physics and render; the policy is not counted), seconds.
    step_s: float


@dataclass(frozen=True)
class EpisodeEnd:
    """The end of one episode, as the ``on_episode_end`` hook sees it."""

    episode: int
    #: Steps of this episode.
    steps: int
    terminated: bool
    truncated: bool
    #: The last step's ``info``.
    info: dict[str, Any]
    #: Sum of this episode's rewards.
    return_: float


@dataclass(frozen=True)
class RolloutResult:
    """What one :func:`rollout` did."""

    #: Steps taken (all episodes).
    steps: int
    #: Episodes that ended (terminated or truncated); an episode cut by ``max_steps`` is not among them.
    episodes_ended: int
    #: Total wall time of ``env.step`` (seconds).
    step_s: float
    #: The observation and info of the last reset or step.
    last_obs: Any
    last_info: dict[str, Any]


def rollout(
    env: Any,
    policy: Policy,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    max_steps: int | None = None,
    restart: Restart = "never",
    on_reset: Callable[[Any, dict[str, Any], int], None] | None = None,
    on_step: Callable[[Step], None] | None = None,
    on_episode_end: Callable[[EpisodeEnd], None] | None = None,
) -> RolloutResult:
    """Reset ``env`` with ``seed`` (and ``options``), then step it with ``policy(obs) -> action``.

    ``on_reset(obs, info, episode)`` runs after every reset (the first and each restart);
    ``on_step(step)`` after every step; ``on_episode_end(end)`` when an episode terminates or is
    truncated (before any restart). ``max_steps=None`` stops only when an episode ends, which
    then needs ``restart="never"``.
    """
    if restart not in RESTARTS:
        raise ConfigError(f"rollout: restart must be one of {RESTARTS}, got {restart!r}")
    if max_steps is None and restart != "never":
        raise ConfigError(f"rollout: restart={restart!r} never stops without max_steps")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
        raise ConfigError(f"rollout: max_steps must be an integer >= 0 or None, got {max_steps!r}")
    obs, info = env.reset(seed=seed, options=options)
    episode = 0
    if on_reset is not None:
        on_reset(obs, info, episode)
    steps = episode_steps = ended = 0
    episode_return = total_step_s = 0.0
    while max_steps is None or steps < max_steps:
        action = policy(obs)
        start = time.perf_counter()
        next_obs, reward, terminated, truncated, next_info = env.step(action)
        step_s = time.perf_counter() - start
        total_step_s += step_s
        episode_return += float(reward)
        if on_step is not None:
            on_step(
                Step(
                    steps, episode, obs, info, action, float(reward), next_obs, terminated, truncated, next_info, step_s
                )
            )
        steps += 1
        episode_steps += 1
        obs, info = next_obs, next_info
        if not (terminated or truncated):
            continue
        ended += 1
        if on_episode_end is not None:
            on_episode_end(EpisodeEnd(episode, episode_steps, terminated, truncated, info, episode_return))
        if restart == "never" or (truncated and not terminated and restart == "on_termination"):
            break
        obs, info = env.reset(options=options)
        episode += 1
        episode_steps, episode_return = 0, 0.0
        if on_reset is not None:
            on_reset(obs, info, episode)
    return RolloutResult(steps, ended, total_step_s, obs, info)
