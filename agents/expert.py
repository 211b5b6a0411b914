"""A pure-pursuit lane-following expert that reads the simulator's lane curves (privileged state).

Why pure pursuit: it steers toward a point a fixed distance ahead on the right lane's centre
curve, which is stable at the Duckiebot's speeds when the look-ahead is long enough. The
Duckiebot's dynamics have a 0.15 s actuation delay, so the pose is first predicted that far ahead
along the current heading; without it the controller oscillates.

Example::

    env = gymnasium.make("sim2real/Duckietown-v0", map_name="small_loop")
    expert = PurePursuitExpert()
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(expert.act(env))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim2real_env.errors import ConfigError

#: Steady-state forward speed (m/s) per unit of mean wheel command (measured: [0.5, 0.5] -> 0.30 m/s).
SPEED_PER_COMMAND = 0.6
#: Steady-state yaw rate (rad/s) per unit of ``right - left`` command (measured: 0.2 -> 0.746 rad/s).
YAW_RATE_PER_COMMAND_DIFF = 3.73


@dataclass(frozen=True)
class ExpertConfig:
    """Tuning of :class:`PurePursuitExpert` (defaults drive full laps of the loop maps)."""

    lookahead_m: float = 0.3
    #: Forward wheel command in ``[0, 1]`` on straights; reduced in curves.
    speed: float = 0.5
    #: Minimum fraction of ``speed`` kept in the sharpest curve.
    curve_slowdown: float = 0.6
    #: Multiplies the kinematic steering command (1 = exact pure pursuit).
    steer_gain: float = 1.0
    #: Actuation delay compensated by predicting the pose ahead (s).
    delay_s: float = 0.15
    #: Standard deviation of Gaussian noise added to each wheel command, in PWM units (0 disables).
    wheel_noise_std: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "lookahead_m": 0.05 <= self.lookahead_m <= 2.0,
            "speed": 0.0 < self.speed <= 1.0,
            "curve_slowdown": 0.0 < self.curve_slowdown <= 1.0,
            "steer_gain": 0.0 < self.steer_gain <= 5.0,
            "delay_s": 0.0 <= self.delay_s <= 1.0,
            "wheel_noise_std": 0.0 <= self.wheel_noise_std <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"ExpertConfig.{name} out of range: {getattr(self, name)!r}")


class PurePursuitExpert:
    """Lane-following controller on the simulator's ``closest_curve_point``.

    ``act(env)`` returns an action in ``env``'s action space; ``wheels(sim)`` the raw
    ``[left, right]`` command. ``seed`` fixes the action noise.
    """

    def __init__(self, config: ExpertConfig | None = None, seed: int | None = None) -> None:
        self.config = config or ExpertConfig()
        self.rng = np.random.default_rng(seed)

    def wheels(self, sim: Any) -> np.ndarray:
        """``[left, right]`` wheel command in ``[-1, 1]`` for the simulator's current state."""
        cfg = self.config
        angle = float(sim.cur_angle)
        heading = np.array([math.cos(angle), 0.0, -math.sin(angle)])
        pos = np.asarray(sim.cur_pos, dtype=np.float64) + heading * float(sim.speed) * cfg.delay_s
        point, tangent = sim.closest_curve_point(pos, angle)
        if point is None:
            point, tangent = sim.closest_curve_point(np.asarray(sim.cur_pos, dtype=np.float64), angle)
        if point is None:  # off the lane network: stop rather than guess
            return np.zeros(2)
        # Walk the look-ahead along the lane in a few hops so curves are followed, not cut.
        target = np.asarray(point, dtype=np.float64)
        hops = 3
        for _ in range(hops):
            ahead = target + np.asarray(tangent) * (cfg.lookahead_m / hops)
            nxt, nxt_tangent = sim.closest_curve_point(ahead, angle)
            if nxt is None:
                target = ahead
                break
            target, tangent = np.asarray(nxt, dtype=np.float64), nxt_tangent
        offset = target - pos
        left_vec = np.array([heading[2], 0.0, -heading[0]])
        forward_dist = float(np.dot(offset, heading))
        left_dist = float(np.dot(offset, left_vec))
        distance_sq = max(forward_dist**2 + left_dist**2, 1e-6)
        curvature = 2.0 * left_dist / distance_sq  # pure pursuit: kappa = 2 y / L^2
        slow = max(cfg.curve_slowdown, 1.0 - 0.15 * abs(curvature))
        speed = cfg.speed * slow
        # Pure pursuit asks for yaw rate = v * kappa; convert with the measured wheel kinematics.
        yaw_rate = SPEED_PER_COMMAND * speed * curvature
        diff = float(np.clip(cfg.steer_gain * yaw_rate / YAW_RATE_PER_COMMAND_DIFF, -1.0, 1.0))
        wheels = np.array([speed - diff / 2.0, speed + diff / 2.0])
        if cfg.wheel_noise_std > 0:
            wheels = wheels + self.rng.normal(0.0, cfg.wheel_noise_std, size=2)
        return np.clip(wheels, -1.0, 1.0)

    def act(self, env: Any) -> np.ndarray:
        """Action for ``env`` (any wrapper stack around :class:`~sim2real_env.env.DuckietownEnv`)."""
        from sim2real_env.env import action_from_wheels

        base = env.unwrapped
        return action_from_wheels(self.wheels(base.sim), base.config.action_space, base.config.steer_scale)
