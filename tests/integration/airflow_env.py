"""A throw-away Airflow 3 installation for the integration tests, run in child processes.

The metadata database is migrated once per session into a template ``AIRFLOW_HOME`` (SQLite,
no example DAGs). Each DAG run gets its own copy of that home, so several ``dag.test()`` runs
can go at the same time (SQLite does not like concurrent writers), and each runs in its own
process with its own, explicit environment: the pytest process's Airflow configuration (or lack
of one) never leaks in, and nothing of Airflow is mocked.

The Immuta connection is passed the way users pass it in containers: an ``AIRFLOW_CONN_<ID>``
environment variable in JSON form.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
DAG_RUNNER = Path(__file__).with_name("dag_runner.py")


def immuta_connection(url: str, api_key: str, **extra: Any) -> str:
    """An ``immuta`` connection in the JSON form of ``AIRFLOW_CONN_<ID>``."""
    conn: dict[str, Any] = {"conn_type": "immuta", "host": url, "password": api_key}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


@dataclass
class DagRunResult:
    """What one ``dag.test()`` child process did: states, XComs and its whole log output."""

    dag_id: str
    returncode: int
    output: str
    wall_seconds: float
    state: str | None = None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    xcom: dict[str, dict[str, Any]] = field(default_factory=dict)

    def state_of(self, task: str) -> str | None:
        """The final state of a task instance (``task`` or ``task[map_index]``)."""
        return self.tasks.get(task, {}).get("state")

    def return_value(self, task: str) -> Any:
        """The task's ``return_value`` XCom."""
        return self.xcom.get(task, {}).get("return_value")

    def lines_with(self, *needles: str) -> list[str]:
        """Output lines containing every one of ``needles``."""
        return [line for line in self.output.splitlines() if all(n in line for n in needles)]

    def describe(self) -> str:
        """A failure message with the states and the end of the log."""
        states = {task: info["state"] for task, info in self.tasks.items()}
        return (
            f"{self.dag_id}: rc={self.returncode} state={self.state} tasks={states}\n"
            + (self.output[-6000:])
        )


class RunningDag:
    """A ``dag.test()`` child process; :meth:`wait` returns its :class:`DagRunResult`."""

    def __init__(self, dag_id: str, process: subprocess.Popen[bytes], log: Path, result: Path):
        self.dag_id = dag_id
        self.process = process
        self.log = log
        self.result = result
        self.started = time.time()

    def wait(self, timeout: float) -> DagRunResult:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        run = DagRunResult(
            dag_id=self.dag_id,
            returncode=self.process.returncode,
            output=self.log.read_text(errors="replace"),
            wall_seconds=round(time.time() - self.started, 1),
        )
        if self.result.exists():
            data = json.loads(self.result.read_text())
            run.state, run.tasks, run.xcom = data["state"], data["tasks"], data["xcom"]
            # Start of the process to the end of dag.test(), whenever wait() is called.
            run.wall_seconds = round(data["finished_at"] - self.started, 1)
        return run


class AirflowEnvironment:
    """Airflow homes under ``root``: one migrated template and a copy per run.

    :param root: A scratch directory for this session.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "home-template"
        self._runs = 0

    def env(
        self,
        home: Path,
        *,
        dags_folder: Path | None = None,
        connections: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The complete environment of an Airflow child process using ``home``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or home / "dags"),
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")])
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for conn_id, value in (connections or {}).items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        env.update(extra or {})
        return env

    def migrate(self) -> float:
        """``airflow db migrate`` into the template home; returns the seconds it took."""
        self.template.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        done = subprocess.run(
            [AIRFLOW, "db", "migrate"],
            env=self.env(self.template),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout}\n{done.stderr}")
        return time.monotonic() - started

    def new_home(self, name: str) -> Path:
        """A fresh copy of the migrated template home."""
        self._runs += 1
        home = self.root / f"{name}-{self._runs}"
        shutil.copytree(self.template, home)
        return home

    def start_dag(
        self,
        dag_file: Path,
        dag_id: str,
        *,
        connections: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
    ) -> RunningDag:
        """Start ``dag.test()`` of ``dag_id`` in a child process (the DAG file's folder is
        DAGS_FOLDER, as Airflow 3 requires)."""
        home = self.new_home(dag_id)
        log, result = home / "dag-test.log", home / "result.json"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(DAG_RUNNER), str(dag_file), dag_id, str(result)],
                env=self.env(
                    home, dags_folder=dag_file.parent, connections=connections, extra=extra_env
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
            )
        return RunningDag(dag_id, process, log, result)

    def start_cli(
        self, args: list[str], *, connections: Mapping[str, str]
    ) -> subprocess.Popen[str]:
        """Start an ``airflow`` CLI command (it reads the template home, writes nothing)."""
        return subprocess.Popen(
            [AIRFLOW, *args],
            env=self.env(self.template, connections=connections),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
