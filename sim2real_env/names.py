"""Name lookup with a "did you mean" error, shared by every registry in the project."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar

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


T = TypeVar("T")


class Registry(Mapping[str, T]):
    """Named entries of one ``kind``, added by a decorator; an unknown name gets a did-you-mean error.

    ``load`` names the module whose import registers the shipped entries: it is imported on the
    first lookup, so that importing the registry stays cheap (the entries may pull in torch models
    or trainers). A name registered twice is refused: the second registration would shadow the
    first without a word.

    Example::

        METHODS: Registry[type] = Registry("generator method", load="generators.methods")

        @METHODS.register("cyclegan")
        class CycleGAN: ...

        METHODS.lookup("cyclegn")  # ConfigError: ... Did you mean 'cyclegan'? ...
    """

    def __init__(self, kind: str, load: str | None = None) -> None:
        self.kind = kind
        self._load_module = load
        self._loaded = load is None
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: add the decorated object as ``name`` (``ValueError`` if the name is taken)."""

        def add(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.kind} {name!r} is registered twice: {self._entries[name]!r} and {entry!r}")
            self._entries[name] = entry
            return entry

        return add

    def _load(self) -> None:
        if not self._loaded and self._load_module is not None:
            self._loaded = True  # before the import: the modules it imports register here
            try:
                importlib.import_module(self._load_module)
            except BaseException:
                self._loaded = False
                raise

    def lookup(self, name: str) -> T:
        """The entry registered as ``name``; ``ConfigError`` (a ``ValueError``) with suggestions otherwise."""
        self._load()
        if name not in self._entries:
            raise ConfigError(unknown_name_message(self.kind, name, self._entries))
        return self._entries[name]

    def __getitem__(self, name: str) -> T:
        self._load()
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self._entries)

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries) if self._loaded else '<not loaded>'})"
