"""Scenario DAGs for the connection, data object and task run operators and the health sensor.

Names and timings are in ../connection_scenarios.py. As in immuta_scenarios.py, tasks are chained
with ``trigger_rule="all_done"`` so that ``dag.test()`` runs them one after the other in a fixed
order, and the failures some scenarios expect do not stop the rest.
"""

from __future__ import annotations

from typing import Any

try:
    from airflow.sdk import DAG, chain, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task
    from airflow.models.baseoperator import chain
    from airflow.models.dag import DAG
from tests.integration import connection_scenarios as c
from tests.support.scenario_dags import DEFAULTS, START, pulled

from immuta_provider.operators import (
    ImmutaActivateConnectionOperator,
    ImmutaCancelTaskRunOperator,
    ImmutaCreateConnectionOperator,
    ImmutaDeactivateConnectionOperator,
    ImmutaDeleteConnectionOperator,
    ImmutaDeleteDataObjectOperator,
    ImmutaSearchDataObjectsOperator,
    ImmutaUpdateConnectionOperator,
    ImmutaValidateConnectionOperator,
)
from immuta_provider.sensors import ImmutaConnectionHealthSensor


def created_body(warehouse: str) -> dict[str, Any]:
    """The create body of CREATED, secrets templated from an Airflow connection."""
    return {
        "connectionKey": c.CREATED,
        "technology": "Snowflake",
        "clientConfiguration": {
            "hostname": "itc.snowflakecomputing.com",
            "warehouse": warehouse,
            "keyFile": "not-a-template.json",  # a .json value inside the body stays a value
            "username": "{{ conn.itc_platform.login }}",
            "password": "{{ conn.itc_platform.password }}",
        },
        "policyConfiguration": {"enabled": False},
    }


with DAG(
    c.CONNECTION_DAG, schedule=None, start_date=START, catchup=False, default_args=DEFAULTS
) as connection_dag:
    chain(
        ImmutaValidateConnectionOperator(task_id="validate_healthy", connection_key=c.HEALTHY),
        ImmutaValidateConnectionOperator(task_id="validate_unhealthy", connection_key=c.UNHEALTHY),
        ImmutaValidateConnectionOperator(
            task_id="validate_unhealthy_no_fail",
            connection_key=c.UNHEALTHY,
            fail_on_unhealthy=False,
        ),
        ImmutaActivateConnectionOperator(
            task_id="activate_already_active", connection_key=c.ACTIVE
        ),
        ImmutaActivateConnectionOperator(task_id="activate", connection_key=c.TOGGLE),
        ImmutaDeactivateConnectionOperator(task_id="deactivate", connection_key=c.TOGGLE),
        ImmutaDeactivateConnectionOperator(
            task_id="deactivate_already_inactive", connection_key=c.TOGGLE
        ),
        ImmutaCreateConnectionOperator(task_id="create", body=created_body(c.CREATED_WAREHOUSE)),
        ImmutaCreateConnectionOperator(task_id="create_same_from_file", body_file=c.BODY_FILE),
        ImmutaCreateConnectionOperator(task_id="create_different", body=created_body("OTHER_WH")),
        ImmutaUpdateConnectionOperator(
            task_id="update",
            connection_key=c.UPDATED,
            changes='{"clientConfiguration": {"warehouse": "{{ params.warehouse }}"}}',
            params={"warehouse": c.UPDATED_WAREHOUSE},
        ),
        ImmutaUpdateConnectionOperator(
            task_id="update_dry_run",
            connection_key=c.UPDATED,
            changes={"clientConfiguration": {"warehouse": c.DRY_RUN_WAREHOUSE}},
            dry_run=True,
        ),
        ImmutaUpdateConnectionOperator(
            task_id="update_inactive",
            connection_key=c.INACTIVE,
            changes={"clientConfiguration": {"warehouse": "NEVER_WH"}},
        ),
        ImmutaDeleteConnectionOperator(
            task_id="delete_active_refused", connection_key=c.CREATED, poll_interval=c.POLL_INTERVAL
        ),
        ImmutaDeleteConnectionOperator(
            task_id="delete_deactivate_first",
            connection_key=c.CREATED,
            deactivate_first=True,
            deferrable=True,
            poll_interval=c.POLL_INTERVAL,
            timeout=60,
        ),
        ImmutaDeleteConnectionOperator(
            task_id="delete_inactive_blocking",
            connection_key=c.INACTIVE,
            deferrable=False,
            poll_interval=c.POLL_INTERVAL,
            timeout=60,
        ),
    )


