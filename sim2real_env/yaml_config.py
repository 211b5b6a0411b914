"""YAML config files: one reader for domains, ``make_env``, agent, eval and generator run configs.

Gym-free and torch-free (the bottom layer): a file must hold a mapping, ``key.sub=value``
overrides from the command line are applied, and unknown top-level keys are refused by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sim2real_env.errors import ConfigError
from sim2real_env.names import unknown_name_message


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply command-line ``key.sub=value`` overrides (values parsed as YAML) to a config mapping."""
    import yaml

    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        dotted, _, text = item.partition("=")
        keys = dotted.strip().split(".")
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
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
        raise ConfigError(f"{what} {path} must hold a mapping, got {type(raw).__name__}")
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
            raise ConfigError(unknown_name_message(f"key in {path.name}", str(key), allowed))
    return raw
