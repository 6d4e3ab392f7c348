"""The version suite's DAG: what every supported Airflow line must run (../scenarios.py).

A deferred sync (the trigger's first run, rebuilt from ``serialize()``), the sensor in each mode
on a sync started without waiting, and a sync whose first try loses contact with Immuta and is
retried (the retry resumes the run where Airflow has ``task_state_store``, else syncs again).
Chained with ``trigger_rule="all_done"`` so ``dag.test()`` runs them one after the other.
"""

from __future__ import annotations

import datetime
from typing import Any

try:
    from airflow.sdk import DAG, chain
except ImportError:  # Airflow 2.11
    from airflow.models.baseoperator import chain
    from airflow.models.dag import DAG
from tests.support.scenario_dags import DEFAULTS, START, pulled
from tests.versions import scenarios as s

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator
from immuta_provider.sensors.immuta import ImmutaTaskRunSensor


def sync(task_id: str, key: str, **kwargs: Any) -> ImmutaDataObjectSyncOperator:
    kwargs.setdefault("poll_interval", s.POLL_INTERVAL)
    return ImmutaDataObjectSyncOperator(task_id=task_id, connection_key=key, **kwargs)


def sensor(mode: str) -> list[Any]:
    start, sensor_task, key = s.SENSORS[mode]
    how: dict[str, Any] = {"deferrable": True} if mode == "deferrable" else {"mode": mode}
    return [
        sync(start, key, wait_for_completion=False),
        ImmutaTaskRunSensor(
            task_id=sensor_task,
            connection_key=key,
            immuta_task_id=pulled(start, "immuta_task_id"),
            run_id=pulled(start, "run_id"),
            poke_interval=s.POLL_INTERVAL,
            timeout=60,
            **how,
        ),
    ]


with DAG(s.DAG_ID, schedule=None, start_date=START, catchup=False, default_args=DEFAULTS):
    chain(
        sync("sync_deferred", s.DEFERRED, deferrable=True),
        *sensor("poke"),
        *sensor("reschedule"),
        *sensor("deferrable"),
        sync(
            "resume_after_lost_contact",
            s.RESUME,
            deferrable=False,
            immuta_conn_id=s.NO_RETRIES_CONN_ID,
            retries=1,
            retry_delay=datetime.timedelta(seconds=1),
        ),
    )
