"""Differentiable augmentation for discriminators (Zhao et al. 2020, "DiffAugment").

Why: with a few hundred real frames a discriminator memorises them; augmenting *both* real and
generated batches with the same family of differentiable ops keeps it honest without leaking
the augmentation into the generator's outputs. Draws come from an explicit ``torch.Generator``
so that training resumes exactly. Input and output: ``(N, 3, H, W)`` in ``[-1, 1]``. Under
torchrun each rank draws for the whole global batch and keeps its rows, so ranks never share
draws and the augmentation is the one a single process with that batch would apply.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from generators.distributed import global_rows

POLICIES = ("color", "translation", "cutout")


def _rand(n: int, rng: torch.Generator) -> torch.Tensor:
    """``n`` uniform draws for this rank's rows (see :func:`~generators.distributed.global_rows`)."""
    total, mine = global_rows(n)
    return torch.rand(total, generator=rng)[mine]


def _uniform(n: int, rng: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return _rand(n, rng).view(n, 1, 1, 1).to(like)


def diff_augment(x: torch.Tensor, rng: torch.Generator, policy: tuple[str, ...] = POLICIES) -> torch.Tensor:
    """Random brightness/saturation/contrast, shifts up to 1/8 of the size, and a cut-out square."""
    n, _, h, w = x.shape
    if "color" in policy:
        x = x + (_uniform(n, rng, x) - 0.5)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_uniform(n, rng, x) * 2) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (_uniform(n, rng, x) + 0.5) + mean
    if "translation" in policy:
        dy = ((_rand(n, rng) - 0.5) * (h // 4)).round().long()
        dx = ((_rand(n, rng) - 0.5) * (w // 4)).round().long()
        # Translate by sampling a shifted grid (zeros outside): differentiable and batched.
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = 1.0
        theta[:, 1, 1] = 1.0
        theta[:, 0, 2] = -2.0 * dx.float() / w
        theta[:, 1, 2] = -2.0 * dy.float() / h
        grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if "cutout" in policy:
        ch, cw = h // 2, w // 2
        cy = (_rand(n, rng) * (h + 1 - ch % 2)).long()
        cx = (_rand(n, rng) * (w + 1 - cw % 2)).long()
        ys = torch.arange(h).view(1, h, 1)
        xs = torch.arange(w).view(1, 1, w)
        inside = ((ys - cy.view(n, 1, 1)).abs() < ch // 2) & ((xs - cx.view(n, 1, 1)).abs() < cw // 2)
        x = x * (~inside).unsqueeze(1).to(x)
    return x
