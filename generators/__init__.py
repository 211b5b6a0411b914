"""Image-translation models between the simulator and the real camera, behind one protocol.

Public entry points (imported lazily, so ``import generators`` stays cheap)::

    from generators import load_generator, save_generator
    generator = load_generator("runs/generators/cyclegan")  # its checkpoints/last
    fake_real = generator.translate(sim_frames)  # (N, H, W, 3) uint8
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generators.checkpoint import load_generator, save_generator
    from generators.protocol import Generator
    from generators.registry import build_generator

__all__ = ["Generator", "build_generator", "load_generator", "save_generator"]

_HOMES = {
    "Generator": "generators.protocol",
    "build_generator": "generators.registry",
    "load_generator": "generators.checkpoint",
    "save_generator": "generators.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'generators' has no attribute {name!r}")
