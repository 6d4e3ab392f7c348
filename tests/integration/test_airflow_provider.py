"""The provider in a real Airflow (3.x, or 2.11) against the emulator over HTTP on 127.0.0.1.

A ``dag.test()`` costs several seconds of start-up, so the scenarios are grouped: the module
fixture starts, at the same time, one child process per scenario DAG (dags/immuta_scenarios.py),
one for the nightly example DAG (against its own emulator, whose demo seed the other scenarios
do not touch) and ``airflow connections test`` for a good key, a bad key and an unreachable host.
While they run, a watcher cancels the runs of the "cancelled from outside" scenarios, as a user
in Immuta's UI would. The tests then check the results; the emulator's state is snapshotted before
the fixture returns, because other test modules reset it.

The trigger tests at the end run the trigger in this process, against the emulator, the way the
triggerer does (rebuilt from ``serialize()``, inside an event loop).
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.client import ImmutaClient
from immuta_provider.emulator.process import RunningEmulator
from tests.integration import scenarios as s
from tests.integration.airflow_env import AirflowEnvironment, DagRunResult
from tests.support.airflow_versions import AIRFLOW_V3, trigger_round_trip
from tests.support.connections import immuta_connection
from tests.support.nightly import nightly_dag_started, top_level_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO_DAGS = Path(__file__).parent / "dags" / "immuta_scenarios.py"
RUN_TIMEOUT = 240.0
CANCEL_AFTER_RUNNING_FOR = 1.0


@dataclass
class Runs:
    """Everything the module's child processes did, and what the emulators saw."""

    operator: DagRunResult
    sensor: DagRunResult
    nightly: DagRunResult
    nightly_emulator_runs: dict[str, list[dict[str, Any]]]
    nightly_tasks_created: dict[str, int]
    connection_tests: dict[str, tuple[int, str]]
    api_key: str
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tasks_created: dict[str, int] = field(default_factory=dict)
    cancelled_by_watcher: list[str] = field(default_factory=list)


def _cancel_from_outside(client: ImmutaClient, stop: threading.Event, done: list[str]) -> None:
    """Cancel each "cancelled from outside" sync once it has been RUNNING for a moment."""
    while not stop.is_set() and len(done) < len(s.CANCELLED_FROM_OUTSIDE):
        for key in s.CANCELLED_FROM_OUTSIDE:
            if key in done:
                continue
            for run in top_level_runs(client, key):
                if run["status"] == "RUNNING":
                    stop.wait(CANCEL_AFTER_RUNNING_FOR)
                    client.cancel_task_run(key, run["task_id"], run["run_id"])
                    done.append(key)
        stop.wait(0.2)


def _prepare_scenarios(emulator: RunningEmulator, client: ImmutaClient) -> None:
    emulator.admin.reset()
    for key in s.CREATED_CONNECTIONS:
        client.create_connection(
            {
                "connectionKey": key,
                "technology": "Snowflake",
                "clientConfiguration": {"hostname": "it.example.invalid"},
            }
        )
    for key in (s.SYNC_BLOCKING, s.SYNC_DEFERRED):
        emulator.admin.set_behaviour(key, sync_duration=s.SYNC_SECONDS)
    for key in s.STUCK:
        emulator.admin.set_behaviour(key, stuck=True)
    for key in s.CANCELLED_FROM_OUTSIDE:
        emulator.admin.set_behaviour(key, sync_duration=s.LONG_SYNC_SECONDS)
    emulator.admin.set_behaviour(s.REATTACH, sync_duration=3.0)
    # The first try's polls of its run all fail (503, and its connection does not retry), so it
    # gives up while the run goes on; by the retry the fault is used up and the run is over.
    emulator.admin.set_behaviour(s.RESUME, sync_duration=s.SYNC_SECONDS)
    emulator.admin.add_fault(
        method="GET",
        path=f"/api/connections/{s.RESUME}/tasks/[^/]+/runs/[^/]+$",
        status=503,
        count=s.RESUME_FAILED_POLLS,
    )
    for key in (s.SENSOR_POKE, s.SENSOR_RESCHEDULE, s.SENSOR_DEFERRED):
        emulator.admin.set_behaviour(key, sync_duration=3.0)


