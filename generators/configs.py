"""Helpers for frozen dataclass configs: from mappings with unknown keys rejected, to JSON."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from sim2real_env.errors import ConfigError, Sim2RealError
from sim2real_env.names import unknown_name_message

# The YAML readers live in the bottom layer (sim2real_env's domains and make_env read YAML too);
# re-exported here, where generators and agents have always imported them from.
from sim2real_env.yaml_config import apply_overrides, load_yaml_config, read_yaml_mapping, rename_deprecated

__all__ = [
    "apply_overrides",
    "check_image_size",
    "config_from_dict",
    "config_to_dict",
    "load_yaml_config",
    "read_yaml_mapping",
    "rename_deprecated",
]

T = TypeVar("T")


def config_from_dict(
    cls: type[T], values: dict[str, Any], what: str | None = None, renamed: Mapping[str, str] | None = None
) -> T:
    """Build dataclass ``cls`` from ``values``; unknown keys raise :class:`ConfigError` naming the key.

    Lists become tuples where the field is a tuple, so YAML/JSON round-trips to equal configs.
    ``values`` are user input (a YAML section, ``key=value`` overrides), so a ``ValueError`` or
    ``TypeError`` from the config's own checks (``__post_init__``) is re-raised as a
    :class:`ConfigError`, with the same message, for the CLI to print as one line. ``renamed``
    maps old key names to new ones (see :func:`rename_deprecated`).
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{what or cls.__name__} must be a mapping, got {type(values).__name__}")
    if renamed:
        values = rename_deprecated(values, renamed, what or cls.__name__)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(unknown_name_message(f"{what or cls.__name__} key", str(key), fields))
        hint = hints.get(key)
        origin = typing.get_origin(hint)
        if (isinstance(value, list) and (origin is tuple or hint is tuple)) or (
            isinstance(value, list)
            and origin in (types.UnionType, typing.Union)
            and any(typing.get_origin(a) is tuple for a in typing.get_args(hint))
        ):
            value = tuple(value)
        kwargs[key] = value
    required = [
        name
        for name, f in fields.items()
        if f.init
        and name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if required:
        raise ConfigError(f"{what or cls.__name__} needs {', '.join(repr(name) for name in required)}")
    try:
        return cls(**kwargs)
    except Sim2RealError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    except TypeError as exc:  # e.g. a check comparing a number with the string a user wrote
        raise ConfigError(f"{what or cls.__name__}: a value has the wrong type ({exc})") from exc


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-able dict of a dataclass config (tuples become lists)."""
    data: dict[str, Any] = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


#: Largest generator image side: 2000x2000 training frames were killed by the OOM killer at 24 GB.
MAX_IMAGE_SIDE = 1024


def check_image_size(value: Any, owner: str, multiple: int) -> tuple[int, int]:
    """Validate ``(height, width)``: two positive ints, each a multiple of ``multiple``."""
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= multiple for v in value)
    ):
        raise ConfigError(f"{owner}.image_size must be [height, width] (positive integers), got {value!r}")
    if value[0] % multiple or value[1] % multiple:
        raise ConfigError(f"{owner}.image_size must be multiples of {multiple}, got {list(value)}")
    if max(value) > MAX_IMAGE_SIDE:
        raise ConfigError(
            f"{owner}.image_size must be at most {MAX_IMAGE_SIDE} pixels a side (the camera is 640x480 at most), "
            f"got {list(value)}"
        )
    return int(value[0]), int(value[1])
