"""Weight interpolation between two checkpoints of one architecture: ``(1 - w) * start + w * end``.

Why: fine-tuning a translator for one criterion costs it another. The shipped student's stage 5
(``pretrained:student_red_edges``, stage 4 fine-tuned so that no red appears beside the red lines)
raised red precision and lost yellow recall and some realism. When a fine-tune stays close to its
start, the straight line between the two weight sets trades one for the other smoothly (WiSE-FT,
Wortsman et al. 2022, "Robust fine-tuning of zero-shot models"), with no data and no training;
measured on the students: ``benchmarks/results/translation/blend/README.md``.

Only checkpoints of the same method, direction and model config interpolate; anything else is
one clear error before anything is written. The result is an ordinary checkpoint whose
``config.json`` names both ends (paths and ids) and the weight.

Example::

    interpolate_checkpoints("pretrained:student_stage4", "pretrained:student_red_edges", 0.5, "runs/blend")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from generators.checkpoint import checkpoint_id, load_generator, read_config, resolve_checkpoint, save_generator
from sim2real_env.errors import ConfigError


def check_weight(weight: Any) -> float:
    """``weight`` as a float in [0, 1]; ``ConfigError`` otherwise (0 = start, 1 = end)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= float(weight) <= 1.0:
        raise ConfigError(f"interpolate: weight must be a number in [0, 1] (0 = start, 1 = end), got {weight!r}")
    return float(weight)


def interpolate_checkpoints(start: str | Path, end: str | Path, weight: float, out: str | Path) -> Path:
    """Write the checkpoint ``(1 - weight) * start + weight * end`` to ``out`` and return its folder."""
    weight = check_weight(weight)
    first, second = read_config(start), read_config(end)
    for key in ("method", "direction"):
        if first[key] != second[key]:
            raise ConfigError(
                f"interpolate: {start} and {end} differ in {key} ({first[key]!r} vs {second[key]!r}); "
                "only checkpoints of one architecture interpolate"
            )
    a, b = load_generator(start), load_generator(end)
    # The parsed model configs, not the stored dicts: a key an older checkpoint left at its default is the same model.
    if a.config != b.config:
        raise ConfigError(
            f"interpolate: {start} and {end} differ in model ({a.config} vs {b.config}); "
            "only checkpoints of one architecture interpolate"
        )
    state_a, state_b = a.state_dict(), b.state_dict()
    mixed: dict[str, torch.Tensor] = {}
    for name, tensor in state_a.items():
        other = state_b[name]  # same config, so the same keys and shapes
        if tensor.is_floating_point():
            mixed[name] = torch.lerp(tensor, other, weight)
        elif torch.equal(tensor, other):
            mixed[name] = tensor.clone()
        else:
            raise ConfigError(f"interpolate: the non-float tensor {name!r} differs between {start} and {end}")
    b.load_state_dict(mixed)
    ends = {
        "start": str(start),
        "start_id": checkpoint_id(resolve_checkpoint(start)),
        "end": str(end),
        "end_id": checkpoint_id(resolve_checkpoint(end)),
        "weight": weight,
    }
    return save_generator(b, out, training={"interpolation": ends})
