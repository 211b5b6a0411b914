"""STN + U-Net of Lomnitz et al. (2020): bring an off-canonical frame back to the canonical look.

A spatial transformer (small localisation CNN -> 6 affine parameters, initialised to the identity)
corrects the geometric part; a U-Net then sees the STN output concatenated with its per-channel
standard deviation broadcast to full size (6 channels) and predicts a residual that is *added* to
the STN output. Shapes: ``(N, 3, H, W)`` in ``[-1, 1]``; ``H``, ``W`` multiples of ``2**depth``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from generators.base import TorchGenerator
from generators.configs import check_image_size, config_from_dict
from generators.layers import double_conv
from generators.registry import register_method
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError


@dataclass(frozen=True)
class STNUNetConfig:
    """Architecture: U-Net ``width`` and ``depth`` (down/up levels); localisation CNN ``loc_width``."""

    image_size: tuple[int, int] = (64, 80)
    width: int = 16
    depth: int = 3
    loc_width: int = 8

    def __post_init__(self) -> None:
        check_ints("STNUNetConfig", self, {"width": (4, 128), "depth": (1, 5), "loc_width": (4, 64)})
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "STNUNetConfig", 2**self.depth))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> STNUNetConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values)


class SpatialTransformer(nn.Module):
    """Localisation CNN -> affine ``theta`` (N, 2, 3) -> ``grid_sample``; starts as the identity."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=2, padding=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 5, stride=2, padding=2),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((4, 4)),
            nn.Flatten(),
            nn.Linear(2 * width * 16, 32),
            nn.ReLU(inplace=True),
        )
        self.theta = nn.Linear(32, 6)
        nn.init.zeros_(self.theta.weight)
        with torch.no_grad():
            self.theta.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def affine(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted affine matrices ``(N, 2, 3)``."""
        return self.theta(self.features(x)).view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Resample ``x`` with the predicted affine transform (border padding)."""
        grid = F.affine_grid(self.affine(x), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def with_channel_std(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` -> ``(N, 6, H, W)``: the image and its per-channel std broadcast to full size."""
    std = x.flatten(2).std(dim=2, unbiased=False)[:, :, None, None].expand_as(x)
    return torch.cat([x, std], dim=1)


class UNet(nn.Module):
    """6 channels in, 3-channel residual out (no activation: it is added to the STN output)."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        channels = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([double_conv(6, channels[0])])
        self.down.extend(double_conv(channels[i], channels[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(double_conv(2 * channels[i], channels[i]) for i in reversed(range(depth)))
        self.out = nn.Conv2d(channels[0], 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder-decoder with skip connections."""
        skips = []
        y = self.down[0](x)
        for block in self.down[1:]:
            skips.append(y)
            y = block(F.max_pool2d(y, 2))
        for up, merge in zip(self.up, self.merge, strict=True):
            y = merge(torch.cat([up(y), skips.pop()], dim=1))
        return self.out(y)


@register_method("stn_unet")
class STNUNet(TorchGenerator):
    """``real->canonical``: STN, then U-Net residual on ``[STN output, its channel std]``."""

    method = "stn_unet"
    #: The localisation net's adaptive pooling does not export to ONNX at a symbolic frame size.
    onnx_dynamic_size = False
    #: Batch normalisation (inference statistics) works on a single position at the bottleneck.
    min_positions = 1
    config_class = STNUNetConfig

    def __init__(self, config: STNUNetConfig, direction: str = "real->canonical") -> None:
        if direction != "real->canonical":
            raise ConfigError(f"STNUNet only translates 'real->canonical', got {direction!r}")
        super().__init__(config, direction)
        self.size_multiple = 2**config.depth
        self.stn = SpatialTransformer(config.loc_width)
        self.unet = UNet(config.width, config.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Corrected frames, clamped to ``[-1, 1]``."""
        aligned = self.stn(x)
        return (aligned + self.unet(with_channel_std(aligned))).clamp(-1.0, 1.0)


class Discriminator(nn.Module):
    """Three blocks of convolution -> ReLU -> batch norm, then a linear layer (one logit per image)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i in range(3):
            out = width * 2**i
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(out)]
            channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d((4, 4)), nn.Flatten())
        self.linear = nn.Linear(channels * 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> ``(N, 1)`` logits."""
        return self.linear(self.features(x))
