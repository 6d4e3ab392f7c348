"""Immuta sensors, importable from here: ``from immuta_provider.sensors import ...``.

Each class is imported from its module on first access, so importing this package costs nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_MODULE_OF = {
    "ImmutaTaskRunSensor": "immuta_provider.sensors.immuta",
    "ImmutaConnectionHealthSensor": "immuta_provider.sensors.connection_health",
}

__all__ = ["ImmutaConnectionHealthSensor", "ImmutaTaskRunSensor"]

if TYPE_CHECKING:
    from immuta_provider.sensors.connection_health import ImmutaConnectionHealthSensor
    from immuta_provider.sensors.immuta import ImmutaTaskRunSensor


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