@pytest.fixture(scope="module")
def runs(
    airflow_env: AirflowEnvironment,
    emulator_server: RunningEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Runs]:
    emulator = emulator_server
    client = ImmutaClient(emulator.url, emulator.api_key)
    _prepare_scenarios(emulator, client)
    conn = {
        "immuta_default": immuta_connection(emulator.url, emulator.api_key),
        s.NO_RETRIES_CONN_ID: immuta_connection(emulator.url, emulator.api_key, max_retries=0),
    }
    fast = {"IMMUTA_SYNC_POLL_INTERVAL": str(s.POLL_INTERVAL)}

    with nightly_dag_started(
        airflow_env, tmp_path_factory.mktemp("nightly-emulator"), extra_env=fast
    ) as nightly:
        stop, cancelled = threading.Event(), []
        watcher = threading.Thread(
            target=_cancel_from_outside, args=(client, stop, cancelled), daemon=True
        )
        watcher.start()
        operator = airflow_env.start_dag(SCENARIO_DAGS, s.OPERATOR_DAG, connections=conn)
        sensor = airflow_env.start_dag(SCENARIO_DAGS, s.SENSOR_DAG, connections=conn)
        connection_tests = {
            name: airflow_env.start_cli(
                ["connections", "test", "immuta_default"], connections={"immuta_default": value}
            )
            for name, value in {
                "good": conn["immuta_default"],
                "bad": immuta_connection(emulator.url, "wrong-key-for-the-test-1234"),
                "unreachable": immuta_connection("http://127.0.0.1:9", emulator.api_key),
            }.items()
        }
        tests = {}
        for name, process in connection_tests.items():
            output, _ = process.communicate(timeout=RUN_TIMEOUT)
            tests[name] = (process.returncode, output)
        results = {
            "operator": operator.wait(RUN_TIMEOUT),
            "sensor": sensor.wait(RUN_TIMEOUT),
            "nightly": nightly.wait(RUN_TIMEOUT),
        }
        stop.set()
        watcher.join(10)

    keys = (*s.CREATED_CONNECTIONS, s.FAILING)
    for result in results.values():
        print(f"{result.dag_id}: {result.wall_seconds}s wall")  # shown with pytest -s
    snapshot = Runs(
        **results,
        nightly_emulator_runs=nightly.runs,
        nightly_tasks_created=nightly.tasks_created,
        connection_tests=tests,
        api_key=emulator.api_key,
        runs={key: top_level_runs(client, key) for key in keys},
        tasks_created=dict(emulator.admin.counters()["tasks_created"]),
        cancelled_by_watcher=list(cancelled),
    )
    client.close()
    yield snapshot


def _failure_lines(run: DagRunResult, key: str) -> list[str]:
    return run.lines_with("AirflowException", f"'{key}'")


# ---- the sync operator -----------------------------------------------------------------------


def test_scenario_dags_ran(runs: Runs) -> None:
    for run in (runs.operator, runs.sensor, runs.nightly):
        assert run.returncode == 0, run.describe()
        assert run.tasks, run.describe()


@pytest.mark.parametrize(
    ("task", "key"), [("sync_blocking", s.SYNC_BLOCKING), ("sync_deferred", s.SYNC_DEFERRED)]
)
def test_sync_succeeds_and_returns_the_run_summary(runs: Runs, task: str, key: str) -> None:
    run = runs.operator
    assert run.state_of(task) == "success", run.describe()
    result = run.return_value(task)
    (remote,) = runs.runs[key]
    assert result == {
        "connection_key": key,
        "immuta_task_id": remote["task_id"],
        "run_id": remote["run_id"],
        "status": "COMPLETED",
        "created_at": result["created_at"],
        "started_at": result["started_at"],
        "completed_at": result["completed_at"],
        "duration_seconds": result["duration_seconds"],
    }
    assert remote["status"] == "COMPLETED"
    assert 0 < result["duration_seconds"] < 10
    assert runs.tasks_created[key] == 1
    # The log shows the connection's Immuta URL and each status change with the elapsed time.
    assert run.lines_with(f"Immuta connection '{key}'", f"/#/connections/{key}")
    assert run.lines_with(f"'{key}'", "-> COMPLETED after")


