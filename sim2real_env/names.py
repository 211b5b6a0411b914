"""Name lookup with a "did you mean" error, shared by every registry in the project."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sim2real_env.errors import ConfigError


def unknown_name_message(kind: str, name: str, choices: Iterable[str]) -> str:
    """Message for an unknown ``name`` of ``kind``: the nearest choices first, then all of them."""
    options = sorted(choices)
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"Unknown {kind} {name!r}.{hint} Choices: {', '.join(options)}."


def resolve_name(kind: str, name: str, choices: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``choices``, else raise ``ConfigError`` (a ``ValueError``) with suggestions."""
    options = list(choices)
    if name not in options:
        raise ConfigError(unknown_name_message(kind, name, options))
    return name
