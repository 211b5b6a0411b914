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

``pixel_bias``: the same with a bias per pixel (``color_width`` x H x W). The camera is fixed on
the robot, so where a pixel lies in the frame says much of what it sees: the teacher paints the
room behind the track into the sky region and darkens the corners, structure that the sim frame
does not hold and that a per-pixel colour map (even per row) smooths away. The add costs the
same as the row bias'; the parameters (~300 k at 120x160 and width 16) are a fixed image-shaped
prior learned from the teacher. Exclusive with ``row_bias``.

``camera_blur``: a fixed Gaussian blur (sigma in pixels, taps out to 2 sigma) on the output. The real
camera's lens and its 320x240 -> 160x120 downscale soften what the simulator renders crisp, and the
small student, fitted by L1 to a teacher, stays sharper than real frames: measured on the shipped
student's frames, sigma 0.5 alone moved Lite2 KID from 27.0 / 29.2 to 24.9 / 23.7 (full / road),
while the white-line IoU fell from 0.88 to 0.82. So the blur is part of the model and trained
through (the distill trainer blurs the teacher's target alike), and the marking loss sees the
blurred frame and keeps the lines crisp where it must. One depthwise 3x3 convolution at sigma 0.5.

Shapes: ``(N, 3, H, W)`` in ``[-1, 1]``; H, W multiples of ``factor``.
"""

from __future__ import annotations

import math
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
    pixel_bias: bool = False
    #: Sigma (pixels) of the fixed output blur; 0 = none (see the module docstring).
    camera_blur: float = 0.0

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
        for name in ("row_bias", "pixel_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"StudentConfig.{name} must be true or false, got {getattr(self, name)!r}")
        blur = self.camera_blur
        if isinstance(blur, bool) or not isinstance(blur, (int, float)) or not 0.0 <= blur <= 1.0:
            raise ConfigError(f"StudentConfig.camera_blur must be a sigma in pixels in [0, 1], got {blur!r}")
        if self.row_bias and self.pixel_bias:
            raise ConfigError("StudentConfig: row_bias and pixel_bias are exclusive (a pixel bias holds a row bias)")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StudentConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values)


@register_method("student")
class Student(TorchGenerator):
    """Colour transfer + low-resolution context + full-resolution detail (see the module docstring)."""

    method = "student"
    config_class = StudentConfig
    #: ONNX Runtime without the NCHWc layout rewrite: 20-30% less time per frame for this model
    #: (2.95 vs 3.67 ms at batch 1, 6.0 vs 8.6 ms at batch 4, 2 threads, the shipped student).
    onnx_optimization = "extended"

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
        height, width = config.image_size
        self.row_bias = nn.Parameter(torch.zeros(1, c, height, 1)) if config.row_bias else None
        self.pixel_bias = nn.Parameter(torch.zeros(1, c, height, width)) if config.pixel_bias else None
        # A position bias fixes the frame size: ONNX Runtime then runs at image_size and says so otherwise.
        self.onnx_dynamic_size = not (config.row_bias or config.pixel_bias)
        kernel: torch.Tensor | None = None
        if config.camera_blur > 0:
            # Taps out to 2 sigma (3x3 up to sigma 0.5: the next tap would weigh 3e-4 of the centre's).
            radius = max(1, math.ceil(2.0 * float(config.camera_blur) - 1e-6))
            taps = torch.exp(-(torch.arange(-radius, radius + 1.0) ** 2) / (2.0 * float(config.camera_blur) ** 2))
            kernel = torch.outer(taps, taps)
            kernel = (kernel / kernel.sum()).expand(3, 1, 2 * radius + 1, 2 * radius + 1).clone()
        # Derived from the config, so not in the weights file (and older checkpoints load as before).
        self.blur_kernel: torch.Tensor | None
        self.register_buffer("blur_kernel", kernel, persistent=False)
        for last in (self.context[-1], self.detail[-1]):
            if isinstance(last, nn.Conv2d) and last.bias is not None:
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)

    def adopt_weights(self, other: Student) -> bool:
        """Take another student's weights; False if they do not fit.

        Fits: a student with another ``camera_blur`` (same parameters), or a row-bias student into
        this pixel-bias one (same outputs). Why: the pixel bias holds the row bias (each row's bias
        copied across its columns), so a trained row-bias student can be fine-tuned with a pixel
        bias instead of distilled anew, and a sharp student with a camera blur.
        """
        free = {"row_bias": False, "pixel_bias": False, "camera_blur": 0.0}
        if {**self.config.__dict__, **free} != {**other.config.__dict__, **free}:
            return False
        same_bias = (self.config.row_bias, self.config.pixel_bias) == (other.config.row_bias, other.config.pixel_bias)
        if same_bias:  # only the camera blur differs: the same parameters
            self.load_state_dict(other.state_dict())
            return True
        if self.pixel_bias is None or other.pixel_bias is not None:
            return False
        state = {k: v for k, v in other.state_dict().items() if k != "row_bias"}
        with torch.no_grad():
            self.pixel_bias.zero_()
            if other.row_bias is not None:
                self.pixel_bias.copy_(other.row_bias.expand_as(self.pixel_bias))
        self.load_state_dict({**state, "pixel_bias": self.pixel_bias.detach().clone()})
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` -> translated, same shape."""
        factor = self.config.factor
        small = self.pool(x) if factor > 1 else x
        context = self.context(small)
        if factor > 1:
            context = F.interpolate(context, scale_factor=float(factor), mode="bilinear", align_corners=False)
        position = self.row_bias if self.row_bias is not None else self.pixel_bias
        if position is None:
            color = self.color(x)
        else:
            if not torch.jit.is_tracing() and tuple(x.shape[2:]) != self.image_size:
                raise ValueError(
                    f"Student with a row or pixel bias runs at its image size {self.image_size}, got "
                    f"{tuple(x.shape[2:])}; resize first (translate_path and the wrappers do)"
                )
            color = self.color[0](x) + position
            for index in range(1, len(self.color)):  # no slicing: that builds a new Sequential per frame
                color = self.color[index](color)
        return self.camera(torch.tanh(color + context + self.detail(x)))

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The context branch's ``factor`` x ``factor`` average, exported as a strided depthwise convolution.

        Why: ONNX Runtime's AveragePool took 107 us per 120x160 frame, the same average as a
        convolution with weights 1/factor^2 (a power of two for factor 2, 4, 8, 16) 33 us.
        """
        factor = self.config.factor
        if not torch.onnx.is_in_onnx_export():
            return F.avg_pool2d(x, factor)
        weight = torch.full((3, 1, factor, factor), 1.0 / factor**2, dtype=x.dtype, device=x.device)
        return F.conv2d(x, weight, stride=factor, groups=3)

    def camera(self, frames: torch.Tensor) -> torch.Tensor:
        """The fixed output blur (identity without ``camera_blur``); linear, so it applies to targets too."""
        if self.blur_kernel is None:
            return frames
        radius = self.blur_kernel.shape[-1] // 2
        return F.conv2d(F.pad(frames, (radius,) * 4, mode="replicate"), self.blur_kernel, groups=3)
