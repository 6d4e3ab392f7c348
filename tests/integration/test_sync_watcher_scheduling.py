"""Event-driven scheduling on Immuta syncs, in a real Airflow 3.3 with a real triggerer.

One Airflow home (SQLite, LocalExecutor) and its own processes: ``airflow api-server`` (the
Execution API the tasks talk to), ``airflow scheduler``, ``airflow dag-processor`` and
``airflow triggerer``; the emulator over HTTP on 127.0.0.1. The DAGs folder holds the example DAG
example_dags/immuta_on_any_sync.py (scheduled on the watched asset of ``snowflake-prod``) and
dags/watcher_upstream.py (one sync run by the provider's operator). In order:

1. a sync that ended before the watcher started does not fire (the first look);
2. a sync started directly through the emulator's API (not by Airflow) triggers the example DAG
   within poll interval + 30 s;
3. the triggerer is stopped; a second sync ends while none runs; after the restart it triggers a
   second run, and the first sync does not fire again;
4. a sync run by the operator (which emits the asset's event itself) triggers one run, not two;
5. a few quiet poll intervals later there are still exactly three runs, all successful.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from immuta_provider._compat import event_scheduling_unavailable
from immuta_provider.client import ImmutaClient
from immuta_provider.emulator.process import RunningEmulator
from tests.integration.airflow_env import AirflowEnvironment
from tests.reliability.airflow_cluster import Component, wait_until
from tests.reliability.postgres import free_port
from tests.support.airflow_homes import AIRFLOW, REPO_ROOT
from tests.support.connections import immuta_connection

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        event_scheduling_unavailable() is not None, reason=str(event_scheduling_unavailable())
    ),
]

KEY = "snowflake-prod"
POLL_INTERVAL = 3.0
DOWNSTREAM = "immuta_on_any_sync"
UPSTREAM = "immuta_watched_sync_upstream"
EXAMPLE = REPO_ROOT / "example_dags" / "immuta_on_any_sync.py"
UPSTREAM_FILE = Path(__file__).parent / "dags" / "watcher_upstream.py"
STARTUP_LIMIT = 180.0
FIRE_LIMIT = POLL_INTERVAL + 30.0  # the promise: a run within poll interval + 30 s


class Cluster:
    """The Airflow processes of one home, and read-only SQL on its SQLite database."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.db = home / "airflow.db"
        self.logs = home / "component-logs"
        self.logs.mkdir()
        self.components: dict[str, Component] = {}

    def start(self, name: str, *args: str) -> Component:
        component = Component(name, [AIRFLOW, *args], self.logs / f"{name}.log")
        component.start(self.env, self.home)
        self.components[name] = component
        return component

    def stop_all(self) -> None:
        for component in self.components.values():
            component.stop(grace=10)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        connection = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        connection.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in connection.execute(query, params)]
        except sqlite3.OperationalError as error:  # before the tables exist, or locked
            if "no such table" in str(error) or "locked" in str(error):
                return []
            raise
        finally:
            connection.close()

    def runs(self) -> list[dict[str, Any]]:
        return self.sql(
            "SELECT run_id, run_type, state, start_date FROM dag_run WHERE dag_id = ? ORDER BY id",
            (DOWNSTREAM,),
        )

    def events(self) -> list[dict[str, Any]]:
        return self.sql(
            "SELECT e.extra, e.source_dag_id, e.timestamp FROM asset_event e "
            "JOIN asset a ON a.id = e.asset_id WHERE a.uri LIKE ? ORDER BY e.id",
            (f"%/connections/{KEY}",),
        )

    def watermark(self) -> dict[str, Any] | None:
        rows = self.sql("SELECT value FROM asset_state_store WHERE key LIKE 'immuta_sync_wat%'")
        return json.loads(rows[0]["value"]) if rows else None

    def diagnostics(self) -> str:
        parts = [f"runs: {self.runs()}", f"events: {self.events()}"]
        for component in self.components.values():
            parts.append(f"--- {component.name} (alive={component.alive()}):")
            parts.append(component.log_tail(40))
        return "\n".join(parts)


@pytest.fixture
def cluster(
    airflow_env: AirflowEnvironment, emulator: RunningEmulator, tmp_path: Path
) -> Iterator[Cluster]:
    home = airflow_env.new_home("sync-watcher")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLE, dags / EXAMPLE.name)
    shutil.copy(UPSTREAM_FILE, dags / UPSTREAM_FILE.name)
    api_port = free_port()
    env = airflow_env.env(
        home,
        dags_folder=dags,
        connections={"immuta_default": immuta_connection(emulator.url, emulator.api_key)},
        extra={
            "IMMUTA_HOST": emulator.url,
            "IMMUTA_CONNECTION_KEY": KEY,
            "IMMUTA_POLL_INTERVAL": str(POLL_INTERVAL),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": "sync-watcher-test-secret-key",
            "AIRFLOW__API_AUTH__JWT_SECRET": "sync-watcher-test-jwt-secret-0123456789abcdef",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            # A task's first calls to a cold api-server can time out on a loaded machine: let
            # Airflow retry it rather than fail the run this test checks.
            "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "2",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # The copied airflow.cfg names the template home's log folder: keep ours apart.
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        },
    )
    running = Cluster(home, env)
    try:
        running.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(api_port))
        running.start("scheduler", "scheduler", "--skip-serve-logs")
        running.start("dag-processor", "dag-processor")
        running.start("triggerer", "triggerer", "--skip-serve-logs")
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as api:
            wait_until(
                "the api-server",
                lambda: api.get("/api/v2/monitor/health").status_code == 200,
                timeout=STARTUP_LIMIT,
                on_timeout=running.diagnostics,
            )
        yield running
    finally:
        running.stop_all()


