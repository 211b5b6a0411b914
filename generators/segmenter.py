"""A small lane-marking segmenter trained on simulator frames with their free labels (``sim2real train-segmenter``).

Why: CyCADA's semantic consistency (Hoffman et al. 2018) needs a frozen classifier that tells
whether a translation kept the road's meaning: the white, yellow and red markings where the
simulator drew them, and nothing red where it drew none. The segmenter learns from a harvest's
``canonical/`` *and* ``randomized/`` renders (same pose, same labels, upstream domain
randomization) under strong photometric augmentation, so that it judges geometry and class, not
the simulator's exact colours. A checkpoint is a directory: ``config.json`` + ``weights.safetensors``.

Shapes: ``(N, 3, H, W)`` float in ``[-1, 1]`` -> ``(N, 7, H, W)`` logits over :class:`SegClass`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from generators.configs import check_image_size, config_from_dict, config_to_dict
from generators.layers import double_conv
from sim2real_env.checks import check_ints
from sim2real_env.errors import ConfigError, Sim2RealError
from sim2real_env.harvest_folder import read_harvest
from sim2real_env.provenance import atomic_directory, git_sha, provenance, write_json_atomic
from sim2real_env.segmentation import SegClass

NUM_CLASSES = len(SegClass)
#: Classes the metrics report (the lane markings).
MARKINGS = {"white": SegClass.WHITE_LINE, "yellow": SegClass.YELLOW_LINE, "red": SegClass.RED_LINE}
FORMAT_VERSION = 1


class SegmenterError(Sim2RealError, ValueError):
    """A segmenter checkpoint is missing, corrupt or of the wrong kind (bad harvests are ``InputError``)."""


@dataclass(frozen=True)
class SegmenterConfig:
    """Architecture and training of the segmenter (a 3-level U-Net)."""

    image_size: tuple[int, int] = (120, 160)
    width: int = 8
    steps: int = 1200
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    #: Cross-entropy weight of the white and yellow markings (thin: ~6% of the pixels) and of the red
    #: stop lines (~0.1% of the pixels; with the white/yellow weight alone the segmenter never predicts red).
    marking_weight: float = 4.0
    red_weight: float = 20.0
    #: Photometric augmentation (:func:`photometric_augment`).
    augment: str = "luminance"
    #: A ``color_transfer`` checkpoint applied to half of the training frames (before augmentation), so
    #: the segmenter knows the colour-transfer look the translators start from; ``None``: never.
    color_transfer: str | None = "pretrained:color_transfer"
    torch_threads: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "SegmenterConfig", 4))
        check_ints(
            "SegmenterConfig",
            self,
            {"width": (4, 128), "steps": (1, 10_000_000), "batch_size": (1, 1024), "seed": (0, 2**31 - 1)},
        )
        check_ints("SegmenterConfig", self, {"torch_threads": (1, 256)})
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(f"SegmenterConfig.augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        for name, lo, hi in (("lr", 1e-7, 1.0), ("marking_weight", 0.0, 100.0), ("red_weight", 0.0, 1000.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ConfigError(f"SegmenterConfig.{name} must be a number in [{lo}, {hi}], got {value!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SegmenterConfig:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values, "segmenter config")


class Segmenter(nn.Module):
    """U-Net with three resolutions (H, H/2, H/4); ``H`` and ``W`` multiples of 4."""

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        w = config.width
        self.config = config
        self.down0 = double_conv(3, w)
        self.down1 = double_conv(w, 2 * w)
        self.down2 = double_conv(2 * w, 4 * w)
        self.up1 = double_conv(4 * w + 2 * w, 2 * w)
        self.up0 = double_conv(2 * w + w, w)
        self.head = nn.Conv2d(w, NUM_CLASSES, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` -> ``(N, 7, H, W)`` class logits."""
        d0 = self.down0(x)
        d1 = self.down1(F.max_pool2d(d0, 2))
        d2 = self.down2(F.max_pool2d(d1, 2))
        u1 = self.up1(torch.cat([F.interpolate(d2, size=d1.shape[2:], mode="nearest"), d1], 1))
        u0 = self.up0(torch.cat([F.interpolate(u1, size=d0.shape[2:], mode="nearest"), d0], 1))
        return self.head(u0)

    @torch.no_grad()
    def predict(self, frames: np.ndarray, batch: int = 64) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 at the segmenter's size -> ``(N, H, W)`` uint8 class ids."""
        self.eval()
        out = []
        for start in range(0, len(frames), batch):
            x = torch.from_numpy(np.ascontiguousarray(frames[start : start + batch])).permute(0, 3, 1, 2)
            out.append(self(x.float() / 127.5 - 1.0).argmax(1).byte().numpy())
        return np.concatenate(out)


# -- data -----------------------------------------------------------------------------------------


AUGMENTATIONS = ("luminance", "color")


