"""Helpers of the fault-matrix, secret-canary, bad-input, schema and soak tests.

The test modules import what they use from here (the ``dag_tests`` fixture is in
``tests/reliability/conftest.py``; the ``immuta`` Airflow connection helpers are in
``tests/support/connections.py``).

* :class:`DagTests`: ``dag.test()`` of one DAG file in a child process with its own migrated
  ``AIRFLOW_HOME`` (SQLite, from :class:`tests.support.airflow_homes.AirflowHomes`). The metadata
  database is migrated once per session and copied for each run; the child's output (the task
  logs), its metadata database and a raw, unmasked DEBUG log of the HTTP and provider loggers are
  handed back for the tests to read.
* :func:`report`: a section of text printed in pytest's terminal summary (the fault matrix, the
  soak figures, the canary scan), so the figures are visible with or without ``-s``.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_homes import AirflowHomes, wait_or_kill

FAULT_DAGS = Path(__file__).with_name("fault_dags")
DAG_RUNNER = Path(__file__).with_name("fault_dag_runner.py")


# ------------------------------------------------------------------------------ operator steps


def start_or_attach(operator: Any) -> Any:
    """The sync operator's first step, as ``execute()`` runs it, without a task instance.

    ``execute()`` passes Airflow 3.3's ``task_state_store`` (a record of the run an earlier try
    started); without a running task there is none, as on Airflow before 3.3, so only the
    ``reuse_running_sync`` lookup can find an earlier sync.
    """
    return operator._start_or_attach(operator.hook.get_client(), None)


# ------------------------------------------------------------------------------- dag.test() runs


@dataclass
class DagTestResult:
    """What one ``dag.test()`` child process did and left behind."""

    dag_id: str
    home: Path
    returncode: int
    output: str
    debug_log: str
    wall_seconds: float
    states: dict[str, str | None] = field(default_factory=dict)
    durations: dict[str, float | None] = field(default_factory=dict)

    def task_log(self, task_id: str) -> str:
        """The output lines ``dag.test()`` printed while running ``task_id`` (its task log)."""
        lines = self.output.splitlines()
        start = re.compile(rf"\[DAG TEST\] starting task_id={re.escape(task_id)}\b")
        end = re.compile(rf"\[DAG TEST\] end task task_id={re.escape(task_id)}\b")
        picked: list[str] = []
        inside = False
        for line in lines:
            if start.search(line):
                inside = True
            if inside:
                picked.append(line)
            if inside and end.search(line):
                inside = False
        return "\n".join(picked)

    def seconds_between(self, text: str, first: str, last: str) -> float | None:
        """Seconds from the first line of ``text`` containing ``first`` to the last line
        containing ``last`` (by the ISO timestamps Airflow starts each log line with)."""
        stamps = []
        for needle, lines in ((first, text.splitlines()), (last, reversed(text.splitlines()))):
            for line in lines:
                if needle in line:
                    stamp = line.split(" ", 1)[0].rstrip("Z")
                    try:
                        stamps.append(datetime.fromisoformat(stamp))
                    except ValueError:
                        continue
                    break
        if len(stamps) != 2:
            return None
        return (stamps[1] - stamps[0]).total_seconds()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query on the run's metadata database (read-only)."""
        with sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True) as db:
            return db.execute(sql).fetchall()

    def log_files(self) -> dict[str, str]:
        """Every file under ``AIRFLOW_HOME/logs`` (task and processor logs), by relative path."""
        root = self.home / "logs"
        if not root.exists():
            return {}
        return {
            str(path.relative_to(root)): path.read_text(errors="replace")
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }

    def describe(self) -> str:
        """States and the end of the output, for assertion messages."""
        return f"{self.dag_id}: rc={self.returncode} states={self.states}\n{self.output[-5000:]}"


class RunningDagTest:
    """A started ``dag.test()`` child; :meth:`wait` collects its :class:`DagTestResult`."""

    def __init__(self, dag_id: str, home: Path, process: subprocess.Popen[bytes]) -> None:
        self.dag_id = dag_id
        self.home = home
        self.process = process
        self.started = time.monotonic()

    def wait(self, timeout: float) -> DagTestResult:
        result = DagTestResult(
            dag_id=self.dag_id,
            home=self.home,
            returncode=wait_or_kill(self.process, timeout),
            output=(self.home / "dag-test.log").read_text(errors="replace"),
            debug_log=_read(self.home / "debug.log"),
            wall_seconds=round(time.monotonic() - self.started, 1),
        )
        if (self.home / "airflow.db").exists():
            for task_id, state, duration in result.rows(
                f"SELECT task_id, state, duration FROM task_instance WHERE dag_id = '{self.dag_id}'"
            ):
                result.states[task_id] = state
                result.durations[task_id] = duration
        return result

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class DagTests(AirflowHomes):
    """Airflow homes for ``dag.test()`` children of the DAGs in ``fault_dags/``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, dags_folder=FAULT_DAGS)

    def start(
        self,
        dag_file: str,
        dag_id: str,
        *,
        connections: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
    ) -> RunningDagTest:
        """Start ``dag.test()`` of ``dag_id`` from ``fault_dags/<dag_file>`` in a child process."""
        home = self.new_home(dag_id)
        with (home / "dag-test.log").open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(DAG_RUNNER),
                    str(FAULT_DAGS / dag_file),
                    dag_id,
                    str(home / "debug.log"),
                ],
                env=self.env(home, connections=connections, extra=extra_env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
            )
        return RunningDagTest(dag_id, home, process)


# ------------------------------------------------------------------------ terminal summary report


class _SummaryReporter:
    """A pytest plugin registered at run time: prints the collected sections at the end."""

    name = "immuta-reliability-report"

    def __init__(self) -> None:
        self.sections: dict[str, list[str]] = {}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for title, lines in self.sections.items():
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)


def report(config: pytest.Config, title: str, lines: list[str]) -> None:
    """Print ``lines`` under ``title`` in the terminal summary (replacing an earlier section)."""
    reporter = config.pluginmanager.get_plugin(_SummaryReporter.name)
    if reporter is None:
        reporter = _SummaryReporter()
        config.pluginmanager.register(reporter, _SummaryReporter.name)
    reporter.sections[title] = lines


def table(header: list[str], rows: list[list[str]], max_width: int = 44) -> list[str]:
    """A plain-text table, cells cut to ``max_width`` characters."""

    def cut(text: str) -> str:
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cut(c) for c in header]] + [[cut(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return lines
