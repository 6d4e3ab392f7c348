"""Asset events of the sync operator, and the progress lines of a long wait, in a real Airflow.

One Airflow home, its own emulator, and three steps, as a deployment would do them:

1. ``airflow dags reserialize`` parses the DAGs folder (the upstream scenario DAG of
   dags/asset_scenarios.py and the example DAG example_dags/immuta_downstream_on_fresh_inventory.py)
   into the metadata database, the way the DAG processor does;
2. ``dag.test()`` runs the upstream DAG: its syncs emit asset events (written to the database);
3. ``airflow scheduler --num-runs N`` loops a few times and, because the downstream DAG is
   scheduled on one of those assets, creates an asset-triggered run of it.

The tests then read the metadata database (plain SQL on its SQLite file) and the task log.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.client import ImmutaClient
from immuta_provider.emulator.process import run_emulator
from tests.integration import scenarios as s
from tests.integration.airflow_env import DAG_RUNNER, AirflowEnvironment, DagRunResult, RunningDag
from tests.support.airflow_homes import AIRFLOW, REPO_ROOT
from tests.support.airflow_versions import AIRFLOW_V3
from tests.support.connections import immuta_connection
from tests.support.nightly import top_level_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UPSTREAM_DAG_FILE = Path(__file__).parent / "dags" / "asset_scenarios.py"
DOWNSTREAM_DAG_FILE = REPO_ROOT / "example_dags" / "immuta_downstream_on_fresh_inventory.py"
DOWNSTREAM_KEY = s.ASSET_MAPPED[0]  # a key only known at run time (mapped)
RUN_TIMEOUT = 240.0
CLI_TIMEOUT = 180.0
SCHEDULER_LIMIT = 90.0  # seconds the scheduler gets to create the downstream run

# Table and column names of the metadata database: assets on 3.x, datasets on 2.11.
if AIRFLOW_V3:
    EVENTS_SQL = (
        "SELECT a.uri, e.extra, e.source_dag_id, e.source_task_id, e.source_run_id, "
        "e.source_map_index FROM asset_event e JOIN asset a ON a.id = e.asset_id"
    )
    DOWNSTREAM_RUNS_SQL = (
        "SELECT r.run_id, r.run_type, r.state, a.uri FROM dag_run r "
        "LEFT JOIN dagrun_asset_event d ON d.dag_run_id = r.id "
        "LEFT JOIN asset_event e ON e.id = d.event_id LEFT JOIN asset a ON a.id = e.asset_id "
        "WHERE r.dag_id = ?"
    )
else:
    EVENTS_SQL = (
        "SELECT a.uri, e.extra, e.source_dag_id, e.source_task_id, e.source_run_id, "
        "e.source_map_index FROM dataset_event e JOIN dataset a ON a.id = e.dataset_id"
    )
    DOWNSTREAM_RUNS_SQL = (
        "SELECT r.run_id, r.run_type, r.state, a.uri FROM dag_run r "
        "LEFT JOIN dagrun_dataset_event d ON d.dag_run_id = r.id "
        "LEFT JOIN dataset_event e ON e.id = d.event_id LEFT JOIN dataset a ON a.id = e.dataset_id "
        "WHERE r.dag_id = ?"
    )


@dataclass
class AssetRuns:
    """What the three steps did, read back from the database and the emulator."""

    base_url: str
    api_key: str
    upstream: DagRunResult
    reserialize: subprocess.CompletedProcess[str]
    scheduler_output: str
    scheduler_seconds: float
    events: list[dict[str, Any]]
    downstream_runs: list[dict[str, Any]]
    remote_runs: dict[str, list[dict[str, Any]]]


def _query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, args).fetchall()


def _run_scheduler_until_triggered(home: Path, env: dict[str, str], db: Path) -> tuple[float, str]:
    """Run ``airflow scheduler`` until the downstream DAG has a run, then stop it (SIGTERM).

    :return: The seconds until the run appeared (or the limit) and the scheduler's output.
    """
    log = home / "scheduler.log"
    started = time.monotonic()
    with log.open("wb") as out:
        scheduler = subprocess.Popen(
            [AIRFLOW, "scheduler"], env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            while time.monotonic() - started < SCHEDULER_LIMIT and scheduler.poll() is None:
                found = _query(
                    db, "SELECT count(*) FROM dag_run WHERE dag_id = ?", s.ASSET_DOWNSTREAM_DAG
                )
                if found[0][0]:
                    break
                time.sleep(0.5)
            seconds = round(time.monotonic() - started, 1)
        finally:
            scheduler.terminate()
            try:
                scheduler.wait(30)
            except subprocess.TimeoutExpired:
                scheduler.kill()
                scheduler.wait()
    return seconds, log.read_text(errors="replace")


@pytest.fixture(scope="module")
def asset_runs(
    airflow_env: AirflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AssetRuns]:
    with run_emulator(
        seed="demo", sync_duration=1.0, log_dir=tmp_path_factory.mktemp("asset-emulator")
    ) as emulator:
        client = ImmutaClient(emulator.url, emulator.api_key)
        for key in s.ASSET_CONNECTIONS:
            client.create_connection(
                {
                    "connectionKey": key,
                    "technology": "Snowflake",
                    "clientConfiguration": {"hostname": "it.example.invalid"},
                }
            )
            emulator.admin.set_behaviour(key, sync_duration=s.ASSET_SYNC_SECONDS)

        home = airflow_env.new_home("assets")
        dags = home / "dags"
        dags.mkdir()
        for dag_file in (UPSTREAM_DAG_FILE, DOWNSTREAM_DAG_FILE):
            shutil.copy(dag_file, dags / dag_file.name)
        env = airflow_env.env(
            home,
            dags_folder=dags,
            connections={"immuta_default": immuta_connection(emulator.url, emulator.api_key)},
            extra={
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__IMMUTA__PROGRESS_LOG_INTERVAL": str(s.PROGRESS_LOG_INTERVAL),
                # What the downstream example DAG is scheduled on.
                "IMMUTA_HOST": emulator.url,
                "IMMUTA_CONNECTION_KEY": DOWNSTREAM_KEY,
            },
        )

        # 1. Both DAGs into the database, as the DAG processor would put them.
        reserialize = subprocess.run(
            [AIRFLOW, "dags", "reserialize"],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )

        # 2. The upstream DAG, with dag.test().
        log, result = home / "dag-test.log", home / "result.json"
        upstream_file = dags / UPSTREAM_DAG_FILE.name
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(DAG_RUNNER), str(upstream_file), s.ASSET_DAG, str(result)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
            )
        upstream = RunningDag(s.ASSET_DAG, process, log, result).wait(RUN_TIMEOUT)

        # 3. The scheduler, until it has created the downstream run (or a time limit).
        db = home / "airflow.db"
        scheduler_seconds, scheduler_output = _run_scheduler_until_triggered(home, env, db)

        events = [
            {
                "uri": uri,
                "extra": json.loads(extra) if isinstance(extra, str) else extra,
                "source_dag_id": dag_id,
                "source_task_id": task_id,
                "source_run_id": run_id,
                "source_map_index": map_index,
            }
            for uri, extra, dag_id, task_id, run_id, map_index in _query(db, EVENTS_SQL)
        ]
        downstream_runs = [
            {"run_id": run_id, "run_type": run_type, "state": state, "asset_uri": uri}
            for run_id, run_type, state, uri in _query(
                db, DOWNSTREAM_RUNS_SQL, s.ASSET_DOWNSTREAM_DAG
            )
        ]
        snapshot = AssetRuns(
            base_url=emulator.url,
            api_key=emulator.api_key,
            upstream=upstream,
            reserialize=reserialize,
            scheduler_output=scheduler_output,
            scheduler_seconds=scheduler_seconds,
            events=events,
            downstream_runs=downstream_runs,
            remote_runs={key: top_level_runs(client, key) for key in s.ASSET_CONNECTIONS},
        )
        client.close()
    print(f"upstream {upstream.wall_seconds}s, scheduler {scheduler_seconds}s")
    yield snapshot


def _asset_uri(base_url: str, key: str) -> str:
    host_and_port = base_url.split("://", 1)[1].rstrip("/")
    return f"immuta://{host_and_port}/connections/{key}"


def test_upstream_dag_ran(asset_runs: AssetRuns) -> None:
    assert asset_runs.reserialize.returncode == 0, asset_runs.reserialize.stdout[-3000:]
    run = asset_runs.upstream
    assert run.returncode == 0, run.describe()
    for task in (
        "sync_mapped_deferred[0]",
        "sync_mapped_deferred[1]",
        "sync_blocking",
        "sync_without_asset",
        "start_for_sensor",
        "sensor_poke",
    ):
        assert run.state_of(task) == "success", run.describe()


def test_each_completed_sync_emits_one_asset_event_with_the_run_and_the_count(
    asset_runs: AssetRuns,
) -> None:
    by_uri = {event["uri"]: event for event in asset_runs.events}
    # One event per waited-for sync; none for the opt-out or the sync that did not wait.
    assert len(asset_runs.events) == 3, asset_runs.events
    expected = {
        ("sync_mapped_deferred", 0, s.ASSET_MAPPED[0]),
        ("sync_mapped_deferred", 1, s.ASSET_MAPPED[1]),
        ("sync_blocking", -1, s.ASSET_BLOCKING),
    }
    for task_id, map_index, key in expected:
        event = by_uri[_asset_uri(asset_runs.base_url, key)]
        assert (event["source_dag_id"], event["source_task_id"], event["source_map_index"]) == (
            s.ASSET_DAG,
            task_id,
            map_index,
        )
        (remote,) = asset_runs.remote_runs[key]
        extra = event["extra"]
        assert extra["connection_key"] == key
        assert (extra["immuta_task_id"], extra["run_id"]) == (remote["task_id"], remote["run_id"])
        assert extra["status"] == "COMPLETED"
        assert extra["task_run_url"] == (
            f"{asset_runs.base_url}/#/connections/{key}/tasks/{remote['task_id']}"
            f"/runs/{remote['run_id']}"
        )
        # A created connection has no data objects until its first sync discovers a few.
        assert extra["data_object_count"] > 0
        assert extra["data_object_count_exact"] is True
    assert asset_runs.api_key not in json.dumps(asset_runs.events)


def test_the_scheduler_triggers_the_downstream_dag_on_the_asset_event(
    asset_runs: AssetRuns,
) -> None:
    runs = asset_runs.downstream_runs
    assert runs, asset_runs.scheduler_output[-5000:]
    (run,) = {(r["run_id"], r["run_type"]) for r in runs}
    assert run[1] in ("asset_triggered", "dataset_triggered")
    # The run was triggered by our event (and only by it: the downstream follows one connection).
    assert {r["asset_uri"] for r in runs} == {_asset_uri(asset_runs.base_url, DOWNSTREAM_KEY)}


def test_progress_lines_with_elapsed_time_and_the_immuta_link(asset_runs: AssetRuns) -> None:
    run = asset_runs.upstream
    base = asset_runs.base_url
    for key, task in (
        (s.ASSET_MAPPED[0], "sync_mapped_deferred"),  # in the triggerer
        (s.ASSET_BLOCKING, "sync_blocking"),  # in the worker
        (s.ASSET_SENSOR, "sensor_poke"),  # the sensor
    ):
        (remote,) = asset_runs.remote_runs[key]
        run_url = f"{base}/#/connections/{key}/tasks/{remote['task_id']}/runs/{remote['run_id']}"
        changes = run.lines_with(f"'{key}'", "-> COMPLETED after", run_url)
        assert changes, (task, run.describe())
        heartbeats = run.lines_with(f"'{key}'", "still RUNNING after", run_url)
        # A 3.5 s sync, a line a second at most: a few heartbeats, never one per poll (0.25 s).
        assert 1 <= len(heartbeats) <= s.ASSET_SYNC_SECONDS / s.PROGRESS_LOG_INTERVAL + 1, (
            task,
            heartbeats,
        )
    assert asset_runs.api_key not in run.output
