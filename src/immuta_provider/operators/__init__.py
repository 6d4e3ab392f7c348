"""Immuta operators, importable from here: ``from immuta_provider.operators import ...``.

Each class is imported from its module on first access, so importing this package (which any
import of an operator module does) costs nothing: a DAG that uses one operator loads one module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from immuta_provider._lazy import lazy_exports

_MODULE_OF = {
    "ImmutaDataObjectSyncOperator": "immuta_provider.operators.immuta",
    "ImmutaValidateConnectionOperator": "immuta_provider.operators.connections",
    "ImmutaActivateConnectionOperator": "immuta_provider.operators.connections",
    "ImmutaDeactivateConnectionOperator": "immuta_provider.operators.connections",
    "ImmutaCreateConnectionOperator": "immuta_provider.operators.connections",
    "ImmutaUpdateConnectionOperator": "immuta_provider.operators.connections",
    "ImmutaDeleteConnectionOperator": "immuta_provider.operators.connections",
    "ImmutaSearchDataObjectsOperator": "immuta_provider.operators.data_objects",
    "ImmutaDeleteDataObjectOperator": "immuta_provider.operators.data_objects",
    "ImmutaCancelTaskRunOperator": "immuta_provider.operators.task_runs",
}

__all__ = [
    "ImmutaActivateConnectionOperator",
    "ImmutaCancelTaskRunOperator",
    "ImmutaCreateConnectionOperator",
    "ImmutaDataObjectSyncOperator",
    "ImmutaDeactivateConnectionOperator",
    "ImmutaDeleteConnectionOperator",
    "ImmutaDeleteDataObjectOperator",
    "ImmutaSearchDataObjectsOperator",
    "ImmutaUpdateConnectionOperator",
    "ImmutaValidateConnectionOperator",
]

if TYPE_CHECKING:
    from immuta_provider.operators.connections import (
        ImmutaActivateConnectionOperator,
        ImmutaCreateConnectionOperator,
        ImmutaDeactivateConnectionOperator,
        ImmutaDeleteConnectionOperator,
        ImmutaUpdateConnectionOperator,
        ImmutaValidateConnectionOperator,
    )
    from immuta_provider.operators.data_objects import (
        ImmutaDeleteDataObjectOperator,
        ImmutaSearchDataObjectsOperator,
    )
    from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator
    from immuta_provider.operators.task_runs import ImmutaCancelTaskRunOperator


__getattr__, __dir__ = lazy_exports(globals(), _MODULE_OF, __all__)
