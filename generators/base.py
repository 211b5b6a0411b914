"""Shared machinery of torch generators: input checks, layout conversion, inference mode."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from generators.protocol import DIRECTIONS, NORMALIZATION, Frames
from sim2real_env.errors import ConfigError


def uint8_to_float(frames: torch.Tensor) -> torch.Tensor:
    """``(N, H, W, 3) uint8`` -> ``(N, 3, H, W) float32`` in ``[-1, 1]``."""
    return frames.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def float_to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` float in ``[-1, 1]`` -> ``(N, H, W, 3) uint8`` (rounded, clamped)."""
    return frames.add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def check_frames(frames: Any, owner: str, size_multiple: int, min_positions: int = 1) -> str:
    """Validate a batch; returns ``"uint8_nhwc"`` or ``"float_nchw"``. Errors name ``owner``.

    ``min_positions``: how many ``size_multiple x size_multiple`` cells a frame must hold, i.e.
    the spatial positions at the network's lowest resolution (instance normalisation needs two).
    Float frames must be finite: a NaN would come out as a silently black or grey frame.
    """
    if not isinstance(frames, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{owner}.translate expects a numpy array or torch tensor, got {type(frames).__name__}")
    shape = tuple(frames.shape)
    is_uint8 = frames.dtype in (np.uint8, torch.uint8)
    is_float = (isinstance(frames, np.ndarray) and np.issubdtype(frames.dtype, np.floating)) or (
        isinstance(frames, torch.Tensor) and frames.is_floating_point()
    )
    if is_uint8:
        if len(shape) != 4 or shape[3] != 3:
            raise ValueError(f"{owner}.translate: uint8 frames must be (N, H, W, 3) RGB, got shape {shape}")
        height, width = shape[1], shape[2]
        layout = "uint8_nhwc"
    elif is_float:
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"{owner}.translate: float frames must be (N, 3, H, W) in [-1, 1], got shape {shape}")
        height, width = shape[2], shape[3]
        layout = "float_nchw"
    else:
        raise TypeError(
            f"{owner}.translate: frames must be uint8 (N, H, W, 3) or float (N, 3, H, W), got dtype {frames.dtype}"
        )
    if shape[0] == 0:
        raise ValueError(f"{owner}.translate: empty batch")
    if height % size_multiple or width % size_multiple:
        raise ValueError(
            f"{owner}.translate: height and width must be multiples of {size_multiple}, got {height}x{width}"
        )
    if (height // size_multiple) * (width // size_multiple) < min_positions:
        raise ValueError(
            f"{owner}.translate: frames of {height}x{width} are too small: the network works at 1/{size_multiple} "
            f"of the size and needs at least {min_positions} positions there (e.g. {size_multiple}x"
            f"{size_multiple * min_positions}); resize first, as translate_path and the wrappers do"
        )
    if layout == "float_nchw":
        finite = bool(torch.isfinite(frames).all()) if isinstance(frames, torch.Tensor) else np.isfinite(frames).all()
        if not finite:
            raise ValueError(f"{owner}.translate: float frames hold NaN or infinite values; expected [-1, 1]")
    return layout


class TorchGenerator(nn.Module):
    """Base of every torch generator: ``forward`` maps ``(N,3,H,W)`` float ``[-1,1]`` to the same.

    Subclasses set :attr:`method`, :attr:`size_multiple` and implement ``forward``; this class
    provides :meth:`translate` (the :class:`~generators.protocol.Generator` protocol) and the
    metadata every checkpoint carries.
    """

    method: str = "abstract"
    #: The method's model config: a frozen dataclass with ``from_dict`` (set by every registered method).
    config_class: Any
    size_multiple: int = 1
    #: Positions a frame must keep at the lowest resolution (``check_frames``): the shared blocks
    #: use instance normalisation, which fails on a single position.
    min_positions: int = 2
    normalization: str = NORMALIZATION

    def __init__(self, config: Any, direction: str = "sim->real") -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ConfigError(f"{type(self).__name__}: direction must be one of {DIRECTIONS}, got {direction!r}")
        self.config = config
        self.direction = direction
        self.checkpoint_id = "unsaved"

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` the model is meant to run at."""
        height, width = self.config.image_size
        return int(height), int(width)

    @property
    def device(self) -> torch.device:
        """Device of the weights (of the buffers, for parameterless generators such as the baselines)."""
        for tensor in (*self.parameters(), *self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def translate(self, frames: Frames) -> Frames:
        """Translate a batch in inference mode; output layout and dtype equal the input's."""
        layout = check_frames(frames, type(self).__name__, self.size_multiple, self.min_positions)
        # Toggling the mode walks every submodule (~0.7 ms each way here): only when needed.
        was_training = self.training
        if was_training:
            self.eval()
        try:
            with torch.inference_mode():
                tensor = torch.as_tensor(frames).to(self.device)
                source = uint8_to_float(tensor) if layout == "uint8_nhwc" else tensor.float()
                result = self(source)
                if layout == "uint8_nhwc":
                    result = float_to_uint8(result)
                elif isinstance(frames, torch.Tensor):
                    result = result.to(frames.dtype)
        finally:
            if was_training:
                self.train()
        if isinstance(frames, np.ndarray):
            out = result.cpu().numpy()
            return out if layout == "uint8_nhwc" else out.astype(frames.dtype, copy=False)
        return result.to(frames.device)
