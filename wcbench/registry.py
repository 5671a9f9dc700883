"""Registries by name, filled by decorators as timm registers models.

A new search algorithm, validation strategy, scorer or dataset is one new file with a decorator:

    from wcbench.registry import ALGORITHMS

    @ALGORITHMS.register("mydarts")
    class MyDarts(...): ...

The registry names no package itself. Packages whose modules register things are named with
:func:`register_packages` (wcbench's own ``wcbench.data``, ``searchers`` and ``evaluators`` are named in
``wcbench/__init__.py``, so any lookup finds them); every module in them is imported on the first
lookup, so a new module needs no other edit. Packages outside this repository register through the
entry-point groups ``wcbench.searchers`` and ``wcbench.scorers`` (each entry point names a module).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from wcbench.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object map with a decorator and did-you-mean errors."""

    def __init__(self, kind: str, hint: str) -> None:
        self.kind = kind
        self.hint = hint
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise RegistryError(f"{self.kind} {name!r} is registered twice; rename one of them")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        load_plugins()
        if name not in self._items:
            close = difflib.get_close_matches(name, self.names(), n=1)
            maybe = f" (did you mean {close[0]!r}?)" if close else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}{maybe}; known: {', '.join(self.names())}; {self.hint}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        load_plugins()
        return sorted(self._items.items())


ALGORITHMS: Registry[Any] = Registry("search algorithm", "see `wcbench list searchers`")
STRATEGIES: Registry[Any] = Registry("validation strategy", "see `wcbench list searchers`")
SCORERS: Registry[Any] = Registry("scorer", "see `wcbench list scorers`")
DATASETS: Registry[Any] = Registry("dataset", "see `wcbench list datasets`")

_ENTRY_POINT_GROUPS = ("wcbench.searchers", "wcbench.scorers")
_packages: list[str] = []  # every package named so far, in order
_walked = 0  # how many of them have been imported
_entry_points_loaded = False


def register_packages(*packages: str) -> None:
    """Name packages whose modules register on import; the next lookup imports every module in them."""
    for package in packages:
        if package not in _packages:
            _packages.append(package)


def registered_packages() -> tuple[str, ...]:
    return tuple(_packages)


def _import_package_tree(package: str) -> None:
    try:
        pkg = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name == package:
            return
        raise
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        importlib.import_module(info.name)


def load_plugins() -> None:
    """Import every module of the registered packages, then every installed plugin; each once."""
    global _walked, _entry_points_loaded
    while _walked < len(_packages):
        package = _packages[_walked]
        _walked += 1  # before importing: a lookup during the import must not walk it again
        _import_package_tree(package)
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for group in _ENTRY_POINT_GROUPS:
            for ep in entry_points(group=group):
                ep.load()


def split_searcher_name(name: str) -> tuple[str, str]:
    """`<strategy>-<algorithm>` -> (strategy, algorithm); a bare algorithm is the `plain` baseline."""
    load_plugins()
    if name in ALGORITHMS._items:
        return "plain", name
    strategy, sep, algorithm = name.partition("-")
    if sep and strategy in STRATEGIES._items and algorithm in ALGORITHMS._items:
        return strategy, algorithm
    known = searcher_names()
    close = difflib.get_close_matches(name, known, n=1)
    maybe = f" (did you mean {close[0]!r}?)" if close else ""
    raise RegistryError(
        f"unknown searcher {name!r}{maybe}; a searcher is <strategy>-<algorithm> or an algorithm "
        f"alone; see `wcbench list searchers`"
    )


def searcher_names() -> list[str]:
    """Every searcher: each algorithm alone (the plain baseline) and each strategy-algorithm pair."""
    algorithms = ALGORITHMS.names()
    names = list(algorithms)
    for strategy in STRATEGIES.names():
        if strategy == "plain":
            continue
        names += [f"{strategy}-{a}" for a in algorithms]
    return names
