"""Scenario DAGs for the integration tests; names and timings are in ../scenarios.py.

Tasks are chained with ``trigger_rule="all_done"`` so that ``dag.test()`` runs them one after
the other in a fixed order, and the failures some scenarios expect do not stop the rest.
"""

from __future__ import annotations

import datetime
from typing import Any

try:
    from airflow.sdk import DAG, chain, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task
    from airflow.models.baseoperator import chain
    from airflow.models.dag import DAG
from tests.integration import scenarios as s
from tests.support.scenario_dags import DEFAULTS, START, pulled

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator
from immuta_provider.sensors.immuta import ImmutaTaskRunSensor


def sync(task_id: str, key: str, **kwargs: Any) -> ImmutaDataObjectSyncOperator:
    kwargs.setdefault("poll_interval", s.POLL_INTERVAL)
    return ImmutaDataObjectSyncOperator(task_id=task_id, connection_key=key, **kwargs)


with DAG(
    s.OPERATOR_DAG, schedule=None, start_date=START, catchup=False, default_args=DEFAULTS
) as operator_dag:

    @task
    def start_sync_outside_the_operator() -> dict[str, str]:
        """A sync started by someone else (here: the plain client), still running."""
        from immuta_provider.hooks.immuta import ImmutaHook

        client = ImmutaHook().get_client()
        created = client.create_task(s.REATTACH)
        (run,) = list(client.list_task_runs(s.REATTACH, created.task_id))
        return {"immuta_task_id": created.task_id, "run_id": run.run_id}

    chain(
        sync("sync_blocking", s.SYNC_BLOCKING, deferrable=False),
        sync("sync_deferred", s.SYNC_DEFERRED, deferrable=True),
        sync("failure_blocking", s.FAILING, deferrable=False),
        sync("failure_deferred", s.FAILING, deferrable=True),
        start_sync_outside_the_operator(),
        sync("reattach_deferred", s.REATTACH, deferrable=True, reuse_running_sync=True),
        sync(
            "resume_after_lost_contact",
            s.RESUME,
            deferrable=False,
            immuta_conn_id=s.NO_RETRIES_CONN_ID,
            retries=1,
            retry_delay=datetime.timedelta(seconds=1),
        ),
        sync("timeout_blocking", s.STUCK_BLOCKING, deferrable=False, timeout=s.TIMEOUT_SECONDS),
        sync("timeout_deferred", s.STUCK_DEFERRED, deferrable=True, timeout=s.TIMEOUT_SECONDS),
        sync("cancelled_blocking", s.CANCEL_BLOCKING, deferrable=False),
        sync("cancelled_deferred", s.CANCEL_DEFERRED, deferrable=True),
    )


with DAG(
    s.SENSOR_DAG, schedule=None, start_date=START, catchup=False, default_args=DEFAULTS
) as sensor_dag:
    chain(
        sync("start_poke", s.SENSOR_POKE, wait_for_completion=False),
        ImmutaTaskRunSensor(
            task_id="sensor_poke",
            connection_key=pulled("start_poke", "connection_key"),
            immuta_task_id=pulled("start_poke", "immuta_task_id"),
            run_id=pulled("start_poke", "run_id"),
            mode="poke",
            poke_interval=s.POLL_INTERVAL,
            timeout=60,
        ),
        sync("start_reschedule", s.SENSOR_RESCHEDULE, wait_for_completion=False),
        ImmutaTaskRunSensor(
            task_id="sensor_reschedule",
            connection_key=s.SENSOR_RESCHEDULE,
            immuta_task_id=pulled("start_reschedule", "immuta_task_id"),
            run_id=None,  # the task's latest run
            mode="reschedule",
            poke_interval=s.POLL_INTERVAL,
            timeout=60,
        ),
        sync("start_deferred", s.SENSOR_DEFERRED, wait_for_completion=False),
        ImmutaTaskRunSensor(
            task_id="sensor_deferred",
            connection_key=s.SENSOR_DEFERRED,
            immuta_task_id=pulled("start_deferred", "immuta_task_id"),
            run_id=pulled("start_deferred", "run_id"),
            deferrable=True,
            poke_interval=s.POLL_INTERVAL,
            timeout=60,
        ),
        sync("start_failing", s.FAILING, wait_for_completion=False),
        ImmutaTaskRunSensor(
            task_id="sensor_on_failed_run",
            connection_key=s.FAILING,
            immuta_task_id=pulled("start_failing", "immuta_task_id"),
            run_id=pulled("start_failing", "run_id"),
            mode="poke",
            poke_interval=s.POLL_INTERVAL,
            timeout=60,
        ),
    )
