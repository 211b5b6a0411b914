"""One training step of CUT / FastCUT, with a PatchGAN or a projected discriminator.

CUT (Park et al. 2020): adversarial loss + PatchNCE between input and output patches on several
encoder layers (256 patches per layer, temperature 0.07, negatives from the same image), plus
identity NCE on real frames; FastCUT: no identity NCE, lambda_NCE 10 and flip-equivariance.
Optional CyCADA semantic consistency (Hoffman et al. 2018): a frozen lane-marking segmenter must
find the same classes in the translated frame as in the simulator frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from generators.configs import config_from_dict
from generators.cut.model import CUT
from generators.markings import marking_color_loss
from generators.projected import build_discriminator, discriminator_loss, freeze_for_generator_step, generator_loss
from generators.registry import register_trainer
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError

MODES = ("cut", "fastcut")
DISCRIMINATORS = ("patch", "projected")


@dataclass(frozen=True)
class CUTLosses:
    """Loss weights and the discriminator; ``None`` fields take the ``mode``'s paper value."""

    mode: str = "cut"
    lambda_gan: float = 1.0
    #: CUT 1, FastCUT 10.
    lambda_nce: float | None = None
    #: Identity NCE on real frames (CUT yes, FastCUT no).
    nce_idt: bool | None = None
    #: Flip-equivariance of the NCE features (FastCUT yes).
    flip_equivariance: bool | None = None
    num_patches: int = 256
    nce_temperature: float = 0.07
    mlp_width: int = 256
    discriminator: str = "patch"
    #: PatchGAN size (``discriminator: patch``).
    disc_width: int = 64
    disc_layers: int = 3
    #: Differentiable augmentation of D's inputs (always on for ``projected``).
    diff_augment: bool = False
    #: A ``sim2real train-segmenter`` checkpoint: CyCADA semantic consistency when set.
    segmenter: str | None = None
    lambda_semantic: float = 1.0
    #: The robot's calibrated marking colours as a loss (:mod:`generators.markings`); needs ``segmenter``.
    lambda_marking: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"losses.mode must be one of {MODES}, got {self.mode!r}")
        if self.discriminator not in DISCRIMINATORS:
            raise ConfigError(f"losses.discriminator must be one of {DISCRIMINATORS}, got {self.discriminator!r}")
        fast = self.mode == "fastcut"
        defaults = {"lambda_nce": 10.0 if fast else 1.0, "nce_idt": not fast, "flip_equivariance": fast}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("nce_idt", "flip_equivariance", "diff_augment"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"losses.{name} must be true or false, got {getattr(self, name)!r}")
        if self.lambda_marking and not self.segmenter:
            raise ValueError("losses.lambda_marking needs losses.segmenter (the marking labels come from it)")
        for name in ("lambda_gan", "lambda_nce", "lambda_semantic", "lambda_marking", "nce_temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
                raise ConfigError(f"losses.{name} must be a number in [0, 1000], got {value!r}")
        if not self.nce_temperature > 0:
            raise ConfigError(f"losses.nce_temperature must be > 0, got {self.nce_temperature!r}")
        check_ints(
            "losses",
            self,
            {"num_patches": (1, 4096), "mlp_width": (8, 2048), "disc_width": (4, 512), "disc_layers": (1, 6)},
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CUTLosses:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values, "losses")


class PatchSampleMLP(nn.Module):
    """Per-layer 2-layer MLP heads that project sampled patch features to a unit sphere."""

    def __init__(self, channels: list[int], width: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c, width), nn.ReLU(inplace=True), nn.Linear(width, width)) for c in channels
        )

    def forward(self, feats: list[torch.Tensor], ids: list[torch.Tensor]) -> list[torch.Tensor]:
        """``(N, C, H, W)`` per layer + patch indices -> ``(N, P, width)`` unit vectors per layer."""
        out = []
        for feat, index, head in zip(feats, ids, self.heads, strict=True):
            flat = feat.flatten(2).transpose(1, 2)  # (N, HW, C)
            picked = flat[:, index.to(feat.device)]  # (N, P, C)
            out.append(F.normalize(head(picked), dim=-1))
        return out