def _sync_directly(client: ImmutaClient) -> tuple[str, datetime]:
    """Start a sync through the emulator's API (as Immuta's UI would) and wait for its end."""
    task_id = client.create_task(KEY).task_id

    def completed() -> datetime | None:
        (run,) = list(client.list_task_runs(KEY, task_id))
        if str(run.status) == "COMPLETED" and run.completed_at is not None:
            return run.completed_at
        return None

    return task_id, wait_until(f"sync {task_id} to complete", completed, timeout=30, interval=0.1)


def _wait_runs(cluster: Cluster, count: int, timeout: float) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        runs = cluster.runs()
        return runs if len(runs) >= count else None

    return wait_until(
        f"{count} run(s) of {DOWNSTREAM}",
        enough,
        timeout=timeout,
        interval=0.2,
        on_timeout=cluster.diagnostics,
    )


def _started(run: dict[str, Any], cluster: Cluster) -> datetime:
    """When the run started (the scheduler sets start_date as it moves it to running)."""

    def start_date() -> str | None:
        (row,) = [r for r in cluster.runs() if r["run_id"] == run["run_id"]]
        return row["start_date"] or None

    stamp = wait_until("the run to start", start_date, timeout=60, interval=0.2)
    return datetime.fromisoformat(stamp.replace(" ", "T")).astimezone()


def _payload_tasks(cluster: Cluster) -> list[tuple[str | None, str]]:
    """(source, Immuta task) of each asset event: the watcher's payload or the operator's extra."""
    found = []
    for event in cluster.events():
        extra = json.loads(event["extra"] or "{}")
        if extra.get("from_trigger"):
            found.append(("watcher", extra["payload"]["immuta_task_id"]))
        else:
            found.append((event["source_dag_id"], extra.get("immuta_task_id")))
    return found


def test_syncs_started_anywhere_trigger_one_run_each(
    cluster: Cluster, emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    test_started = time.monotonic()
    emulator.admin.set_behaviour(KEY, sync_duration=0.5)
    with ImmutaClient(emulator.url, emulator.api_key) as client:
        history, _ = _sync_directly(client)  # before any triggerer runs: must never fire

        # 1. The watcher's first look: its watermark in the asset state store.
        first_look = wait_until(
            "the watcher's first look (its watermark in the asset state store)",
            cluster.watermark,
            timeout=STARTUP_LIMIT,
            on_timeout=cluster.diagnostics,
        )
        assert history in first_look["handled"] or first_look["horizon"]
        startup = time.monotonic() - test_started
        print(f"first look after {startup:.1f}s")

        # 2. A sync started outside Airflow triggers the example DAG.
        first, first_done = _sync_directly(client)
        (run_1,) = _wait_runs(cluster, 1, FIRE_LIMIT + 30)
        delay_1 = (_started(run_1, cluster) - first_done).total_seconds()
        assert run_1["run_type"] == "asset_triggered"
        assert delay_1 <= FIRE_LIMIT, cluster.diagnostics()

        # 3. A triggerer restart with a sync ending while no triggerer runs.
        assert cluster.components["triggerer"].terminate_group(timeout=60)
        second, _ = _sync_directly(client)
        time.sleep(POLL_INTERVAL)  # nothing watches now: no run may appear
        assert len(cluster.runs()) == 1
        restarted_at = time.monotonic()
        cluster.start("triggerer", "triggerer", "--skip-serve-logs")
        runs = _wait_runs(cluster, 2, 120)
        restart_to_run = time.monotonic() - restarted_at

        # 4. A sync run by the operator: its own asset event, and the watcher skips it.
        subprocess.run(
            [AIRFLOW, "dags", "trigger", UPSTREAM],
            env=cluster.env,
            cwd=cluster.home,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        runs = _wait_runs(cluster, 3, 120)
        operator_sync = wait_until(
            "the operator's asset event",
            lambda: [t for source, t in _payload_tasks(cluster) if source == UPSTREAM],
            timeout=60,
            on_timeout=cluster.diagnostics,
        )

        # 5. Quiet intervals: nothing more fires, every run succeeds.
        time.sleep(3 * POLL_INTERVAL)

        def all_succeeded() -> list[dict[str, Any]] | None:
            runs = cluster.runs()
            return runs if all(run["state"] == "success" for run in runs) else None

        runs = wait_until(
            "the downstream runs to succeed",
            all_succeeded,
            timeout=120,
            interval=0.5,
            on_timeout=cluster.diagnostics,
        )
        total = time.monotonic() - test_started

    assert len(runs) == 3, cluster.diagnostics()
    assert all(run["run_type"] == "asset_triggered" for run in runs)
    assert _payload_tasks(cluster) == [
        ("watcher", first),
        ("watcher", second),
        (UPSTREAM, operator_sync[0]),
    ], cluster.diagnostics()
    triggerer_logs = "\n".join(
        path.read_text(errors="replace") for path in cluster.logs.glob("triggerer.log")
    )
    assert "an Airflow sync operator ran it and emits the asset event itself" in triggerer_logs
    assert emulator.api_key not in triggerer_logs
    # What the downstream task saw: the watcher's payload of the first sync.
    task_log = "\n".join(
        p.read_text(errors="replace")
        for p in (cluster.home / "logs").rglob("attempt=*.log")
        if run_1["run_id"] in str(p)
    )
    assert f"Immuta sync {first}" in task_log and "ended COMPLETED" in task_log
    with capsys.disabled():
        print(
            f"\nsync watcher: first look {startup:.1f}s after start; sync completed -> "
            f"downstream run started {delay_1:.1f}s (poll interval {POLL_INTERVAL:g}s); "
            f"triggerer restart -> run {restart_to_run:.1f}s; whole test {total:.0f}s"
        )
