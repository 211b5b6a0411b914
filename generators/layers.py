"""Building blocks shared by the generator methods (ResNet-style translators, PatchGAN critics)."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    """Pad, convolve, instance-normalise, ReLU (reflection padding at stride 1 avoids border artefacts)."""
    pad = kernel // 2
    return [
        nn.ReflectionPad2d(pad) if stride == 1 else nn.ZeroPad2d(pad),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, bias=False),
        nn.InstanceNorm2d(c_out, affine=True),
        nn.ReLU(inplace=True),
    ]


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convolutions with batch norm and ReLU: the U-Net stage of STN-U-Net and the segmenter."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance norm, added to the input.

    ``depthwise=True`` factorises each 3x3 convolution into a depthwise 3x3 and a pointwise 1x1
    (MobileNet): ~4.5x fewer parameters, but measured no faster in eager PyTorch on 2 CPU cores
    (instance norm dominates); kept for compiled/exported runtimes.
    """

    def __init__(self, channels: int, depthwise: bool = False) -> None:
        super().__init__()

        def conv() -> list[nn.Module]:
            if depthwise:
                return [
                    nn.ReflectionPad2d(1),
                    nn.Conv2d(channels, channels, 3, groups=channels, bias=False),
                    nn.Conv2d(channels, channels, 1, bias=False),
                ]
            return [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False)]

        layers = [*conv(), nn.InstanceNorm2d(channels, affine=True), nn.ReLU(inplace=True)]
        layers += [*conv(), nn.InstanceNorm2d(channels, affine=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + body(x)``, same shape."""
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-w, d2w, d4w, R4w x blocks, u2w, u1w, c7s1-3, tanh.

    ``outer_kernel`` is the size of the first and last (full-resolution) convolutions: 7 in the
    paper. At CPU widths the 3-channel 7x7 output convolution alone is a third of the run time
    (ONNX Runtime profile), so 3 is the fast choice.
    """

    def __init__(self, width: int, blocks: int, upsample: str, depthwise: bool = False, outer_kernel: int = 7) -> None:
        super().__init__()
        layers: list[nn.Module] = conv_block(3, width, outer_kernel)
        layers += conv_block(width, 2 * width, 3, stride=2)
        layers += conv_block(2 * width, 4 * width, 3, stride=2)
        layers += [ResidualBlock(4 * width, depthwise) for _ in range(blocks)]
        for c_in, c_out in ((4 * width, 2 * width), (2 * width, width)):
            if upsample == "resize":
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), *conv_block(c_in, c_out, 3)]
            else:
                layers += [
                    nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False),
                    nn.InstanceNorm2d(c_out, affine=True),
                    nn.ReLU(inplace=True),
                ]
        layers += [nn.ReflectionPad2d(outer_kernel // 2), nn.Conv2d(width, 3, outer_kernel), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` -> same shape."""
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): a grid of logits, one per overlapping image patch."""

    def __init__(self, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Conv2d(3, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        channels = width
        for i in range(1, layers + 1):
            out = width * min(2**i, 8)
            stride = 2 if i < layers else 1
            modules += [
                nn.Conv2d(channels, out, 4, stride=stride, padding=1, bias=False),
                nn.InstanceNorm2d(out, affine=True),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out
        modules.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> ``(N, 1, H', W')`` patch logits."""
        return self.net(x)
