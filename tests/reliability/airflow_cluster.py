"""A real multi-process Airflow 3 on 127.0.0.1, for the reliability tests.

One PostgreSQL metadata database, LocalExecutor, and each component as its own OS process in its
own process group with its own log file: `airflow scheduler`, `airflow dag-processor`,
`airflow api-server` and two `airflow triggerer`. Heartbeats and health thresholds are shortened so
that a dead triggerer's triggers move to the survivor within seconds, and a dead worker's task is
declared lost within seconds rather than minutes.

The harness never relies on the test process's own Airflow configuration: everything it needs from
Airflow's ORM (decrypting trigger kwargs) runs in a subprocess with the cluster's environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from .postgres import PostgresServer, free_port

VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
HERE = Path(__file__).resolve().parent
DAGS_FOLDER = HERE / "dags"
INSPECT_SCRIPT = HERE / "inspect_metadata.py"

# Seconds. A triggerer heartbeats every TRIGGERER_HEARTBEAT; one silent for longer than
# TRIGGERER_HEALTH_THRESHOLD is dead and its triggers go to a live triggerer. On 2 busy cores a
# live triggerer can miss a beat or two: the threshold leaves room for that.
TRIGGERER_HEARTBEAT = 1
TRIGGERER_HEALTH_THRESHOLD = 6
# A running task whose worker stopped heartbeating for this long is failed (and retried).
TASK_HEARTBEAT_TIMEOUT = 12

T = TypeVar("T")


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # If pytest itself is killed, take the component down with it (Linux PR_SET_PDEATHSIG).
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 0.5,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Call `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
        except (httpx.HTTPError, OSError) as error:  # a component still starting up
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = on_timeout() if on_timeout else ""
            raise TimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f" (last error: {last_error!r})" if last_error else "")
                + (f"\n{detail}" if detail else "")
            )
        time.sleep(interval)


@dataclass
class Component:
    """One Airflow process (and its process group), with its log file."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    job_id: int | None = None  # the `job` row of a triggerer or scheduler, once known

    def start(self, env: Mapping[str, str], cwd: Path) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n===== starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: children die with it
                preexec_fn=die_with_parent,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_group(self) -> None:
        """SIGKILL the whole process group, as when the machine or pod under it dies."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate_group(self, timeout: float = 60.0) -> bool:
        """SIGTERM the process group, as a rolling restart does; SIGKILL it after `timeout`.

        Returns whether the leader exited by itself in time.
        """
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            return False
        return True

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
        if self.process is None:
            return
        pgid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        # The leader may be gone while its children (task runners, executor workers) are not.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class AirflowCluster:
    """Airflow's components as separate processes over one PostgreSQL database."""

    root: Path
    postgres: PostgresServer
    extra_env: Mapping[str, str] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    components: dict[str, Component] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from cryptography.fernet import Fernet

        self.home = self.root / "airflow-home"
        self.logs = self.root / "component-logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        # The outside environment must not leak an unrelated Airflow configuration in
        # (AIRFLOW_HOME, AIRFLOW_CONFIG, AIRFLOW__*, AIRFLOW_CONN_*, Airflow's internal _AIRFLOW*).
        # PYTHONPATH does pass: it is how a patched provider can be run through these tests.
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "_AIRFLOW"))
        }
        base_url = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            **base,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.sqlalchemy_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            # Also where LocalExecutor's task processes find the Execution API.
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": str(TRIGGERER_HEARTBEAT),
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_THRESHOLD),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__HIDE_SENSITIVE_VAR_CONN_FIELDS": "True",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.base_url = base_url
        self.http = httpx.Client(base_url=f"{base_url}/api/v2", timeout=30.0)

    # ---- lifecycle -------------------------------------------------------------------------

    def _component(self, name: str, *args: str) -> Component:
        component = Component(name, [AIRFLOW, *args], self.logs / f"{name}.log")
        self.components[name] = component
        return component

    def migrate(self) -> None:
        result = subprocess.run(
            [AIRFLOW, "db", "migrate"],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        (self.logs / "db-migrate.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{result.stderr[-4000:]}")

    def start(self) -> None:
        self.migrate()
        self._component(
            "api-server",
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.api_port),
            "--workers",
            "1",
        ).start(self.env, self.root)
        self._component("scheduler", "scheduler", "--skip-serve-logs").start(self.env, self.root)
        self._component("dag-processor", "dag-processor").start(self.env, self.root)
        self.start_triggerer("triggerer-1")
        self.start_triggerer("triggerer-2")
        wait_until("the api-server", self._api_ready, timeout=120, on_timeout=self.diagnostics)
        wait_until(
            "a live scheduler job",
            lambda: self._live_jobs("SchedulerJob", within=30),
            timeout=120,
            on_timeout=self.diagnostics,
        )

    def start_triggerer(self, name: str) -> Component:
        """Start a triggerer and learn its `job` id (the value of `trigger.triggerer_id`).

        Triggerers are started one at a time so that the one new TriggererJob row is this one's.
        """
        known = {row["id"] for row in self.jobs("TriggererJob")}
        component = self._component(name, "triggerer", "--skip-serve-logs")
        component.start(self.env, self.root)

        def new_job() -> int | None:
            assert component.alive(), f"{name} exited:\n{component.log_tail()}"
            fresh = [row["id"] for row in self._live_jobs("TriggererJob") if row["id"] not in known]
            return fresh[0] if len(fresh) == 1 else None

        component.job_id = wait_until(
            f"{name}'s TriggererJob row", new_job, timeout=120, on_timeout=self.diagnostics
        )
        return component

    def stop(self) -> None:
        """SIGTERM every component at once, then SIGKILL what is left (bounded, never raises)."""
        self.http.close()
        started = [c for c in self.components.values() if c.process is not None]
        for component in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(component.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for component in started:
            assert component.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for component in started:
            # Leaders that exited may leave children (task runners, executor workers) behind.
            component.stop(grace=0)

    # ---- the metadata database (read-only SQL from the test process) -------------------------

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        import psycopg2
        import psycopg2.extras

        connection = psycopg2.connect(self.postgres.dsn, connect_timeout=10)
        try:
            with connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                cursor.execute(query, params)
                return [dict(row) for row in cursor.fetchall()]
        finally:
            connection.close()

    def jobs(self, job_type: str) -> list[dict[str, Any]]:
        try:
            return self.sql(
                "SELECT id, state, hostname, start_date, end_date, latest_heartbeat "
                "FROM job WHERE job_type = %s ORDER BY id",
                (job_type,),
            )
        except Exception as error:  # the table does not exist before migrate
            if "does not exist" in str(error):
                return []
            raise

    def _live_jobs(
        self, job_type: str, within: float = TRIGGERER_HEALTH_THRESHOLD
    ) -> list[dict[str, Any]]:
        """Jobs of `job_type` that Airflow would call alive (the triggerer's own rule)."""
        return self.sql(
            "SELECT id FROM job WHERE job_type = %s AND end_date IS NULL "
            "AND latest_heartbeat > now() - make_interval(secs => %s) ORDER BY id",
            (job_type, within),
        )

    def triggers(self) -> list[dict[str, Any]]:
        """Every `trigger` row with its kwargs decrypted by Airflow's own ORM and Fernet key."""
        result = subprocess.run(
            [sys.executable, str(INSPECT_SCRIPT)],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"reading the trigger table failed:\n{result.stderr[-3000:]}")
        return list(json.loads(result.stdout.strip().splitlines()[-1]))

    # ---- the REST API -----------------------------------------------------------------------

    def _api_ready(self) -> bool:
        return self.http.get("/monitor/health").status_code == 200

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the dag-processor has serialized `dag_id`, then make sure it is unpaused."""

        def parsed() -> bool:
            response = self.http.get(f"/dags/{dag_id}")
            return response.status_code == 200

        wait_until(
            f"DAG {dag_id} to be parsed", parsed, timeout=timeout, on_timeout=self.diagnostics
        )
        response = self.http.patch(f"/dags/{dag_id}", json={"is_paused": False})
        response.raise_for_status()

    def trigger_dag(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        run_id = f"reliability__{uuid.uuid4().hex[:12]}"
        response = self.http.post(
            f"/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": dict(conf or {})},
        )
        response.raise_for_status()
        return run_id

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        response = self.http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        response.raise_for_status()
        return dict(response.json())

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: set[str],
        timeout: float,
        *,
        interval: float = 0.5,
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            ti = self.task_instance(dag_id, run_id, task_id)
            return ti if ti.get("state") in states else None

        return wait_until(
            f"{dag_id}.{task_id} in {sorted(states)}",
            probe,
            timeout=timeout,
            interval=interval,
            on_timeout=lambda: self._task_diagnostics(dag_id, run_id, task_id),
        )

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        response = self.http.patch(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
            json={"new_state": state},
        )
        response.raise_for_status()

    def _task_log_folder(self, dag_id: str, run_id: str, task_id: str) -> Path:
        return self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The task's own log for one try (LocalExecutor writes under AIRFLOW_HOME/logs)."""
        path = self._task_log_folder(dag_id, run_id, task_id) / f"attempt={try_number}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def trigger_logs(
        self, dag_id: str, run_id: str, task_id: str, try_number: int
    ) -> dict[int, str]:
        """What each triggerer logged while running the task's trigger, by triggerer job id."""
        folder = self._task_log_folder(dag_id, run_id, task_id)
        logs = {}
        for path in folder.glob(f"attempt={try_number}.log.trigger.*.log"):
            job_id = path.name.rsplit(".", 2)[-2]
            if job_id.isdigit():
                logs[int(job_id)] = path.read_text(errors="replace")
        return logs

    # ---- diagnostics for failing waits --------------------------------------------------------

    def _task_diagnostics(self, dag_id: str, run_id: str, task_id: str) -> str:
        parts = []
        with contextlib.suppress(Exception):
            parts.append(f"task instance: {self.task_instance(dag_id, run_id, task_id)}")
        parts.append(self.diagnostics())
        return "\n".join(parts)

    def diagnostics(self) -> str:
        parts = []
        for component in self.components.values():
            state = (
                "alive"
                if component.alive()
                else f"exited {component.process and component.process.returncode}"
            )
            parts.append(f"--- {component.name} ({state}), last lines of {component.log_path}:")
            parts.append(component.log_tail(25))
        return "\n".join(parts)


@contextlib.contextmanager
def running_cluster(
    root: Path, postgres: PostgresServer, extra_env: Mapping[str, str]
) -> Iterator[AirflowCluster]:
    cluster = AirflowCluster(root=root, postgres=postgres, extra_env=extra_env)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
