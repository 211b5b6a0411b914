"""Training the STN + U-Net: MSE to the canonical frame + 1/4 x adversarial (Lomnitz et al. 2020).

Inputs come from two sources, mixed per batch:

* distortion augmentation of canonical frames, exactly the paper's (rotation +-5 deg, translation
  0.05, scale 0.8-1.1, shear 5 deg, brightness/contrast/saturation jitter 0.25, hue 0.1), drawn
  afresh for every batch; blur and sensor noise (the paper's proposed improvement) are options;
* paired simulator renders (RCAN, James et al. 2019): the domain-randomized frame of a pose as
  input and the canonical frame of the same pose as target, from ``sim2real harvest``
  (``paired_root``: its folder, with ``randomized/`` and ``canonical/``).

The loss is computed on a central crop (``crop_fraction``; the paper's centre crop fitted to our
frame size) so the border that a geometric distortion fills with padding does not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kornia.augmentation as K
import torch
from torch.nn import functional as F

from generators.base import uint8_to_float
from generators.configs import config_from_dict
from generators.data import FolderSpec, load_images
from generators.registry import register_trainer
from generators.stn_unet.model import Discriminator, STNUNet
from sim2real_env.errors import ConfigError, InputError
from sim2real_env.names import unknown_name_message

#: Multiplier of the [-1, 1] MSE for each ``mse_units``.
MSE_SCALE = {"pixel": 127.5**2, "unit": 1.0}


@dataclass(frozen=True)
class STNLosses:
    """Loss weights, crop and the training-input sources."""

    adversarial: float = 0.25
    #: Units of the MSE term: ``pixel`` (8-bit values, 0-255) or ``unit`` (the network's [-1, 1]).
    #: With ``unit``, lambda = 1/4 lets the adversarial term dominate: in a 4000-step run the MSE
    #: climbed from 0.14 to 0.58 and corrected frames turned to high-frequency noise. In pixel
    #: units the MSE is 127.5^2 times larger and lambda = 1/4 keeps it the leading term.
    mse_units: str = "pixel"
    crop_fraction: float = 0.9
    distortion: bool = True
    blur: bool = False
    noise: bool = False
    paired_root: str | None = None
    #: Share of each batch taken from paired renders when ``paired_root`` is set (rest: distortion).
    paired_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.mse_units not in MSE_SCALE:
            raise ConfigError(unknown_name_message("STNLosses.mse_units", str(self.mse_units), MSE_SCALE))
        if self.adversarial < 0:
            raise ConfigError(f"STNLosses.adversarial must be >= 0, got {self.adversarial!r}")
        if not 0.5 <= self.crop_fraction <= 1.0:
            raise ConfigError(f"STNLosses.crop_fraction must be in [0.5, 1], got {self.crop_fraction!r}")
        if not 0.0 <= self.paired_fraction <= 1.0:
            raise ConfigError(f"STNLosses.paired_fraction must be in [0, 1], got {self.paired_fraction!r}")
        if not self.distortion and not self.paired_root:
            raise ConfigError("STNLosses: enable distortion or set paired_root; there is no training input otherwise")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> STNLosses:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values, "losses")


class Distortion:
    """The paper's random geometric + photometric distortion of a batch in ``[-1, 1]``."""

    def __init__(self, blur: bool = False, noise: bool = False) -> None:
        ops: list[Any] = [
            K.RandomAffine(
                degrees=5.0, translate=(0.05, 0.05), scale=(0.8, 1.1), shear=5.0, padding_mode="border", p=1.0
            ),
            K.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.25, hue=0.1, p=1.0),
        ]
        if blur:
            ops.append(K.RandomGaussianBlur((5, 5), (0.1, 1.5), p=0.5))
        if noise:
            ops.append(K.RandomGaussianNoise(mean=0.0, std=0.03, p=0.5))
        self.pipeline = K.AugmentationSequential(*ops, data_keys=["input"])

    def __call__(self, canonical: torch.Tensor) -> torch.Tensor:
        """Distorted copy of ``canonical``."""
        out = self.pipeline((canonical + 1.0) / 2.0)
        return (out.clamp(0.0, 1.0) * 2.0 - 1.0).contiguous()


