"""The version suite: what every Airflow line the package claims must do, run in each one's venv.

``make test`` runs this module in .venv (3.3), .venv-af2 (2.11) and .venv-af3.0/3.1/3.2, next to
tests/unit/airflow. It checks, against the emulator over HTTP on 127.0.0.1 and a real Airflow:
the provider registers (``airflow providers list`` / ``hooks``) with its connection form; a
deferred sync through the trigger in ``dag.test()``; the sensor in all three modes; the nightly
example DAG; every example DAG parses; and, where a line lacks a feature, the degraded behaviour
docs/installation.md promises (``features.py`` holds that table and checks it against Airflow).

The DAG runs, the CLI calls and the form probe all start at once in the module fixture and the
tests read their results, so the module costs about one ``dag.test()`` of wall time.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.client import ImmutaClient
from immuta_provider.emulator.process import RunningEmulator
from tests.integration.airflow_env import AirflowEnvironment, DagRunResult
from tests.support.airflow_homes import REPO_ROOT
from tests.support.airflow_versions import dag_bag, trigger_round_trip
from tests.support.connections import immuta_connection
from tests.support.nightly import nightly_dag_started, top_level_runs
from tests.versions import scenarios as s
from tests.versions.features import AIRFLOW_LINE, AIRFLOW_VERSION, EXPECTED, LINES, features, has

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VERSION_DAG = Path(__file__).parent / "dags" / "version_suite.py"
FORM_PROBE = Path(__file__).with_name("form_probe.py")
# A shared 2-core machine under load parses a DAG file in more than Airflow's 30 s default.
SLOW_MACHINE = {"AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300"}
RUN_TIMEOUT = 480.0  # generous: the machines are shared, and a slow run must not be killed
INSTALLATION_DOC = REPO_ROOT / "docs" / "installation.md"


@dataclass
class Suite:
    """What the module's child processes did, and what the emulators saw."""

    run: DagRunResult
    nightly: DagRunResult
    nightly_runs: dict[str, list[dict[str, Any]]]
    nightly_tasks_created: dict[str, int]
    cli: dict[str, tuple[int, str]]
    form_probe: tuple[int, str]
    api_key: str
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tasks_created: dict[str, int] = field(default_factory=dict)


def _prepare(emulator: RunningEmulator, client: ImmutaClient) -> None:
    emulator.admin.reset()
    for key in s.CONNECTIONS:
        client.create_connection(
            {
                "connectionKey": key,
                "technology": "Snowflake",
                "clientConfiguration": {"hostname": "vs.example.invalid"},
            }
        )
        emulator.admin.set_behaviour(key, sync_duration=s.SYNC_SECONDS)
    for _, _, key in s.SENSORS.values():
        emulator.admin.set_behaviour(key, sync_duration=s.SENSOR_SYNC_SECONDS)
    # The first try's polls all fail (503; its connection does not retry), so it gives up while
    # the run goes on; by the retry the fault is used up and the run has completed.
    emulator.admin.add_fault(
        method="GET",
        path=f"/api/connections/{s.RESUME}/tasks/[^/]+/runs/[^/]+$",
        status=503,
        count=s.RESUME_FAILED_POLLS,
    )


