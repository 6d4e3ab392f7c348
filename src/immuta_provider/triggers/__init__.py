"""Triggers of the Immuta provider, imported lazily (DAG files import this package at parse time).

* :class:`~immuta_provider.triggers.immuta.ImmutaTaskRunTrigger`: waits for one task run (used by
  deferred operators and sensors).
* :class:`~immuta_provider.triggers.sync_completed.ImmutaSyncCompletedTrigger`: an asset watcher
  that fires when any sync of a connection completes (event-driven scheduling, Airflow 3.3+).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from immuta_provider._lazy import lazy_exports

_MODULE_OF = {
    "ImmutaTaskRunTrigger": "immuta_provider.triggers.immuta",
    "ImmutaSyncCompletedTrigger": "immuta_provider.triggers.sync_completed",
}

__all__ = ["ImmutaSyncCompletedTrigger", "ImmutaTaskRunTrigger"]

if TYPE_CHECKING:
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger
    from immuta_provider.triggers.sync_completed import ImmutaSyncCompletedTrigger

__getattr__, __dir__ = lazy_exports(globals(), _MODULE_OF, __all__)
