"""UNIT networks: two VAE-style encoders and two decoders that share their innermost layers.

Why shared layers: the last encoder block and the first decoder block are the same module for
both domains, which ties a sim frame and a real frame of the same scene to the same latent code
(the shared-latent-space assumption). sim->real = encode with the sim encoder, decode with the
real decoder. Shapes: ``(N, 3, H, W)`` in ``[-1, 1]``; ``H`` and ``W`` multiples of 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from generators.base import TorchGenerator
from generators.configs import check_image_size, config_from_dict
from generators.layers import ResidualBlock, conv_block
from generators.registry import register_method
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError


@dataclass(frozen=True)
class UNITConfig:
    """Architecture. ``blocks`` residual blocks per encoder/decoder, of which ``shared_blocks`` are shared.

    Discriminators: ``disc_scales`` image scales (multi-scale, each half the previous), each with
    ``disc_layers`` stride-2 convolutions of ``disc_width`` base channels.
    """

    image_size: tuple[int, int] = (60, 80)
    width: int = 16
    blocks: int = 3
    shared_blocks: int = 1
    disc_width: int = 32
    disc_layers: int = 3
    disc_scales: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "UNITConfig", 4))
        check_ints(
            "UNITConfig",
            self,
            {
                "width": (4, 256),
                "blocks": (1, 16),
                "disc_width": (4, 512),
                "disc_layers": (1, 6),
                "disc_scales": (1, 4),
            },
        )
        if not isinstance(self.shared_blocks, int) or not 1 <= self.shared_blocks <= self.blocks:
            raise ConfigError(
                f"UNITConfig.shared_blocks must be in [1, blocks={self.blocks}], got {self.shared_blocks!r}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> UNITConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values)


class Encoder(nn.Module):
    """Domain-private part of an encoder: c7s1-w, two stride-2 downsamplings, private residual blocks."""

    def __init__(self, width: int, private_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [*conv_block(3, width, 7), *conv_block(width, 2 * width, 3, 2)]
        layers += [*conv_block(2 * width, 4 * width, 3, 2)]
        layers += [ResidualBlock(4 * width) for _ in range(private_blocks)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> ``(N, 4w, H/4, W/4)``."""
        return self.net(x)


class Decoder(nn.Module):
    """Domain-private part of a decoder: private residual blocks, two resize-conv upsamplings, c7s1-3."""

    def __init__(self, width: int, private_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [ResidualBlock(4 * width) for _ in range(private_blocks)]
        for c_in, c_out in ((4 * width, 2 * width), (2 * width, width)):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *conv_block(c_in, c_out, 3)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, 4w, H/4, W/4)`` -> ``(N, 3, H, W)`` in ``[-1, 1]``."""
        return self.net(z)


class MultiScaleDiscriminator(nn.Module):
    """LSGAN critics at several image scales (Wang et al. 2018), as UNIT's reference code uses."""

    def __init__(self, width: int, layers: int, scales: int) -> None:
        super().__init__()
        self.critics = nn.ModuleList()
        for _ in range(scales):
            modules: list[nn.Module] = []
            channels = 3
            for i in range(layers):
                out = width * 2**i
                modules += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
                channels = out
            modules.append(nn.Conv2d(channels, 1, 1))
            self.critics.append(nn.Sequential(*modules))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One logit map per scale."""
        outputs = []
        for critic in self.critics:
            outputs.append(critic(x))
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return outputs


@register_method("unit")
class UNIT(TorchGenerator):
    """Encoders, shared latent blocks and decoders of both domains."""

    method = "unit"
    size_multiple = 4
    config_class = UNITConfig

    def __init__(self, config: UNITConfig, direction: str = "sim->real") -> None:
        super().__init__(config, direction)
        private = config.blocks - config.shared_blocks
        channels = 4 * config.width
        self.encode_sim = Encoder(config.width, private)
        self.encode_real = Encoder(config.width, private)
        self.encode_shared = nn.Sequential(*[ResidualBlock(channels) for _ in range(config.shared_blocks)])
        self.decode_shared = nn.Sequential(*[ResidualBlock(channels) for _ in range(config.shared_blocks)])
        self.decode_sim = Decoder(config.width, private)
        self.decode_real = Decoder(config.width, private)

    def encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """Latent mean ``(N, 4w, H/4, W/4)`` of frames from ``domain`` ("sim" or "real")."""
        private = self.encode_sim if domain == "sim" else self.encode_real
        return self.encode_shared(private(x))

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        """Frames of ``domain`` from latent codes."""
        private = self.decode_sim if domain == "sim" else self.decode_real
        return private(self.decode_shared(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate with the latent mean (no sampling noise at inference)."""
        source, target = ("sim", "real") if self.direction == "sim->real" else ("real", "sim")
        return self.decode(self.encode(x, source), target)

    def discriminators(self) -> tuple[MultiScaleDiscriminator, MultiScaleDiscriminator]:
        """Fresh (sim, real) multi-scale discriminators for training."""
        c = self.config
        return (
            MultiScaleDiscriminator(c.disc_width, c.disc_layers, c.disc_scales),
            MultiScaleDiscriminator(c.disc_width, c.disc_layers, c.disc_scales),
        )
