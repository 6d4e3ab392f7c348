"""Offboard an Immuta connection: record its inventory, deactivate it, delete it, confirm.

Triggered by hand (no schedule) with the DAG param ``connection_key``; the default is the
demo's ``snowflake-legacy``. The DAG:

1. records the connection's data objects (at most 10,000) in XCom, as an audit trail of what
   was removed;
2. deactivates the connection (Immuta deletes only INACTIVE connections; an already inactive
   one is fine);
3. deletes it and waits for Immuta's deletion task to finish, in the triggerer (deferrable);
4. confirms that Immuta no longer knows the connection.

It needs an Airflow connection ``immuta_default`` of type ``immuta`` and a running triggerer.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

try:
    from airflow.sdk import Param, dag, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import dag, task
    from airflow.models.param import Param

from immuta_provider.operators import (
    ImmutaDeactivateConnectionOperator,
    ImmutaDeleteConnectionOperator,
    ImmutaSearchDataObjectsOperator,
)

IMMUTA_CONN_ID = "immuta_default"
# Seconds between two status checks of the deletion; the variable lets a test poll faster.
POLL_INTERVAL = float(os.environ.get("IMMUTA_SYNC_POLL_INTERVAL", "15"))
DELETE_TIMEOUT = timedelta(hours=1)

log = logging.getLogger(__name__)


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["immuta"],
    params={"connection_key": Param("snowflake-legacy", type="string", minLength=1)},
    default_args={"retries": 0},  # nothing here should be repeated blindly
    doc_md=__doc__,
)
def immuta_offboarding() -> None:
    inventory = ImmutaSearchDataObjectsOperator(
        task_id="record_inventory",
        immuta_conn_id=IMMUTA_CONN_ID,
        connection_key="{{ params.connection_key }}",
        max_results=10_000,
    )

    deactivate = ImmutaDeactivateConnectionOperator(
        task_id="deactivate",
        immuta_conn_id=IMMUTA_CONN_ID,
        connection_key="{{ params.connection_key }}",
    )

    delete = ImmutaDeleteConnectionOperator(
        task_id="delete",
        immuta_conn_id=IMMUTA_CONN_ID,
        connection_key="{{ params.connection_key }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=DELETE_TIMEOUT.total_seconds(),
    )

    @task
    def confirm_gone(
        deletion: dict[str, Any], objects: list[dict[str, Any]], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Check that Immuta answers 404 for the connection now, and summarise."""
        # A context argument (params) comes last: Airflow 2.11 gives it a default of None.
        from immuta_provider.client.errors import ImmutaNotFoundError
        from immuta_provider.hooks.immuta import ImmutaHook

        key = params["connection_key"]
        client = ImmutaHook(IMMUTA_CONN_ID).get_client()
        try:
            connection = client.get_connection(key)
        except ImmutaNotFoundError:
            log.info(
                "Immuta connection %r is gone: deletion task %s ended %s; %d data object(s) "
                "were removed with it.",
                key,
                deletion["immuta_task_id"],
                deletion["status"],
                len(objects),
            )
            return {"connection_key": key, "data_objects_removed": len(objects)}
        raise RuntimeError(
            f"Immuta still has connection {key!r} (state {connection.state}) after its deletion "
            f"task {deletion['immuta_task_id']} ended {deletion['status']}."
        )

    inventory >> deactivate >> delete
    confirm_gone(deletion=delete.output, objects=inventory.output)


immuta_offboarding()
