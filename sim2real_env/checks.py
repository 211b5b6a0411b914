"""Field checks shared by every frozen config: one message format, naming the field and the range."""

from __future__ import annotations

from typing import Any

from sim2real_env.errors import ConfigError


def check_ints(owner: str, config: Any, limits: dict[str, tuple[int, int | None]]) -> None:
    """Each ``config.<name>`` is an int (not a bool) in ``[lo, hi]`` (``hi=None``: no upper bound)."""
    for name, (lo, hi) in limits.items():
        value = getattr(config, name)
        ok = not isinstance(value, bool) and isinstance(value, int) and value >= lo and (hi is None or value <= hi)
        if not ok:
            expected = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
            raise ConfigError(f"{owner}.{name} must be {expected}, got {value!r}")
