"""The upstream DAG of the asset and progress-log tests (test_assets_and_progress.py).

A mapped, deferred sync of two connections (the connection key known only at run time), a sync
waiting in the worker, a sync that opts out of the asset event, and a sync started without
waiting that a sensor follows. Keys and timings are in ../scenarios.py.
"""

from __future__ import annotations

try:
    from airflow.sdk import DAG, chain
except ImportError:  # Airflow 2.11
    from airflow.models.baseoperator import chain
    from airflow.models.dag import DAG
from tests.integration import scenarios as s
from tests.support.scenario_dags import DEFAULTS, START

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator
from immuta_provider.sensors.immuta import ImmutaTaskRunSensor


def _pulled(field: str) -> str:
    return f"{{{{ ti.xcom_pull(task_ids='start_for_sensor')['{field}'] }}}}"


with DAG(
    s.ASSET_DAG, schedule=None, start_date=START, catchup=False, default_args=DEFAULTS
) as asset_dag:
    chain(
        ImmutaDataObjectSyncOperator.partial(
            task_id="sync_mapped_deferred", deferrable=True, poll_interval=s.POLL_INTERVAL
        ).expand(connection_key=list(s.ASSET_MAPPED)),
        ImmutaDataObjectSyncOperator(
            task_id="sync_blocking",
            connection_key=s.ASSET_BLOCKING,
            deferrable=False,
            poll_interval=s.POLL_INTERVAL,
        ),
        ImmutaDataObjectSyncOperator(
            task_id="sync_without_asset",
            connection_key=s.ASSET_OPT_OUT,
            emit_asset=False,
            poll_interval=s.POLL_INTERVAL,
        ),
        ImmutaDataObjectSyncOperator(
            task_id="start_for_sensor",
            connection_key=s.ASSET_SENSOR,
            wait_for_completion=False,
        ),
        ImmutaTaskRunSensor(
            task_id="sensor_poke",
            connection_key=_pulled("connection_key"),
            immuta_task_id=_pulled("immuta_task_id"),
            run_id=_pulled("run_id"),
            poke_interval=s.POLL_INTERVAL,
            timeout=60,
        ),
    )
