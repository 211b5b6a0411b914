"""Agent-side preprocessing of uint8 HWC frames: crop the horizon, resize, stack frames on channels."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim2real_env.errors import ConfigError
from sim2real_env.frames import resize_frames
from sim2real_env.wrappers import check_image_space


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
