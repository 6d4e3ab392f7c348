"""``dag.test()`` runs of the integration tests, each in a child process with its own Airflow home.

The homes come from :class:`tests.support.airflow_homes.AirflowHomes` (migrated once per session,
copied for each run); :data:`DAG_RUNNER` runs the DAG in the child and writes what it did back as
JSON. The Immuta connection is passed the way users pass it in containers: an
``AIRFLOW_CONN_<ID>`` environment variable in JSON form
(:func:`tests.support.connections.immuta_connection`).

The suite runs on Airflow 3.x and on 2.11 (``make test-airflow-2.11``); what differs between the
two is decided in :mod:`tests.support.airflow_versions`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.airflow_homes import AIRFLOW, AirflowHomes, wait_or_kill
from tests.support.airflow_versions import AIRFLOW_V3, log_lines

DAG_RUNNER = Path(__file__).with_name("dag_runner.py")


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
    links: dict[str, dict[str, str]] = field(default_factory=dict)

    def state_of(self, task: str) -> str | None:
        """The final state of a task instance (``task`` or ``task[map_index]``)."""
        return self.tasks.get(task, {}).get("state")

    def return_value(self, task: str) -> Any:
        """The task's ``return_value`` XCom."""
        return self.xcom.get(task, {}).get("return_value")

    def link(self, task: str, link_class: str) -> str | None:
        """The URL of the task's extra link ``link_class`` (a class name), as the UI shows it."""
        if AIRFLOW_V3:
            url: str | None = self.xcom.get(task, {}).get(f"_link_{link_class}")
            return url
        return self.links.get(task, {}).get(link_class)

    def lines_with(self, *needles: str) -> list[str]:
        """Log lines containing every one of ``needles`` (each log record counted once; see
        :func:`log_lines`). Checks that something never appears use :attr:`output`."""
        return [line for line in log_lines(self.output) if all(n in line for n in needles)]

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
        run = DagRunResult(
            dag_id=self.dag_id,
            returncode=wait_or_kill(self.process, timeout),
            output=self.log.read_text(errors="replace"),
            wall_seconds=round(time.time() - self.started, 1),
        )
        if self.result.exists():
            data = json.loads(self.result.read_text())
            run.state, run.tasks, run.xcom = data["state"], data["tasks"], data["xcom"]
            run.links = data.get("links", {})
            if not AIRFLOW_V3:
                _start_dates_from_the_log(run)
            # Start of the process to the end of dag.test(), whenever wait() is called.
            run.wall_seconds = round(data["finished_at"] - self.started, 1)
        return run


class AirflowEnvironment(AirflowHomes):
    """Airflow homes under ``root`` for ``dag.test()`` children and ``airflow`` CLI commands.

    :param root: A scratch directory for this session.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root, settings={"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"})

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


_DAG_TEST_START = re.compile(
    r"^\[(?P<at>[^\]]+)\] \{dag\.py:\d+\} INFO - \[DAG TEST\] starting "
    r"task_id=(?P<task>\S+) map_index=(?P<map_index>-?\d+)"
)


def _start_dates_from_the_log(run: DagRunResult) -> None:
    """Fill in the task start dates that 2.11's ``dag.test()`` leaves empty.

    2.11 runs each task without the state checks that set ``start_date``, but logs
    ``[DAG TEST] starting task_id=... map_index=...`` when it starts one: the first such record
    of a task is its start.
    """
    for line in log_lines(run.output):
        found = _DAG_TEST_START.match(line)
        if found is None:
            continue
        index = int(found["map_index"])
        name = found["task"] if index < 0 else f"{found['task']}[{index}]"
        info = run.tasks.get(name)
        if info is not None and info.get("start_date") is None:
            at = datetime.strptime(found["at"], "%Y-%m-%dT%H:%M:%S.%f%z")
            info["start_date"] = at.isoformat()
