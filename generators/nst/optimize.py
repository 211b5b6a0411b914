"""Per-image neural style transfer (Gatys et al. 2016): optimise the pixels of each frame.

The seed project's first approach: one style image, a folder of simulator frames, each frame's
pixels optimised so its deep features keep the frame's content and its Gram matrices match the
style image's. Slow (hundreds of backbone passes per frame), so it makes datasets, not wrappers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from generators.data import IMAGE_SUFFIXES
from generators.nst.backbones import FeatureExtractor, gram, load_backbone, style_content_losses
from generators.nst.train import read_style_image, total_variation
from generators.translate import folder_images
from sim2real_env.errors import ConfigError, InputError
from sim2real_env.video import write_image


def stylize(
    content: torch.Tensor,
    style: torch.Tensor,
    extractor: FeatureExtractor,
    steps: int = 200,
    lr: float = 0.03,
    content_weight: float = 1.0,
    style_weight: float = 1e4,
    tv_weight: float = 1e-4,
) -> tuple[torch.Tensor, list[float]]:
    """Stylise ``content`` ``(N, 3, H, W)`` toward ``style`` ``(1, 3, h, w)``; both in ``[-1, 1]``.

    Returns the images and the loss per step (Adam on the pixels, started from the content).
    """
    with torch.no_grad():
        content_target = extractor.features(content)
        style_feats = extractor.features(style)
        style_grams = {k: gram(style_feats[k]) for k in extractor.style_layers}
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    history = []
    for _ in range(steps):
        c, s = style_content_losses(extractor, image, content_target, style_grams)
        loss = content_weight * c + style_weight * s + tv_weight * total_variation(image)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(-1, 1)
        history.append(float(loss.detach()))
    return image.detach(), history


def stylize_folder(
    style_path: Path,
    source: Path,
    target: Path,
    size: tuple[int, int] = (120, 160),
    steps: int = 200,
    backbone: str = "efficientnet_lite0",
    vgg19_path: str | None = None,
    progress: bool = True,
) -> int:
    """Stylise every image in ``source`` into ``target`` (PNG, at ``size``); returns the count.

    Inputs are checked before the backbone loads; each frame is written atomically as soon as it
    is done (a frame takes seconds, so an interrupted run keeps the finished ones).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"stylize: steps must be an integer >= 1, got {steps!r}")
    if len(size) != 2 or min(size) < 8:
        raise ConfigError(f"stylize: the output size must be at least 8x8 pixels, got {size[1]}x{size[0]}")
    if not source.is_dir():
        raise InputError(f"stylize: {source} is not a folder with images ({', '.join(IMAGE_SUFFIXES)})")
    if source.resolve() == target.resolve():
        raise InputError(f"stylize: the output folder {target} is the input folder; choose another")
    files = folder_images(source, owner="stylize")
    style = read_style_image(str(style_path), size)
    extractor = load_backbone(backbone, vgg19_path)
    for path in tqdm(files, unit="frame", disable=not progress, desc="stylize"):
        frame = read_style_image(str(path), size)
        out, _ = stylize(frame, style, extractor, steps=steps)
        rgb = ((out[0] + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        try:
            write_image(target / f"{path.stem}.png", np.ascontiguousarray(rgb))
        except OSError as exc:
            raise ConfigError(f"stylize: {exc}") from exc
    return len(files)