def test_extra_links_point_at_the_immuta_ui(runs: Runs) -> None:
    run = runs.operator
    (remote,) = runs.runs[s.SYNC_DEFERRED]
    base = run.xcom["sync_deferred"]["immuta_link"]["base_url"]
    connection_url = f"{base}/#/connections/{s.SYNC_DEFERRED}"
    assert run.link("sync_deferred", "ImmutaConnectionLink") == connection_url
    assert run.link("sync_deferred", "ImmutaTaskRunLink") == (
        f"{connection_url}/tasks/{remote['task_id']}/runs/{remote['run_id']}"
    )


@pytest.mark.parametrize("task", ["failure_blocking", "failure_deferred"])
def test_failed_sync_fails_the_task_with_immutas_error(runs: Runs, task: str) -> None:
    run = runs.operator
    assert run.state_of(task) == "failed", run.describe()
    failures = _failure_lines(run, s.FAILING)
    assert len(failures) >= 2  # one per mode
    assert all("ended FAILED after" in line for line in failures)
    assert all(f"[{s.FAILING_CODE}]" in line for line in failures)
    assert all(runs_["status"] == "FAILED" for runs_ in runs.runs[s.FAILING])


@pytest.mark.parametrize("key", s.CANCELLED_FROM_OUTSIDE)
def test_sync_cancelled_in_immuta_fails_the_task_saying_who(runs: Runs, key: str) -> None:
    task = "cancelled_blocking" if key == s.CANCEL_BLOCKING else "cancelled_deferred"
    assert key in runs.cancelled_by_watcher
    assert runs.operator.state_of(task) == "failed", runs.operator.describe()
    (remote,) = runs.runs[key]
    assert remote["status"] == "CANCELED"
    (failure,) = _failure_lines(runs.operator, key)
    assert "ended CANCELED after" in failure
    assert f"canceled by {remote['canceled_by']}" in failure


@pytest.mark.parametrize("key", s.STUCK)
def test_timeout_fails_at_the_deadline_and_cancels_the_run(runs: Runs, key: str) -> None:
    task = "timeout_blocking" if key == s.STUCK_BLOCKING else "timeout_deferred"
    info = runs.operator.tasks[task]
    assert info["state"] == "failed", runs.operator.describe()
    (remote,) = runs.runs[key]
    assert remote["status"] in ("CANCELING", "CANCELED")
    (failure,) = _failure_lines(runs.operator, key)
    assert "did not finish before the deadline" in failure
    assert "Asked Immuta to cancel the run" in failure
    # It failed at the deadline, not much later (the remote run never ends by itself).
    took = (
        datetime.fromisoformat(info["end_date"]) - datetime.fromisoformat(info["start_date"])
    ).total_seconds()
    assert s.TIMEOUT_SECONDS <= took < s.TIMEOUT_SECONDS + 10


def test_reuse_running_sync_attaches_instead_of_starting_another(runs: Runs) -> None:
    run = runs.operator
    assert run.state_of("reattach_deferred") == "success", run.describe()
    outside = run.return_value("start_sync_outside_the_operator")
    result = run.return_value("reattach_deferred")
    assert (result["immuta_task_id"], result["run_id"]) == (
        outside["immuta_task_id"],
        outside["run_id"],
    )
    assert result["status"] == "COMPLETED"
    assert runs.tasks_created[s.REATTACH] == 1
    assert len(runs.runs[s.REATTACH]) == 1
    assert run.lines_with("Attaching to the sync already", f"'{s.REATTACH}'")


@pytest.mark.skipif(
    not AIRFLOW_V3, reason="task_state_store is Airflow 3.3+; see the 2.11 counterpart below"
)
def test_a_retry_resumes_the_run_of_the_try_that_lost_contact(runs: Runs) -> None:
    run = runs.operator
    info = run.tasks["resume_after_lost_contact"]
    assert info["state"] == "success", run.describe()
    assert info["try_number"] == 2
    (failure,) = _failure_lines(run, s.RESUME)
    assert f"giving up after {s.RESUME_FAILED_POLLS} failed polls in a row" in failure
    (remote,) = runs.runs[s.RESUME]  # one sync, not one per try
    assert runs.tasks_created[s.RESUME] == 1
    result = run.return_value("resume_after_lost_contact")
    assert (result["run_id"], result["status"]) == (remote["run_id"], "COMPLETED")
    assert run.lines_with("An earlier try of this task started Immuta task", remote["run_id"])


