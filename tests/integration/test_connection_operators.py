"""The connection, data object and task run operators, the health sensor and three example DAGs,
in a real Airflow 3.x or 2.11 (``dag.test()`` in child processes) against emulators over HTTP on
127.0.0.1.

As in test_airflow_provider.py, a ``dag.test()`` costs several seconds of start-up, so the module
fixture starts every DAG run at once and the tests check the results afterwards:

* two scenario DAGs (dags/connection_scenarios.py) on the session's emulator: one for the
  connection operators, one for search, data object deletion, cancel and the health sensor;
* the example DAGs, each on an emulator with the demo seed: validate-then-sync twice (healthy,
  then with the connection's credentials broken first), offboarding, and waiting for a sync
  started outside Airflow.

Two watcher threads act from outside while the DAGs run, as a person or another tool would: one
validates a connection once the health sensor has seen it not ready, the other lets the outside
sync finish (by moving that emulator's clock) once the run sensor has polled it. What the
emulators hold afterwards is snapshotted before the fixture returns.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.client import ImmutaClient
from immuta_provider.client.errors import ImmutaNotFoundError
from immuta_provider.emulator.process import RunningEmulator, run_emulator
from tests.integration import connection_scenarios as c
from tests.integration.airflow_env import AirflowEnvironment, DagRunResult, RunningDag
from tests.support.airflow_homes import REPO_ROOT
from tests.support.connections import immuta_connection

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO_DAGS = Path(__file__).parent / "dags" / "connection_scenarios.py"
EXAMPLES = REPO_ROOT / "example_dags"
RUN_TIMEOUT = 240.0
REJECTED_PASSWORD = "invalid-rotated-by-the-test"  # the emulator rejects secrets "invalid..."
OUTSIDE_SYNC_SECONDS = 3600.0  # the outside sync only ends when the watcher moves the clock
PLATFORM_CONNECTION = json.dumps(
    {"conn_type": "generic", "login": c.PLATFORM_LOGIN, "password": c.PLATFORM_PASSWORD}
)


@dataclass
class Runs:
    """What the DAG runs did, and what the emulators held afterwards."""

    connections: DagRunResult
    data_objects: DagRunResult
    validate_healthy: DagRunResult
    validate_unhealthy: DagRunResult
    offboarding: DagRunResult
    external_sync: DagRunResult
    rendered: dict[str, dict[str, Any]]
    api_keys: list[str]
    outside_sync: dict[str, str]
    watchers: dict[str, bool] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


def _connection_or_none(client: ImmutaClient, key: str) -> dict[str, Any] | None:
    try:
        return client.get_connection(key).model_dump(mode="json", by_alias=True)
    except ImmutaNotFoundError:
        return None


def _create(client: ImmutaClient, key: str, password: str = "itc-good-password") -> None:
    client.create_connection(
        {
            "connectionKey": key,
            "technology": "Snowflake",
            "clientConfiguration": {"hostname": f"{key}.example.invalid", "password": password},
        }
    )


def _prepare_shared(emulator: RunningEmulator, client: ImmutaClient) -> None:
    emulator.admin.reset()
    for key in (*c.CREATED_FOR_CONNECTION_DAG, *c.CREATED_FOR_DATA_OBJECT_DAG):
        password = REJECTED_PASSWORD if key in c.REJECTED_CREDENTIALS else "itc-good-password"
        _create(client, key, password)
    for key in c.STARTS_INACTIVE:
        client.deactivate_connection(key)
    emulator.admin.set_behaviour(c.CANCEL, sync_duration=c.LONG_SYNC_SECONDS)


def _watch(
    stop: threading.Event, condition: Callable[[], bool], action: Callable[[], None]
) -> threading.Thread:
    """Run ``action`` once, as soon as ``condition`` holds (checked every 0.2 s)."""

    def loop() -> None:
        while not stop.is_set():
            if condition():
                action()
                return
            stop.wait(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _requests(emulator: RunningEmulator, request: str) -> int:
    count: int = emulator.admin.counters()["requests"].get(request, 0)
    return count


def _rendered_fields(running: RunningDag) -> dict[str, dict[str, Any]]:
    """The rendered template fields Airflow stored for each task (what its UI shows)."""
    with sqlite3.connect(running.log.parent / "airflow.db") as db:
        rows = db.execute(
            "SELECT task_id, rendered_fields FROM rendered_task_instance_fields WHERE dag_id = ?",
            (running.dag_id,),
        ).fetchall()
    return {task_id: json.loads(fields) for task_id, fields in rows}


@pytest.fixture(scope="module")
def runs(
    airflow_env: AirflowEnvironment,
    emulator_server: RunningEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Runs]:
    shared = emulator_server
    client = ImmutaClient(shared.url, shared.api_key)
    _prepare_shared(shared, client)
    fast = {"IMMUTA_SYNC_POLL_INTERVAL": str(c.POLL_INTERVAL)}

    with ExitStack() as stack:

        def demo_emulator(name: str) -> tuple[RunningEmulator, ImmutaClient]:
            log_dir = tmp_path_factory.mktemp(name)
            emulator = stack.enter_context(
                run_emulator(seed="demo", sync_duration=1.0, log_dir=log_dir)
            )
            return emulator, stack.enter_context(ImmutaClient(emulator.url, emulator.api_key))

        examples, examples_client = demo_emulator("examples-emulator")
        broken, broken_client = demo_emulator("broken-emulator")
        outside, outside_client = demo_emulator("outside-sync-emulator")
        # The healthy connection's credentials are rotated in the platform but not in Immuta.
        broken_client.update_connection(
            "snowflake-prod", {"clientConfiguration": {"password": REJECTED_PASSWORD}}
        )
        # A sync started by someone else, still running when the DAG looks for it.
        outside.admin.set_behaviour("snowflake-prod", sync_duration=OUTSIDE_SYNC_SECONDS)
        outside_task = outside_client.create_task("snowflake-prod")
        (outside_run,) = list(outside_client.list_task_runs("snowflake-prod", outside_task.task_id))

        def conn(emulator: RunningEmulator) -> dict[str, str]:
            return {"immuta_default": immuta_connection(emulator.url, emulator.api_key)}

        def example(dag_id: str, emulator: RunningEmulator) -> RunningDag:
            """The example DAG ``example_dags/<dag_id>.py`` against ``emulator``."""
            return airflow_env.start_dag(
                EXAMPLES / f"{dag_id}.py", dag_id, connections=conn(emulator), extra_env=fast
            )

        started: dict[str, RunningDag] = {
            "connections": airflow_env.start_dag(
                SCENARIO_DAGS,
                c.CONNECTION_DAG,
                connections={**conn(shared), c.PLATFORM_CONN_ID: PLATFORM_CONNECTION},
            ),
            "data_objects": airflow_env.start_dag(
                SCENARIO_DAGS, c.DATA_OBJECT_DAG, connections=conn(shared)
            ),
            "validate_healthy": example("immuta_validate_then_sync", examples),
            "validate_unhealthy": example("immuta_validate_then_sync", broken),
            "offboarding": example("immuta_offboarding", examples),
            "external_sync": example("immuta_wait_for_external_sync", outside),
        }

        stop, acted = threading.Event(), {"health": False, "outside_sync": False}

        def validate_from_outside() -> None:
            client.validate_connection(c.HEALTH_WAIT)
            acted["health"] = True

        def finish_outside_sync() -> None:
            outside.admin.advance_clock(OUTSIDE_SYNC_SECONDS)
            acted["outside_sync"] = True

        run_path = (
            f"GET /api/connections/snowflake-prod/tasks/{outside_task.task_id}"
            f"/runs/{outside_run.run_id}"
        )
        watchers = [
            # The sensor has seen the connection not ready (twice): now someone validates it.
            _watch(
                stop,
                lambda: _requests(shared, f"GET /api/connections/{c.HEALTH_WAIT}") >= 2,
                validate_from_outside,
            ),
            # The run sensor has polled the running sync (twice): now let it finish.
            _watch(stop, lambda: _requests(outside, run_path) >= 2, finish_outside_sync),
        ]
        results = {name: running.wait(RUN_TIMEOUT) for name, running in started.items()}
        stop.set()
        for watcher in watchers:
            watcher.join(10)

        connection_keys = (*c.CREATED_FOR_CONNECTION_DAG, c.CREATED)
        schema = (results["data_objects"].return_value("find_schema") or [{}])[0]
        after: dict[str, Any] = {
            "connections": {key: _connection_or_none(client, key) for key in connection_keys},
            "tables": len(list(client.search_data_objects(c.SEARCHED, {"type": "table"}))),
            "schema_children": (
                len(list(client.search_data_objects(c.DELETED_FROM, {"parentId": schema["id"]})))
                if schema
                else None
            ),
            "cancel_runs": {
                run.run_id: run.model_dump(mode="json")
                for task in client.list_tasks(c.CANCEL)
                for run in client.list_task_runs(c.CANCEL, task.task_id)
            },
            "tasks_created": {
                "examples": examples.admin.counters()["tasks_created"],
                "broken": broken.admin.counters()["tasks_created"],
                "outside": outside.admin.counters()["tasks_created"],
            },
            "offboarded": _connection_or_none(examples_client, "snowflake-legacy"),
            "outside_run": outside_client.get_task_run(
                "snowflake-prod", outside_task.task_id, outside_run.run_id
            ).model_dump(mode="json"),
            "outside_tables": len(
                list(outside_client.search_data_objects("snowflake-prod", {"type": "table"}))
            ),
        }
        snapshot = Runs(
            **results,
            rendered=_rendered_fields(started["connections"]),
            api_keys=[e.api_key for e in (shared, examples, broken, outside)],
            outside_sync={
                "immuta_task_id": outside_task.task_id,
                "run_id": outside_run.run_id,
            },
            watchers=dict(acted),
            after=after,
        )
    client.close()
    yield snapshot


def _all_runs(runs: Runs) -> list[DagRunResult]:
    return [
        runs.connections,
        runs.data_objects,
        runs.validate_healthy,
        runs.validate_unhealthy,
        runs.offboarding,
        runs.external_sync,
    ]


def _states(run: DagRunResult) -> dict[str, str | None]:
    return {task: info["state"] for task, info in run.tasks.items()}


def test_every_dag_ran_to_the_end(runs: Runs) -> None:
    for run in _all_runs(runs):
        assert run.returncode == 0, run.describe()
        assert run.tasks, run.describe()


# ---- it_connection_operators -----------------------------------------------------------------


def test_connection_scenarios_end_in_the_expected_states(runs: Runs) -> None:
    assert _states(runs.connections) == {
        "validate_healthy": "success",
        "validate_unhealthy": "failed",
        "validate_unhealthy_no_fail": "success",
        "activate_already_active": "success",
        "activate": "success",
        "deactivate": "success",
        "deactivate_already_inactive": "success",
        "create": "success",
        "create_same_from_file": "success",
        "create_different": "failed",
        "update": "success",
        "update_dry_run": "success",
        "update_inactive": "failed",
        "delete_active_refused": "failed",
        "delete_deactivate_first": "success",
        "delete_inactive_blocking": "success",
    }, runs.connections.describe()


def test_validate_returns_the_health_and_logs_each_component(runs: Runs) -> None:
    run = runs.connections
    health = run.return_value("validate_healthy")
    assert health["connection_key"] == c.HEALTHY
    assert health["healthy"] is True
    assert health["state"] == "ACTIVE"
    assert health["problems"] == []
    assert health["components"]["client"]["enabled"] is True
    assert health["components"]["client"]["status"] == "HEALTHY"
    # Policy and audit are not enabled on the created connection: reported, not checked.
    assert health["components"]["policy"]["enabled"] is False
    assert run.lines_with("audit: not enabled (not checked)")
    assert run.link("validate_healthy", "ImmutaConnectionLink").endswith(
        f"/#/connections/{c.HEALTHY}"
    )


def test_validate_fails_on_an_unhealthy_component_with_immutas_message(runs: Runs) -> None:
    run = runs.connections
    (failure,) = run.lines_with("AirflowException", f"Immuta connection '{c.UNHEALTHY}'")
    assert "is unhealthy: client: UNHEALTHY - Snowflake rejected the credentials" in failure
    assert "fail_on_unhealthy=False" in failure
    # With fail_on_unhealthy=False the same health comes back as XCom instead.
    health = run.return_value("validate_unhealthy_no_fail")
    assert health["healthy"] is False
    assert health["state"] == "UNHEALTHY"
    assert health["problems"][0].startswith("client: UNHEALTHY - Snowflake rejected")


def test_activate_and_deactivate_are_idempotent(runs: Runs) -> None:
    run = runs.connections
    assert run.return_value("activate_already_active") == {
        "connection_key": c.ACTIVE,
        "previous_state": "ACTIVE",
        "state": "ACTIVE",
        "changed": False,
    }
    assert run.lines_with(f"'{c.ACTIVE}' is already ACTIVE; nothing to activate")
    assert run.return_value("activate")["changed"] is True
    assert run.return_value("activate")["state"] == "ACTIVE"
    assert run.return_value("deactivate") == {
        "connection_key": c.TOGGLE,
        "previous_state": "ACTIVE",
        "state": "INACTIVE",
        "changed": True,
    }
    assert run.return_value("deactivate_already_inactive")["changed"] is False
    assert run.lines_with(f"'{c.TOGGLE}' is already INACTIVE; nothing to deactivate")
    assert runs.after["connections"][c.TOGGLE]["state"] == "INACTIVE"


def test_create_then_an_identical_body_file_succeeds_and_a_different_body_fails(
    runs: Runs,
) -> None:
    run = runs.connections
    created = run.return_value("create")
    assert created["connectionKey"] == c.CREATED
    assert created["state"] == "ACTIVE"
    assert created["clientConfiguration"]["password"] == "[REDACTED]"
    assert created["clientConfiguration"]["username"] == c.PLATFORM_LOGIN  # templated
    assert created["clientConfiguration"]["keyFile"] == "not-a-template.json"
    assert run.lines_with(f"Created Immuta connection '{c.CREATED}'")
    # The body file (templated, in the DAG folder) describes the same connection.
    same = run.return_value("create_same_from_file")
    assert same["connectionKey"] == c.CREATED
    assert run.lines_with(f"'{c.CREATED}' already exists with the same configuration")
    # A different warehouse is a clear failure listing the difference.
    assert run.lines_with(f"'{c.CREATED}' already exists with a different configuration")
    assert run.lines_with(
        f"clientConfiguration.warehouse: existing '{c.CREATED_WAREHOUSE}', wanted 'OTHER_WH'"
    )


def test_update_saves_and_dry_run_does_not(runs: Runs) -> None:
    run = runs.connections
    assert run.return_value("update")["clientConfiguration"]["warehouse"] == c.UPDATED_WAREHOUSE
    dry = run.return_value("update_dry_run")
    assert dry["clientConfiguration"]["warehouse"] == c.DRY_RUN_WAREHOUSE
    assert run.lines_with("Dry run: Immuta accepted the changes", f"'{c.UPDATED}'")
    # The dry run came after the update and saved nothing.
    stored = runs.after["connections"][c.UPDATED]
    assert stored["clientConfiguration"]["warehouse"] == c.UPDATED_WAREHOUSE


def test_update_of_an_inactive_connection_says_to_activate_it(runs: Runs) -> None:
    (failure,) = runs.connections.lines_with(
        "AirflowException", f"Immuta refused to update connection '{c.INACTIVE}'"
    )
    assert "which is INACTIVE" in failure
    assert "activate it first (ImmutaActivateConnectionOperator)" in failure


def test_deleting_an_active_connection_fails_with_a_clear_409_message(runs: Runs) -> None:
    (failure,) = runs.connections.lines_with(
        "AirflowException", f"Immuta refused to delete connection '{c.CREATED}'"
    )
    assert "it is ACTIVE, and only an INACTIVE connection can be deleted" in failure
    assert "Connection state must be INACTIVE to be deleted" in failure  # Immuta's own words
    assert "set deactivate_first=True" in failure


@pytest.mark.parametrize(
    ("task", "key"),
    [("delete_deactivate_first", c.CREATED), ("delete_inactive_blocking", c.INACTIVE)],
)
def test_delete_waits_for_the_deletion_task_and_the_connection_is_gone(
    runs: Runs, task: str, key: str
) -> None:
    run = runs.connections
    result = run.return_value(task)
    assert result["connection_key"] == key
    assert result["status"] == "COMPLETED"
    assert result["immuta_task_id"] and result["run_id"]
    assert runs.after["connections"][key] is None
    assert run.lines_with(f"'{key}'", "-> COMPLETED after")
    assert run.link(task, "ImmutaTaskRunLink").endswith(
        f"/tasks/{result['immuta_task_id']}/runs/{result['run_id']}"
    )


def test_deactivate_first_deactivates_before_deleting(runs: Runs) -> None:
    assert runs.connections.lines_with(
        f"Deactivated Immuta connection '{c.CREATED}' (ACTIVE -> INACTIVE) before deleting it"
    )


def test_secrets_stay_out_of_logs_xcom_and_rendered_templates(runs: Runs) -> None:
    for run in _all_runs(runs):
        for secret in (c.PLATFORM_PASSWORD, *runs.api_keys):
            assert secret not in run.output, run.dag_id
            assert secret not in json.dumps(run.xcom), run.dag_id
    rendered = runs.rendered
    assert c.PLATFORM_PASSWORD not in json.dumps(rendered)
    # The templated body and the body file are stored as objects, their secrets redacted.
    for task, fld in (("create", "body"), ("create_same_from_file", "body_file")):
        configuration = rendered[task][fld]["clientConfiguration"]
        assert configuration["password"] == "***", rendered[task]
        assert configuration["username"] == c.PLATFORM_LOGIN


# ---- it_data_object_operators ----------------------------------------------------------------


def test_data_object_scenarios_end_in_the_expected_states(runs: Runs) -> None:
    assert _states(runs.data_objects) == {
        "search_cut": "success",
        "search_all": "success",
        "search_missing_connection": "failed",
        "find_schema": "success",
        "delete_schema": "success",
        "delete_missing_object": "failed",
        "start_long_sync": "success",
        "cancel_and_wait": "success",
        "cancel_already_ended": "success",
        "start_second_sync": "success",
        "cancel_no_wait": "success",
        "cancel_missing_run": "failed",
        "health_ready": "success",
        "health_wait_reschedule": "success",
        "health_broken_times_out": "failed",
        "hook_only_endpoints": "success",
    }, runs.data_objects.describe()


def test_search_cuts_at_max_results_and_warns(runs: Runs) -> None:
    run = runs.data_objects
    cut = run.return_value("search_cut")
    assert len(cut) == c.SEARCH_CUT
    assert {obj["type"] for obj in cut} == {"table"}
    assert {obj["connectionKey"] for obj in cut} == {c.SEARCHED}
    assert all(obj["id"] and obj["name"] for obj in cut)
    (warning,) = run.lines_with(f"Returning only the first {c.SEARCH_CUT} data objects")
    assert "raise max_results" in warning


def test_search_without_a_cap_returns_every_match(runs: Runs) -> None:
    run = runs.data_objects
    found = run.return_value("search_all")
    assert len(found) == runs.after["tables"] > 100  # more than one page of 100
    assert len({obj["id"] for obj in found}) == len(found)
    assert run.lines_with(f"Found {len(found)} data object(s) of connection '{c.SEARCHED}'")


def test_search_of_a_missing_connection_fails_with_404(runs: Runs) -> None:
    assert runs.data_objects.lines_with("404", c.MISSING_CONNECTION)


def test_delete_data_object_waits_and_removes_it_with_its_children(runs: Runs) -> None:
    run = runs.data_objects
    (schema,) = run.return_value("find_schema")
    result = run.return_value("delete_schema")
    assert result["status"] == "COMPLETED"
    assert run.lines_with(f"Immuta accepted the deletion of data object {schema['id']}")
    assert runs.after["schema_children"] == 0


def test_delete_of_a_missing_data_object_fails_with_404(runs: Runs) -> None:
    assert runs.data_objects.lines_with("404", c.MISSING_ID, "DELETE")


def test_cancel_and_wait_until_canceled(runs: Runs) -> None:
    run = runs.data_objects
    started = run.return_value("start_long_sync")
    result = run.return_value("cancel_and_wait")
    assert (result["immuta_task_id"], result["run_id"]) == (
        started["immuta_task_id"],
        started["run_id"],
    )
    assert result["status"] == "CANCELED"
    remote = runs.after["cancel_runs"][started["run_id"]]
    assert remote["status"] == "CANCELED"
    assert remote["canceled_by"]
    assert run.lines_with(f"Asked Immuta to cancel task run {started['run_id']}")


def test_cancel_of_an_ended_run_is_a_success_that_says_so(runs: Runs) -> None:
    run = runs.data_objects
    started = run.return_value("start_long_sync")
    assert run.return_value("cancel_already_ended")["status"] == "CANCELED"
    assert run.lines_with(
        f"Immuta task run {started['run_id']} has already ended CANCELED; nothing to cancel"
    )


def test_cancel_without_waiting_returns_while_canceling(runs: Runs) -> None:
    run = runs.data_objects
    started = run.return_value("start_second_sync")
    result = run.return_value("cancel_no_wait")
    assert result["run_id"] == started["run_id"]
    assert result["status"] == "CANCELING"
    # Immuta finishes the cancellation on its own afterwards.
    assert runs.after["cancel_runs"][started["run_id"]]["status"] in ("CANCELING", "CANCELED")


def test_cancel_of_a_missing_run_fails_with_404(runs: Runs) -> None:
    assert runs.data_objects.lines_with("404", c.MISSING_ID, "runs")


def test_health_sensor_succeeds_at_once_on_a_healthy_connection(runs: Runs) -> None:
    health = runs.data_objects.return_value("health_ready")
    assert health["healthy"] is True
    assert health["state"] == "ACTIVE"


def test_health_sensor_waits_until_the_connection_is_validated(runs: Runs) -> None:
    run = runs.data_objects
    assert runs.watchers["health"], "the watcher never saw the sensor poke"
    health = run.return_value("health_wait_reschedule")
    assert health["connection_key"] == c.HEALTH_WAIT
    assert health["healthy"] is True
    assert run.lines_with(f"'{c.HEALTH_WAIT}' is not ready yet", "client: UNKNOWN")
    assert run.lines_with(f"'{c.HEALTH_WAIT}' is ACTIVE and healthy")
    # Reschedule mode: the sensor ran more than once, and did not hold the slot in between.
    assert len(run.lines_with("running task", "health_wait_reschedule")) >= 2


def test_health_sensor_times_out_on_a_connection_that_stays_unhealthy(runs: Runs) -> None:
    run = runs.data_objects
    assert run.lines_with(f"'{c.HEALTH_BROKEN}' is not ready yet", "client: UNHEALTHY")
    assert run.lines_with("AirflowSensorTimeout")


def test_the_endpoints_no_operator_wraps_work_through_the_hook(runs: Runs) -> None:
    # Endpoints 7, 10, 12, 13 and 16 of docs/endpoints.md, called from a task.
    result = runs.data_objects.return_value("hook_only_endpoints")
    assert {c.SEARCHED, c.DELETED_FROM, c.CANCEL} <= set(result["connections"])
    assert result["renamed"] == result["read_back"] == c.RENAMED_TABLE
    assert result["table_id"] in result["siblings"]
    assert result["task_type"] == "DATA_OBJECT_SYNC"


# ---- the example DAGs ------------------------------------------------------------------------


def test_validate_then_sync_syncs_a_healthy_connection(runs: Runs) -> None:
    run = runs.validate_healthy
    assert run.state == "success", run.describe()
    assert _states(run) == {
        "validate": "success",
        "choose_path": "success",
        "sync": "success",
        "report_unhealthy": "skipped",
    }
    assert run.return_value("validate")["healthy"] is True
    assert run.return_value("sync")["status"] == "COMPLETED"
    assert runs.after["tasks_created"]["examples"]["snowflake-prod"] == 1


def test_validate_then_sync_reports_an_unhealthy_connection_and_does_not_sync(
    runs: Runs,
) -> None:
    run = runs.validate_unhealthy
    assert run.state == "success", run.describe()
    assert _states(run) == {
        "validate": "success",
        "choose_path": "success",
        "sync": "skipped",
        "report_unhealthy": "success",
    }
    (problem, *_) = run.return_value("report_unhealthy")
    assert problem.startswith("client: UNHEALTHY - Snowflake rejected the credentials")
    assert run.lines_with("Not syncing Immuta connection 'snowflake-prod'")
    assert runs.after["tasks_created"]["broken"] == {}


def test_offboarding_deactivates_deletes_and_confirms(runs: Runs) -> None:
    run = runs.offboarding
    assert run.state == "success", run.describe()
    inventory = run.return_value("record_inventory")
    assert inventory and {obj["connectionKey"] for obj in inventory} == {"snowflake-legacy"}
    assert run.return_value("deactivate")["previous_state"] == "UNHEALTHY"
    assert run.return_value("deactivate")["state"] == "INACTIVE"
    assert run.return_value("delete")["status"] == "COMPLETED"
    assert run.return_value("confirm_gone") == {
        "connection_key": "snowflake-legacy",
        "data_objects_removed": len(inventory),
    }
    assert runs.after["offboarded"] is None


def test_waiting_for_a_sync_started_elsewhere(runs: Runs) -> None:
    run = runs.external_sync
    assert run.state == "success", run.describe()
    assert runs.watchers["outside_sync"], "the run sensor never polled the outside sync"
    assert run.return_value("connection_healthy")["healthy"] is True
    assert run.return_value("find_latest_sync") == runs.outside_sync
    result = run.return_value("wait_for_sync")
    assert result["run_id"] == runs.outside_sync["run_id"]
    assert result["status"] == "COMPLETED" == runs.after["outside_run"]["status"]
    # It saw the run going before it ended, i.e. it really waited.
    assert run.lines_with(runs.outside_sync["run_id"], "-> COMPLETED after")
    assert run.lines_with(runs.outside_sync["run_id"], "RUNNING")
    assert run.return_value("report")["tables"] == runs.after["outside_tables"] > 0
    assert runs.after["tasks_created"]["outside"] == {"snowflake-prod": 1}  # none by the DAG
