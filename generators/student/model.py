"""The student: a translator cheap enough to run on every simulator step at the camera's size.

Why this shape: at 120x160 even the smallest ResNet translator costs several times the simulator
step on 2 CPU cores, and even the Lab colour transfer's ``pow`` calls cost ~1 ms. Most of what a
sim->real teacher does is per-pixel colour or smooth in space (exposure, the dark background
instead of the sky), so the student splits the work into three cheap branches, summed before a
tanh:

* *colour*: a per-pixel MLP (1x1 convolutions 3 -> ``color_width`` -> 3), which learns the
  teacher's colour map (the colour-transfer prior included);
* *context*: a few 3x3 convolutions on a 1/``factor`` average-pooled copy (30x40 for factor 4),
  upsampled bilinearly: the smooth, spatially varying part;
* *detail*: a depthwise 3x3 convolution at full resolution, then 1x1 convolutions through
  ``detail_width`` channels back to RGB: blur, sharpening, edge softness.

``row_bias``: a learned bias per image row on the colour MLP's hidden layer. A per-pixel MLP
cannot know where in the frame a pixel is, but the teacher's colour map depends on the row (the
banded colour-transfer prior has its own Lab statistics for the backdrop and for the road, and
the camera sees the road's distance by row); the bias lets the colour branch follow that for
``color_width`` x H parameters and one broadcast add. Off in checkpoints written before it.

Shapes: ``(N, 3, H, W)`` in ``[-1, 1]``; H, W multiples of ``factor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from generators.base import TorchGenerator
from generators.configs import check_image_size, config_from_dict
from generators.registry import register_method
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError


@dataclass(frozen=True)
class StudentConfig:
    """Architecture of the student."""

    image_size: tuple[int, int] = (120, 160)
    #: Downsampling of the context branch.
    factor: int = 4
    context_width: int = 16
    context_layers: int = 3
    detail_width: int = 8
    color_width: int = 16
    row_bias: bool = False

    def __post_init__(self) -> None:
        check_ints(
            "StudentConfig",
            self,
            {
                "factor": (1, 16),
                "context_width": (4, 256),
                "context_layers": (2, 16),
                "detail_width": (1, 64),
                "color_width": (1, 256),
            },
        )
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "StudentConfig", self.factor))
        if not isinstance(self.row_bias, bool):
            raise ConfigError(f"StudentConfig.row_bias must be true or false, got {self.row_bias!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StudentConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values)


@register_method("student")
class Student(TorchGenerator):
    """Colour transfer + low-resolution context + full-resolution detail (see the module docstring)."""

    method = "student"
    config_class = StudentConfig

    def __init__(self, config: StudentConfig, direction: str = "sim->real") -> None:
        super().__init__(config, direction)
        if direction != "sim->real":
            raise ConfigError(f"Student translates sim->real only, got direction {direction!r}")
        self.size_multiple = config.factor
        w = config.context_width
        layers: list[nn.Module] = [nn.Conv2d(3, w, 3, padding=1, padding_mode="replicate"), nn.ReLU(inplace=True)]
        for _ in range(config.context_layers - 2):
            layers += [nn.Conv2d(w, w, 3, padding=1, padding_mode="replicate"), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(w, 3, 3, padding=1, padding_mode="replicate"))
        self.context = nn.Sequential(*layers)
        self.detail = nn.Sequential(  # depthwise 3x3 then pointwise: a dense 3x3 on RGB is slow in ORT
            nn.Conv2d(3, 3, 3, padding=1, padding_mode="replicate", groups=3),
            nn.Conv2d(3, config.detail_width, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(config.detail_width, 3, 1),
        )
        c = config.color_width
        self.color = nn.Sequential(
            nn.Conv2d(3, c, 1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 1), nn.ReLU(inplace=True), nn.Conv2d(c, 3, 1)
        )
        self.row_bias = nn.Parameter(torch.zeros(1, c, config.image_size[0], 1)) if config.row_bias else None
        for last in (self.context[-1], self.detail[-1]):
            if isinstance(last, nn.Conv2d) and last.bias is not None:
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` -> translated, same shape."""
        factor = self.config.factor
        small = F.avg_pool2d(x, factor) if factor > 1 else x
        context = self.context(small)
        if factor > 1:
            context = F.interpolate(context, scale_factor=float(factor), mode="bilinear", align_corners=False)
        if self.row_bias is None:
            color = self.color(x)
        else:  # the frame's height is the config's (the wrapper resizes to image_size)
            color = self.color[0](x) + self.row_bias
            for index in range(1, len(self.color)):  # no slicing: that builds a new Sequential per frame
                color = self.color[index](color)
        return torch.tanh(color + context + self.detail(x))
