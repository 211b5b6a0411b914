"""Batched translation for vector envs: one generator pass per step for all sub-envs.

Why: for small frames one batched call is much cheaper per frame than one call per env (see
``benchmarks/results/generators.md``: ms/frame at batch 8 vs batch 1). Simulators may live in
worker processes (``SubprocVecEnv``); the generator runs once, in the main process.

* :class:`Sim2RealVectorObservation` / :class:`CanonicalizeVectorObservation`: Gymnasium vector
  wrappers.
* :class:`Sim2RealVecEnv` / :class:`CanonicalizeVecEnv`: stable-baselines3 ``VecEnvWrapper`` classes;
  the ``terminal_observation`` SB3 keeps in ``infos`` is translated too, so value bootstrapping
  sees the same kind of frame as the policy.

Results equal the single-env wrappers' exactly on CPU for the same frames (tested).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from sim2real_env.wrappers import check_image_space, prepare_generator, translate_batch

if TYPE_CHECKING:
    from generators.protocol import Generator


def _setup(
    owner: str,
    direction: str,
    single_space: Any,
    generator: Generator,
    output_size: tuple[int, int] | None,
    device: str,
    backend: str | None,
) -> tuple[tuple[int, int], Any]:
    height, width = check_image_space(single_space, owner)
    runner, _ = prepare_generator(generator, owner, direction, device, backend)
    size = output_size or (height, width)
    return (int(size[0]), int(size[1])), runner


class _VectorGeneratorObservation(gym.vector.VectorObservationWrapper):
    #: The generator's direction this wrapper needs.
    direction: ClassVar[str]

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        generator: Generator,
        *,
        output_size: tuple[int, int] | None = None,
        device: str = "cpu",
        backend: str | None = None,
    ) -> None:
        super().__init__(env)
        self.output_size, self.generator = _setup(
            type(self).__name__, self.direction, env.single_observation_space, generator, output_size, device, backend
        )
        self.single_observation_space = spaces.Box(0, 255, (*self.output_size, 3), dtype=np.uint8)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)

    def observations(self, observations: np.ndarray) -> np.ndarray:
        """Translate the whole batch in one generator call."""
        return translate_batch(self.generator, observations, self.output_size)


class Sim2RealVectorObservation(_VectorGeneratorObservation):
    """Gymnasium vector wrapper: batched ``sim->real`` translation."""

    direction = "sim->real"


class CanonicalizeVectorObservation(_VectorGeneratorObservation):
    """Gymnasium vector wrapper: batched ``real->canonical`` translation."""

    direction = "real->canonical"


class _SB3GeneratorVecEnv(VecEnvWrapper):
    #: The generator's direction this wrapper needs.
    direction: ClassVar[str]

    def __init__(
        self,
        venv: VecEnv,
        generator: Generator,
        *,
        output_size: tuple[int, int] | None = None,
        device: str = "cpu",
        backend: str | None = None,
    ) -> None:
        size, runner = _setup(
            type(self).__name__, self.direction, venv.observation_space, generator, output_size, device, backend
        )
        super().__init__(venv, observation_space=spaces.Box(0, 255, (*size, 3), dtype=np.uint8))
        self.generator = runner
        self.output_size = size

    def reset(self) -> np.ndarray:
        """Reset every sub-env and translate the batch."""
        return translate_batch(self.generator, np.asarray(self.venv.reset()), self.output_size)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step, translate the batch and any terminal observations (in one more call)."""
        obs, rewards, dones, infos = self.venv.step_wait()
        infos = list(infos)  # SubprocVecEnv returns a tuple
        translated = translate_batch(self.generator, np.asarray(obs), self.output_size)
        finals = [i for i, info in enumerate(infos) if "terminal_observation" in info]
        if finals:
            batch = np.stack([infos[i]["terminal_observation"] for i in finals])
            for i, frame in zip(finals, translate_batch(self.generator, batch, self.output_size), strict=True):
                infos[i] = {**infos[i], "terminal_observation": frame}
        return translated, rewards, dones, infos


class Sim2RealVecEnv(_SB3GeneratorVecEnv):
    """SB3 ``VecEnvWrapper``: batched ``sim->real`` translation."""

    direction = "sim->real"


class CanonicalizeVecEnv(_SB3GeneratorVecEnv):
    """SB3 ``VecEnvWrapper``: batched ``real->canonical`` translation."""

    direction = "real->canonical"
