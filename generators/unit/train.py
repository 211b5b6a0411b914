"""One UNIT training step: VAE (reconstruction + KL), cycle (reconstruction + KL), LSGAN losses.

Weights follow the paper's ratios (lambda_0..4 = 10, 0.1, 100, 0.1, 100), divided by 10 as in the
authors' reference configuration: adversarial 1, reconstruction 10, KL 0.01, cycle 10, cycle KL
0.01. As in the reference code the encoder predicts the mean of a unit-variance Gaussian, so the
KL term reduces to the mean squared latent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from generators.configs import config_from_dict
from generators.registry import register_trainer
from generators.unit.model import UNIT
from sim2real_env.errors import ConfigError


@dataclass(frozen=True)
class UNITLosses:
    """Loss weights (see module docstring)."""

    adversarial: float = 1.0
    reconstruction: float = 10.0
    kl: float = 0.01
    cycle: float = 10.0
    cycle_kl: float = 0.01

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"UNITLosses.{name} must be a number >= 0, got {value!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> UNITLosses:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values, "losses")


def _lsgan(outputs: list[torch.Tensor], real: bool) -> torch.Tensor:
    target = 1.0 if real else 0.0
    return sum((F.mse_loss(o, torch.full_like(o, target)) for o in outputs), torch.zeros(()))


def _kl(mu: torch.Tensor) -> torch.Tensor:
    return mu.pow(2).mean()


@register_trainer("unit")
class UNITTrainer:
    """Networks, optimisers and one step of UNIT; ``sim`` and ``real`` batches in ``[-1, 1]``."""

    losses_class = UNITLosses

    def __init__(self, model: UNIT, losses: UNITLosses, lr: float, beta1: float, seed: int) -> None:
        self.model = model
        self.losses = losses
        self.disc_sim, self.disc_real = (d.to(model.device) for d in model.discriminators())
        discriminators = list(self.disc_sim.parameters()) + list(self.disc_real.parameters())
        self.opt_g = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, 0.999), weight_decay=1e-4)
        self.opt_d = torch.optim.Adam(discriminators, lr=lr, betas=(beta1, 0.999), weight_decay=1e-4)

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimiser, for the learning-rate schedule."""
        return [self.opt_g, self.opt_d]

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """One generator update then one discriminator update; returns the losses."""
        m, w = self.model, self.losses
        m.train()
        for d in (self.disc_sim, self.disc_real):
            d.requires_grad_(False)
        mu_sim, mu_real = m.encode(sim, "sim"), m.encode(real, "real")
        z_sim = mu_sim + torch.randn_like(mu_sim)
        z_real = mu_real + torch.randn_like(mu_real)
        recon = F.l1_loss(m.decode(z_sim, "sim"), sim) + F.l1_loss(m.decode(z_real, "real"), real)
        fake_real, fake_sim = m.decode(z_sim, "real"), m.decode(z_real, "sim")
        mu_back_sim, mu_back_real = m.encode(fake_real, "real"), m.encode(fake_sim, "sim")
        cycle = F.l1_loss(m.decode(mu_back_sim + torch.randn_like(mu_back_sim), "sim"), sim) + F.l1_loss(
            m.decode(mu_back_real + torch.randn_like(mu_back_real), "real"), real
        )
        adversarial = _lsgan(self.disc_real(fake_real), True) + _lsgan(self.disc_sim(fake_sim), True)
        kl = _kl(mu_sim) + _kl(mu_real)
        cycle_kl = _kl(mu_back_sim) + _kl(mu_back_real)
        loss_g = (
            w.adversarial * adversarial + w.reconstruction * recon + w.kl * kl + w.cycle * cycle + w.cycle_kl * cycle_kl
        )
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()

        for d in (self.disc_sim, self.disc_real):
            d.requires_grad_(True)
        loss_d = (
            _lsgan(self.disc_real(real), True)
            + _lsgan(self.disc_real(fake_real.detach()), False)
            + _lsgan(self.disc_sim(sim), True)
            + _lsgan(self.disc_sim(fake_sim.detach()), False)
        )
        self.opt_d.zero_grad(set_to_none=True)
        (w.adversarial * loss_d).backward()
        self.opt_d.step()
        return {
            "g_total": float(loss_g.detach()),
            "g_adversarial": float(adversarial.detach()),
            "recon": float(recon.detach()),
            "cycle": float(cycle.detach()),
            "kl": float(kl.detach()),
            "d_total": float(loss_d.detach()),
        }

    @torch.no_grad()
    def sample_columns(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Columns after the source: translated, cycled back (latent means, no noise)."""
        m = self.model
        m.eval()
        src, dst = ("sim", "real") if m.direction == "sim->real" else ("real", "sim")
        translated = m.decode(m.encode(source, src), dst)
        return [translated, m.decode(m.encode(translated, dst), src)]

    def state_dict(self) -> dict[str, Any]:
        """Everything beyond the generator weights needed to resume exactly."""
        return {
            "disc_sim": self.disc_sim.state_dict(),
            "disc_real": self.disc_real.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.disc_sim.load_state_dict(state["disc_sim"])
        self.disc_real.load_state_dict(state["disc_real"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
