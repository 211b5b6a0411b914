"""Run a torch generator with ONNX Runtime on the CPU: same protocol, 2-3x less time per frame.

Why: in the env wrapper the generator runs on every step, and at these small sizes eager
PyTorch spends most of its time in per-operator overhead (measured for the default CycleGAN at
60x80 on 2 cores: 4.5 ms -> 1.9 ms per frame at batch 1, 2.0 -> 1.3 ms at batch 8; outputs
agree to ~4e-6 before rounding to uint8). The model is exported in memory from the loaded
weights; nothing is written to disk.

uint8 frames (what the wrappers pass) run through a second graph that also holds the conversion
from and to ``(N, H, W, 3) uint8`` (``[-1, 1]`` scaling, rounding half to even, clipping, layout),
built on the first such call: the same arithmetic as the numpy path, bit for bit, in one call.
Why: for the real-time student at batch 1 the numpy pre/post-processing took 0.24 ms beside
1.44 ms in the session; with it in the graph a frame takes 1.32 ms all told (standalone, medians
of 7). In the env loop the difference is within the run-to-run noise (``README.md``, wrappers).

Example::

    fast = OnnxRuntimeGenerator(load_generator(path))
    frames = fast.translate(frames)  # same layouts as Generator.translate
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import torch

from generators.base import check_frames
from generators.protocol import Frames, Generator
from sim2real_env.errors import ConfigError, InputError

BACKENDS = ("torch", "onnxruntime")


class _Uint8Frames(torch.nn.Module):
    """``(N, H, W, 3) uint8`` in and out around a ``[-1, 1]`` NCHW generator, for export only."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """The numpy path of :meth:`OnnxRuntimeGenerator.translate`, as graph operators."""
        source = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        result = (self.module(source) + 1.0) * 127.5
        return torch.round(result).clamp(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1)


class OnnxRuntimeGenerator:
    """A :class:`~generators.protocol.Generator` that runs a torch generator's ``forward`` in ONNX Runtime."""

    def __init__(self, generator: Generator, threads: int = 2) -> None:
        try:
            import onnxruntime  # noqa: F401  (here for the clear error; _session uses it)
        except ImportError as exc:
            raise ConfigError("backend 'onnxruntime' needs the onnxruntime package (see pyproject.toml)") from exc
        if not isinstance(generator, torch.nn.Module):
            raise TypeError(f"OnnxRuntimeGenerator needs a torch generator, got {type(generator).__name__}")
        source: Any = generator
        self.method: str = source.method
        self.direction: str = source.direction
        self.image_size: tuple[int, int] = (int(source.image_size[0]), int(source.image_size[1]))
        self.normalization: str = source.normalization
        self.checkpoint_id: str = source.checkpoint_id
        self.size_multiple: int = getattr(source, "size_multiple", 1)
        self.min_positions: int = getattr(source, "min_positions", 1)
        module = source.cpu().eval()
        example = torch.zeros(1, 3, *self.image_size)
        # Spatially dynamic (any multiple of size_multiple, as the torch module) unless the model says
        # ONNX cannot export it at a symbolic size (the STN's adaptive pooling): then its training size.
        self.fixed_size = not getattr(source, "onnx_dynamic_size", True)
        axes = {0: "n"} if self.fixed_size else {0: "n", 2: "h", 3: "w"}
        # ORT_ENABLE_ALL adds the NCHWc layout rewrite, which pays for the ResNet translators' 3x3
        # convolutions but not for a model of 1x1 convolutions on 3-16 channels, where the layout
        # reorders around each one cost more than they save: such a model says so.
        level = getattr(source, "onnx_optimization", "all")
        if level not in ("all", "extended"):
            raise ConfigError(f"{self.method}: onnx_optimization must be 'all' or 'extended', got {level!r}")
        self.optimization: str = level
        self._module = module
        self._threads = threads
        self.session = self._session(module, example, axes)
        self._uint8_session: Any = None

    def _session(self, module: torch.nn.Module, example: torch.Tensor, axes: dict[int, str]) -> Any:
        import onnxruntime as ort

        try:
            model_bytes = self._export(module, example, axes)
        except Exception as exc:
            raise InputError(
                f"could not export the {self.method} generator to ONNX ({type(exc).__name__}: {exc}); "
                "use backend='torch'"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if self.optimization == "all"
            else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        )
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    def _uint8(self) -> Any:
        """The graph with the uint8 conversions, exported on first use (float callers never pay for it)."""
        if self._uint8_session is None:
            example = torch.zeros(1, *self.image_size, 3, dtype=torch.uint8)
            nhwc = {0: "n"} if self.fixed_size else {0: "n", 1: "h", 2: "w"}
            self._uint8_session = self._session(_Uint8Frames(self._module), example, nhwc)
        return self._uint8_session

    @staticmethod
    def _export(module: torch.nn.Module, example: torch.Tensor, axes: dict[int, str]) -> bytes:
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                buffer,  # type: ignore[arg-type]
                input_names=["frames"],
                output_names=["translated"],
                dynamic_axes={"frames": axes, "translated": axes},
                dynamo=False,
            )
        return buffer.getvalue()

    def translate(self, frames: Frames) -> Frames:
        """Translate a batch; output layout and dtype equal the input's (see the protocol)."""
        layout = check_frames(frames, type(self).__name__, self.size_multiple, self.min_positions)
        if self.fixed_size:
            size = tuple(frames.shape[1:3] if layout == "uint8_nhwc" else frames.shape[2:4])
            if size != self.image_size:
                raise ValueError(
                    f"OnnxRuntimeGenerator ({self.method}) runs at its training size {self.image_size}, got {size}; "
                    "resize first (the wrappers do) or use backend='torch'"
                )
        array = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        if layout == "uint8_nhwc":
            (result,) = self._uint8().run(None, {"frames": np.ascontiguousarray(array)})
        else:
            (result,) = self.session.run(None, {"frames": np.ascontiguousarray(array, dtype=np.float32)})
            result = result.astype(array.dtype, copy=False)
        if isinstance(frames, torch.Tensor):
            return torch.from_numpy(result).to(frames.device)
        return result


def with_backend(generator: Generator, backend: str, threads: int = 2) -> Generator:
    """``generator`` itself for ``torch``, an :class:`OnnxRuntimeGenerator` for ``onnxruntime``."""
    if backend == "torch":
        return generator
    if backend == "onnxruntime":
        return generator if isinstance(generator, OnnxRuntimeGenerator) else OnnxRuntimeGenerator(generator, threads)
    from sim2real_env.names import unknown_name_message

    raise ConfigError(unknown_name_message("generator backend", backend, BACKENDS))