@pytest.mark.skipif(AIRFLOW_V3, reason="Airflow 2.11 only (no task_state_store)")
def test_on_airflow_2_a_retry_syncs_again_once_the_lost_run_has_ended(runs: Runs) -> None:
    # What docs/installation.md says: 2.11 has no store for the earlier try's run, so a retry
    # only reattaches to a run that is still going; this one completed meanwhile.
    run = runs.operator
    info = run.tasks["resume_after_lost_contact"]
    assert info["state"] == "success", run.describe()
    assert info["try_number"] == 2
    (failure,) = _failure_lines(run, s.RESUME)
    assert f"giving up after {s.RESUME_FAILED_POLLS} failed polls in a row" in failure
    first, second = runs.runs[s.RESUME]
    assert runs.tasks_created[s.RESUME] == 2
    assert first["status"] == second["status"] == "COMPLETED"
    result = run.return_value("resume_after_lost_contact")
    assert result["run_id"] == second["run_id"]


def test_the_api_key_never_appears_in_logs_or_xcom(runs: Runs) -> None:
    for run in (runs.operator, runs.sensor, runs.nightly):
        assert runs.api_key not in run.output
        assert runs.api_key not in str(run.xcom)
    for _, output in runs.connection_tests.values():
        assert runs.api_key not in output
        assert "wrong-key-for-the-test-1234" not in output


# ---- the sensor ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sensor", "start", "key"),
    [
        ("sensor_poke", "start_poke", s.SENSOR_POKE),
        ("sensor_reschedule", "start_reschedule", s.SENSOR_RESCHEDULE),
        ("sensor_deferred", "start_deferred", s.SENSOR_DEFERRED),
    ],
)
def test_sensor_waits_for_the_run_in_each_mode(
    runs: Runs, sensor: str, start: str, key: str
) -> None:
    run = runs.sensor
    assert run.state_of(start) == "success", run.describe()
    assert run.state_of(sensor) == "success", run.describe()
    started = run.return_value(start)
    assert started["status"] in ("PENDING", "RUNNING")  # wait_for_completion=False
    result = run.return_value(sensor)
    assert result["status"] == "COMPLETED"
    assert (result["immuta_task_id"], result["run_id"]) == (
        started["immuta_task_id"],
        started["run_id"],
    )
    # It saw the run before it ended, i.e. it really waited.
    assert run.lines_with(f"'{key}'", "-> RUNNING") or run.lines_with(f"'{key}'", "-> PENDING")
    assert run.lines_with(f"'{key}'", "-> COMPLETED after")


def test_reschedule_mode_really_rescheduled(runs: Runs) -> None:
    assert runs.sensor.tasks["sensor_reschedule"]["try_number"] == 1
    assert len(runs.sensor.lines_with("running task", "sensor_reschedule")) >= 2


def test_sensor_fails_on_a_failed_run_with_immutas_error(runs: Runs) -> None:
    run = runs.sensor
    assert run.state_of("sensor_on_failed_run") == "failed", run.describe()
    failure = _failure_lines(run, s.FAILING)
    assert failure and f"[{s.FAILING_CODE}]" in failure[0]


# ---- the nightly example DAG -----------------------------------------------------------------


def test_nightly_example_dag_end_to_end(runs: Runs) -> None:
    run = runs.nightly
    assert run.state == "success", run.describe()
    active = ["snowflake-prod", "databricks-analytics"]
    assert sorted(run.return_value("list_active_connections")) == sorted(active)
    summary = run.return_value("summarize")
    assert sorted(summary["synced"]) == sorted(active)
    assert summary["failed"] == []
    for key in active:
        assert run.state_of(f"sync_data_objects[{active.index(key)}]") == "success"
        # A completed emulator sync discovers a few new tables.
        assert summary["data_objects_after"][key] > summary["data_objects_before"][key] > 0
        assert runs.nightly_tasks_created[key] == 1
        assert runs.nightly_emulator_runs[key][-1]["status"] == "COMPLETED"
    assert "snowflake-legacy" not in runs.nightly_tasks_created  # UNHEALTHY: not synced
    assert run.lines_with("Immuta nightly sync summary")


