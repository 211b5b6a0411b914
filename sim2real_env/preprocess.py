"""Agent-side preprocessing of uint8 HWC frames: crop the horizon, resize, stack frames on channels.

:class:`Preprocess` is the one description of it: :meth:`Preprocess.wrap` puts it on an env as
wrappers (online, what :func:`sim2real_env.make.build_env` does), :meth:`Preprocess.frames`
applies its crop and resize to stored frames (offline, e.g. harvested ones).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim2real_env.errors import ConfigError
from sim2real_env.frames import resize_frames
from sim2real_env.names import unknown_name_message
from sim2real_env.wrappers import check_image_space


@dataclass(frozen=True)
class Preprocess:
    """Crop rows, resize, stack frames; applied after any generator.

    The defaults are the agents' (every pipeline records its values with the agent).
    ``crop_top=0`` crops nothing and ``frame_stack=1`` stacks nothing; a resize to the frame's
    own size changes nothing.
    """

    #: Rows cut from the top (the horizon and sky carry no lane information).
    crop_top: int = 40
    #: ``[height, width]`` after cropping (INTER_AREA).
    resize: tuple[int, int] = (40, 80)
    #: Consecutive frames stacked along channels (gives the policy velocity).
    frame_stack: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.crop_top, bool) or not isinstance(self.crop_top, int) or self.crop_top < 0:
            raise ConfigError(f"preprocess.crop_top must be an integer >= 0, got {self.crop_top!r}")
        if (
            not isinstance(self.resize, tuple)
            or len(self.resize) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in self.resize)
        ):
            raise ConfigError(f"preprocess.resize must be [height, width], integers >= 8, got {self.resize!r}")
        stack = self.frame_stack
        if isinstance(stack, bool) or not isinstance(stack, int) or not 1 <= stack <= 8:
            raise ConfigError(f"preprocess.frame_stack must be an integer in [1, 8], got {self.frame_stack!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Preprocess:
        """From a mapping (YAML); unknown keys are an error naming the key, lists become tuples."""
        values = dict(values or {})
        known = ("crop_top", "resize", "frame_stack")
        for key in values:
            if key not in known:
                raise ConfigError(unknown_name_message("preprocess key", str(key), known))
        if isinstance(values.get("resize"), list):
            values["resize"] = tuple(values["resize"])
        return cls(**values)

    def wrap(self, env: gym.Env[np.ndarray, Any]) -> gym.Env[Any, Any]:
        """``env`` with the crop, resize and frame-stack wrappers this asks for."""
        if self.crop_top:
            env = CropObservation(env, self.crop_top)
        env = ResizeObservation(env, self.resize)
        if self.frame_stack > 1:
            return ChannelFrameStack(env, self.frame_stack)
        return env

    def frames(self, frames: np.ndarray) -> np.ndarray:
        """Crop and resize ``(N, H, W, 3)`` uint8 frames as the wrappers do (no stacking)."""
        return resize_frames(np.ascontiguousarray(frames[:, self.crop_top :]), self.resize)


class CropObservation(gym.ObservationWrapper[np.ndarray, Any, np.ndarray], gym.utils.RecordConstructorArgs):
    """Drop the top ``top`` rows (sky and horizon carry no lane information)."""

    def __init__(self, env: gym.Env[np.ndarray, Any], top: int) -> None:
        height, width = check_image_space(env.observation_space, "CropObservation")
        if not isinstance(top, int) or not 0 <= top < height:
            raise ConfigError(f"CropObservation: top must be an integer in [0, {height}), got {top!r}")
        gym.utils.RecordConstructorArgs.__init__(self, top=top)
        gym.ObservationWrapper.__init__(self, env)
        self.top = top
        self.observation_space = spaces.Box(0, 255, (height - top, width, 3), dtype=np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Rows ``top:`` of the frame (a contiguous copy)."""
        return np.ascontiguousarray(observation[self.top :])


class ResizeObservation(gym.ObservationWrapper[np.ndarray, Any, np.ndarray], gym.utils.RecordConstructorArgs):
    """Resize to ``size`` = (H, W) with ``INTER_AREA`` when shrinking (linear interpolation aliases)."""

    def __init__(self, env: gym.Env[np.ndarray, Any], size: tuple[int, int]) -> None:
        check_image_space(env.observation_space, "ResizeObservation")
        if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
            raise ConfigError(f"ResizeObservation: size must be (height, width) positive ints, got {size!r}")
        gym.utils.RecordConstructorArgs.__init__(self, size=tuple(size))
        gym.ObservationWrapper.__init__(self, env)
        self.size = (int(size[0]), int(size[1]))
        self.observation_space = spaces.Box(0, 255, (*self.size, 3), dtype=np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The resized frame."""
        return resize_frames(observation[None], self.size)[0]


class ChannelFrameStack(gym.Wrapper[np.ndarray, Any, np.ndarray, Any], gym.utils.RecordConstructorArgs):
    """Stack the last ``k`` frames on the channel axis: ``(H, W, 3k)`` uint8, oldest first.

    Channel stacking keeps an image space SB3's CNN policies accept as is; the first observation
    of an episode is repeated ``k`` times.
    """

    def __init__(self, env: gym.Env[np.ndarray, Any], k: int) -> None:
        height, width = check_image_space(env.observation_space, "ChannelFrameStack")
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"ChannelFrameStack: k must be an integer >= 1, got {k!r}")
        gym.utils.RecordConstructorArgs.__init__(self, k=k)
        gym.Wrapper.__init__(self, env)
        self.k = k
        self.frames: deque[np.ndarray] = deque(maxlen=k)
        self.observation_space = spaces.Box(0, 255, (height, width, 3 * k), dtype=np.uint8)

    def _stacked(self) -> np.ndarray:
        return np.concatenate(list(self.frames), axis=2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset and fill the stack with the first frame."""
        obs, info = self.env.reset(seed=seed, options=options)
        for _ in range(self.k):
            self.frames.append(obs)
        return self._stacked(), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        """Step and push the new frame."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(obs)
        return self._stacked(), reward, terminated, truncated, info
