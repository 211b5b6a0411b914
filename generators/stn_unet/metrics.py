"""Reconstruction metrics of a real-to-canonical model: PSNR and SSIM against the canonical frame.

Two held-out test sets from a ``sim2real harvest`` folder (its ``val`` split by file-name hash,
which training never sees): canonical frames put through the paper's distortion (seeded), and the
domain-randomized renders paired with their canonical frames. For each: input vs canonical and
corrected vs canonical, and the fraction of the input's squared error that the model removes
(``1 - MSE(corrected) / MSE(input)``), all on the central crop the model was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from kornia.metrics import psnr, ssim

from generators.base import uint8_to_float
from generators.checkpoint import load_generator
from generators.data import FolderSpec, load_images
from generators.stn_unet.train import Distortion, centre_crop
from sim2real_env.errors import ConfigError, InputError
from sim2real_env.provenance import provenance, write_json_atomic, write_text_atomic


def _scores(inputs: torch.Tensor, corrected: torch.Tensor, target: torch.Tensor, crop: float) -> dict[str, float]:
    """PSNR/SSIM of input and corrected vs target (tensors in [-1, 1])."""
    a, b, t = ((centre_crop(x, crop) + 1) / 2 for x in (inputs, corrected, target))
    mse_in = float(((a - t) ** 2).mean())
    mse_out = float(((b - t) ** 2).mean())
    return {
        "frames": int(t.shape[0]),
        "psnr_input": round(float(psnr(a, t, 1.0)), 3),
        "psnr_corrected": round(float(psnr(b, t, 1.0)), 3),
        "ssim_input": round(float(ssim(a, t, 11).mean()), 4),
        "ssim_corrected": round(float(ssim(b, t, 11).mean()), 4),
        "error_removed_fraction": round(1.0 - mse_out / mse_in, 4) if mse_in > 0 else 0.0,
    }


def evaluate(
    checkpoint: Path,
    dataset: Path,
    out_dir: Path,
    crop: float = 0.9,
    seed: int = 0,
    limit: int = 500,
    split: str = "val",
) -> dict[str, Any]:
    """Compute the metrics and write ``canonical_metrics.{json,md}`` into ``out_dir``.

    ``split="all"`` uses every frame: for a harvest made with another seed that training never saw
    (paired training reads every frame of its own harvest, so its ``val`` split is not held out).
    """
    if split not in ("val", "all"):
        raise ConfigError(f"eval-canonical: split must be 'val' or 'all', got {split!r}")
    generator = load_generator(checkpoint, direction="real->canonical")
    size = generator.image_size

    def to_float(images: torch.Tensor) -> torch.Tensor:
        return uint8_to_float(images[:limit])

    canonical = to_float(load_images(FolderSpec(root=str(dataset / "canonical"), split=split), size).images)
    torch.manual_seed(seed)
    distorted = Distortion()(canonical)
    results = {"distorted": _scores(distorted, generator.translate(distorted), canonical, crop)}
    randomized_dir = dataset / "randomized"
    if randomized_dir.is_dir():
        randomized = to_float(load_images(FolderSpec(root=str(randomized_dir), split=split), size).images)
        if randomized.shape != canonical.shape:
            raise InputError(f"{dataset}: randomized/ and canonical/ {split} splits differ in size")
        results["randomized"] = _scores(randomized, generator.translate(randomized), canonical, crop)
    report = {
        "checkpoint": str(checkpoint),
        "checkpoint_id": generator.checkpoint_id,
        "dataset": str(dataset),
        "crop_fraction": crop,
        "seed": seed,
        "results": results,
        "provenance": provenance(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "canonical_metrics.json", report)
    lines = [
        "# Real-to-canonical reconstruction",
        "",
        f"Checkpoint `{checkpoint}` ({generator.checkpoint_id}); held-out `{split}` frames of `{dataset}`; central "
        f"{crop:.0%} crop; command `{report['provenance']['command']}`; git `{report['provenance']['git_sha']}`.",
        "",
        "| test set | frames | PSNR input | PSNR corrected | SSIM input | SSIM corrected | error removed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['frames']} | {r['psnr_input']} | {r['psnr_corrected']} | {r['ssim_input']} | "
            f"{r['ssim_corrected']} | {r['error_removed_fraction']:.1%} |"
        )
    write_text_atomic(out_dir / "canonical_metrics.md", "\n".join(lines) + "\n")
    return report
