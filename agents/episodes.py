"""Closed-loop episodes and their lane-following measures (AI-DO style), shared by training and evaluation.

Per episode: survival time, distance travelled along the lane, the part of it driven before the
robot first left its lane, mean |lateral deviation|, mean |heading error|, fraction of steps
out of the lane, infractions (collision, leaving the road) and return.

"Out of the lane" is ``|lane_lateral_m| > OUT_OF_LANE_M``: the robot's centre more than 10 cm
from the right lane's centre curve, where a Duckiebot wheel is on or over a lane line (road tile
0.585 m, so a lane is ~0.29 m wide and the robot ~0.13 m).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sim2real_env.rollout import EpisodeEnd, Step, rollout

OUT_OF_LANE_M = 0.10

#: Disjoint episode-seed ranges (x 1000 per config seed), so no evaluation starts where training did.
SEED_BASES = {
    "bc_demo": 0,
    "bc_dagger": 100_000,
    "bc_val": 200_000,
    "bc_eval": 300_000,
    "ppo_train": 400_000,
    "ppo_eval": 500_000,
    "evaluate": 1_000_000,
}


def episode_seeds(kind: str, config_seed: int, count: int, offset: int = 0) -> list[int]:
    """``count`` seeds of ``kind`` (a ``SEED_BASES`` key) for a run with ``config_seed``."""
    base = SEED_BASES[kind] + (config_seed % 100) * 1000 + offset
    return [base + i for i in range(count)]


#: Measures of one episode, in report order.
MEASURES: tuple[str, ...] = (
    "survival_s",
    "distance_m",
    "distance_in_lane_m",
    "mean_abs_lateral_m",
    "mean_abs_heading_rad",
    "out_of_lane_fraction",
    "collision",
    "off_road",
    "return",
)


@dataclass(frozen=True)
class EpisodeResult:
    """One episode's measures (see module docstring)."""

    seed: int
    map_name: str
    steps: int
    survival_s: float
    distance_m: float
    distance_in_lane_m: float
    mean_abs_lateral_m: float
    mean_abs_heading_rad: float
    out_of_lane_fraction: float
    collision: float
    off_road: float
    return_: float
    termination: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``return_`` is written as ``return``."""
        data = asdict(self)
        data["return"] = data.pop("return_")
        return data


class EpisodeTracker:
    """Accumulates one episode's measures from ``info`` dicts; feed it every step."""

    def __init__(self, seed: int, map_name: str, step_s: float) -> None:
        self.seed, self.map_name, self.step_s = seed, map_name, step_s
        self.steps = 0
        self.distance = 0.0
        self.distance_in_lane = 0.0
        self.left_lane = False
        self.lateral: list[float] = []
        self.heading: list[float] = []
        self.out_of_lane = 0
        self.total_reward = 0.0
        self.termination = ""

    def update(self, reward: float, info: dict[str, Any]) -> None:
        """Record one step."""
        self.steps += 1
        self.total_reward += float(reward)
        progress = float(info.get("progress_m", 0.0))
        self.distance += progress
        lateral = float(info.get("lane_lateral_m", math.nan))
        heading = float(info.get("lane_heading_rad", math.nan))
        out = not math.isfinite(lateral) or abs(lateral) > OUT_OF_LANE_M
        if out:
            self.out_of_lane += 1
            self.left_lane = True
        if not self.left_lane:
            self.distance_in_lane += progress
        if math.isfinite(lateral):
            self.lateral.append(abs(lateral))
        if math.isfinite(heading):
            self.heading.append(abs(heading))
        if info.get("termination"):
            self.termination = str(info["termination"])
            self.left_lane = True

    def result(self, termination: str | None = None) -> EpisodeResult:
        """The finished episode (``termination``: e.g. ``"time_limit"`` when truncated)."""
        steps = max(self.steps, 1)
        term = self.termination or termination or ""
        return EpisodeResult(
            seed=self.seed,
            map_name=self.map_name,
            steps=self.steps,
            survival_s=self.steps * self.step_s,
            distance_m=self.distance,
            distance_in_lane_m=self.distance_in_lane,
            mean_abs_lateral_m=float(np.mean(self.lateral)) if self.lateral else math.nan,
            mean_abs_heading_rad=float(np.mean(self.heading)) if self.heading else math.nan,
            out_of_lane_fraction=self.out_of_lane / steps,
            collision=float(term == "collision"),
            off_road=float(term == "off_road"),
            return_=self.total_reward,
            termination=term,
        )


def step_seconds(env: Any) -> float:
    """Simulated seconds per env step (frame skip / frame rate) of the wrapped Duckietown env."""
    config = env.unwrapped.config
    return float(config.frame_skip) / float(config.frame_rate)


def run_episode(
    env: Any,
    policy: Callable[[np.ndarray], np.ndarray],
    seed: int,
    *,
    options: dict[str, Any] | None = None,
    on_step: Callable[[np.ndarray, dict[str, Any]], None] | None = None,
) -> EpisodeResult:
    """Drive one seeded episode with ``policy(obs) -> action`` and measure it."""
    tracker = EpisodeTracker(seed, env.unwrapped.config.map_name, step_seconds(env))
    ending: list[str | None] = [None]

    def record(step: Step) -> None:
        tracker.update(step.reward, step.info)
        if on_step is not None:
            on_step(step.next_obs, step.info)

    def end(episode: EpisodeEnd) -> None:
        ending[0] = "time_limit" if episode.truncated and not episode.terminated else None

    rollout(env, policy, seed=seed, options=options, on_step=record, on_episode_end=end)
    return tracker.result(ending[0])


def summarize(results: list[EpisodeResult]) -> dict[str, float]:
    """Means of every measure over episodes (NaN-aware)."""
    if not results:
        raise ValueError("summarize: no episodes")
    rows = [r.to_dict() for r in results]
    return {m: float(np.nanmean([row[m] for row in rows])) for m in MEASURES}
