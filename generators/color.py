"""Differentiable, ONNX-exportable colour conversions between sRGB and CIE Lab (D65).

Why our own: the colour-transfer baseline and the CUT colour prior run inside the env wrapper
through ONNX Runtime, so they need plain tensor ops (``pow``, ``where``, matrix products) that
export everywhere. Shapes: ``(N, 3, H, W)``; RGB in ``[0, 1]``, L in ``[0, 100]``, a/b about
``[-128, 127]``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)  # once at import, not on every translated frame
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 colour matrix to ``(N, 3, H, W)``."""
    return torch.einsum("ij,njhw->nihw", matrix.to(x), x)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """SRGB ``[0, 1]`` -> Lab (D65)."""
    rgb = rgb.clamp(0.0, 1.0)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(1e-8) ** 2.4, rgb / 12.92)
    xyz = _mix(_RGB_TO_XYZ, linear) / _WHITE.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > _EPS, xyz.clamp_min(1e-8) ** (1.0 / 3.0), (_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    return torch.cat([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab (D65) -> sRGB, clamped to ``[0, 1]``."""
    fy = (lab[:, 0:1] + 16.0) / 116.0
    fx = fy + lab[:, 1:2] / 500.0
    fz = fy - lab[:, 2:3] / 200.0
    f = torch.cat([fx, fy, fz], dim=1)
    xyz = torch.where(f**3 > _EPS, f**3, (116.0 * f - 16.0) / _KAPPA) * _WHITE.to(lab).view(1, 3, 1, 1)
    linear = _mix(_XYZ_TO_RGB, xyz).clamp(0.0, 1.0)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(1e-8) ** (1.0 / 2.4) - 0.055, 12.92 * linear)
    return rgb.clamp(0.0, 1.0)


def lab_transfer(x: torch.Tensor, gain: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Reinhard et al.'s colour transfer: ``lab * gain + offset`` per Lab channel, back to RGB.

    ``x``: ``(N, 3, H, W)`` in ``[-1, 1]``; ``gain`` and ``offset``: ``(1, 3, 1, 1)`` (or ``(1, 3,
    bands, 1)`` for a per-band fit, interpolated to the rows), fitted from
    the two domains' Lab moments (``gain = real_std / sim_std``, ``offset = real_mean - sim_mean
    * gain``). Returns the same shape and range. The one implementation behind the
    ``color_transfer`` baseline and CUT's colour prior.
    """
    if gain.shape[2] not in (1, x.shape[2]):  # per-band fits: one value per row, linear between band centres
        gain = F.interpolate(gain, size=(x.shape[2], 1), mode="bilinear", align_corners=False)
        offset = F.interpolate(offset, size=(x.shape[2], 1), mode="bilinear", align_corners=False)
    return lab_to_rgb(rgb_to_lab((x + 1.0) / 2.0) * gain + offset) * 2.0 - 1.0


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """Normalised ``(size, size)`` Gaussian; ``size`` odd."""
    axis = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    one = torch.exp(-(axis**2) / (2 * sigma**2))
    kernel = one[:, None] * one[None, :]
    return kernel / kernel.sum()


def atanh(y: torch.Tensor) -> torch.Tensor:
    """``atanh`` of ``y`` clamped to ``(-0.999, 0.999)``, written with ``log`` (ONNX's exporter has no atanh)."""
    y = y.clamp(-0.999, 0.999)
    return 0.5 * torch.log((1.0 + y) / (1.0 - y))


def band_moments(rgb: torch.Tensor, bands: int) -> torch.Tensor:
    """Lab mean and std per horizontal band: ``(2, bands, 3)`` from ``(N, 3, H, W)`` RGB in ``[0, 1]``.

    Why bands: the camera sees the backdrop at the top of the frame and the road at the bottom,
    whose colours differ, so one mean per frame would trade a dark road against a bright wall.
    """
    lab = rgb_to_lab(rgb)
    chunks = torch.tensor_split(lab, bands, dim=2)
    mean = torch.stack([c.mean(dim=(0, 2, 3)) for c in chunks])
    std = torch.stack([c.std(dim=(0, 2, 3)) for c in chunks])
    return torch.stack([mean, std])
