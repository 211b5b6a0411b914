"""Training the feed-forward style network: content of the sim frame, style of the real camera.

Style target: a single image (``style_image``, as in Gatys et al. and the seed project), or, when
that is null, the real domain itself: the mean Gram matrices of each real batch, so the network
learns the camera's look rather than one picture's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import torch

from generators.configs import config_from_dict
from generators.distributed import mean_over_ranks
from generators.nst.backbones import BACKBONES, gram, load_backbone, style_content_losses
from generators.nst.model import StyleNet
from generators.registry import register_trainer
from sim2real_env.errors import InputError


@dataclass(frozen=True)
class NSTLosses:
    """Loss weights and the style source."""

    content_weight: float = 1.0
    style_weight: float = 1e4
    tv_weight: float = 1e-4
    backbone: str = "efficientnet_lite0"
    vgg19_path: str | None = None
    style_image: str | None = None

    def __post_init__(self) -> None:
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"NSTLosses.{name} must be a number >= 0, got {value!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"NSTLosses.backbone must be one of {BACKBONES}, got {self.backbone!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NSTLosses:
        """From a mapping; unknown keys are an error."""
        return config_from_dict(cls, values, "losses")


def read_style_image(path: str, size: tuple[int, int]) -> torch.Tensor:
    """``(1, 3, H, W)`` in ``[-1, 1]`` from an image file, resized to ``size``."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"style image {path} is missing or unreadable")
    rgb = cv2.cvtColor(cv2.resize(bgr, (size[1], size[0]), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div(127.5).sub(1.0)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels (smoothness prior)."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


@register_trainer("nst")
class StyleNetTrainer:
    """Optimiser and one step of feed-forward style training (Johnson et al. 2016)."""

    losses_class = NSTLosses

    def __init__(self, model: StyleNet, losses: NSTLosses, lr: float, beta1: float, seed: int) -> None:
        self.model = model
        self.losses = losses
        self.extractor = load_backbone(losses.backbone, losses.vgg19_path).to(model.device)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, 0.999))
        self.fixed_style: dict[str, torch.Tensor] | None = None
        if losses.style_image:
            style = read_style_image(losses.style_image, model.image_size).to(model.device)
            with torch.no_grad():
                feats = self.extractor.features(style)
            self.fixed_style = {k: gram(feats[k]) for k in self.extractor.style_layers}

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimiser, for the learning-rate schedule."""
        return [self.optimizer]

    def train_step(self, sim: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """Stylise the sim batch, match its content and the real style; one update."""
        self.model.train()
        with torch.no_grad():
            content_target = self.extractor.features(sim)
            if self.fixed_style is not None:
                style_target = self.fixed_style
            else:
                feats = self.extractor.features(real)
                # Under torchrun: the mean Gram matrix of the global real batch, as one process would use.
                style_target = {
                    k: mean_over_ranks(gram(feats[k]).mean(0, keepdim=True)) for k in self.extractor.style_layers
                }
        out = self.model(sim)
        content, style = style_content_losses(self.extractor, out, content_target, style_target)
        tv = total_variation(out)
        w = self.losses
        loss = w.content_weight * content + w.style_weight * style + w.tv_weight * tv
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"g_total": float(loss.detach()), "content": float(content.detach()), "style": float(style.detach())}

    @torch.no_grad()
    def sample_columns(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Columns after the source: stylised."""
        self.model.eval()
        return [self.model(source)]

    def state_dict(self) -> dict[str, Any]:
        """Optimiser state for exact resume."""
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.optimizer.load_state_dict(state["optimizer"])
