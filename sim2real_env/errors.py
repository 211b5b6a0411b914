"""The project's error classes: one base, :class:`Sim2RealError`, that the ``sim2real`` CLI catches.

A :class:`Sim2RealError` is a problem the user can fix without reading code (a bad config value
or option, a missing or corrupt input, a missing system library); the CLI prints its message as
one line, without a traceback, and exits with status 2. Anything else that escapes a command,
a plain ``ValueError`` or ``TypeError`` included, is treated as a bug and keeps its traceback.

Subclasses also derive from the built-in class they replaced (``ValueError`` for bad input,
``RuntimeError`` for a missing library), so ``except ValueError`` in callers keeps working::

    try:
        config = load_run_config(path)
    except Sim2RealError as exc:
        print(f"error: {exc}")
"""

from __future__ import annotations


class Sim2RealError(Exception):
    """Base of every error the user can fix; the CLI prints it as one line."""


class ConfigError(Sim2RealError, ValueError):
    """A config value, command-line option or name that is wrong; the message names it and the allowed values."""


class InputError(Sim2RealError, ValueError):
    """An input or output path that cannot be used: missing, unreadable, corrupt, or in the way."""