# ---- the connection test ---------------------------------------------------------------------


def test_connection_test_with_a_good_key(runs: Runs) -> None:
    returncode, output = runs.connection_tests["good"]
    assert returncode == 0, output
    assert "Connection success!" in output


def test_connection_test_with_a_bad_key(runs: Runs) -> None:
    _, output = runs.connection_tests["bad"]
    assert "Connection failed!" in output, output
    assert "refused the API key when exchanging it for a token" in output


def test_connection_test_with_an_unreachable_host(runs: Runs) -> None:
    _, output = runs.connection_tests["unreachable"]
    assert "Connection failed!" in output, output
    assert "Cannot reach http://127.0.0.1:9" in output


# ---- the trigger, in this process as the triggerer runs it -----------------------------------


def _rebuilt(trigger: Any) -> Any:
    """What the triggerer does: serialize, store, import the class path, instantiate."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**trigger_round_trip(kwargs))


@pytest.fixture
def immuta_env(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> ImmutaClient:
    # One retry per call: the trigger's own tolerance of failed polls is what is under test.
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMMUTA_IT", immuta_connection(emulator.url, emulator.api_key, max_retries=1)
    )
    return ImmutaClient(emulator.url, emulator.api_key)


def _start_sync(client: ImmutaClient, key: str) -> tuple[str, str]:
    task = client.create_task(key)
    (run,) = list(client.list_task_runs(key, task.task_id))
    return task.task_id, run.run_id


async def _first_event(trigger: Any) -> Any:
    return await anext(trigger.run())


def test_trigger_rebuilt_from_serialize_runs_to_completion_through_transient_errors(
    emulator: RunningEmulator, immuta_env: ImmutaClient
) -> None:
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    task_id, run_id = _start_sync(immuta_env, "snowflake-prod")
    # Six 503s in a row on the run: each poll's retry fails too, three polls fail in a row,
    # and the trigger keeps polling (it gives up only after max_consecutive_errors).
    emulator.admin.add_fault(method="GET", path=f"/runs/{run_id}$", status=503, count=6)
    trigger = _rebuilt(
        ImmutaTaskRunTrigger(
            immuta_conn_id="immuta_it",
            connection_key="snowflake-prod",
            immuta_task_id=task_id,
            run_id=run_id,
            poll_interval=0.2,
            deadline=time.time() + 60,
        )
    )
    event = asyncio.run(_first_event(trigger))
    assert event.payload["status"] == "success", event.payload
    assert event.payload["run"]["run_id"] == run_id
    assert event.payload["run"]["status"] == "COMPLETED"
    (fault,) = emulator.admin.faults()
    assert fault["fired"] == 6


def test_trigger_times_out_at_its_absolute_deadline(
    emulator: RunningEmulator, immuta_env: ImmutaClient
) -> None:
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    emulator.admin.set_behaviour("databricks-analytics", stuck=True)
    task_id, run_id = _start_sync(immuta_env, "databricks-analytics")
    deadline = time.time() + 1.0
    trigger = _rebuilt(
        ImmutaTaskRunTrigger(
            immuta_conn_id="immuta_it",
            connection_key="databricks-analytics",
            immuta_task_id=task_id,
            run_id=run_id,
            poll_interval=0.2,
            deadline=deadline,
        )
    )
    event = asyncio.run(_first_event(trigger))
    assert event.payload["status"] == "timeout"
    assert time.time() - deadline < 2


def test_trigger_restart_never_cancels_but_a_user_kill_does(
    emulator: RunningEmulator, immuta_env: ImmutaClient
) -> None:
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    emulator.admin.set_behaviour("snowflake-prod", sync_duration=60)
    task_id, run_id = _start_sync(immuta_env, "snowflake-prod")
    trigger = _rebuilt(
        ImmutaTaskRunTrigger(
            immuta_conn_id="immuta_it",
            connection_key="snowflake-prod",
            immuta_task_id=task_id,
            run_id=run_id,
            poll_interval=0.2,
            cancel_on_kill=True,
        )
    )

    async def restart_then_kill() -> tuple[str, str]:
        polling = asyncio.create_task(_first_event(trigger))
        await asyncio.sleep(1.0)
        polling.cancel()  # what a triggerer shutdown or a move to another triggerer does
        with pytest.raises(asyncio.CancelledError):
            await polling
        after_restart = immuta_env.get_task_run("snowflake-prod", task_id, run_id).status
        await trigger.on_kill()  # what Airflow calls after mark-failed / clear
        after_kill = immuta_env.get_task_run("snowflake-prod", task_id, run_id).status
        return str(after_restart), str(after_kill)

    after_restart, after_kill = asyncio.run(restart_then_kill())
    assert after_restart == "RUNNING"
    assert after_kill in ("CANCELING", "CANCELED")


def test_triggers_of_one_connection_share_one_client(
    emulator: RunningEmulator, immuta_env: ImmutaClient
) -> None:
    from immuta_provider.hooks.shared_clients import shared_async_clients
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    emulator.admin.set_behaviour("snowflake-prod", sync_duration=1.5)
    started = [_start_sync(immuta_env, "snowflake-prod") for _ in range(5)]
    triggers = [
        _rebuilt(
            ImmutaTaskRunTrigger(
                immuta_conn_id="immuta_it",
                connection_key="snowflake-prod",
                immuta_task_id=task_id,
                run_id=run_id,
                poll_interval=0.2,
                deadline=time.time() + 60,
            )
        )
        for task_id, run_id in started
    ]

    async def all_together() -> tuple[list[Any], int]:
        polling = [asyncio.create_task(_first_event(t)) for t in triggers]
        await asyncio.sleep(0.5)
        clients_while_polling = len(shared_async_clients)
        return list(await asyncio.gather(*polling)), clients_while_polling

    events, clients_while_polling = asyncio.run(all_together())
    assert [e.payload["status"] for e in events] == ["success"] * 5
    assert clients_while_polling == 1
    assert len(shared_async_clients) == 0  # closed when the last trigger finished


def test_operator_on_kill_cancels_the_run_it_follows(
    emulator: RunningEmulator, immuta_env: ImmutaClient
) -> None:
    """What Airflow calls when a non-deferred sync is marked failed, cleared or times out."""
    from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

    emulator.admin.set_behaviour("snowflake-prod", sync_duration=60)
    task_id, run_id = _start_sync(immuta_env, "snowflake-prod")
    operator = ImmutaDataObjectSyncOperator(
        task_id="sync", connection_key="snowflake-prod", immuta_conn_id="immuta_it"
    )
    # The state execute() keeps while it polls the run.
    operator._immuta_task_id, operator._run_id = task_id, run_id
    operator.on_kill()
    status = immuta_env.get_task_run("snowflake-prod", task_id, run_id).status
    assert status in ("CANCELING", "CANCELED")


def test_operator_on_kill_leaves_a_finished_or_unowned_run_alone(
    emulator: RunningEmulator, immuta_env: ImmutaClient
) -> None:
    from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

    emulator.admin.set_behaviour("snowflake-prod", sync_duration=60)
    task_id, run_id = _start_sync(immuta_env, "snowflake-prod")
    finished = ImmutaDataObjectSyncOperator(
        task_id="sync", connection_key="snowflake-prod", immuta_conn_id="immuta_it"
    )
    finished._immuta_task_id, finished._run_id, finished._finished = task_id, run_id, True
    finished.on_kill()
    not_owner = ImmutaDataObjectSyncOperator(
        task_id="sync",
        connection_key="snowflake-prod",
        immuta_conn_id="immuta_it",
        cancel_on_kill=False,
    )
    not_owner._immuta_task_id, not_owner._run_id = task_id, run_id
    not_owner.on_kill()
    status = immuta_env.get_task_run("snowflake-prod", task_id, run_id).status
    assert status in ("PENDING", "RUNNING")
