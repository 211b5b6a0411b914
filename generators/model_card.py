"""Model cards: ``MODEL_CARD.md`` beside a checkpoint, written from what the checkpoint records.

The card states the method and direction, the architecture (from ``config.json``), the data and
steps it was trained on, the run's wall time and command (from the training run's ``run.json``
when given), the size on disk, any metrics JSON passed in, and the real-data licence note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generators.checkpoint import CONFIG_FILE, checkpoint_id, read_config, resolve_checkpoint

LICENCE_NOTE = (
    "Real frames: Duckietown camera images from `../shared/data/duckietown_real` (research and "
    "educational use with attribution; see that folder's README). They are not in this repository; "
    "the weights were fitted to them."
)


def _size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file() and p.name.startswith(("config", "weights")))


def model_card(
    checkpoint: str | Path,
    *,
    run: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    limitations: list[str] | None = None,
    tables: list[str] | None = None,
) -> str:
    """The Markdown text of a model card for ``checkpoint``."""
    path = resolve_checkpoint(checkpoint)
    config = read_config(path)
    lines = [
        f"# Model card: {config['method']} ({config['direction']})",
        "",
        f"- id: `{checkpoint_id(path)}`; {config.get('step', 0)} training steps; git `{config.get('git_sha')}`; "
        f"created {config.get('created')}",
        f"- image size (H, W): {config.get('image_size')}; normalisation: {config.get('normalization')}",
        f"- size on disk (config + weights): {_size_bytes(path) / 1024:.0f} KiB",
        f"- architecture (`{CONFIG_FILE}` model section, loaded without flags): `{json.dumps(config['model'])}`",
        f"- data: `{json.dumps(config.get('data', {}))}`",
        f"- training settings: `{json.dumps(config.get('training', {}))}`",
    ]
    if run:
        lines.append(f"- produced by: `{run.get('command', '?')}` (git `{run.get('git_sha', '?')}`)")
        if "wall_s" in run:
            cores = run.get("cpu_count", "?")
            lines.append(f"- wall time: {run['wall_s'] / 60:.1f} min on a machine with {cores} CPU cores")
    for table in tables or []:  # Markdown results (e.g. image-metrics' table), included verbatim
        lines += ["", table.strip()]
    if metrics:
        lines += ["", "## Metrics", "", "```json", json.dumps(metrics, indent=2, default=str), "```"]
    if limitations:
        lines += ["", "## Limitations", ""] + [f"- {item}" for item in limitations]
    lines += ["", "## Data licence", "", LICENCE_NOTE, ""]
    return "\n".join(lines)
