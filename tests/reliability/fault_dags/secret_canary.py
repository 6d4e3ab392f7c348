"""A representative DAG run with a canary API key (tests/reliability/test_secret_canary.py).

Everything a user's DAG does with the provider: a blocking and a deferred sync that succeed, a
sync whose run FAILS, a sync started without waiting plus a sensor templated from its XCom, a
401 whose error message echoes the API key (on the create POST and, deferred, on the poll), a
409 (sync of an INACTIVE connection), an Airflow connection whose host carries
``user:password@``, the connection test, and a task that logs the key on purpose (a positive
control for the search). The test then searches every output and table for the key.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from airflow.sdk import DAG, chain, task

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator
from immuta_provider.sensors.immuta import ImmutaTaskRunSensor

CONN = "immuta_canary"
URL_CONN = "immuta_canary_url"
POLL = 0.2
KEYS = {
    "sync": "canary-sync",
    "deferred": "canary-deferred",
    "failed": "snowflake-legacy",  # demo seed: its syncs end FAILED
    "sensor": "canary-sensor",
    "echo_create": "canary-echo-create",
    "echo_poll": "canary-echo-poll",
    "conflict": "trino-archive",  # demo seed: INACTIVE, a new task is a 409
}


def pulled(task_id: str, field: str) -> str:
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}')['{field}'] }}}}"


def sync(task_id: str, key: str, **kwargs: Any) -> ImmutaDataObjectSyncOperator:
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("immuta_conn_id", CONN)
    return ImmutaDataObjectSyncOperator(task_id=task_id, connection_key=key, **kwargs)


with DAG(
    "secret_canary",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    default_args={"trigger_rule": "all_done", "retries": 0},
    params={"sync_key": KEYS["sync"], "note": "from the canary DAG"},
) as dag:

    @task
    def connection_test() -> dict[str, Any]:
        """The UI's Test button: its message is stored as XCom here."""
        from immuta_provider.hooks.immuta import ImmutaHook

        ok, message = ImmutaHook(immuta_conn_id=CONN).test_connection()
        return {"ok": ok, "message": message}

    @task
    def log_the_key_on_purpose() -> str:
        """A careless user's task: logs and prints the key (dag.test() does not mask its output)."""
        from immuta_provider.hooks.immuta import ImmutaHook

        key = ImmutaHook(immuta_conn_id=CONN).settings.api_key
        logging.getLogger("airflow.task").info("careless: the Immuta key is %s", key)
        print(f"careless print: the Immuta key is {key}", flush=True)
        return "logged"

    chain(
        sync(
            "sync_blocking",
            "{{ params.sync_key }}",
            deferrable=False,
            extra_body={"note": "{{ params.note }}"},
        ),
        sync("sync_deferred", KEYS["deferred"], deferrable=True),
        sync("sync_failed", KEYS["failed"], deferrable=False),
        sync("start_for_sensor", KEYS["sensor"], wait_for_completion=False),
        ImmutaTaskRunSensor(
            task_id="sensor",
            immuta_conn_id=CONN,
            connection_key=pulled("start_for_sensor", "connection_key"),
            immuta_task_id=pulled("start_for_sensor", "immuta_task_id"),
            run_id=pulled("start_for_sensor", "run_id"),
            mode="poke",
            poke_interval=POLL,
            timeout=60,
        ),
        sync("sync_401_echo", KEYS["echo_create"], deferrable=False),
        sync("sync_deferred_401_echo", KEYS["echo_poll"], deferrable=True),
        sync("sync_409", KEYS["conflict"], deferrable=False),
        sync("url_with_credentials", KEYS["sync"], immuta_conn_id=URL_CONN),
        connection_test(),
        log_the_key_on_purpose(),
    )
