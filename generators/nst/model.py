"""Feed-forward style network (Johnson et al. 2016): a ResNet translator trained with style losses.

Per-frame style transfer inside the env wrapper needs one forward pass, not an optimisation per
frame; this network learns to do in one pass what :mod:`generators.nst.optimize` does slowly.
Only the sim->real direction makes sense (the style is the real camera's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from generators.base import TorchGenerator
from generators.configs import check_image_size, config_from_dict
from generators.layers import ResnetGenerator
from generators.registry import register_method
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError


@dataclass(frozen=True)
class StyleNetConfig:
    """Architecture of the feed-forward style network (same family as CycleGAN's generator)."""

    image_size: tuple[int, int] = (60, 80)
    width: int = 8
    blocks: int = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "StyleNetConfig", 4))
        check_ints("StyleNetConfig", self, {"width": (4, 256), "blocks": (0, 32)})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StyleNetConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values)


@register_method("nst")
class StyleNet(TorchGenerator):
    """``(N, 3, H, W)`` in ``[-1, 1]`` -> stylised frames of the same shape."""

    method = "nst"
    size_multiple = 4
    config_class = StyleNetConfig

    def __init__(self, config: StyleNetConfig, direction: str = "sim->real") -> None:
        if direction != "sim->real":
            raise ConfigError(f"StyleNet only translates 'sim->real' (the real camera is the style), got {direction!r}")
        super().__init__(config, direction)
        self.net = ResnetGenerator(config.width, config.blocks, "resize")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stylise a batch."""
        return self.net(x)
