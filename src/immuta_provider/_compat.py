"""Every Airflow import the provider needs, in one place.

Airflow 3.x exposes the authoring API under ``airflow.sdk``; Airflow 2.11 keeps the same classes
under ``airflow.models`` / ``airflow.hooks`` / ``airflow.sensors``. Each name below is imported from
the 3.x location first and falls back to the 2.11 one, so supporting 2.11 means testing the
``except ImportError`` branches, not touching the operators.

Import cost matters here: DAG files import the operators at every parse, and the operators import
this module. The names imported eagerly are already loaded by ``import airflow.sdk``; anything else
(triggers, XCom, the secrets masker) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type-check against the 3.x SDK
    from airflow.sdk import (
        Asset,
        AssetAlias,
        AssetWatcher,
        BaseHook,
        BaseOperator,
        BaseOperatorLink,
        BaseSensorOperator,
        PokeReturnValue,
        conf,
    )
    from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout
    from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent
else:
    # Each name from the newest location that has it: the 3.x authoring API grew over 3.0-3.2
    # (3.0 has no ``airflow.sdk.BaseHook``, 3.0-3.1 no ``airflow.sdk.conf``, 3.0 no
    # ``airflow.sdk.exceptions.AirflowException``, 3.0-3.1 no ``...AirflowSensorTimeout``).
    # BaseHook is resolved on first use (``__getattr__``): on 3.0 it lives in ``airflow.hooks``,
    # which a DAG file importing the operators should not pay for.
    try:  # Airflow 3.x
        from airflow.sdk import BaseOperator, BaseOperatorLink, BaseSensorOperator, PokeReturnValue
    except ImportError:  # pragma: no cover - Airflow 2.11
        from airflow.models.baseoperator import BaseOperator
        from airflow.models.baseoperatorlink import BaseOperatorLink
        from airflow.sensors.base import BaseSensorOperator, PokeReturnValue
    try:  # Airflow 3.2+
        from airflow.sdk import conf
    except ImportError:  # pragma: no cover - Airflow 3.0-3.1 and 2.11
        from airflow.configuration import conf
    try:  # Airflow 3.1+
        from airflow.sdk.exceptions import AirflowException
    except ImportError:  # pragma: no cover - Airflow 3.0 and 2.11
        from airflow.exceptions import AirflowException
    try:  # Airflow 3.2+
        from airflow.sdk.exceptions import AirflowSensorTimeout
    except ImportError:  # pragma: no cover - Airflow 3.0-3.1 and 2.11
        from airflow.exceptions import AirflowSensorTimeout

__all__ = [
    "AirflowException",
    "AirflowSensorTimeout",
    "Asset",
    "AssetAlias",
    "AssetWatcher",
    "BaseEventTrigger",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "BaseTrigger",
    "PokeReturnValue",
    "TriggerEvent",
    "aget_connection",
    "amask_secret",
    "asset_state_accessor",
    "conf",
    "ensure_asset_alias",
    "event_scheduling_unavailable",
    "get_xcom_value",
    "mask_secret",
]


def __getattr__(name: str) -> Any:
    if name == "BaseHook":
        return _base_hook()
    # The trigger base classes cost ~8 ms to import and only the triggerer and the deferring
    # operator need them, so they are resolved on first access rather than at DAG parse time.
    if name in ("BaseTrigger", "TriggerEvent"):
        from airflow.triggers import base  # same path on 2.11 and 3.x

        return getattr(base, name)
    if name == "BaseEventTrigger":
        from airflow.triggers import base

        # Airflow 2.11 has no event-driven scheduling: the watcher trigger still imports (DAG
        # files and the triggers module load), built on BaseTrigger, and refuses to be built.
        return getattr(base, "BaseEventTrigger", base.BaseTrigger)
    if name == "AssetWatcher":
        from airflow import sdk  # 3.x only; callers check event_scheduling_unavailable() first

        return sdk.AssetWatcher
    # Assets (Datasets on 2.11): only a sync operator that emits asset events, and DAG files
    # scheduled on them, need these.
    if name in ("Asset", "AssetAlias"):
        try:  # Airflow 3.x
            from airflow import sdk

            return getattr(sdk, name)
        except ImportError:  # pragma: no cover - Airflow 2.11
            from airflow import datasets

            return getattr(datasets, name.replace("Asset", "Dataset"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def event_scheduling_unavailable() -> str | None:
    """Why this Airflow cannot run the Immuta sync watcher, or ``None`` when it can.

    The watcher needs event-driven scheduling (``BaseEventTrigger`` and ``AssetWatcher``), shared
    trigger streams (``BaseEventTrigger.shared_stream_key``) and the asset state store that the
    triggerer hands to watchers (``AssetStateStoreAccessors``), all found in Airflow 3.3.
    """
    from importlib.metadata import version

    try:
        from airflow.sdk import AssetWatcher  # noqa: F401
        from airflow.triggers.base import BaseEventTrigger
    except ImportError:
        missing = "event-driven scheduling (AssetWatcher, BaseEventTrigger)"
    else:
        try:
            from airflow.sdk.execution_time.context import (  # noqa: F401
                AssetStateStoreAccessors,
            )
        except ImportError:
            missing = "the asset state store that keeps a watcher's watermark"
        else:
            if hasattr(BaseEventTrigger, "shared_stream_key"):
                return None
            missing = "shared trigger streams (BaseEventTrigger.shared_stream_key)"
    return (
        f"Event-driven scheduling on Immuta syncs needs Airflow 3.3 or later; this is Airflow "
        f"{version('apache-airflow')}, which lacks {missing}. Upgrade Airflow, or schedule the "
        "DAG on immuta_provider.assets.immuta_connection_asset(...), which "
        "ImmutaDataObjectSyncOperator updates after each sync it runs."
    )


def asset_state_accessor(uri: str) -> Any:
    """The asset state store of the asset ``uri`` for the running task (3.3+), else ``None``."""
    try:
        from airflow.sdk.execution_time.context import AssetStateStoreAccessor
    except ImportError:  # Airflow 2.11 and 3.x before the asset state store
        return None
    return AssetStateStoreAccessor(uri=uri)


def _base_hook() -> Any:
    try:  # Airflow 3.1+
        from airflow.sdk import BaseHook
    except ImportError:  # pragma: no cover - Airflow 3.0 and 2.11
        from airflow.hooks.base import BaseHook  # type: ignore[attr-defined,no-redef]
    return BaseHook


def ensure_asset_alias(name: str) -> None:
    """Make sure the metadata database has a row for the asset alias ``name`` (Airflow 2.11).

    When a task ends, 2.11 attaches the asset events it emitted through an alias to the alias's
    row, which only the DAG processor creates, for the outlets it sees when it parses the DAG. A
    mapped task (``partial().expand()``) sets its outlets only when it runs, so its alias may have
    no row, and 2.11 would then fail the task after its work was done ("Can't flush None value
    found in collection DatasetModel.aliases"). 3.x creates a missing alias row itself.
    """
    try:
        from airflow.models.dataset import DatasetAliasModel
    except ImportError:  # Airflow 3.x
        return
    from airflow.utils.session import create_session  # pragma: no cover - Airflow 2.11
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    try:
        with create_session() as session:
            query = select(DatasetAliasModel.id).where(DatasetAliasModel.name == name)
            if session.scalar(query) is None:
                session.add(DatasetAliasModel(name=name))
    except IntegrityError:
        pass  # another mapped task instance created it at the same moment


def mask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's secrets masker so it is redacted from task logs."""
    try:  # Airflow 3.1+
        from airflow.sdk.log import mask_secret as _mask_secret
    except ImportError:  # pragma: no cover - Airflow 3.0 and 2.11
        try:  # Airflow 3.0
            from airflow.sdk.execution_time.secrets_masker import (  # type: ignore[no-redef]
                mask_secret as _mask_secret,
            )
        except ImportError:  # Airflow 2.11
            from airflow.utils.log.secrets_masker import (  # type: ignore[no-redef]
                mask_secret as _mask_secret,
            )
    _mask_secret(secret)


async def amask_secret(secret: str) -> None:
    """Async-safe :func:`mask_secret` for code running in the triggerer's event loop.

    3.3 has ``amask_secret``. Elsewhere the synchronous one runs through asgiref's
    ``sync_to_async``, as Airflow's triggerer asks of Task SDK calls: on 3.0 a plain call from
    the event loop fails (the triggerer's ``async_to_sync`` refuses to run in the loop's thread);
    3.1-3.2 would cope either way, and 2.11 has no supervisor.
    """
    try:  # Airflow 3.3+
        from airflow.sdk.log import amask_secret as _amask_secret
    except ImportError:  # pragma: no cover - Airflow 3.0-3.2 and 2.11
        from asgiref.sync import sync_to_async

        await sync_to_async(mask_secret)(secret)
        return
    await _amask_secret(secret)


async def aget_connection(conn_id: str) -> Any:
    """Read an Airflow connection without blocking the running event loop.

    3.1+ has ``BaseHook.aget_connection``, which asks the supervisor asynchronously. 3.0 and 2.11
    only have the synchronous lookup (a request to the supervisor on 3.0, a database or
    secrets-backend read on 2.11); it runs through asgiref's ``sync_to_async``, which on 3.0 is
    what lets the triggerer answer it from its event loop.
    """
    base_hook = _base_hook()
    aget = getattr(base_hook, "aget_connection", None)
    if aget is not None:
        return await aget(conn_id)
    from asgiref.sync import sync_to_async  # pragma: no cover - Airflow 3.0 and 2.11

    return await sync_to_async(base_hook.get_connection)(conn_id)  # pragma: no cover


def get_xcom_value(ti_key: Any, key: str) -> Any:
    """Read one XCom value of the task instance identified by ``ti_key`` (for extra links)."""
    try:
        from airflow.sdk.execution_time.xcom import XCom
    except ImportError:  # pragma: no cover - Airflow 2.11
        from airflow.models.xcom import XCom  # type: ignore[no-redef]
    return XCom.get_value(ti_key=ti_key, key=key)
