"""Run when Immuta has a fresh inventory of a connection's data objects.

Every successful ``ImmutaDataObjectSyncOperator`` (e.g. in the ``immuta_nightly_sync`` example)
emits an Airflow asset event for the connection it synced. This DAG is scheduled on the asset of
one connection, so it runs after each sync of it, wherever that sync ran, and reports what the
sync left behind: the Immuta run, its page in Immuta and the number of data objects.

Set ``IMMUTA_HOST`` to your Immuta host (or URL, as in the Airflow connection) and
``IMMUTA_CONNECTION_KEY`` to the connection to follow. Replace the report with your own work:
refresh a catalog, re-tag new tables, notify the data owners...
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import dag, task

from immuta_provider.assets import immuta_connection_asset

IMMUTA_HOST = os.environ.get("IMMUTA_HOST", "acme.hosted.immutacloud.com")
CONNECTION_KEY = os.environ.get("IMMUTA_CONNECTION_KEY", "snowflake-prod")

log = logging.getLogger("immuta_downstream_on_fresh_inventory")


@dag(
    schedule=[immuta_connection_asset(IMMUTA_HOST, CONNECTION_KEY)],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["immuta"],
    doc_md=__doc__,
)
def immuta_downstream_on_fresh_inventory() -> None:
    @task
    def report_fresh_inventory(**context: Any) -> list[dict[str, Any]]:
        """Log each sync that triggered this run (several if they came in before it started)."""
        # Airflow 3.x calls them asset events; 2.11 dataset events.
        triggering = context.get("triggering_asset_events") or context.get(
            "triggering_dataset_events"
        )
        reports = []
        for uri, events in (triggering or {}).items():
            for event in events:
                extra = event.extra or {}
                count = extra.get("data_object_count")
                exact = extra.get("data_object_count_exact")
                log.info(
                    "%s synced by Immuta run %s (%s): %s data objects",
                    uri,
                    extra.get("run_id"),
                    extra.get("task_run_url"),
                    "unknown" if count is None else count if exact else f"at least {count}",
                )
                reports.append({"asset": str(uri), **extra})
        return reports

    report_fresh_inventory()


immuta_downstream_on_fresh_inventory()
