"""Wait for an Immuta sync that something else started, then use the fresh inventory.

Immuta syncs connections on its own schedule, and other tools (or people, in Immuta's UI) start
syncs too. This DAG does not start one; every morning it:

1. waits until the connection is ACTIVE and healthy (``ImmutaConnectionHealthSensor`` in
   reschedule mode, so no worker slot is held between checks);
2. finds the connection's most recent data object sync;
3. waits for that sync's run to end (``ImmutaTaskRunSensor``, deferred to the triggerer); a
   sync that failed or was cancelled fails the DAG with Immuta's reason;
4. lists the tables Immuta now knows for the connection and reports how many there are.

The connection is the DAG param ``connection_key`` (default ``snowflake-prod``). It needs an
Airflow connection ``immuta_default`` of type ``immuta`` and a running triggerer.
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

from immuta_provider.operators import ImmutaSearchDataObjectsOperator
from immuta_provider.sensors import ImmutaConnectionHealthSensor, ImmutaTaskRunSensor

IMMUTA_CONN_ID = "immuta_default"
# Seconds between two checks; syncs of large connections take minutes. The variable lets a test
# instance poll faster.
POLL_INTERVAL = float(os.environ.get("IMMUTA_SYNC_POLL_INTERVAL", "60"))
MAX_WAIT = timedelta(hours=3)

log = logging.getLogger(__name__)


@dag(
    schedule="0 6 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["immuta"],
    params={"connection_key": Param("snowflake-prod", type="string", minLength=1)},
    doc_md=__doc__,
)
def immuta_wait_for_external_sync() -> None:
    healthy = ImmutaConnectionHealthSensor(
        task_id="connection_healthy",
        immuta_conn_id=IMMUTA_CONN_ID,
        connection_key="{{ params.connection_key }}",
        mode="reschedule",
        poke_interval=POLL_INTERVAL,
        timeout=MAX_WAIT.total_seconds(),
    )

    @task
    def find_latest_sync(params: dict[str, Any]) -> dict[str, str]:
        """The most recent top-level sync of the connection and its latest run."""
        # Imported here, not at the top: the scheduler parses this file often, tasks run rarely.
        from immuta_provider.hooks.immuta import ImmutaHook

        def created(item: Any) -> float:
            return item.created_at.timestamp() if item.created_at else 0.0

        key = params["connection_key"]
        client = ImmutaHook(IMMUTA_CONN_ID).get_client()
        syncs = [
            sync
            for sync in client.list_tasks(key, type="DATA_OBJECT_SYNC", page_size=100)
            if sync.parent_id is None  # not a per-database sub-task of a sync
        ]
        if not syncs:
            raise RuntimeError(f"Immuta connection {key!r} has no data object sync to wait for.")
        newest = max(syncs, key=created)
        runs = list(client.list_task_runs(key, newest.task_id))
        if not runs:
            raise RuntimeError(f"The sync {newest.task_id} of {key!r} has no run yet.")
        run = max(runs, key=created)
        log.info(
            "Latest sync of %r: task %s (started by %s, %s), run %s is %s.",
            key,
            newest.task_id,
            newest.created_by,
            newest.trigger,
            run.run_id,
            run.status,
        )
        return {"immuta_task_id": newest.task_id, "run_id": run.run_id}

    latest = find_latest_sync()

    wait_for_sync = ImmutaTaskRunSensor(
        task_id="wait_for_sync",
        immuta_conn_id=IMMUTA_CONN_ID,
        connection_key="{{ params.connection_key }}",
        immuta_task_id="{{ ti.xcom_pull(task_ids='find_latest_sync')['immuta_task_id'] }}",
        run_id="{{ ti.xcom_pull(task_ids='find_latest_sync')['run_id'] }}",
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=MAX_WAIT.total_seconds(),
    )

    tables = ImmutaSearchDataObjectsOperator(
        task_id="list_tables",
        immuta_conn_id=IMMUTA_CONN_ID,
        connection_key="{{ params.connection_key }}",
        attributes={"type": "table"},
        max_results=5000,
    )

    @task
    def report(sync: dict[str, Any], tables: list[dict[str, Any]]) -> dict[str, Any]:
        """Log what the sync produced; the downstream work of your pipeline goes here."""
        log.info(
            "Sync %s of %r ended %s in %ss; Immuta knows %d table(s) of it now.",
            sync["run_id"],
            sync["connection_key"],
            sync["status"],
            sync["duration_seconds"],
            len(tables),
        )
        return {"run_id": sync["run_id"], "tables": len(tables)}

    healthy >> latest >> wait_for_sync >> tables
    report(wait_for_sync.output, tables.output)


immuta_wait_for_external_sync()
