"""Generator methods by name, imported lazily: ``name -> "module:Class"``."""

from __future__ import annotations

import importlib
from typing import Any

from sim2real_env.errors import ConfigError
from sim2real_env.names import unknown_name_message

#: Each class has ``config_class`` (a frozen dataclass) and ``from_config(config, direction)``.
METHODS: dict[str, str] = {
    "cyclegan": "generators.cyclegan.model:CycleGAN",
    "unit": "generators.unit.model:UNIT",
    "nst": "generators.nst.model:StyleNet",
    "stn_unet": "generators.stn_unet.model:STNUNet",
    "identity": "generators.baselines.model:Identity",
    "color_transfer": "generators.baselines.model:ColorTransfer",
    "cut": "generators.cut.model:CUT",
    "student": "generators.student.model:Student",
}


def method_class(name: str) -> Any:
    """The generator class registered as ``name`` (``ValueError`` with suggestions otherwise)."""
    if name not in METHODS:
        raise ConfigError(unknown_name_message("generator method", name, METHODS))
    module_name, _, attribute = METHODS[name].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def trainer_class(name_or_class: Any) -> Any:
    """The trainer of a method (its model class names it in ``trainer_path``)."""
    cls = method_class(name_or_class) if isinstance(name_or_class, str) else name_or_class
    module_name, _, attribute = cls.trainer_path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build_generator(name: str, config: dict[str, Any] | None = None, direction: str = "sim->real") -> Any:
    """A fresh (untrained) generator of method ``name`` from a plain config mapping."""
    cls = method_class(name)
    return cls(cls.config_class.from_dict(config or {}), direction=direction)