with DAG(
    c.DATA_OBJECT_DAG, schedule=None, start_date=START, catchup=False, default_args=DEFAULTS
) as data_object_dag:

    @task
    def start_long_sync() -> dict[str, str]:
        """A sync that would run for minutes (started with the plain client)."""
        from immuta_provider.hooks.immuta import ImmutaHook

        client = ImmutaHook().get_client()
        created = client.create_task(c.CANCEL)
        (run,) = list(client.list_task_runs(c.CANCEL, created.task_id))
        return {"immuta_task_id": created.task_id, "run_id": run.run_id}

    @task
    def hook_only_endpoints(sync: dict[str, str]) -> dict[str, Any]:
        """The endpoints no operator wraps, through the hook (docs/endpoints.md)."""
        from immuta_provider.hooks.immuta import ImmutaHook

        client = ImmutaHook().get_client()
        keys = [connection.connection_key for connection in client.list_connections()]
        table = next(iter(client.search_data_objects(c.SEARCHED, {"type": "table"})))
        renamed = client.update_data_object(c.SEARCHED, table.id, {"name": c.RENAMED_TABLE})
        assert table.parent_id is not None
        siblings = list(client.list_data_object_children(c.SEARCHED, table.parent_id))
        return {
            "connections": keys,
            "renamed": renamed.name,
            "read_back": client.get_data_object(c.SEARCHED, table.id).name,
            "siblings": [sibling.id for sibling in siblings],
            "table_id": table.id,
            "task_type": str(client.get_task(c.CANCEL, sync["immuta_task_id"]).type),
        }

    long_sync = start_long_sync()
    chain(
        ImmutaSearchDataObjectsOperator(
            task_id="search_cut",
            connection_key=c.SEARCHED,
            attributes={"type": "table"},
            max_results=c.SEARCH_CUT,
        ),
        ImmutaSearchDataObjectsOperator(
            task_id="search_all",
            connection_key=c.SEARCHED,
            attributes='{"type": "{{ params.kind }}"}',
            params={"kind": "table"},
            max_results=None,
        ),
        ImmutaSearchDataObjectsOperator(
            task_id="search_missing_connection", connection_key=c.MISSING_CONNECTION
        ),
        ImmutaSearchDataObjectsOperator(
            task_id="find_schema",
            connection_key=c.DELETED_FROM,
            attributes={"type": "schema"},
            max_results=1,
        ),
        ImmutaDeleteDataObjectOperator(
            task_id="delete_schema",
            connection_key=c.DELETED_FROM,
            data_object_id="{{ ti.xcom_pull(task_ids='find_schema')[0]['id'] }}",
            deferrable=True,
            poll_interval=c.POLL_INTERVAL,
            timeout=60,
        ),
        ImmutaDeleteDataObjectOperator(
            task_id="delete_missing_object",
            connection_key=c.DELETED_FROM,
            data_object_id=c.MISSING_ID,
            poll_interval=c.POLL_INTERVAL,
        ),
        long_sync,
        ImmutaCancelTaskRunOperator(
            task_id="cancel_and_wait",
            connection_key=c.CANCEL,
            immuta_task_id=pulled("start_long_sync", "immuta_task_id"),
            run_id=pulled("start_long_sync", "run_id"),
            wait_for_cancellation=True,
            deferrable=True,
            poll_interval=c.POLL_INTERVAL,
            timeout=60,
        ),
        ImmutaCancelTaskRunOperator(
            task_id="cancel_already_ended",
            connection_key=c.CANCEL,
            immuta_task_id=pulled("start_long_sync", "immuta_task_id"),
            run_id=None,  # the task's latest run
        ),
        start_long_sync.override(task_id="start_second_sync")(),
        ImmutaCancelTaskRunOperator(
            task_id="cancel_no_wait",
            connection_key=c.CANCEL,
            immuta_task_id=pulled("start_second_sync", "immuta_task_id"),
            run_id=pulled("start_second_sync", "run_id"),
        ),
        ImmutaCancelTaskRunOperator(
            task_id="cancel_missing_run",
            connection_key=c.CANCEL,
            immuta_task_id=pulled("start_long_sync", "immuta_task_id"),
            run_id=c.MISSING_ID,
        ),
        ImmutaConnectionHealthSensor(
            task_id="health_ready", connection_key=c.SEARCHED, poke_interval=c.POLL_INTERVAL
        ),
        ImmutaConnectionHealthSensor(
            task_id="health_wait_reschedule",
            connection_key=c.HEALTH_WAIT,
            mode="reschedule",
            poke_interval=c.POLL_INTERVAL,
            timeout=60,
        ),
        ImmutaConnectionHealthSensor(
            task_id="health_broken_times_out",
            connection_key=c.HEALTH_BROKEN,
            validate=True,
            poke_interval=c.POLL_INTERVAL,
            timeout=c.SENSOR_TIMEOUT_SECONDS,
        ),
        hook_only_endpoints(long_sync),
    )
