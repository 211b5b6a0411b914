"""YAML config files: one reader for domains, ``make_env``, agent, eval and generator run configs.

Gym-free and torch-free (the bottom layer): a file must hold a mapping, ``key.sub=value``
overrides from the command line are applied, and unknown top-level keys are refused by name.

The configs shipped with the project (``configs/`` in the repository) are package data too
(``sim2real_env/configs``, a link to ``../configs`` in a checkout, real files in an installed
wheel), so an installed package finds them from any working directory: a relative path
``configs/<kind>/<name>.yaml`` is read as typed when it exists, else from the shipped copy.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sim2real_env.errors import ConfigError
from sim2real_env.names import unknown_name_message


def shipped_configs() -> Path:
    """The ``configs/`` folder shipped with the package (the repository's when the package data is absent)."""
    packaged = Path(__file__).resolve().parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "configs"


def find_config(path: str | Path) -> Path:
    """``path`` as typed (relative to the working directory) if it exists, else the shipped ``configs/...`` copy.

    So ``--config configs/generators/cyclegan.yaml`` works in the repository (the user's edits
    win) and anywhere else once the package is installed.
    """
    path = Path(path)
    if path.exists() or path.is_absolute() or len(path.parts) < 2 or path.parts[0] != "configs":
        return path
    shipped = shipped_configs().joinpath(*path.parts[1:])
    return shipped if shipped.is_file() else path


def rename_deprecated(
    values: dict[str, Any], renamed: Mapping[str, str], what: str, warn: bool = True
) -> dict[str, Any]:
    """``values`` with keys renamed ``old -> new``; an old key still works, with a ``FutureWarning``.

    For keys renamed so that a name has one unit (``episode_steps`` meant simulator frames in
    evaluation and actions in PPO/BC). Giving both names is a :class:`ConfigError`. ``warn=False``
    for records a program wrote (a saved run's config), which the user need not edit.
    """
    out = dict(values)
    for old, new in renamed.items():
        if old not in out:
            continue
        if new in out:
            raise ConfigError(f"{what}: give {new!r} only ({old!r} is its old name)")
        if warn:
            warnings.warn(f"{what}.{old} is now {what}.{new}; rename it in your config", FutureWarning, stacklevel=3)
        out[new] = out.pop(old)
    return out


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

    path = find_config(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{what} {path} is not valid YAML{line}: {problem}") from None
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
