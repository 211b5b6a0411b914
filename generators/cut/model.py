"""The CUT generator: a ResNet translator whose encoder layers also feed PatchNCE.

Shapes: ``(N, 3, H, W)`` float in ``[-1, 1]`` in and out; ``H`` and ``W`` multiples of 4.

``prior: color_transfer`` makes the network a *residual on top of the Lab colour transfer*:
``out = tanh(atanh(ct(x)) + r(ct(x)))`` with the last convolution zero-initialised, so training
starts exactly at the colour-transfer baseline and the adversarial and contrastive losses only
have to learn what a global colour map cannot (texture, blur, the dark background instead of the
simulator's sky). The transfer's gain and offset are buffers of this checkpoint; they are copied
once from a fitted ``color_transfer`` checkpoint (``prior_checkpoint``) when training starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from generators.base import TorchGenerator
from generators.color import atanh, lab_transfer
from generators.configs import check_image_size, config_from_dict
from generators.cyclegan.model import UPSAMPLING
from generators.layers import ResnetGenerator
from generators.registry import register_method
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError

PRIORS = ("none", "color_transfer")
#: Index of the first residual block in ``ResnetGenerator.net`` (3 conv blocks of 4 modules).
FIRST_BLOCK = 12


@dataclass(frozen=True)
class CUTConfig:
    """Architecture of the CUT generator (the discriminator and losses live in ``CUTLosses``).

    ``nce_layers``: indices into the generator's ``net`` whose outputs PatchNCE compares (0 is the
    padded input, 3/7/11 the three encoder convolutions, 12+ residual blocks; CUT's choice is the
    same five levels). Default 120x160: the env's camera size.
    """

    image_size: tuple[int, int] = (120, 160)
    width: int = 16
    blocks: int = 6
    outer_kernel: int = 3
    upsample: str = "resize"
    nce_layers: tuple[int, ...] = (0, 3, 7, 11, 13)
    prior: str = "color_transfer"
    #: The fitted ``color_transfer`` checkpoint the prior is initialised from (recorded for provenance).
    prior_checkpoint: str | None = "pretrained:color_transfer"
    #: Horizontal bands of that checkpoint's fit (its ``bands``; 1: one global transfer).
    prior_bands: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "CUTConfig", 4))
        check_ints("CUTConfig", self, {"width": (4, 256), "blocks": (1, 32), "prior_bands": (1, 16)})
        if self.outer_kernel not in (3, 5, 7) or isinstance(self.outer_kernel, bool):
            raise ConfigError(f"CUTConfig.outer_kernel must be 3, 5 or 7, got {self.outer_kernel!r}")
        if self.upsample not in UPSAMPLING:
            raise ConfigError(f"CUTConfig.upsample must be one of {UPSAMPLING}, got {self.upsample!r}")
        if self.prior not in PRIORS:
            raise ConfigError(f"CUTConfig.prior must be one of {PRIORS}, got {self.prior!r}")
        layers = tuple(self.nce_layers)
        top = FIRST_BLOCK + self.blocks - 1
        if (
            not layers
            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= top for i in layers)
            or list(layers) != sorted(set(layers))
        ):
            raise ConfigError(
                f"CUTConfig.nce_layers must be increasing distinct integers in [0, {top}] "
                f"(12 + blocks - 1), got {self.nce_layers!r}"
            )
        object.__setattr__(self, "nce_layers", layers)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CUTConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values)

    def layer_channels(self) -> list[int]:
        """Channels of each NCE layer's output."""
        w = self.width

        def channels(index: int) -> int:
            if index < 3:
                return 3
            if index < 7:
                return w
            if index < 11:
                return 2 * w
            return 4 * w

        return [channels(i) for i in self.nce_layers]


@register_method("cut")
class CUT(TorchGenerator):
    """One sim->real generator (CUT has no inverse network)."""

    method = "cut"
    size_multiple = 4
    config_class = CUTConfig

    def __init__(self, config: CUTConfig, direction: str = "sim->real") -> None:
        super().__init__(config, direction)
        self.net = ResnetGenerator(config.width, config.blocks, config.upsample, False, config.outer_kernel)
        self.residual = config.prior != "none"
        if self.residual:
            layers = self.net.net
            layers[-1] = nn.Identity()  # no tanh: the output is tanh(atanh(prior) + residual)
            last = layers[-2]
            if not isinstance(last, nn.Conv2d) or last.bias is None:
                raise TypeError("CUT: ResnetGenerator must end with a biased convolution before its tanh")
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        # The colour prior (identity until fitted): lab_out = lab * gain + offset.
        self.register_buffer("prior_gain", torch.ones(1, 3, config.prior_bands, 1))
        self.register_buffer("prior_offset", torch.zeros(1, 3, config.prior_bands, 1))
        self.register_buffer("prior_ready", torch.zeros(()))

    @torch.no_grad()
    def set_prior(self, gain: torch.Tensor, offset: torch.Tensor) -> None:
        """Copy a fitted colour transfer into the prior buffers."""
        bands = self.config.prior_bands
        if gain.numel() != 3 * bands:
            raise ConfigError(
                f"CUTConfig.prior_bands is {bands} but the prior checkpoint's colour transfer has "
                f"{gain.numel() // 3} band(s); set model.prior_bands={gain.numel() // 3}"
            )
        self.prior_gain.copy_(gain.reshape(1, 3, bands, 1))  # type: ignore[operator]
        self.prior_offset.copy_(offset.reshape(1, 3, bands, 1))  # type: ignore[operator]
        self.prior_ready.fill_(1.0)  # type: ignore[operator]

    def prior(self, x: torch.Tensor) -> torch.Tensor:
        """The colour-transferred input (:func:`~generators.color.lab_transfer`; ``x`` itself when ``prior: none``)."""
        if not self.residual:
            return x
        gain: torch.Tensor = self.prior_gain  # type: ignore[assignment]
        offset: torch.Tensor = self.prior_offset  # type: ignore[assignment]
        return lab_transfer(x, gain, offset)

    def decode(self, base: torch.Tensor) -> torch.Tensor:
        """The network applied to its (prior-transformed) input."""
        out = self.net(base)
        if not self.residual:
            return out
        return torch.tanh(atanh(base) + out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` -> translated, same shape."""
        return self.decode(self.prior(x))

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the ``nce_layers`` of the network for input ``x`` (no prior applied)."""
        feats = []
        wanted = self.config.nce_layers
        y = x
        for index, layer in enumerate(self.net.net):
            y = layer(y)
            if index in wanted:
                feats.append(y)
            if index >= wanted[-1]:
                break
        return feats
