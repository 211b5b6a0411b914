"""The real Duckietown simulator as a headless, deterministic Gymnasium 1.x environment.

``gymnasium.make("sim2real/Duckietown-v0", map_name="small_loop")`` builds it. It wraps
``gym_duckietown.simulator.Simulator`` (old gym API) with:

* the Gymnasium API, ``terminated`` (left the drivable area, or collided) kept apart from
  ``truncated`` (the episode-length limit, enforced here; upstream reports it as a plain done);
* a lane-following reward that pays for progress *along* the lane (upstream's pays the constant
  1.2 where the speed should be, so standing still in the lane earns as much as driving; it stays
  available as ``reward="upstream"``);
* determinism: same seed, bit-identical frames (see :meth:`DuckietownEnv.reset`);
* input checks that name the bad value.

Action spaces (``action_space=``), both ``Box(-1, 1, (2,), float32)``; values outside the box are
clipped, as upstream does:

* ``"wheels"`` (default): ``[left, right]`` wheel PWM commands, upstream's native action.
* ``"speed_steer"``: ``[speed, steer]``; forward speed ``s = (speed + 1) / 2`` in ``[0, 1]``, then
  ``left = s - k * steer / 2``, ``right = s + k * steer / 2`` (clipped) with ``k = steer_scale``;
  ``steer > 0`` turns left. A ``steer_scale`` below 1 gives a learning agent finer control: at 1, a
  full steer is a 3.7 rad/s yaw rate, while lane following needs at most ~1.2.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim2real_env import ENV_ID as ENV_ID  # re-exported: importing it from here registers it
from sim2real_env import _compat, register_envs
from sim2real_env.errors import ConfigError
from sim2real_env.maps import DEFAULT_MAP, resolve_map
from sim2real_env.names import unknown_name_message

ActionSpaceName = Literal["wheels", "speed_steer"]
RewardName = Literal["progress", "upstream"]
ACTION_SPACES: tuple[str, ...] = ("wheels", "speed_steer")
REWARDS: tuple[str, ...] = ("progress", "lane_progress", "upstream")
SPAWNS: tuple[str, ...] = ("lane", "random")
#: Upstream's ``max_steps``; we give it this so it never ends an episode itself.
_NEVER = 2**62


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the ``progress`` reward (per step).

    ``reward = progress_per_metre * progress_m - lateral_per_metre * |lateral_m| - failure * terminated``
    where ``progress_m`` is the displacement along the lane tangent this step (negative when
    driving backwards or against the lane).
    """

    progress_per_metre: float = 100.0
    lateral_per_metre: float = 5.0
    failure: float = 20.0
    #: ``lane_progress`` only: progress counts fully at the lane centre and not at all this far
    #: off it (m); the lane's half-width minus half the robot's.
    lane_half_width_m: float = 0.1
    #: ``lane_progress`` only: forward progress is also scaled by ``max(0, 1 - heading_weight * |heading|)``.
    #: 0 (the default) ignores heading; e.g. 1.5 pays nothing beyond 0.67 rad (38 deg), which stops
    #: a policy from zig-zagging inside the lane band (progress alone only loses ``cos(heading)``).
    heading_weight: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"RewardConfig.{f.name} must be a finite number >= 0, got {value!r}")
        if self.lane_half_width_m <= 0:
            raise ConfigError(f"RewardConfig.lane_half_width_m must be > 0, got {self.lane_half_width_m!r}")


