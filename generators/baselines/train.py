"""Fitting the baselines inside the one training loop: identity does nothing, colour transfer counts.

Each "step" of ``color_transfer`` adds a batch of simulator and of real frames to the running Lab
statistics, so a fit is resumable and reproducible like any other run; nothing is optimised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from generators.baselines.model import ColorTransfer, Identity
from generators.configs import config_from_dict
from generators.registry import register_trainer


@dataclass(frozen=True)
class NoLosses:
    """The baselines have no losses; the section must be empty."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NoLosses:
        """From a mapping; any key is an error."""
        return config_from_dict(cls, values, "losses")


@register_trainer("identity")
class IdentityTrainer:
    """Nothing to learn; the loop still writes a checkpoint, samples and the run record."""

    losses_class = NoLosses

    def __init__(self, model: Identity, losses: NoLosses, lr: float, beta1: float, seed: int) -> None:
        self.model = model
        self.optimizers: list[torch.optim.Optimizer] = []

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """No-op."""
        return {}

    @torch.no_grad()
    def sample_columns(self, source: torch.Tensor) -> list[torch.Tensor]:
        """The (unchanged) translation."""
        return [self.model(source)]

    def state_dict(self) -> dict[str, Any]:
        """Nothing beyond the checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


@register_trainer("color_transfer")
class ColorTransferTrainer(IdentityTrainer):
    """Accumulates Lab statistics of both domains, one batch of each per step."""

    def __init__(self, model: ColorTransfer, losses: NoLosses, lr: float, beta1: float, seed: int) -> None:
        self.model = model  # type: ignore[assignment]
        self.optimizers = []

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """Add the batches to the statistics and refit the transfer."""
        model: ColorTransfer = self.model  # type: ignore[assignment]
        model.sim_stats.update(sim)
        model.real_stats.update(real)
        model.refit()
        sim_mean, _ = model.sim_stats.moments()
        real_mean, _ = model.real_stats.moments()
        return {"sim_L": float(sim_mean[0].mean()), "real_L": float(real_mean[0].mean())}
