"""Validate an Immuta connection, then sync it only if it is healthy.

Every hour this DAG:

1. validates the connection (Immuta checks its credentials and each enabled component) without
   failing the task when something is wrong (``fail_on_unhealthy=False``): the health comes back
   as XCom;
2. branches: a healthy connection goes on to the data object sync, an unhealthy one to a task
   that reports what Immuta said about each failing component (this is where you would page
   someone), and the sync is skipped rather than started against broken credentials;
3. syncs the data objects, waiting in the triggerer (deferrable) so no worker slot is held.

The connection to check is the DAG param ``connection_key`` (default ``snowflake-prod``; trigger
the DAG with another value to check another connection). It needs an Airflow connection
``immuta_default`` of type ``immuta`` and a running triggerer.
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
    ImmutaDataObjectSyncOperator,
    ImmutaValidateConnectionOperator,
)

IMMUTA_CONN_ID = "immuta_default"
# Seconds between two status checks of the running sync; the variable lets a test poll faster.
POLL_INTERVAL = float(os.environ.get("IMMUTA_SYNC_POLL_INTERVAL", "30"))
SYNC_TIMEOUT = timedelta(hours=1)

log = logging.getLogger(__name__)


@dag(
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["immuta"],
    params={"connection_key": Param("snowflake-prod", type="string", minLength=1)},
    doc_md=__doc__,
)
def immuta_validate_then_sync() -> None:
    validate = ImmutaValidateConnectionOperator(
        task_id="validate",
        immuta_conn_id=IMMUTA_CONN_ID,
        connection_key="{{ params.connection_key }}",
        fail_on_unhealthy=False,  # branch on the health instead of failing here
    )

    @task.branch
    def choose_path(health: dict[str, Any]) -> str:
        """Sync a healthy connection; report an unhealthy one."""
        return "sync" if health["healthy"] else "report_unhealthy"

    @task
    def report_unhealthy(health: dict[str, Any]) -> list[str]:
        """Say which components fail and why (replace the log line with your alerting)."""
        log.warning(
            "Not syncing Immuta connection %r (state %s), it is unhealthy:\n  %s",
            health["connection_key"],
            health["state"],
            "\n  ".join(health["problems"]),
        )
        problems: list[str] = health["problems"]
        return problems

    sync = ImmutaDataObjectSyncOperator(
        task_id="sync",
        immuta_conn_id=IMMUTA_CONN_ID,
        connection_key="{{ params.connection_key }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=SYNC_TIMEOUT.total_seconds(),
    )

    choose_path(validate.output) >> [sync, report_unhealthy(validate.output)]


immuta_validate_then_sync()