@dataclass(frozen=True)
class EnvConfig:
    """Options of :class:`DuckietownEnv`; validated on construction.

    Example::

        env = DuckietownEnv(EnvConfig(map_name="small_loop", camera_width=80, camera_height=60))
    """

    map_name: str = DEFAULT_MAP
    camera_width: int = 160
    camera_height: int = 120
    frame_skip: int = 1
    domain_rand: bool = False
    distortion: bool = False
    episode_length: int = 500
    action_space: str = "wheels"
    #: ``speed_steer`` only: wheel-speed difference at ``steer = 1`` (see module docstring).
    steer_scale: float = 1.0
    reward: str = "progress"
    reward_weights: RewardConfig = field(default_factory=RewardConfig)
    frame_rate: float = 30.0
    #: ``"lane"``: start on the right lane's centre curve, facing along it, perturbed by up to
    #: ``spawn_lateral_m`` and ``spawn_heading_rad``; ``"random"``: upstream's spawn (anywhere on
    #: a drivable tile, heading within ``accept_start_angle_deg`` of the lane), which can start on
    #: the road's edge.
    spawn: str = "lane"
    spawn_lateral_m: float = 0.05
    spawn_heading_rad: float = 0.25
    accept_start_angle_deg: float = 60.0
    #: Camera pose and intrinsics; ``None`` keeps upstream's (0.108 m, 19.15 deg down, 75 deg
    #: vertical field of view, or its randomized draw with ``domain_rand``). Evaluation domains
    #: change them to mimic a robot whose camera sits differently.
    camera_height_m: float | None = None
    camera_tilt_deg: float | None = None
    camera_fov_y_deg: float | None = None

    def __post_init__(self) -> None:
        resolve_map(self.map_name)
        for name, lo, hi in (("camera_width", 8, 1920), ("camera_height", 6, 1440)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise ConfigError(f"EnvConfig.{name} must be an integer in [{lo}, {hi}], got {value!r}")
        for name in ("frame_skip", "episode_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"EnvConfig.{name} must be an integer >= 1, got {value!r}")
        for name in ("domain_rand", "distortion"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"EnvConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if self.action_space not in ACTION_SPACES:
            raise ConfigError(unknown_name_message("action space", str(self.action_space), ACTION_SPACES))
        if (
            isinstance(self.steer_scale, bool)
            or not isinstance(self.steer_scale, (int, float))
            or not (0.05 <= self.steer_scale <= 1.0)
        ):
            raise ConfigError(f"EnvConfig.steer_scale must be a number in [0.05, 1], got {self.steer_scale!r}")
        if self.spawn not in SPAWNS:
            raise ConfigError(unknown_name_message("spawn", str(self.spawn), SPAWNS))
        if not (isinstance(self.spawn_lateral_m, (int, float)) and 0 <= self.spawn_lateral_m <= 0.2):
            raise ConfigError(f"EnvConfig.spawn_lateral_m must be in [0, 0.2] m, got {self.spawn_lateral_m!r}")
        if not (isinstance(self.spawn_heading_rad, (int, float)) and 0 <= self.spawn_heading_rad <= 1.0):
            raise ConfigError(f"EnvConfig.spawn_heading_rad must be in [0, 1] rad, got {self.spawn_heading_rad!r}")
        if self.reward not in REWARDS:
            raise ConfigError(unknown_name_message("reward", str(self.reward), REWARDS))
        if isinstance(self.reward_weights, dict):
            object.__setattr__(self, "reward_weights", RewardConfig(**self.reward_weights))
        if not isinstance(self.reward_weights, RewardConfig):
            raise ConfigError(f"EnvConfig.reward_weights must be a RewardConfig, got {self.reward_weights!r}")
        if not (isinstance(self.frame_rate, (int, float)) and 1 <= self.frame_rate <= 1000):
            raise ConfigError(f"EnvConfig.frame_rate must be a number in [1, 1000] Hz, got {self.frame_rate!r}")
        camera_ranges: tuple[tuple[str, float, float], ...] = (
            ("camera_height_m", 0.02, 0.5),
            ("camera_tilt_deg", -10.0, 60.0),
            ("camera_fov_y_deg", 20.0, 150.0),
        )
        for name, c_lo, c_hi in camera_ranges:
            camera = getattr(self, name)
            if camera is not None and (
                isinstance(camera, bool) or not isinstance(camera, (int, float)) or not c_lo <= camera <= c_hi
            ):
                raise ConfigError(f"EnvConfig.{name} must be null or a number in [{c_lo}, {c_hi}], got {camera!r}")
        if not (isinstance(self.accept_start_angle_deg, (int, float)) and 0 < self.accept_start_angle_deg <= 180):
            raise ConfigError(
                f"EnvConfig.accept_start_angle_deg must be in (0, 180], got {self.accept_start_angle_deg!r}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EnvConfig:
        """Build from a plain mapping (YAML, kwargs); unknown keys are an error naming the key."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(unknown_name_message("EnvConfig key", str(key), known))
        return cls(**values)


@dataclass(frozen=True)
class LanePose:
    """Pose relative to the right lane's centre curve.

    ``lateral_m > 0``: left of the lane centre; ``heading_rad > 0``: pointing left of the lane
    direction. Both NaN (and ``in_lane`` false) where the robot is not on a lane curve.
    """

    lateral_m: float
    heading_rad: float
    in_lane: bool
    tangent: np.ndarray | None


def lane_pose(sim: Any, pos: np.ndarray, angle: float) -> LanePose:
    """Lane pose from the simulator's Bezier lane curves (``closest_curve_point``)."""
    point, tangent = sim.closest_curve_point(pos, angle)
    if point is None or tangent is None:
        return LanePose(math.nan, math.nan, False, None)
    direction = np.array([math.cos(angle), 0.0, -math.sin(angle)])
    # Left of the tangent in the simulator's x-z plane (y up, angle counter-clockwise seen from above).
    left = np.array([tangent[2], 0.0, -tangent[0]])
    lateral = float(np.dot(pos - point, left))
    heading = math.atan2(float(np.dot(direction, left)), float(np.dot(direction, tangent)))
    return LanePose(lateral, heading, True, np.asarray(tangent, dtype=np.float64))


def lane_progress_reward(
    progress_m: float, lateral_m: float, terminated: bool, weights: RewardConfig, heading_rad: float = 0.0
) -> float:
    """The ``lane_progress`` reward: progress along the lane, weighted by how centred the robot is.

    ``reward = progress_per_metre * progress_m * max(0, 1 - |lateral_m| / lane_half_width_m)
    * max(0, 1 - heading_weight * |heading_rad|) - failure * terminated``. Unlike a subtracted
    penalty it never makes ending the episode early attractive, and it pays exactly for the
    measure agents are judged on: distance driven in the lane.
    """
    centred = max(0.0, 1.0 - abs(lateral_m) / weights.lane_half_width_m) if math.isfinite(lateral_m) else 0.0
    if weights.heading_weight > 0 and progress_m > 0:  # driving the wrong way is never forgiven
        aligned = max(0.0, 1.0 - weights.heading_weight * abs(heading_rad)) if math.isfinite(heading_rad) else 0.0
        centred *= aligned
    return weights.progress_per_metre * progress_m * centred - (weights.failure if terminated else 0.0)


def progress_reward(progress_m: float, lateral_m: float, terminated: bool, weights: RewardConfig) -> float:
    """The ``progress`` reward of one step: see :class:`RewardConfig`."""
    lateral_penalty = weights.lateral_per_metre * abs(lateral_m) if math.isfinite(lateral_m) else 0.0
    return weights.progress_per_metre * progress_m - lateral_penalty - (weights.failure if terminated else 0.0)


def wheels_from_action(action: np.ndarray, action_space: str, steer_scale: float = 1.0) -> np.ndarray:
    """Map a (clipped) agent action to ``[left, right]`` PWM in ``[-1, 1]``."""
    if action_space == "wheels":
        return action.astype(np.float64)
    speed = (float(action[0]) + 1.0) / 2.0
    steer = float(action[1]) * steer_scale
    return np.clip(np.array([speed - steer / 2.0, speed + steer / 2.0]), -1.0, 1.0)


def action_from_wheels(wheels: np.ndarray, action_space: str, steer_scale: float = 1.0) -> np.ndarray:
    """Inverse of :func:`wheels_from_action` for ``[..., 2]`` wheel commands (clipped to the box)."""
    wheels = np.asarray(wheels, dtype=np.float64)
    if action_space == "wheels":
        return wheels.astype(np.float32)
    speed = wheels.mean(axis=-1) * 2.0 - 1.0
    steer = (wheels[..., 1] - wheels[..., 0]) / steer_scale
    return np.clip(np.stack([speed, steer], axis=-1), -1.0, 1.0).astype(np.float32)


def check_action(action: Any, space: spaces.Box) -> np.ndarray:
    """Validate one action: numeric, shape ``(2,)``, finite; returns it clipped to the box."""
    try:
        array = np.asarray(action)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"DuckietownEnv.step: action must be an array of shape (2,), got {action!r}") from exc
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise TypeError(
            f"DuckietownEnv.step: action must be a float or int array of shape (2,), got dtype {array.dtype}"
        )
    if array.shape != (2,):
        raise ValueError(f"DuckietownEnv.step: action must have shape (2,), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"DuckietownEnv.step: action must be finite, got {array.tolist()}")
    return np.clip(array.astype(np.float32), space.low, space.high)


class DuckietownEnv(gym.Env[np.ndarray, np.ndarray]):
    """Headless Duckietown lane following with the Gymnasium API.

    Observation: ``Box(0, 255, (camera_height, camera_width, 3), uint8)``, the robot's camera (RGB).
    ``info``: ``lane_lateral_m``, ``lane_heading_rad``, ``in_lane``, ``speed_mps``, ``position_m``
    (x, z), ``heading_rad``, ``tile`` (i, j), ``on_road``, ``collision``, ``progress_m`` (this step,
    along the lane), ``distance_m`` (this episode), ``step``, ``termination`` ("", "off_road" or
    "collision").

    The Simulator is created once and reused across resets. Upstream never frees one (each
    costs ~40-80 MB for good), so ``close()`` hands it back to this process's pool
    (:data:`SIMULATORS`) and the next env built with the same simulator settings takes it:
    evaluation cells and BC rounds reuse one simulator instead of leaking one each. A reused
    simulator gives the same episodes as a fresh one (``reset(seed=...)`` sets all of its state;
    ``tests/test_env_sim.py`` checks it). ``reuse_simulator=False`` builds a private one.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012 (gymnasium declares it so; instances override render_fps)

    def __init__(
        self,
        config: EnvConfig | None = None,
        render_mode: str | None = None,
        *,
        reuse_simulator: bool = True,
        **kwargs: Any,
    ) -> None:
        if config is not None and kwargs:
            raise ValueError("DuckietownEnv: pass either config=EnvConfig(...) or keyword options, not both")
        if config is None:
            config = EnvConfig.from_dict(kwargs)
        elif not isinstance(config, EnvConfig):
            raise TypeError(f"DuckietownEnv: config must be an EnvConfig, got {type(config).__name__}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"DuckietownEnv: render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.config = config
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": round(config.frame_rate / config.frame_skip)}

        self._sim_module = _compat.load_simulator()
        self._sim_key: SimulatorKey | None = simulator_key(config) if reuse_simulator else None
        self.sim: Any = SIMULATORS.acquire(config) if reuse_simulator else _build_simulator(config)
        self._has_moving_objects = any(not getattr(o, "static", True) for o in self.sim.objects)
        self.observation_space = spaces.Box(0, 255, (config.camera_height, config.camera_width, 3), dtype=np.uint8)
        self._box = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = self._box
        self._steps = 0
        self._distance_m = 0.0
        self._last_obs: np.ndarray | None = None
        self._needs_reset = True

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; the same ``seed`` gives bit-identical frames.

        ``options``: ``{"start_tile": (i, j)}`` spawns on that tile (random pose on it).
        """
        if self.sim is None:
            raise RuntimeError("DuckietownEnv.reset called after close(); build a new env")
        super().reset(seed=seed)
        options = dict(options or {})
        start_tile = options.pop("start_tile", None)
        if options:
            raise ValueError(
                unknown_name_message("DuckietownEnv.reset option", str(next(iter(options))), ["start_tile"])
            )
        if start_tile is not None:
            i, j = (int(v) for v in start_tile)
            tile = self.sim._get_tile(i, j)
            if tile is None or not tile["drivable"]:
                raise ValueError(f"DuckietownEnv.reset: start_tile {start_tile!r} is not a drivable tile of this map")
            start_tile = (i, j)
        self.sim.user_tile_start = start_tile

        sim_seed = int(self.np_random.integers(0, 2**31 - 1))
        self.sim.seed(sim_seed)
        if self._has_moving_objects:
            # Moving duckiebots/pedestrians draw from the global numpy RNG upstream.
            np.random.seed(sim_seed)
        # Upstream sets the light position under whatever modelview matrix the previous frame left,
        # so the first frame of an episode would depend on the previous episode.
        gl = self._sim_module.gl
        self.sim.shadow_window.switch_to()
        gl.glMatrixMode(gl.GL_MODELVIEW)
        gl.glLoadIdentity()
        obs = self.sim.reset()
        camera_changed = self._set_camera()
        if (self.config.spawn == "lane" and self._place_in_lane()) or camera_changed:
            obs = self.sim.render_obs()
        self._steps = 0
        self._distance_m = 0.0
        self._needs_reset = False
        self._last_obs = obs
        return obs, self._info(progress_m=0.0, on_road=True, collision=False, termination="")

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``[left, right]`` (or ``[speed, steer]``) for ``frame_skip`` physics steps, then render."""
        if self._needs_reset:
            raise RuntimeError("DuckietownEnv.step called before reset() or after the episode ended; call reset()")
        clipped = check_action(action, self._box)
        wheels = wheels_from_action(clipped, self.config.action_space, self.config.steer_scale)
        sim = self.sim
        start = np.array(sim.cur_pos, dtype=np.float64)
        on_road, collision = True, False
        for _ in range(self.config.frame_skip):
            sim.update_physics(wheels)
            on_road, collision = self._pose_status()
            if not on_road or collision:
                break
        pose = lane_pose(sim, sim.cur_pos, sim.cur_angle)
        progress = float(np.dot(np.asarray(sim.cur_pos) - start, pose.tangent)) if pose.tangent is not None else 0.0
        self._distance_m += progress
        self._steps += 1
        terminated = not on_road or collision
        truncated = not terminated and self._steps >= self.config.episode_length
        termination = "collision" if collision else ("off_road" if not on_road else "")

        if self.config.reward == "upstream":
            reward = (
                float(self._sim_module.REWARD_INVALID_POSE)
                if terminated
                else float(sim.compute_reward(sim.cur_pos, sim.cur_angle, sim.robot_speed))
            )
        elif self.config.reward == "lane_progress":
            reward = lane_progress_reward(
                progress, pose.lateral_m, terminated, self.config.reward_weights, heading_rad=pose.heading_rad
            )
        else:
            reward = progress_reward(progress, pose.lateral_m, terminated, self.config.reward_weights)

        obs = sim.render_obs()
        self._last_obs = obs
        self._needs_reset = terminated or truncated
        info = self._info(progress_m=progress, on_road=on_road, collision=collision, termination=termination, pose=pose)
        return obs, float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the latest camera frame (a copy)."""
        if self.render_mode != "rgb_array":
            return None
        if self._last_obs is None:
            raise RuntimeError("DuckietownEnv.render called before reset()")
        return self._last_obs.copy()

    def close(self) -> None:
        """Hand the simulator back to the process's pool (upstream frees nothing; see the class doc).

        The env is unusable afterwards; closing twice is harmless.
        """
        sim, self.sim = getattr(self, "sim", None), None
        if sim is not None and self._sim_key is not None and not self._has_moving_objects:
            # Moving objects keep their positions across upstream resets: such a simulator would
            # start the next env where this one left its duckies, so it is not reused.
            SIMULATORS.release(self._sim_key, sim)
        self._needs_reset = True
        super().close()

    # -- helpers -------------------------------------------------------------------------------
    def _set_camera(self) -> bool:
        """Apply the configured camera height / tilt / field of view (upstream resets them each episode)."""
        cfg, sim = self.config, self.sim
        if cfg.camera_height_m is not None:
            sim.cam_height = float(cfg.camera_height_m)
        if cfg.camera_tilt_deg is not None:
            sim.cam_angle = [float(cfg.camera_tilt_deg), 0, 0]
        if cfg.camera_fov_y_deg is not None:
            sim.cam_fov_y = float(cfg.camera_fov_y_deg)
        return any(v is not None for v in (cfg.camera_height_m, cfg.camera_tilt_deg, cfg.camera_fov_y_deg))

    def _place_in_lane(self) -> bool:
        """Move the robot from upstream's spawn onto the lane centre (perturbed); False if impossible."""
        sim, mod = self.sim, self._sim_module
        point, tangent = sim.closest_curve_point(sim.cur_pos, sim.cur_angle)
        if point is None:
            return False
        rng = sim.np_random
        tangent = np.asarray(tangent, dtype=np.float64)
        left = np.array([tangent[2], 0.0, -tangent[0]])
        for _ in range(20):
            lateral = rng.uniform(-1.0, 1.0) * self.config.spawn_lateral_m
            heading = rng.uniform(-1.0, 1.0) * self.config.spawn_heading_rad
            pos = np.asarray(point, dtype=np.float64) + lateral * left
            pos[1] = 0.0
            angle = math.atan2(-tangent[2], tangent[0]) + heading
            if sim._valid_pose(pos, angle, safety_factor=1.0):
                break
        else:
            return False
        sim.cur_pos, sim.cur_angle = pos, angle
        params = mod.get_DB18_nominal(delay=0.15)
        start = sim.cartesian_from_weird(sim.cur_pos, sim.cur_angle)
        sim.state = params.initialize(c0=(start, mod.geometry.se2_from_linear_angular(np.zeros(2), 0.0)), t0=0)
        return True

    def _pose_status(self) -> tuple[bool, bool]:
        """(on_road, collision) exactly as upstream's ``_valid_pose`` decides them."""
        sim, mod = self.sim, self._sim_module
        pos, angle = sim.cur_pos, sim.cur_angle
        centre = mod._actual_center(pos, angle)
        forward, right = mod.get_dir_vec(angle), mod.get_right_vec(angle)
        half_width, half_length = 0.5 * mod.ROBOT_WIDTH, 0.5 * mod.ROBOT_LENGTH
        on_road = all(
            sim._drivable_pos(p)
            for p in (centre, centre - half_width * right, centre + half_width * right, centre + half_length * forward)
        )
        collision = bool(sim._collision(mod.get_agent_corners(centre, angle)))
        return on_road, collision

    def _info(
        self,
        *,
        progress_m: float,
        on_road: bool,
        collision: bool,
        termination: str,
        pose: LanePose | None = None,
    ) -> dict[str, Any]:
        sim = self.sim
        if pose is None:
            pose = lane_pose(sim, sim.cur_pos, sim.cur_angle)
        i, j = sim.get_grid_coords(sim.cur_pos)
        return {
            "lane_lateral_m": pose.lateral_m,
            "lane_heading_rad": pose.heading_rad,
            "in_lane": pose.in_lane,
            "speed_mps": float(sim.speed),
            "position_m": np.array([sim.cur_pos[0], sim.cur_pos[2]], dtype=np.float64),
            "heading_rad": float(sim.cur_angle),
            "tile": (int(i), int(j)),
            "on_road": on_road,
            "collision": collision,
            "progress_m": progress_m,
            "distance_m": self._distance_m,
            "step": self._steps,
            "termination": termination,
        }


#: What a ``Simulator`` is built with (everything else is set on every reset): map, domain
#: randomization, distortion, camera width and height, frame rate, spawn angle tolerance.
SimulatorKey = tuple[str, bool, bool, int, int, float, float]


def simulator_key(config: EnvConfig) -> SimulatorKey:
    """The settings that ``config``'s simulator is built with (its key in :data:`SIMULATORS`)."""
    return (
        config.map_name,
        config.domain_rand,
        config.distortion,
        int(config.camera_width),
        int(config.camera_height),
        float(config.frame_rate),
        float(config.accept_start_angle_deg),
    )


def _build_simulator(config: EnvConfig) -> Any:
    return _compat.load_simulator().Simulator(
        map_name=config.map_name,
        max_steps=_NEVER,
        domain_rand=config.domain_rand,
        distortion=config.distortion,
        camera_width=config.camera_width,
        camera_height=config.camera_height,
        frame_rate=config.frame_rate,
        frame_skip=1,
        accept_start_angle_deg=config.accept_start_angle_deg,
        seed=0,
    )


class SimulatorPool:
    """Idle simulators of this process by :func:`simulator_key`; an env takes one and gives it back on close.

    An env holds its simulator alone while open (two open envs never share one: vector envs in
    one process keep working), so the pool only saves building, and leaking, a new simulator
    for an env built after another was closed. A forked child starts with an empty pool: the
    parent's OpenGL contexts are not the child's.
    """

    def __init__(self) -> None:
        self._idle: dict[SimulatorKey, list[Any]] = {}
        self._pid = os.getpid()
        #: Simulators built / handed out again, for tests and memory reports.
        self.built = 0
        self.reused = 0

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            self._idle, self._pid, self.built, self.reused = {}, os.getpid(), 0, 0

    def acquire(self, config: EnvConfig) -> Any:
        """An idle simulator built with ``config``'s settings, else a new one."""
        self._check_process()
        idle = self._idle.get(simulator_key(config))
        if idle:
            self.reused += 1
            return idle.pop()
        self.built += 1
        return _build_simulator(config)

    def release(self, key: SimulatorKey, sim: Any) -> None:
        """Take back a simulator that its env no longer uses."""
        self._check_process()
        idle = self._idle.setdefault(key, [])
        if not any(s is sim for s in idle):
            idle.append(sim)

    def idle(self) -> int:
        """How many simulators wait in the pool."""
        self._check_process()
        return sum(len(v) for v in self._idle.values())

    def clear(self) -> None:
        """Forget the idle simulators (upstream frees nothing, so this frees no memory either)."""
        self._idle.clear()


#: This process's simulator pool (see :class:`SimulatorPool`).
SIMULATORS = SimulatorPool()


# This module defines the env, and Gymnasium is loaded: make ``gymnasium.make(ENV_ID)`` work.
register_envs()