def centre_crop(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """The central ``fraction`` of height and width."""
    h, w = x.shape[-2:]
    dh, dw = round(h * (1 - fraction) / 2), round(w * (1 - fraction) / 2)
    return x[..., dh : h - dh, dw : w - dw]


@register_trainer("stn_unet")
class STNUNetTrainer:
    """Optimisers and one step; the runner's ``sim`` batch is the canonical target."""

    losses_class = STNLosses

    def __init__(self, model: STNUNet, losses: STNLosses, lr: float, beta1: float, seed: int) -> None:
        self.model = model
        self.losses = losses
        self.distort = Distortion(losses.blur, losses.noise)
        self.disc = Discriminator().to(model.device)
        self.opt_g = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(beta1, 0.999))
        self.pairs: tuple[torch.Tensor, torch.Tensor] | None = None
        if losses.paired_root:
            root = Path(losses.paired_root)
            size = model.image_size
            inputs = load_images(FolderSpec(root=str(root / "randomized"), split="all"), size)
            targets = load_images(FolderSpec(root=str(root / "canonical"), split="all"), size)
            if [Path(p).name for p in inputs.paths] != [Path(p).name for p in targets.paths]:
                raise InputError(f"paired_root {root}: randomized/ and canonical/ must hold the same file names")
            self.pairs = (inputs.images, targets.images)

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimiser, for the learning-rate schedule."""
        return [self.opt_g, self.opt_d]

    def _batch(self, canonical: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) for this step from the configured sources."""
        n = canonical.shape[0]
        n_paired = round(n * self.losses.paired_fraction) if self.pairs is not None else 0
        if not self.losses.distortion:
            n_paired = n
        inputs, targets = [], []
        if n - n_paired:
            target = canonical[: n - n_paired]
            inputs.append(self.distort(target))
            targets.append(target)
        if n_paired and self.pairs is not None:
            index = torch.randint(0, self.pairs[0].shape[0], (n_paired,))
            inputs.append(uint8_to_float(self.pairs[0][index].to(canonical.device)))
            targets.append(uint8_to_float(self.pairs[1][index].to(canonical.device)))
        return torch.cat(inputs), torch.cat(targets)

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """One generator and one discriminator update."""
        self.model.train()
        distorted, canonical = self._batch(sim)
        corrected = self.model(distorted)
        crop = self.losses.crop_fraction
        mse = F.mse_loss(centre_crop(corrected, crop), centre_crop(canonical, crop))
        # The generator is scored by the discriminator in eval mode (running batch-norm statistics):
        # in train mode a batch of only corrected frames gets its own statistics, and the generator
        # learns to fool those with high-frequency noise while its MSE climbs (seen in a long run).
        self.disc.requires_grad_(False)
        self.disc.eval()
        fooled = self.disc(corrected)
        self.disc.train()
        adversarial = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        loss = MSE_SCALE[self.losses.mse_units] * mse + self.losses.adversarial * adversarial
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.disc.requires_grad_(True)
        # One pass over canonical and corrected together, so batch norm sees both kinds of frames.
        logits = self.disc(torch.cat([canonical, corrected.detach()]))
        real_logits, fake_logits = logits[: canonical.shape[0]], logits[canonical.shape[0] :]
        loss_d = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        return {"g_total": float(loss.detach()), "recon": float(mse.detach()), "d_total": float(loss_d.detach())}

    @torch.no_grad()
    def sample_columns(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Columns after the (real) source: canonicalised."""
        self.model.eval()
        return [self.model(source)]

    @torch.no_grad()
    def distortion_columns(self, canonical: torch.Tensor) -> list[torch.Tensor]:
        """Distorted | corrected | canonical, for the distortion sample grid."""
        self.model.eval()
        distorted = self.distort(canonical)
        return [distorted, self.model(distorted), canonical]

    def state_dict(self) -> dict[str, Any]:
        """Discriminator and optimisers for exact resume."""
        return {"disc": self.disc.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.disc.load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