def photometric_augment(x: torch.Tensor, rng: torch.Generator, mode: str = "luminance") -> torch.Tensor:
    """Random exposure, gamma, contrast, blur and noise per image (``[-1, 1]`` in/out).

    ``luminance`` keeps hues (gains differ by at most 10% between channels), so the segmenter
    still tells a white line from a red one by colour: a translation that paints the white line
    pink or red then changes the segmenter's answer, which is what semantic consistency must
    catch. ``color`` draws independent per-channel gains and offsets (coloured lights): a
    segmenter that judges only where markings are, whatever their colour.
    """
    n = x.shape[0]

    def u(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=rng).to(x)

    rgb = (x + 1) / 2
    if mode == "color":
        rgb = rgb * (0.4 + 1.2 * u(n, 3, 1, 1)) + (u(n, 3, 1, 1) - 0.5) * 0.3
    else:
        gain = (0.35 + 1.15 * u(n, 1, 1, 1)) * (0.95 + 0.1 * u(n, 3, 1, 1))
        rgb = rgb * gain + (u(n, 1, 1, 1) - 0.5) * 0.2
    rgb = rgb.clamp(0, 1) ** (0.5 + 1.5 * u(n, 1, 1, 1))
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * (0.5 + u(n, 1, 1, 1)) + mean
    blur = u(n, 1, 1, 1) < 0.5
    soft = F.avg_pool2d(F.pad(rgb, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    rgb = torch.where(blur, soft, rgb)
    rgb = rgb + torch.randn(rgb.shape, generator=rng).to(x) * 0.03 * u(n, 1, 1, 1)
    return rgb.clamp(0, 1) * 2 - 1


# -- metrics --------------------------------------------------------------------------------------


def class_iou(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """IoU per marking class, pooled over pixels (NaN where a class appears in neither).

    ``red_false_positive``: the share of pixels without a red line that are predicted red.
    """
    scores: dict[str, float] = {}
    for name, cls in MARKINGS.items():
        p, t = predicted == cls, truth == cls
        union = float(np.logical_or(p, t).sum())
        scores[name] = float(np.logical_and(p, t).sum()) / union if union else math.nan
    no_red = truth != SegClass.RED_LINE
    scores["red_false_positive"] = float(np.logical_and(predicted == SegClass.RED_LINE, no_red).sum()) / max(
        1.0, float(no_red.sum())
    )
    return scores


# -- checkpoints ----------------------------------------------------------------------------------


def save_segmenter(model: Segmenter, path: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``config.json`` + ``weights.safetensors`` atomically."""
    path = Path(path)
    config = {
        "kind": "segmenter",
        "format_version": FORMAT_VERSION,
        "classes": [c.name.lower() for c in SegClass],
        "model": config_to_dict(model.config),
        "summary": summary,
        "git_sha": git_sha(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    with atomic_directory(path) as tmp:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "weights.safetensors")
        )
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return path


def load_segmenter(path: str | Path) -> Segmenter:
    """Rebuild a segmenter from its checkpoint directory (eval mode, CPU)."""
    path = Path(path)
    config_path, weights_path = path / "config.json", path / "weights.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise SegmenterError(f"segmenter checkpoint {path} needs config.json and weights.safetensors")
    try:
        config = json.loads(config_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise SegmenterError(f"segmenter checkpoint {config_path} is not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("kind") != "segmenter" or "model" not in config:
        raise SegmenterError(f"{path} is not a segmenter checkpoint (config.json kind must be 'segmenter')")
    if config.get("format_version") != FORMAT_VERSION:
        raise SegmenterError(f"segmenter {path} has format version {config.get('format_version')}, expected 1")
    model = Segmenter(SegmenterConfig.from_dict(config["model"]))
    try:
        model.load_state_dict(load_file(str(weights_path)), strict=True)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise SegmenterError(f"segmenter weights {weights_path} are corrupt or do not fit ({exc})") from exc
    return model.eval()


# -- training -------------------------------------------------------------------------------------


def train_segmenter(
    harvest: str | Path,
    out: str | Path,
    config: SegmenterConfig,
    val_harvest: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on a harvest's canonical + randomized views; returns (and writes) the summary."""
    out = Path(out)
    if (out / "config.json").exists():
        raise SegmenterError(f"{out} already holds a segmenter; choose another --out")
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    frames, classes = read_harvest(harvest, ("canonical", "randomized"))
    h, w = config.image_size
    if frames.shape[1:3] != (h, w):
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        classes = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_NEAREST) for c in classes])
    x_all = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
    y_all = torch.from_numpy(classes).long()
    model = Segmenter(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / config.steps)))
    weight = torch.ones(NUM_CLASSES)
    for cls in MARKINGS.values():
        weight[cls] = config.red_weight if cls == SegClass.RED_LINE else config.marking_weight
    rng = torch.Generator().manual_seed(config.seed)
    transfer = None
    if config.color_transfer:
        from generators.checkpoint import load_generator

        transfer = load_generator(config.color_transfer, method="color_transfer")
    started = time.perf_counter()
    bar = tqdm(range(config.steps), desc="train segmenter", disable=not progress)
    loss = torch.zeros(())
    for _ in bar:
        index = torch.randint(0, len(x_all), (config.batch_size,), generator=rng)
        x = x_all[index].float() / 127.5 - 1.0
        if transfer is not None:
            with torch.no_grad():
                pick = (torch.rand(config.batch_size, generator=rng) < 0.5).view(-1, 1, 1, 1)
                x = torch.where(pick, transfer(x), x)
        x = photometric_augment(x, rng, config.augment)
        y = y_all[index]
        if bool(torch.rand((), generator=rng) < 0.5):  # mirror both: class geometry, not handedness
            x, y = torch.flip(x, dims=[3]), torch.flip(y, dims=[2])
        model.train()
        loss = F.cross_entropy(model(x), y, weight=weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    summary: dict[str, Any] = {
        "harvest": str(harvest),
        "frames": len(frames),
        "final_loss": float(loss.detach()),
        "wall_s": time.perf_counter() - started,
    }
    if val_harvest is not None:
        val_frames, val_classes = read_harvest(val_harvest)
        summary["val_harvest"] = str(val_harvest)
        summary["val_iou_canonical"] = class_iou(model.predict(val_frames), val_classes)
    save_segmenter(model, out, summary)
    write_json_atomic(out.parent / f"{out.name}_run.json", {"summary": summary, "provenance": provenance()})
    return summary
