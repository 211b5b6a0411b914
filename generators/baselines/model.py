"""The two trivial generators: ``identity`` (the raw simulator) and ``color_transfer``.

``color_transfer`` is Reinhard et al. (2001): per-channel mean/std matching in CIE Lab, with the
statistics of the simulator and of the real frames fitted once (``sim2real train-generator
--config configs/generators/color_transfer.yaml``) and stored as buffers in an ordinary
checkpoint, so it runs in the wrappers like any learned model. An optional Gaussian blur
imitates the real camera's softness. A learned translator that cannot beat these two is not done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from generators.base import TorchGenerator
from generators.color import gaussian_kernel, lab_transfer, rgb_to_lab
from generators.configs import check_image_size, config_from_dict
from generators.registry import register_method
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError

BLUR_KERNELS = (0, 3, 5)


@dataclass(frozen=True)
class IdentityConfig:
    """Only a size, so that the wrappers resize as for any generator."""

    image_size: tuple[int, int] = (120, 160)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "IdentityConfig", 1))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> IdentityConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values)


@register_method("identity")
class Identity(TorchGenerator):
    """Returns its input: the "no translation" row of every realism table."""

    method = "identity"
    config_class = IdentityConfig

    def __init__(self, config: IdentityConfig, direction: str = "sim->real") -> None:
        super().__init__(config, direction)
        # A buffer gives the parameterless module a device (TorchGenerator.device) and ONNX a graph.
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` -> the same values."""
        scale: torch.Tensor = self.scale  # type: ignore[assignment]
        return x * scale


@dataclass(frozen=True)
class ColorTransferConfig:
    """``blur``: Gaussian kernel size after the transfer (0 = none); ``blur_sigma`` its width in pixels.

    ``bands``: horizontal bands with their own statistics (1: Reinhard's global transfer). The top
    of a frame is backdrop and the bottom road, in different proportions and light in the two
    domains, so one global fit leaves the road the agent sees darker than the real road (benchmark
    frame statistics); per-band gains, interpolated between band centres, match each height.
    """

    image_size: tuple[int, int] = (120, 160)
    blur: int = 3
    blur_sigma: float = 0.8
    bands: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "ColorTransferConfig", 1))
        check_ints("ColorTransferConfig", self, {"bands": (1, 16)})
        if self.bands > self.image_size[0]:
            raise ConfigError(f"ColorTransferConfig.bands must be at most the image height, got {self.bands}")
        if self.blur not in BLUR_KERNELS or isinstance(self.blur, bool):
            raise ConfigError(f"ColorTransferConfig.blur must be one of {BLUR_KERNELS}, got {self.blur!r}")
        if isinstance(self.blur_sigma, bool) or not isinstance(self.blur_sigma, (int, float)):
            raise ConfigError(f"ColorTransferConfig.blur_sigma must be a number, got {self.blur_sigma!r}")
        if not 0.1 <= float(self.blur_sigma) <= 5.0:
            raise ConfigError(f"ColorTransferConfig.blur_sigma must be in [0.1, 5], got {self.blur_sigma!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ColorTransferConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values)


class LabStatistics(torch.nn.Module):
    """Running per-channel Lab sums of one domain (float64, so long fits do not drift).

    With ``bands > 1`` the sums are kept per horizontal band (shapes ``(bands,)`` and ``(3, bands)``);
    one band keeps the original scalar / ``(3,)`` buffers, so older checkpoints load unchanged.
    """

    def __init__(self, bands: int = 1) -> None:
        super().__init__()
        self.bands = bands
        shape: tuple[int, ...] = () if bands == 1 else (bands,)
        self.register_buffer("count", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("total", torch.zeros((3, *shape), dtype=torch.float64))
        self.register_buffer("total_sq", torch.zeros((3, *shape), dtype=torch.float64))

    @torch.no_grad()
    def update(self, frames: torch.Tensor) -> None:
        """Add a batch ``(N, 3, H, W)`` in ``[-1, 1]``."""
        lab = rgb_to_lab((frames.float() + 1.0) / 2.0).double()
        count: torch.Tensor = self.count  # type: ignore[assignment]
        total: torch.Tensor = self.total  # type: ignore[assignment]
        total_sq: torch.Tensor = self.total_sq  # type: ignore[assignment]
        height = lab.shape[2]
        # (H, bands) one-hot of each row's band: per-row sums -> per-band sums.
        band_of_row = torch.arange(height, device=lab.device) * self.bands // height
        rows = F.one_hot(band_of_row, self.bands).to(lab.dtype)
        pixels = rows.sum(dim=0) * lab.shape[0] * lab.shape[3]
        per_band = lab.sum(dim=(0, 3)) @ rows  # (3, bands)
        per_band_sq = (lab**2).sum(dim=(0, 3)) @ rows
        count.add_(pixels.view(count.shape))
        total.add_(per_band.view(total.shape))
        total_sq.add_(per_band_sq.view(total_sq.shape))

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) per Lab channel (and band), float32."""
        count: torch.Tensor = self.count  # type: ignore[assignment]
        total: torch.Tensor = self.total  # type: ignore[assignment]
        total_sq: torch.Tensor = self.total_sq  # type: ignore[assignment]
        n = count.clamp_min(1.0)
        mean = total / n
        std = (total_sq / n - mean**2).clamp_min(1e-6).sqrt()
        return mean.float(), std.float()


@register_method("color_transfer")
class ColorTransfer(TorchGenerator):
    """Lab mean/std transfer from the simulator's statistics to the real camera's, then a light blur."""

    method = "color_transfer"
    config_class = ColorTransferConfig

    def __init__(self, config: ColorTransferConfig, direction: str = "sim->real") -> None:
        super().__init__(config, direction)
        if direction != "sim->real":
            raise ConfigError(f"ColorTransfer translates sim->real only, got direction {direction!r}")
        self.sim_stats = LabStatistics(config.bands)
        self.real_stats = LabStatistics(config.bands)
        # The fitted transfer (float32): lab_out = lab * gain + offset, one row per band, refreshed by refit().
        self.register_buffer("gain", torch.ones(1, 3, config.bands, 1))
        self.register_buffer("offset", torch.zeros(1, 3, config.bands, 1))
        kernel = gaussian_kernel(config.blur, float(config.blur_sigma)) if config.blur else torch.ones(1, 1)
        self.register_buffer("kernel", kernel.expand(3, 1, *kernel.shape).clone(), persistent=False)

    @torch.no_grad()
    def refit(self) -> None:
        """Recompute gain and offset from the accumulated statistics."""
        sim_mean, sim_std = self.sim_stats.moments()
        real_mean, real_std = self.real_stats.moments()
        gain = real_std / sim_std
        bands = self.config.bands
        self.gain.copy_(gain.view(1, 3, bands, 1))  # type: ignore[operator]
        self.offset.copy_((real_mean - sim_mean * gain).view(1, 3, bands, 1))  # type: ignore[operator]

    def transfer(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` -> colour-transferred (not blurred), same range."""
        gain: torch.Tensor = self.gain  # type: ignore[assignment]
        offset: torch.Tensor = self.offset  # type: ignore[assignment]
        return lab_transfer(x, gain, offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` -> translated, same shape."""
        y = self.transfer(x)
        if self.config.blur:
            pad = self.config.blur // 2
            kernel: torch.Tensor = self.kernel  # type: ignore[assignment]
            y = F.conv2d(F.pad(y, (pad, pad, pad, pad), mode="replicate"), kernel, groups=3)
        return y
