"""The one rollout loop (``sim2real_env.rollout``) on a scripted fake env: hooks, stopping, restarts."""

from __future__ import annotations

from typing import Any

import pytest

from sim2real_env.errors import ConfigError
from sim2real_env.rollout import EpisodeEnd, Step, rollout


class ScriptedEnv:
    """Observations count steps; episode ``k`` ends at step ``ends[k]`` ("t": terminated, "T": truncated)."""

    def __init__(self, ends: list[tuple[int, str]]) -> None:
        self.ends = ends
        self.resets: list[tuple[int | None, dict[str, Any] | None]] = []
        self.episode = -1
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        self.resets.append((seed, options))
        self.episode += 1
        self.t = 0
        return 100 * self.episode, {"t": 0}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.t += 1
        length, kind = self.ends[min(self.episode, len(self.ends) - 1)]
        done = self.t >= length
        return 100 * self.episode + self.t, float(action), done and kind == "t", done and kind == "T", {"t": self.t}


def test_hooks_see_every_step_with_the_observation_the_action_was_chosen_on() -> None:
    env = ScriptedEnv([(3, "T")])
    steps: list[Step] = []
    resets: list[tuple[Any, int]] = []
    ends: list[EpisodeEnd] = []
    run = rollout(
        env,
        lambda obs: 1 + obs,
        seed=5,
        options={"start_tile": (1, 1)},
        on_reset=lambda obs, info, episode: resets.append((obs, episode)),
        on_step=steps.append,
        on_episode_end=ends.append,
    )
    assert env.resets == [(5, {"start_tile": (1, 1)})]
    assert resets == [(0, 0)]
    assert [(s.index, s.obs, s.action, s.next_obs, s.reward) for s in steps] == [
        (0, 0, 1, 1, 1.0),
        (1, 1, 2, 2, 2.0),
        (2, 2, 3, 3, 3.0),
    ]
    assert steps[1].obs_info == {"t": 1} and steps[1].info == {"t": 2}
    assert [s.truncated for s in steps] == [False, False, True] and not any(s.terminated for s in steps)
    assert all(s.step_s >= 0 for s in steps)
    assert ends == [EpisodeEnd(episode=0, steps=3, terminated=False, truncated=True, info={"t": 3}, return_=6.0)]
    assert (run.steps, run.episodes_ended, run.last_obs) == (3, 1, 3)


def test_max_steps_cuts_an_episode_without_ending_it() -> None:
    env = ScriptedEnv([(10, "t")])
    ends: list[EpisodeEnd] = []
    run = rollout(env, lambda obs: 0, seed=0, max_steps=4, on_episode_end=ends.append)
    assert (run.steps, run.episodes_ended, ends) == (4, 0, [])
    assert rollout(ScriptedEnv([(10, "t")]), lambda obs: 0, max_steps=0).steps == 0


@pytest.mark.parametrize(
    ("restart", "ends", "steps", "episodes"),
    [
        ("never", [(2, "t"), (5, "T")], 2, 1),  # stops at the first end
        ("on_termination", [(2, "t"), (3, "t"), (2, "T")], 7, 3),  # restarts after failures, stops at the limit
        ("on_termination", [(2, "t"), (50, "T")], 10, 1),  # ... or at max_steps
        ("always", [(2, "t"), (3, "T"), (4, "T")], 10, 3),  # restarts after both, until max_steps
    ],
)
def test_restart_modes(restart: Any, ends: list[tuple[int, str]], steps: int, episodes: int) -> None:
    env = ScriptedEnv(ends)
    episodes_seen: list[int] = []
    run = rollout(
        env,
        lambda obs: 0,
        seed=3,
        max_steps=10,
        restart=restart,
        on_reset=lambda obs, info, episode: episodes_seen.append(episode),
    )
    assert (run.steps, run.episodes_ended) == (steps, episodes)
    # Only the first reset is seeded: restarts go on from the env's seeded RNG.
    assert [seed for seed, _ in env.resets] == [3] + [None] * (len(env.resets) - 1)
    assert episodes_seen == list(range(len(env.resets)))


def test_invalid_input() -> None:
    env = ScriptedEnv([(2, "t")])
    with pytest.raises(ConfigError, match="restart must be one of"):
        rollout(env, lambda obs: 0, restart="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="never stops without max_steps"):
        rollout(env, lambda obs: 0, restart="always")
    with pytest.raises(ConfigError, match="max_steps must be an integer >= 0"):
        rollout(env, lambda obs: 0, max_steps=-1)
    assert env.resets == []  # refused before the env was touched
