"""Triggers of the Immuta provider, imported lazily (DAG files import this package at parse time).

* :class:`~immuta_provider.triggers.immuta.ImmutaTaskRunTrigger`: waits for one task run (used by
  deferred operators and sensors).
* :class:`~immuta_provider.triggers.sync_completed.ImmutaSyncCompletedTrigger`: an asset watcher
  that fires when any sync of a connection completes (event-driven scheduling, Airflow 3.3+).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger
    from immuta_provider.triggers.sync_completed import ImmutaSyncCompletedTrigger

__all__ = ["ImmutaSyncCompletedTrigger", "ImmutaTaskRunTrigger"]

_MODULES = {
    "ImmutaTaskRunTrigger": "immuta_provider.triggers.immuta",
    "ImmutaSyncCompletedTrigger": "immuta_provider.triggers.sync_completed",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
