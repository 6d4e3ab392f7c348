"""Lazy package exports: a name is imported from its module on first access (PEP 562).

The client, operator and sensor packages use it so that importing a package (which importing any
of its modules does) costs nothing at DAG parse time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package_globals: dict[str, Any], module_of: Mapping[str, str], names: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose ``names`` live in ``module_of``."""
    listed = set(names)

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(
                f"module {package_globals['__name__']!r} has no attribute {name!r}"
            )
        value = getattr(import_module(module), name)
        package_globals[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(package_globals) | listed)

    return __getattr__, __dir__
