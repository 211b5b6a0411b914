"""The one interface that wrappers, the CLI and evaluation depend on: :class:`Generator`.

A generator translates batches of frames between domains. Two input layouts are accepted and the
output has the input's layout:

* ``(N, H, W, 3) uint8`` RGB in ``[0, 255]`` (what Gymnasium envs give), or
* ``(N, 3, H, W)`` float in ``[-1, 1]`` (what training code holds).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

#: Directions a generator can translate in.
DIRECTIONS: tuple[str, ...] = ("sim->real", "real->canonical")
#: How float tensors are scaled: ``[-1, 1]`` (tanh outputs) everywhere in this project.
NORMALIZATION = "tanh[-1,1]"

Frames = np.ndarray | torch.Tensor


@runtime_checkable
class Generator(Protocol):
    """Anything that translates frames; CycleGAN, UNIT, style networks and STN-U-Net satisfy it."""

    method: str
    direction: str
    normalization: str
    #: Stable id of the weights (hash of the checkpoint), recorded by wrappers and agents.
    checkpoint_id: str

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` the model was trained at; wrappers resize to this (an attribute or a property)."""
        ...

    def translate(self, frames: Frames) -> Frames:
        """Translate a batch; output layout and dtype equal the input's."""
        ...
