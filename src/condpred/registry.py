"""The one way condpred is extended: named entries in a `Registry`.

Checks, model backends (the scheme of a model spec, `openai:` ...), experiment kinds and report
sections each live in a registry. An entry registers itself with the registry's decorator when its
module is imported. condpred's own modules are listed with the registry and imported the first
time it is read; a user's package adds entries without touching condpred through a Python entry
point in the registry's group that names the module to import, e.g. in its pyproject.toml:

    [project.entry-points."condpred.checks"]
    my_check = "my_package.my_check"
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from condpred.errors import InputError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to entries of one sort (`what`), filled by `register` as modules are imported."""

    def __init__(self, what: str, group: str, builtins: Sequence[str]) -> None:
        self.what = what
        self.group = group
        self.builtins = tuple(builtins)
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under `name` (a later one replaces it)."""

        def add(entry: T) -> T:
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str, *, field: str | None = None) -> T:
        """The entry named `name`; an unknown name is an InputError listing the known ones."""
        self._load()
        if name not in self._entries:
            raise InputError(
                f"unknown {self.what} '{name}'",
                field=field,
                fix=f"{did_you_mean(name, self.names())}Use one of: {', '.join(self.names())}; "
                "a package adds its own "
                f"through the entry-point group '{self.group}'",
            )
        return self._entries[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load(self) -> None:
        """Import the built-in modules and the entry points' modules, once."""
        if self._loaded:
            return
        self._loaded = True  # before importing: a module may read its own registry
        try:
            for module in self.builtins:
                importlib.import_module(module)
            for entry in entry_points(group=self.group):
                entry.load()
        except BaseException:
            self._loaded = False
            raise
