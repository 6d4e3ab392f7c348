"""Bad input in a real DAG run (tests/reliability/test_bad_input.py): each task must fail with a
message naming the rule it broke, before anything is sent to Immuta.

Keys and ids arrive through templates (``params``), as they do in users' DAGs: an empty string
or a reserved name only exists at run time. Three Airflow connections are broken on purpose (no
host, no API key, an ftp:// URL). The last sensor watches a run whose status the provider does
not know (served by the test's stand-in server): it must wait for it, then time out.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, chain

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator
from immuta_provider.sensors.immuta import ImmutaTaskRunSensor

TASK_ID = "3f1c9a52-7d3e-4c8b-9a61-2b7e5d4c3a10"
RUN_ID = "8e2d4b61-5a7c-4f3e-8d9b-1c6a7e5f4b20"

with DAG(
    "bad_input",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    default_args={"trigger_rule": "all_done", "retries": 0, "immuta_conn_id": "immuta_bad_input"},
    params={"key": "", "reserved": "sync", "spaced": "my key", "run_id": "not-a-uuid"},
) as dag:
    chain(
        ImmutaDataObjectSyncOperator(task_id="empty_key", connection_key="{{ params.key }}"),
        ImmutaDataObjectSyncOperator(
            task_id="reserved_key", connection_key="{{ params.reserved }}"
        ),
        ImmutaDataObjectSyncOperator(task_id="spaced_key", connection_key="{{ params.spaced }}"),
        ImmutaTaskRunSensor(
            task_id="malformed_run_id",
            connection_key="snowflake-prod",
            immuta_task_id=TASK_ID,
            run_id="{{ params.run_id }}",
            poke_interval=0.2,
            timeout=10,
        ),
        ImmutaDataObjectSyncOperator(
            task_id="no_host", connection_key="snowflake-prod", immuta_conn_id="immuta_no_host"
        ),
        ImmutaDataObjectSyncOperator(
            task_id="no_key", connection_key="snowflake-prod", immuta_conn_id="immuta_no_key"
        ),
        ImmutaDataObjectSyncOperator(
            task_id="ftp_url", connection_key="snowflake-prod", immuta_conn_id="immuta_ftp"
        ),
        ImmutaTaskRunSensor(
            task_id="unknown_status",
            immuta_conn_id="immuta_stand_in",
            connection_key="snowflake-prod",
            immuta_task_id=TASK_ID,
            run_id=RUN_ID,
            mode="poke",
            poke_interval=0.2,
            timeout=2,
        ),
    )
