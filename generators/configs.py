"""Helpers for frozen dataclass configs: from mappings with unknown keys rejected, to JSON."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from sim2real_env.names import unknown_name_message

T = TypeVar("T")


def config_from_dict(cls: type[T], values: dict[str, Any], what: str | None = None) -> T:
    """Build dataclass ``cls`` from ``values``; unknown keys raise ``ValueError`` naming the key.

    Lists become tuples where the field is a tuple, so YAML/JSON round-trips to equal configs.
    """
    if not isinstance(values, dict):
        raise ValueError(f"{what or cls.__name__} must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ValueError(unknown_name_message(f"{what or cls.__name__} key", str(key), fields))
        hint = hints.get(key)
        origin = typing.get_origin(hint)
        if (isinstance(value, list) and (origin is tuple or hint is tuple)) or (
            isinstance(value, list)
            and origin in (types.UnionType, typing.Union)
            and any(typing.get_origin(a) is tuple for a in typing.get_args(hint))
        ):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-able dict of a dataclass config (tuples become lists)."""
    data: dict[str, Any] = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def check_image_size(value: Any, owner: str, multiple: int) -> tuple[int, int]:
    """Validate ``(height, width)``: two positive ints, each a multiple of ``multiple``."""
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= multiple for v in value)
    ):
        raise ValueError(f"{owner}.image_size must be [height, width] (positive integers), got {value!r}")
    if value[0] % multiple or value[1] % multiple:
        raise ValueError(f"{owner}.image_size must be multiples of {multiple}, got {list(value)}")
    return int(value[0]), int(value[1])


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply command-line ``key.sub=value`` overrides (values parsed as YAML) to a config mapping."""
    import yaml

    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        dotted, _, text = item.partition("=")
        keys = dotted.strip().split(".")
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {dotted!r}: {key!r} is not a section")
        node[keys[-1]] = yaml.safe_load(text)
    return raw


def read_yaml_mapping(path: str | Path, what: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping and apply ``key.sub=value`` overrides."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{what} {path} must hold a mapping, got {type(raw).__name__}")
    return apply_overrides(raw, overrides)


def load_yaml_config(
    path: str | Path, what: str, known: Iterable[str], overrides: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """:func:`read_yaml_mapping`, then reject unknown top-level keys by name (with a did-you-mean)."""
    path = Path(path)
    raw = read_yaml_mapping(path, what, overrides)
    allowed = list(known)
    for key in raw:
        if key not in allowed:
            raise ValueError(unknown_name_message(f"key in {path.name}", str(key), allowed))
    return raw
