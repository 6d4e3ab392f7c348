"""Run whenever Immuta has finished syncing a connection, whoever started the sync (Airflow 3.3+).

The asset of the connection carries a watcher (``ImmutaSyncCompletedTrigger``) that the triggerer
runs: it looks at the connection's syncs every ``IMMUTA_POLL_INTERVAL`` seconds and adds an asset
event for each sync that completes, started from Airflow, from Immuta's UI or by Immuta's own
schedule. Syncs that an ``ImmutaDataObjectSyncOperator`` runs produce one event too, the
operator's own (with the data object count): the watcher skips them, so this DAG runs once per
sync.

Set ``IMMUTA_HOST`` to your Immuta host (or URL, as in the Airflow connection),
``IMMUTA_CONNECTION_KEY`` to the connection to follow and, optionally, ``IMMUTA_CONN_ID`` and
``IMMUTA_POLL_INTERVAL``. Replace the report with your own work: refresh a catalog, run the policy
checks, notify the data owners...
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.11: the watcher below then says it needs Airflow 3.3
    from airflow.decorators import dag, task

from immuta_provider.assets import immuta_sync_completed_asset

IMMUTA_HOST = os.environ.get("IMMUTA_HOST", "acme.hosted.immutacloud.com")
CONNECTION_KEY = os.environ.get("IMMUTA_CONNECTION_KEY", "snowflake-prod")
IMMUTA_CONN_ID = os.environ.get("IMMUTA_CONN_ID", "immuta_default")
POLL_INTERVAL = float(os.environ.get("IMMUTA_POLL_INTERVAL", "60"))

log = logging.getLogger("immuta_on_any_sync")

synced = immuta_sync_completed_asset(
    IMMUTA_HOST, CONNECTION_KEY, immuta_conn_id=IMMUTA_CONN_ID, poll_interval=POLL_INTERVAL
)


@dag(
    schedule=[synced],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["immuta"],
    doc_md=__doc__,
)
def immuta_on_any_sync() -> None:
    @task
    def report_completed_syncs(**context: Any) -> list[dict[str, Any]]:
        """Log each sync behind this run (several if they ended before the run started)."""
        reports = []
        for uri, events in (context.get("triggering_asset_events") or {}).items():
            for event in events:
                extra = event.extra or {}
                # The watcher's event keeps its trigger payload under "payload"; the sync
                # operator's event is the run summary itself.
                sync = extra.get("payload", extra)
                log.info(
                    "%s: Immuta sync %s run %s ended %s (started by %s): %s",
                    uri,
                    sync.get("immuta_task_id"),
                    sync.get("run_id"),
                    sync.get("status"),
                    sync.get("created_by") or sync.get("trigger") or "this Airflow",
                    sync.get("task_run_url"),
                )
                reports.append({"asset": str(uri), **sync})
        return reports

    report_completed_syncs()


immuta_on_any_sync()
