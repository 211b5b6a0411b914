"""The :class:`Trainer` protocol: what :func:`generators.training.train` needs from a method's trainer.

Each method's ``train.py`` holds one trainer class, registered with
:func:`generators.registry.register_trainer` under the method's name. The training loop builds it
as ``trainer_cls(model, trainer_cls.losses_class.from_dict(raw), lr, beta1, seed)`` and then only
calls the members below (plus ``distortion_columns`` where a trainer has it: STN-U-Net's).
Batches are ``(N, 3, H, W)`` float in ``[-1, 1]``.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class LossesClass(Protocol):
    """A method's loss-weights dataclass: built from the run config's ``losses`` mapping."""

    def from_dict(self, values: dict[str, Any]) -> Any:
        """The validated loss weights; unknown keys are an error."""
        ...


class Trainer(Protocol):
    """Networks beside the generator (discriminators, ...), their optimisers and one training step."""

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimiser, in a fixed order: the learning-rate schedules and their saved state follow it."""
        ...

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """One update on a ``sim`` and a ``real`` batch; returns the losses by name."""
        ...

    def sample_columns(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Columns of the sample grid for the fixed validation frames ``source`` (translation first)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything beyond the generator's weights that an exact resume needs."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        ...


class TrainerClass(Protocol):
    """A trainer class: its loss-weights class and its constructor."""

    @property
    def losses_class(self) -> LossesClass:
        """The method's loss weights (a frozen dataclass with ``from_dict``)."""
        ...

    def __call__(self, model: Any, losses: Any, lr: float, beta1: float, seed: int) -> Trainer:
        """Build the trainer of ``model`` with Adam at ``lr`` / ``beta1``, its randomness seeded by ``seed``."""
        ...
