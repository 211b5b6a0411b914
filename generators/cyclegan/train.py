"""One CycleGAN training step (Zhu et al. 2017): LSGAN, cycle 10, identity 0.5, image pool 50."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from generators.configs import config_from_dict
from generators.cyclegan.model import CycleGAN
from generators.distributed import gather_batch, own_rows
from generators.projected import build_discriminator, discriminator_loss, freeze_for_generator_step, generator_loss
from generators.registry import register_trainer


@dataclass(frozen=True)
class CycleGANLosses:
    """Loss weights and the image pool; defaults are the paper's."""

    lambda_cycle: float = 10.0
    #: Identity loss weight relative to ``lambda_cycle`` (paper: 0.5).
    lambda_identity: float = 0.5
    pool_size: int = 50
    #: ``patch`` (the paper's 70x70 PatchGAN, LSGAN) or ``projected`` (frozen EfficientNet-Lite0
    #: features, hinge loss, DiffAugment: Sauer et al. 2021), for both domains.
    discriminator: str = "patch"

    def __post_init__(self) -> None:
        if self.discriminator not in ("patch", "projected"):
            raise ValueError(f"losses.discriminator must be 'patch' or 'projected', got {self.discriminator!r}")
        if self.lambda_cycle < 0 or self.lambda_identity < 0:
            raise ValueError(f"CycleGANLosses weights must be >= 0, got {self}")
        if isinstance(self.pool_size, bool) or not isinstance(self.pool_size, int) or self.pool_size < 0:
            raise ValueError(f"CycleGANLosses.pool_size must be an integer >= 0, got {self.pool_size!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CycleGANLosses:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values, "losses")


class ImagePool:
    """History of generated images (Shrivastava et al. 2017): the discriminator sees old fakes too."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = generator

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch where each image is, with probability 1/2, swapped for a stored one."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(1, generator=self.rng).item() < 0.5:
                index = int(torch.randint(0, self.size, (1,), generator=self.rng).item())
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        """Stored images and RNG state, for exact resume."""
        return {"images": [i.cpu() for i in self.images], "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        """Inverse of :meth:`state_dict`."""
        self.images = [i.to(device) for i in state["images"]]
        self.rng.set_state(state["rng"])


def _lsgan(prediction: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(prediction) if real else torch.zeros_like(prediction)
    return F.mse_loss(prediction, target)


@register_trainer("cyclegan")
class CycleGANTrainer:
    """Networks, optimisers and one step of CycleGAN; ``sim`` and ``real`` batches in ``[-1, 1]``."""

    losses_class = CycleGANLosses
    #: Batch the independent passes of a step (same result up to float rounding; faster on the CPU).
    joint_passes = True

    def __init__(self, model: CycleGAN, losses: CycleGANLosses, lr: float, beta1: float, seed: int) -> None:
        self.model = model
        self.losses = losses
        device = model.device
        self.projected = losses.discriminator == "projected"
        if self.projected:
            self.disc_sim, sim_params = build_discriminator("projected", 0, 0, seed)
            self.disc_real, real_params = build_discriminator("projected", 0, 0, seed + 1)
            discriminators = sim_params + real_params
        else:
            self.disc_sim, self.disc_real = model.discriminators()
            discriminators = list(self.disc_sim.parameters()) + list(self.disc_real.parameters())
        self.disc_sim.to(device)
        self.disc_real.to(device)
        self.rng = torch.Generator().manual_seed(seed + 3)
        generators = list(model.sim_to_real.parameters()) + list(model.real_to_sim.parameters())
        # fused: one kernel for the whole parameter list instead of a dozen per-tensor ops.
        self.opt_g = torch.optim.Adam(generators, lr=lr, betas=(beta1, 0.999), fused=True)
        self.opt_d = torch.optim.Adam(discriminators, lr=lr, betas=(beta1, 0.999), fused=True)
        self.pool_sim = ImagePool(losses.pool_size, torch.Generator().manual_seed(seed + 1))
        self.pool_real = ImagePool(losses.pool_size, torch.Generator().manual_seed(seed + 2))

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimiser, for the learning-rate schedule."""
        return [self.opt_g, self.opt_d]

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """One generator update then one discriminator update; returns the losses."""
        m, w = self.model, self.losses
        m.train()
        rng = self.rng if self.projected else None
        for d in (self.disc_sim, self.disc_real):
            freeze_for_generator_step(d, True)
        if w.lambda_identity > 0 and self.joint_passes:
            # Each generator's translation and identity pass in one batch: instance norm is per image,
            # so this is the same function of the weights, and one larger convolution is cheaper on
            # the CPU than two small ones (bench-generators, "joint passes").
            fake_real, idt_real = m.sim_to_real(torch.cat([sim, real])).split(sim.shape[0])
            fake_sim, idt_sim = m.real_to_sim(torch.cat([real, sim])).split(real.shape[0])
        else:
            fake_real = m.sim_to_real(sim)
            fake_sim = m.real_to_sim(real)
            idt_real = m.sim_to_real(real) if w.lambda_identity > 0 else real
            idt_sim = m.real_to_sim(sim) if w.lambda_identity > 0 else sim
        cycle = F.l1_loss(m.real_to_sim(fake_real), sim) + F.l1_loss(m.sim_to_real(fake_sim), real)
        adversarial = generator_loss(self.disc_real, fake_real, self.projected, rng) + generator_loss(
            self.disc_sim, fake_sim, self.projected, rng
        )
        identity = torch.zeros((), device=sim.device)
        if w.lambda_identity > 0:
            identity = F.l1_loss(idt_real, real) + F.l1_loss(idt_sim, sim)
        loss_g = adversarial + w.lambda_cycle * cycle + w.lambda_cycle * w.lambda_identity * identity
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()

        for d in (self.disc_sim, self.disc_real):
            freeze_for_generator_step(d, False)
        # Under torchrun the pools see every rank's fakes (the global batch), so they and their draws
        # are the same on all ranks and equal one process's with that batch; each rank keeps its rows.
        old_real = own_rows(self.pool_real.query(gather_batch(fake_real)))
        old_sim = own_rows(self.pool_sim.query(gather_batch(fake_sim)))
        joint = self.joint_passes and not self.projected  # (DiffAugment draws per call: kept apart)
        loss_d_real = discriminator_loss(self.disc_real, real, old_real.detach(), self.projected, rng, joint=joint)
        loss_d_sim = discriminator_loss(self.disc_sim, sim, old_sim.detach(), self.projected, rng, joint=joint)
        self.opt_d.zero_grad(set_to_none=True)
        (loss_d_real + loss_d_sim).backward()
        self.opt_d.step()
        return {
            "g_total": float(loss_g.detach()),
            "g_adversarial": float(adversarial.detach()),
            "cycle": float(cycle.detach()),
            "identity": float(identity.detach()),
            "d_real": float(loss_d_real.detach()),
            "d_sim": float(loss_d_sim.detach()),
        }

    @torch.no_grad()
    def sample_columns(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Columns of the sample grid after the source: translated, cycled back."""
        m = self.model
        m.eval()
        forward, backward = (
            (m.sim_to_real, m.real_to_sim) if m.direction == "sim->real" else (m.real_to_sim, m.sim_to_real)
        )
        translated = forward(source)
        return [translated, backward(translated)]

    def state_dict(self) -> dict[str, Any]:
        """Everything beyond the generator weights needed to resume exactly."""
        return {
            "disc_sim": self.disc_sim.state_dict(),
            "disc_real": self.disc_real.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "pool_sim": self.pool_sim.state_dict(),
            "pool_real": self.pool_real.state_dict(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        device = self.model.device
        self.disc_sim.load_state_dict(state["disc_sim"])
        self.disc_real.load_state_dict(state["disc_real"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.pool_sim.load_state_dict(state["pool_sim"], device)
        self.pool_real.load_state_dict(state["pool_real"], device)
        if "rng" in state:  # checkpoints from before the projected option have none (and need none)
            self.rng.set_state(state["rng"])


def trainable_modules(trainer: CycleGANTrainer) -> list[nn.Module]:
    """Modules whose weights change during training (for tests)."""
    return [trainer.model, trainer.disc_sim, trainer.disc_real]
