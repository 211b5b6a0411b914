"""Paired views of one simulator state: canonical, domain-randomized, and semantic segmentation.

Why: real-to-canonical models (RCAN, James et al. 2019) learn from a randomized render as input
and the canonical render of the *same pose* as target; evaluation needs the segmentation to score
lane markings. All three must be pixel-aligned.

The randomized frame comes from a second ``Simulator`` with ``domain_rand=True``: each call draws
a fresh appearance (upstream's own randomizer: sky, lights, ground and tile colours, object
colours), then copies the robot pose and every object's state from the env's simulator and
restores the canonical camera (height, tilt, field of view, no jitter) so geometry is identical.

Example::

    env = gymnasium.make("sim2real/Duckietown-v0")
    env.reset(seed=0)
    views = PairedRenderer(env, seed=0).render()
    views.canonical, views.randomized, views.segmentation  # (H,W,3) u8, (H,W,3) u8, (H,W) u8 ids
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim2real_env import _compat
from sim2real_env.segmentation import classes_from_render

# Object attributes that carry appearance, not geometry: left as the randomizer drew them.
_APPEARANCE_ATTRIBUTES = frozenset({"color", "domain_rand", "mesh"})


@dataclass(frozen=True)
class PairedViews:
    """Three aligned views of one state."""

    canonical: np.ndarray  # (H, W, 3) uint8, the plain simulator render
    randomized: np.ndarray  # (H, W, 3) uint8, same pose and camera, randomized appearance
    segmentation: np.ndarray  # (H, W) uint8 SegClass ids


class PairedRenderer:
    """Renders :class:`PairedViews` for the current state of a canonical Duckietown env."""

    def __init__(self, env: Any, seed: int | None = None) -> None:
        base = env.unwrapped
        config = getattr(base, "config", None)
        if config is None or not hasattr(base, "sim"):
            raise TypeError(f"PairedRenderer needs a sim2real DuckietownEnv, got {type(base).__name__}")
        if config.domain_rand:
            raise ValueError(
                "PairedRenderer needs an env with domain_rand=False: its frames are the canonical view "
                "(the randomized view is drawn by the renderer itself)"
            )
        self.env = base
        self.rng = np.random.default_rng(seed)
        module = _compat.load_simulator()
        self._module = module
        self._randomized_sim = module.Simulator(
            map_name=config.map_name,
            max_steps=2**62,
            domain_rand=True,
            distortion=config.distortion,
            camera_width=config.camera_width,
            camera_height=config.camera_height,
            frame_rate=config.frame_rate,
            seed=int(self.rng.integers(0, 2**31 - 1)),
        )
        if len(self._randomized_sim.objects) != len(base.sim.objects):
            raise RuntimeError("PairedRenderer: the randomized simulator loaded a different set of objects")

    def segmentation(self) -> np.ndarray:
        """Class ids ``(H, W) uint8`` of the env's current state."""
        return classes_from_render(self.env.sim.render_obs(segment=True))

    def randomized(self) -> np.ndarray:
        """A freshly randomized render ``(H, W, 3) uint8`` of the env's current state."""
        source, target, module = self.env.sim, self._randomized_sim, self._module
        gl = module.gl
        target.seed(int(self.rng.integers(0, 2**31 - 1)))
        target.shadow_window.switch_to()
        gl.glMatrixMode(gl.GL_MODELVIEW)
        gl.glLoadIdentity()
        target.reset()
        target.cur_pos = np.array(source.cur_pos, dtype=np.float64)
        target.cur_angle = float(source.cur_angle)
        target.cam_height = source.cam_height
        target.cam_angle = list(source.cam_angle)
        target.cam_fov_y = source.cam_fov_y
        target.randomization_settings["camera_noise"] = np.zeros(3)
        for mine, theirs in zip(target.objects, source.objects, strict=True):
            for name, value in vars(theirs).items():
                if name not in _APPEARANCE_ATTRIBUTES:
                    setattr(mine, name, copy.copy(value))
        return np.asarray(target.render_obs())

    def render(self) -> PairedViews:
        """All three views of the env's current state."""
        canonical = np.asarray(self.env.sim.render_obs())
        return PairedViews(canonical=canonical, randomized=self.randomized(), segmentation=self.segmentation())
