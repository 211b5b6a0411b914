"""Observation wrappers that put a :class:`~generators.protocol.Generator` between env and agent.

* :class:`Sim2RealObservation`: simulator frames -> realistic frames (a ``sim->real`` generator),
  so agents train on what the real camera would show.
* :class:`CanonicalizeObservation`: distorted, randomized or real frames -> the canonical
  simulator look (a ``real->canonical`` generator), so a sim-trained policy drives unchanged.

Both check the wrapped space in ``__init__``, expose an exact ``Box(0, 255, (H, W, 3), uint8)``
space, resize to the generator's size and back (``INTER_AREA`` when shrinking), run the generator
in eval mode without autograd on the chosen device (by default through ONNX Runtime on the CPU,
see :mod:`generators.runtime`; ``backend="torch"`` runs the module itself), and record their constructor arguments with
the generator's checkpoint id (so ``env.spec`` says which generator an agent saw).

Example::

    env = Sim2RealObservation(gymnasium.make("sim2real/Duckietown-v0"), load_generator(path))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim2real_env import register_envs
from sim2real_env.errors import ConfigError
from sim2real_env.frames import resize_frames as resize_frames  # re-exported: its home before frames.py
from sim2real_env.frames import translate_batch
from sim2real_env.frames import translate_in_batches as translate_in_batches  # re-exported, as above

if TYPE_CHECKING:
    from generators.protocol import Generator

# Gymnasium is loaded now, so registering the env id is free: ``gym.make`` works beside the wrappers.
register_envs()

#: Largest wrapper output side: a 100000x100000 output_size ran out of memory inside gymnasium.spaces.Box.
MAX_OUTPUT_SIDE = 4096


def check_image_space(space: Any, owner: str) -> tuple[int, int]:
    """``(H, W)`` of a uint8 ``Box(0, 255, (H, W, 3))``; ``TypeError``/``ValueError`` naming ``owner``."""
    if not isinstance(space, spaces.Box):
        raise TypeError(f"{owner} needs a Box observation space of RGB frames, got {type(space).__name__}")
    if space.dtype != np.uint8:
        raise TypeError(f"{owner} needs uint8 observations, got dtype {space.dtype}")
    if len(space.shape) != 3 or space.shape[2] != 3:
        raise ValueError(f"{owner} needs (H, W, 3) RGB observations, got shape {space.shape}")
    return int(space.shape[0]), int(space.shape[1])


def default_backend(device: str) -> str:
    """ONNX Runtime on the CPU (2-3x faster per frame here), torch on CUDA."""
    return "onnxruntime" if device == "cpu" else "torch"


def prepare_generator(
    generator: Generator, owner: str, direction: str, device: str, backend: str | None, threads: int = 2
) -> tuple[Any, str]:
    """Check the generator and return it on ``device`` in eval mode, run by ``backend``.

    ``threads``: ONNX Runtime's intra-op threads (1 inside vector-env worker processes, so that
    workers + threads stay within the cores).
    """
    from generators.runtime import BACKENDS, with_backend

    check_generator(generator, owner, direction, device)
    backend = backend or default_backend(device)
    if backend not in BACKENDS:
        raise ConfigError(f"{owner}: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "onnxruntime" and device != "cpu":
        raise ConfigError(f"{owner}: backend 'onnxruntime' runs on the CPU; use backend='torch' with device={device!r}")
    if hasattr(generator, "to"):
        generator.to(device)
    if hasattr(generator, "eval"):
        generator.eval()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"{owner}: threads must be an integer >= 1, got {threads!r}")
    return with_backend(generator, backend, threads), backend


def check_generator(generator: object, owner: str, direction: str, device: str) -> None:
    """The generator satisfies the protocol, translates in ``direction`` and can run on ``device``."""
    from generators.protocol import Generator

    if not isinstance(generator, Generator):
        raise TypeError(
            f"{owner} needs a Generator (translate(), method, direction, image_size, normalization, "
            f"checkpoint_id), got {type(generator).__name__}"
        )
    if generator.direction != direction:
        raise ConfigError(f"{owner} needs a {direction!r} generator, got a {generator.direction!r} {generator.method}")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"{owner}: device must be 'cpu' or 'cuda[:N]', got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"{owner}: device {device!r} requested but CUDA is not available; use device='cpu'")


class _GeneratorObservation(gym.ObservationWrapper[np.ndarray, Any, np.ndarray], gym.utils.RecordConstructorArgs):
    """Shared implementation; subclasses fix the direction."""

    #: The generator's direction this wrapper needs (``generators.protocol.DIRECTIONS``).
    direction: ClassVar[str]

    def __init__(
        self,
        env: gym.Env[np.ndarray, Any],
        generator: Generator,
        *,
        output_size: tuple[int, int] | None = None,
        resize: bool = True,
        device: str = "cpu",
        backend: str | None = None,
        keep_original: bool = False,
        threads: int = 2,
    ) -> None:
        owner = type(self).__name__
        height, width = check_image_space(env.observation_space, owner)
        runner, backend = prepare_generator(generator, owner, self.direction, device, backend, threads)
        if not resize and generator.image_size != (height, width):
            raise ValueError(
                f"{owner}: resize=False but the env gives {height}x{width} frames and the generator was "
                f"trained at {generator.image_size[0]}x{generator.image_size[1]}"
            )
        if output_size is None:
            output_size = (height, width)
        if len(output_size) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_OUTPUT_SIDE for v in output_size
        ):
            raise ConfigError(
                f"{owner}: output_size must be (height, width), integers in [1, {MAX_OUTPUT_SIDE}], got {output_size!r}"
            )
        gym.utils.RecordConstructorArgs.__init__(
            self,
            generator_checkpoint=generator.checkpoint_id,
            generator_method=generator.method,
            output_size=tuple(output_size),
            resize=resize,
            device=device,
            backend=backend,
            keep_original=keep_original,
        )
        gym.ObservationWrapper.__init__(self, env)
        self.generator = runner
        self.backend = backend
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.keep_original = keep_original
        self.observation_space = spaces.Box(0, 255, (*self.output_size, 3), dtype=np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Translate one frame (a batch of one)."""
        return translate_batch(self.generator, observation[None], self.output_size)[0]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset and translate; ``info["untranslated_obs"]`` holds the original when asked for."""
        obs, info = self.env.reset(seed=seed, options=options)
        if self.keep_original:
            info = {**info, "untranslated_obs": obs}
        return self.observation(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        """Step and translate; ``info["untranslated_obs"]`` holds the original when asked for."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.keep_original:
            info = {**info, "untranslated_obs": obs}
        return self.observation(obs), reward, terminated, truncated, info


class Sim2RealObservation(_GeneratorObservation):
    """Translate simulator frames to the real camera's look with a ``sim->real`` generator."""

    direction = "sim->real"


class CanonicalizeObservation(_GeneratorObservation):
    """Bring frames back to the canonical simulator look with a ``real->canonical`` generator."""

    direction = "real->canonical"
