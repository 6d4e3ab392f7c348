"""Syncs whose waits outlive several token lifetimes (tests/integration/test_token_auth.py).

The emulator accepts exchanged tokens only (``--auth exchange-only``) and lets each live a few
seconds; the connection's ``auth_method`` comes from the Airflow connection (``auto``).
"""

from __future__ import annotations

import datetime

try:
    from airflow.sdk import DAG, chain
except ImportError:  # Airflow 2.11
    from airflow.models.baseoperator import chain
    from airflow.models.dag import DAG

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

DAG_ID = "immuta_token_lifetimes"
CONNECTION_KEY = "snowflake-prod"
POLL_INTERVAL = 0.5

with DAG(
    DAG_ID,
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    default_args={"retries": 0},
):
    chain(
        ImmutaDataObjectSyncOperator(
            task_id="sync_deferred_through_token_expiries",
            connection_key=CONNECTION_KEY,
            deferrable=True,
            poll_interval=POLL_INTERVAL,
        ),
        ImmutaDataObjectSyncOperator(
            task_id="sync_blocking_through_token_expiries",
            connection_key=CONNECTION_KEY,
            deferrable=False,
            poll_interval=POLL_INTERVAL,
        ),
    )
