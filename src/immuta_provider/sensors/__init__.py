"""Immuta sensors, importable from here: ``from immuta_provider.sensors import ...``.

Each class is imported from its module on first access, so importing this package costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from immuta_provider._lazy import lazy_exports

_MODULE_OF = {
    "ImmutaTaskRunSensor": "immuta_provider.sensors.immuta",
    "ImmutaConnectionHealthSensor": "immuta_provider.sensors.connection_health",
}

__all__ = ["ImmutaConnectionHealthSensor", "ImmutaTaskRunSensor"]

if TYPE_CHECKING:
    from immuta_provider.sensors.connection_health import ImmutaConnectionHealthSensor
    from immuta_provider.sensors.immuta import ImmutaTaskRunSensor


__getattr__, __dir__ = lazy_exports(globals(), _MODULE_OF, __all__)
