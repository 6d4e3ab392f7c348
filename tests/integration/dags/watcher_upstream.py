"""The upstream DAG of test_sync_watcher_scheduling.py: one sync run by the provider's operator.

The downstream example DAG (example_dags/immuta_on_any_sync.py) is scheduled on the asset that
this sync's operator emits *and* that the sync watcher watches: it must run once for this sync.
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import DAG

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

with DAG(
    "immuta_watched_sync_upstream",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    default_args={"retries": 0},
):
    ImmutaDataObjectSyncOperator(
        task_id="sync",
        connection_key=os.environ.get("IMMUTA_CONNECTION_KEY", "snowflake-prod"),
        deferrable=False,
        poll_interval=0.5,
    )
