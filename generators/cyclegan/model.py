"""CycleGAN networks: ResNet generator (Johnson et al. 2016) and 70x70 PatchGAN discriminator.

Shapes: generators map ``(N, 3, H, W)`` float in ``[-1, 1]`` to the same; ``H`` and ``W`` must be
multiples of 4 (two stride-2 downsamplings). The discriminator maps an image to a grid of
real/fake logits, one per ~70x70 patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from generators.base import TorchGenerator
from generators.configs import check_image_size, config_from_dict
from generators.layers import PatchDiscriminator, ResnetGenerator
from generators.registry import register_method
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError

UPSAMPLING = ("resize", "transpose")


@dataclass(frozen=True)
class CycleGANConfig:
    """Architecture. The default is sized for CPU real time; ``reference()`` is the paper's.

    Default: 60x80 (the 160x120 camera halved), width 8, 6 blocks: 3.4 ms per frame at batch 1
    and 1.5 ms at batch 8 on 2 CPU cores (fp32, measured), under a quarter of a simulator step.
    Width 16 costs 6.4 / 3.5 ms; the reference (64, 9 blocks) 38 ms at 60x80.

    ``width``/``blocks``: generator channels after the first layer and residual blocks (paper:
    64 and 9). ``upsample="resize"`` (nearest upsample + conv) avoids the checkerboard artefacts
    of transposed convolutions (Odena et al. 2016). ``disc_width``/``disc_layers``: PatchGAN
    channels and stride-2 layers (3 gives the 70x70 receptive field).
    """

    image_size: tuple[int, int] = (60, 80)
    width: int = 8
    blocks: int = 6
    upsample: str = "resize"
    depthwise: bool = False
    #: Kernel of the first and last full-resolution convolutions (paper: 7; 3 is the fast choice).
    outer_kernel: int = 7
    disc_width: int = 64
    disc_layers: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "CycleGANConfig", 4))
        check_ints(
            "CycleGANConfig",
            self,
            {"width": (4, 256), "blocks": (0, 32), "disc_width": (4, 512), "disc_layers": (1, 6)},
        )
        if self.outer_kernel not in (3, 5, 7):
            raise ConfigError(f"CycleGANConfig.outer_kernel must be 3, 5 or 7, got {self.outer_kernel!r}")
        if not isinstance(self.depthwise, bool):
            raise ConfigError(f"CycleGANConfig.depthwise must be true or false, got {self.depthwise!r}")
        if self.upsample not in UPSAMPLING:
            raise ConfigError(f"CycleGANConfig.upsample must be one of {UPSAMPLING}, got {self.upsample!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CycleGANConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values)

    @classmethod
    def reference(cls, image_size: tuple[int, int] = (256, 256)) -> CycleGANConfig:
        """The paper's generator: 9 blocks at width 64 with transposed convolutions."""
        return cls(image_size=image_size, width=64, blocks=9, upsample="transpose")


@register_method("cyclegan")
class CycleGAN(TorchGenerator):
    """Both CycleGAN generators; :meth:`forward` runs the one for :attr:`direction`.

    ``sim->real`` uses :attr:`sim_to_real`; ``real->canonical`` uses :attr:`real_to_sim` (the
    canonical domain is the plain simulator render).
    """

    method = "cyclegan"
    size_multiple = 4
    config_class = CycleGANConfig

    def __init__(self, config: CycleGANConfig, direction: str = "sim->real") -> None:
        super().__init__(config, direction)
        self.sim_to_real = ResnetGenerator(
            config.width, config.blocks, config.upsample, config.depthwise, config.outer_kernel
        )
        self.real_to_sim = ResnetGenerator(
            config.width, config.blocks, config.upsample, config.depthwise, config.outer_kernel
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` -> translated, same shape."""
        net = self.sim_to_real if self.direction == "sim->real" else self.real_to_sim
        return net(x)

    def discriminators(self) -> tuple[PatchDiscriminator, PatchDiscriminator]:
        """Fresh (sim, real) discriminators for training, sized by the config."""
        return (
            PatchDiscriminator(self.config.disc_width, self.config.disc_layers),
            PatchDiscriminator(self.config.disc_width, self.config.disc_layers),
        )