def patch_nce(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE of ``(N, P, C)`` unit vectors: each query's positive is its own key, negatives the other patches."""
    key = key.detach()
    positive = (query * key).sum(-1, keepdim=True)  # (N, P, 1)
    negative = query @ key.transpose(1, 2)  # (N, P, P)
    eye = torch.eye(query.shape[1], dtype=torch.bool, device=query.device)
    negative = negative.masked_fill(eye, -10.0)
    logits = torch.cat([positive, negative], dim=-1) / temperature
    target = torch.zeros(logits.shape[:2], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


@register_trainer("cut")
class CUTTrainer:
    """Generator, patch MLP, discriminator, optimisers and one step; batches in ``[-1, 1]``."""

    losses_class = CUTLosses

    def __init__(self, model: CUT, losses: CUTLosses, lr: float, beta1: float, seed: int) -> None:
        self.model = model
        self.losses = losses
        device = model.device
        if model.residual and not bool(model.prior_ready):
            _init_prior(model)
        self.mlp = PatchSampleMLP(model.config.layer_channels(), losses.mlp_width).to(device)
        self.projected = losses.discriminator == "projected"
        self.disc, disc_params = build_discriminator(losses.discriminator, losses.disc_width, losses.disc_layers, seed)
        self.disc.to(device)
        self.augment = self.projected or losses.diff_augment
        self.opt_g = torch.optim.Adam([*model.parameters(), *self.mlp.parameters()], lr=lr, betas=(beta1, 0.999))
        self.opt_d = torch.optim.Adam(disc_params, lr=lr, betas=(beta1, 0.999))
        self.rng = torch.Generator().manual_seed(seed + 11)
        self.segmenter: nn.Module | None = None
        if losses.segmenter:
            from generators.segmenter import load_segmenter

            self.segmenter = load_segmenter(losses.segmenter).to(device).eval().requires_grad_(False)

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimiser, for the learning-rate schedule."""
        return [self.opt_g, self.opt_d]

    def _rng(self) -> torch.Generator | None:
        return self.rng if self.augment else None

    def _nce(self, source: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        """PatchNCE between the network's input ``source`` and its output ``translated``."""
        m, w = self.model, self.losses
        keys = m.encode(source)
        queries = m.encode(translated)
        ids = []
        for feat in keys:
            positions = feat.shape[2] * feat.shape[3]
            ids.append(torch.randperm(positions, generator=self.rng)[: min(w.num_patches, positions)])
        key_vecs = self.mlp(keys, ids)
        query_vecs = self.mlp(queries, ids)
        total = sum(
            (patch_nce(q, k, w.nce_temperature) for q, k in zip(query_vecs, key_vecs, strict=True)),
            torch.zeros((), device=source.device),
        )
        return total / len(keys)

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """One discriminator update, then one generator (+ MLP) update; returns the losses."""
        m, w = self.model, self.losses
        m.train()
        flipped = bool(w.flip_equivariance) and bool(torch.rand((), generator=self.rng) < 0.5)
        base = m.prior(sim)
        fake = m.decode(torch.flip(base, dims=[3]) if flipped else base)
        if flipped:
            # Flip-equivariance: translate the mirrored frame and mirror the output back, so that the
            # discriminator never sees a mirrored road (Duckietown drives on the right) and PatchNCE
            # ties flip(G(flip(x))) to x.
            fake = torch.flip(fake, dims=[3])
        # Discriminator.
        freeze_for_generator_step(self.disc, False)
        loss_d = discriminator_loss(self.disc, real, fake.detach(), self.projected, self._rng())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        # Generator.
        freeze_for_generator_step(self.disc, True)
        adversarial = generator_loss(self.disc, fake, self.projected, self._rng())
        nce = self._nce(base, fake)
        nce_idt = torch.zeros((), device=sim.device)
        if w.nce_idt:
            real_base = m.prior(real)
            nce_idt = self._nce(real_base, m.decode(real_base))
        semantic = torch.zeros((), device=sim.device)
        marking = torch.zeros((), device=sim.device)
        if self.segmenter is not None:
            with torch.no_grad():
                labels = self.segmenter(sim).argmax(1)
            semantic = F.cross_entropy(self.segmenter(fake), labels)
            if w.lambda_marking:
                marking = marking_color_loss((fake + 1.0) / 2.0, labels)
        nce_total = (nce + nce_idt) * 0.5 if w.nce_idt else nce
        loss_g = (
            w.lambda_gan * adversarial
            + float(w.lambda_nce or 0) * nce_total
            + w.lambda_semantic * semantic
            + w.lambda_marking * marking
        )
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {
            "g_total": float(loss_g.detach()),
            "g_adversarial": float(adversarial.detach()),
            "nce": float(nce.detach()),
            "nce_idt": float(nce_idt.detach()),
            "semantic": float(semantic.detach()),
            "marking": float(marking.detach()),
            "d_real": float(loss_d.detach()),
        }

    @torch.no_grad()
    def sample_columns(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Columns of the sample grid after the source: the colour prior, the translation."""
        self.model.eval()
        return [self.model.prior(source), self.model(source)]

    def state_dict(self) -> dict[str, Any]:
        """Everything beyond the generator weights needed to resume exactly."""
        return {
            "mlp": self.mlp.state_dict(),
            "disc": self.disc.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.mlp.load_state_dict(state["mlp"])
        self.disc.load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"])


def _init_prior(model: CUT) -> None:
    """Copy the colour transfer of ``model.config.prior_checkpoint`` into the model's prior."""
    from generators.checkpoint import CheckpointError, load_generator

    path = model.config.prior_checkpoint
    if not path:
        raise CheckpointError("CUTConfig.prior 'color_transfer' needs prior_checkpoint (a color_transfer checkpoint)")
    fitted = load_generator(path, method="color_transfer")
    model.set_prior(fitted.gain, fitted.offset)


def trainable_modules(trainer: CUTTrainer) -> list[nn.Module]:
    """Modules whose weights change during training (for tests)."""
    return [trainer.model, trainer.mlp, trainer.disc]
