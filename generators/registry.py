"""Generator methods and their trainers by name, registered by decorators and loaded on first lookup.

A method's ``model.py`` registers its model class, its ``train.py`` its trainer::

    @register_method("cyclegan")
    class CycleGAN(TorchGenerator):
        method = "cyclegan"
        config_class = CycleGANConfig      # frozen dataclass with from_dict

    @register_trainer("cyclegan")
    class CycleGANTrainer: ...             # a generators.trainer.TrainerClass

The first lookup in :data:`METHODS` imports :mod:`generators.methods` (every shipped model
module), the first in :data:`TRAINERS` :mod:`generators.method_trainers`, so importing this module
(and :mod:`generators.checkpoint`) stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sim2real_env.names import Registry

if TYPE_CHECKING:
    from generators.base import TorchGenerator
    from generators.trainer import TrainerClass

#: Model classes by method name: each has ``method``, ``config_class`` and ``__init__(config, direction)``.
METHODS: Registry[type[TorchGenerator]] = Registry("generator method", load="generators.methods")
#: Trainer classes by method name (:class:`generators.trainer.TrainerClass`).
TRAINERS: Registry[TrainerClass] = Registry("generator trainer", load="generators.method_trainers")

G = TypeVar("G", bound="type[TorchGenerator]")
TC = TypeVar("TC", bound="TrainerClass")


def register_method(name: str) -> Callable[[G], G]:
    """Class decorator: register a generator model class as method ``name`` (its ``method`` attribute)."""

    def add(cls: G) -> G:
        if getattr(cls, "method", None) != name:
            raise TypeError(f"register_method({name!r}): {cls.__name__}.method is {getattr(cls, 'method', None)!r}")
        if not hasattr(cls, "config_class"):
            raise TypeError(f"register_method({name!r}): {cls.__name__} has no config_class")
        METHODS.register(name)(cls)
        return cls

    return add


def register_trainer(name: str) -> Callable[[TC], TC]:
    """Class decorator: register the trainer class of method ``name`` (mypy checks it against the protocol)."""

    def add(cls: TC) -> TC:
        if not hasattr(cls, "losses_class"):
            raise TypeError(f"register_trainer({name!r}): {getattr(cls, '__name__', cls)!r} has no losses_class")
        TRAINERS.register(name)(cls)
        return cls

    return add


def method_class(name: str) -> type[TorchGenerator]:
    """The generator class registered as ``name`` (``ConfigError``, a ``ValueError``, with suggestions otherwise)."""
    return METHODS.lookup(name)


def trainer_class(name_or_class: str | type[TorchGenerator]) -> TrainerClass:
    """The trainer of a method, by name or by its model class."""
    name = name_or_class if isinstance(name_or_class, str) else name_or_class.method
    return TRAINERS.lookup(name)


def build_generator(name: str, config: dict[str, Any] | None = None, direction: str = "sim->real") -> TorchGenerator:
    """A fresh (untrained) generator of method ``name`` from a plain config mapping."""
    cls = method_class(name)
    return cls(cls.config_class.from_dict(config or {}), direction=direction)
