"""The DAG whose deferred task instances the real-triggerer benchmark writes into the metadata DB.

Two mapped sensors, one map index per wait: ours (``ImmutaTaskRunSensor``) and dbt Cloud's
(``DbtCloudJobRunSensor``). Only the triggerer reads this DAG (through its serialized form); no
scheduler runs it. Parsed only in ``.venv-bench``, where the dbt Cloud provider is installed.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.dbt.cloud.sensors.dbt import DbtCloudJobRunSensor
from airflow.sdk import DAG

from immuta_provider.sensors.immuta import ImmutaTaskRunSensor

with DAG(
    "bench_triggerer_waits",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    ImmutaTaskRunSensor.partial(
        task_id="immuta_wait",
        connection_key="snowflake-prod",
        deferrable=True,
        poke_interval=30,
    ).expand(immuta_task_id=["placeholder"])
    DbtCloudJobRunSensor.partial(
        task_id="dbt_wait", account_id=1, deferrable=True, poke_interval=30
    ).expand(run_id=[1])