@pytest.fixture(scope="module")
def suite(
    airflow_env: AirflowEnvironment,
    emulator_server: RunningEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Suite]:
    emulator = emulator_server
    client = ImmutaClient(emulator.url, emulator.api_key)
    _prepare(emulator, client)
    conn = {
        "immuta_default": immuta_connection(emulator.url, emulator.api_key),
        s.NO_RETRIES_CONN_ID: immuta_connection(emulator.url, emulator.api_key, max_retries=0),
    }
    with nightly_dag_started(
        airflow_env,
        tmp_path_factory.mktemp("nightly-emulator"),
        extra_env={"IMMUTA_SYNC_POLL_INTERVAL": str(s.POLL_INTERVAL), **SLOW_MACHINE},
    ) as nightly:
        run = airflow_env.start_dag(VERSION_DAG, s.DAG_ID, connections=conn, extra_env=SLOW_MACHINE)
        cli = {
            name: airflow_env.start_cli(["providers", name, "-o", "json"], connections={})
            for name in ("list", "hooks")
        }
        form_file = tmp_path_factory.mktemp("form") / "form.json"
        probe = subprocess.run(
            [sys.executable, str(FORM_PROBE), str(form_file)],
            env=airflow_env.env(airflow_env.template),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        cli_results = {}
        for name, process in cli.items():
            output, _ = process.communicate(timeout=RUN_TIMEOUT)
            cli_results[name] = (process.returncode, output)
        results = {"run": run.wait(RUN_TIMEOUT), "nightly": nightly.wait(RUN_TIMEOUT)}
    for result in results.values():
        print(f"{result.dag_id}: {result.wall_seconds}s wall")  # shown with pytest -s
    snapshot = Suite(
        **results,
        nightly_runs=nightly.runs,
        nightly_tasks_created=nightly.tasks_created,
        cli=cli_results,
        form_probe=(
            probe.returncode,
            form_file.read_text() if form_file.exists() else probe.stdout + probe.stderr[-4000:],
        ),
        api_key=emulator.api_key,
        runs={key: top_level_runs(client, key) for key in s.CONNECTIONS},
        tasks_created=dict(emulator.admin.counters()["tasks_created"]),
    )
    client.close()
    yield snapshot


def _json_rows(output: str) -> list[dict[str, Any]]:
    """The JSON array an ``airflow ... -o json`` command printed among its log lines."""
    for line in reversed(output.splitlines()):
        if line.startswith("[{") or line.strip() == "[]":
            rows: list[dict[str, Any]] = json.loads(line)
            return rows
    raise AssertionError(f"no JSON array in the output:\n{output[-4000:]}")


# ---- the support table -----------------------------------------------------------------------


def test_support_table_matches_this_airflow() -> None:
    """docs/installation.md's table (features.EXPECTED) is what this Airflow really has."""
    assert AIRFLOW_LINE in LINES, f"Airflow {AIRFLOW_VERSION} is not a line the package claims"
    assert features() == EXPECTED[AIRFLOW_LINE]
    doc = INSTALLATION_DOC.read_text()
    assert f"| {AIRFLOW_LINE} | {AIRFLOW_VERSION} |" in doc, "the table names the tested patch"


# ---- the provider registers ------------------------------------------------------------------


def test_airflow_lists_the_provider_and_its_connection_type(suite: Suite) -> None:
    from importlib.metadata import version

    returncode, output = suite.cli["list"]
    assert returncode == 0, output
    providers = {row["package_name"]: row for row in _json_rows(output)}
    assert providers["airflow-provider-immuta"]["version"] == version("airflow-provider-immuta")
    returncode, output = suite.cli["hooks"]
    assert returncode == 0, output
    (hook,) = [row for row in _json_rows(output) if row["connection_type"] == "immuta"]
    assert hook["class"] == "immuta_provider.hooks.immuta.ImmutaHook"


def test_connection_form(suite: Suite) -> None:
    """The form the UI gets: the same labels, hidden fields and extras on every line that builds
    one (features._connection_form says from where); Airflow's plain form on 3.0 without
    flask-appbuilder, where the extras go in the Extra JSON field (tests/unit/airflow reads it)."""
    returncode, output = suite.form_probe
    assert returncode == 0, output
    form = json.loads(output)
    source = features()["connection_form"]
    assert form["hook_name"] == "Immuta"
    assert form["hook_imported"] is (source != "conn-fields")
    if source == "generic":
        assert (form["relabeling"], form["extras"]) == ({}, [])
        return
    assert form["relabeling"] == {"host": "Immuta URL", "password": "API key"}
    assert {"login", "port", "schema"} <= set(form["hidden"])
    from immuta_provider import get_provider_info

    (conn_type,) = get_provider_info()["connection-types"]
    names = {name.removeprefix("extra__immuta__") for name in form["extras"]}
    assert names == set(conn_type["conn-fields"])


# ---- no line fails at import, parse or first trigger run ------------------------------------


@pytest.mark.parametrize(
    "dag_file", sorted((REPO_ROOT / "example_dags").glob("*.py")), ids=lambda p: p.stem
)
def test_example_dag_parses(dag_file: Path) -> None:
    """Every example DAG parses; the sync-watcher one, before 3.3, fails to parse with the
    watcher's own error saying what to use instead (a DAG import error, not a crash)."""
    from immuta_provider._compat import event_scheduling_unavailable

    bag = dag_bag(dag_file)
    unavailable = event_scheduling_unavailable()
    if "immuta_sync_completed_asset" in dag_file.read_text() and unavailable is not None:
        (error,) = bag.import_errors.values()
        assert "needs Airflow 3.3 or later" in error and "immuta_connection_asset" in error
        return
    assert not bag.import_errors, bag.import_errors
    assert bag.dags


def test_deferred_sync_runs_through_the_trigger(suite: Suite) -> None:
    run = suite.run
    assert run.returncode == 0, run.describe()
    assert run.state_of("sync_deferred") == "success", run.describe()
    (remote,) = suite.runs[s.DEFERRED]
    result = run.return_value("sync_deferred")
    assert (result["run_id"], result["status"]) == (remote["run_id"], "COMPLETED")
    assert suite.tasks_created[s.DEFERRED] == 1
    # It deferred (the trigger polled, read its connection and reported) rather than blocking.
    assert run.lines_with(f"'{s.DEFERRED}'", "-> COMPLETED after")
    assert run.lines_with("Pausing task as DEFERRED") or run.lines_with("deferr")


@pytest.mark.parametrize("mode", sorted(s.SENSORS))
def test_sensor_waits_for_the_run_in_each_mode(suite: Suite, mode: str) -> None:
    start, sensor, key = s.SENSORS[mode]
    run = suite.run
    assert run.state_of(start) == "success", run.describe()
    assert run.state_of(sensor) == "success", run.describe()
    started, result = run.return_value(start), run.return_value(sensor)
    assert started["status"] in ("PENDING", "RUNNING")
    assert (result["run_id"], result["status"]) == (started["run_id"], "COMPLETED")
    assert run.lines_with(f"'{key}'", "-> COMPLETED after")
    if mode == "reschedule":  # it gave its slot back between pokes
        assert run.tasks[sensor]["try_number"] == 1
        assert len(run.lines_with("running task", sensor)) >= 2 or (
            len(run.lines_with(sensor, "reschedul")) >= 1
        )


def test_nightly_example_dag_end_to_end(suite: Suite) -> None:
    run = suite.nightly
    assert run.state == "success", run.describe()
    active = ["snowflake-prod", "databricks-analytics"]
    summary = run.return_value("summarize")
    assert sorted(summary["synced"]) == sorted(active)
    assert summary["failed"] == []
    for key in active:
        assert suite.nightly_tasks_created[key] == 1
        assert suite.nightly_runs[key][-1]["status"] == "COMPLETED"
    assert "snowflake-legacy" not in suite.nightly_tasks_created  # UNHEALTHY: not synced


def test_the_api_key_never_appears_in_logs_or_xcom(suite: Suite) -> None:
    for run in (suite.run, suite.nightly):
        # Airflow 3.0.6's own supervisor debug lines print every MaskSecret request (key included)
        # in dag.test() output; docs/installation.md says so. Every other line must be clean.
        lines = [line for line in run.output.splitlines() if "MaskSecret(value=" not in line]
        if AIRFLOW_LINE != "3.0":
            assert len(lines) == len(run.output.splitlines())
        assert not [line for line in lines if suite.api_key in line]
        assert suite.api_key not in str(run.xcom)


# ---- where a line lacks something: the degradation docs/installation.md describes -----------


def test_a_retry_after_lost_contact(suite: Suite) -> None:
    """With ``task_state_store`` (3.3+) the retry resumes the first try's run; without it the
    retry finds no run still going (this one completed) and syncs again: two runs, both done."""
    run = suite.run
    info = run.tasks["resume_after_lost_contact"]
    assert info["state"] == "success", run.describe()
    assert info["try_number"] == 2
    result = run.return_value("resume_after_lost_contact")
    if has("task_state_store"):
        (remote,) = suite.runs[s.RESUME]
        assert suite.tasks_created[s.RESUME] == 1
        assert result["run_id"] == remote["run_id"]
    else:
        first, second = suite.runs[s.RESUME]
        assert suite.tasks_created[s.RESUME] == 2
        assert first["status"] == second["status"] == "COMPLETED"
        assert result["run_id"] == second["run_id"]


def test_the_sync_watcher_is_offered_exactly_where_airflow_can_run_it() -> None:
    """The asset watcher (``ImmutaSyncCompletedTrigger``) needs shared trigger streams and the
    asset state store (3.3); elsewhere it imports and refuses to be built, saying so."""
    from immuta_provider._compat import event_scheduling_unavailable
    from immuta_provider.triggers import ImmutaSyncCompletedTrigger

    unavailable = event_scheduling_unavailable()
    assert (unavailable is None) is (has("shared_streams") and has("asset_state_store"))
    if unavailable is None:
        assert ImmutaSyncCompletedTrigger(connection_key="snowflake-prod").serialize()
    else:
        with pytest.raises(RuntimeError, match=r"needs Airflow 3\.3 or later"):
            ImmutaSyncCompletedTrigger(connection_key="snowflake-prod")


def test_connections_are_read_without_blocking_the_event_loop(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``BaseHook.aget_connection`` where Airflow has it (3.1+); before, the synchronous lookup
    through asgiref's ``sync_to_async`` (which Airflow 3.0's triggerer requires)."""
    from immuta_provider import _compat

    monkeypatch.setenv("AIRFLOW_CONN_IMMUTA_VS", immuta_connection(emulator.url, "key-1234567"))
    calls: list[str] = []
    base_hook = _compat.BaseHook
    name = "aget_connection" if has("aget_connection") else "get_connection"
    original = getattr(base_hook, name)

    def spy(conn_id: str) -> Any:
        calls.append(name)
        return original(conn_id)

    monkeypatch.setattr(base_hook, name, spy)

    async def read() -> Any:
        return await _compat.aget_connection("immuta_vs")

    conn = asyncio.run(read())
    assert (conn.host, calls) == (emulator.url, [name])


def _rebuilt(trigger: Any) -> Any:
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**trigger_round_trip(kwargs))


def test_a_user_kill_of_a_deferred_task(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3.3's triggerer calls ``trigger.on_kill()`` after mark-failed / clear, and the run is
    cancelled in Immuta (a real mark-failed is in tests/reliability). Earlier lines only cancel
    the trigger, as on a restart, so the run goes on in Immuta: the documented degradation."""
    from airflow.jobs import triggerer_job_runner

    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    calls_on_kill = "trigger.on_kill()" in inspect.getsource(triggerer_job_runner)
    assert calls_on_kill is has("trigger_on_kill")
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMMUTA_VS", immuta_connection(emulator.url, emulator.api_key, max_retries=1)
    )
    client = ImmutaClient(emulator.url, emulator.api_key)
    emulator.admin.set_behaviour("snowflake-prod", sync_duration=60)
    task = client.create_task("snowflake-prod")
    (remote,) = list(client.list_task_runs("snowflake-prod", task.task_id))
    trigger = _rebuilt(
        ImmutaTaskRunTrigger(
            immuta_conn_id="immuta_vs",
            connection_key="snowflake-prod",
            immuta_task_id=task.task_id,
            run_id=remote.run_id,
            poll_interval=0.2,
            cancel_on_kill=True,
        )
    )

    async def user_kill() -> str:
        polling = asyncio.create_task(anext(trigger.run()))
        await asyncio.sleep(1.0)
        polling.cancel()  # every line: the triggerer cancels the trigger's task
        with pytest.raises(asyncio.CancelledError):
            await polling
        if calls_on_kill:  # 3.3+: then tells the trigger it was a user action
            await trigger.on_kill()
        return str(client.get_task_run("snowflake-prod", task.task_id, remote.run_id).status)

    status = asyncio.run(user_kill())
    client.close()
    if has("trigger_on_kill"):
        assert status in ("CANCELING", "CANCELED")
    else:
        assert status == "RUNNING"
