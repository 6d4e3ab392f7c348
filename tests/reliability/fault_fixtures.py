"""Helpers of the fault-matrix, secret-canary, bad-input, schema and soak tests.

Not a conftest (``tests/reliability/conftest.py`` belongs to the multi-process tests): the test
modules import what they use from here.

* :func:`immuta_connection` / :func:`airflow_connection`: an ``immuta`` Airflow connection as the
  ``AIRFLOW_CONN_<ID>`` environment variable users set in containers (real Airflow reads it).
* :class:`DagTests`: ``dag.test()`` of one DAG file in a child process with its own migrated
  ``AIRFLOW_HOME`` (SQLite). The metadata database is migrated once per session and copied for
  each run; the child's output (the task logs), its metadata database and a raw, unmasked DEBUG
  log of the HTTP and provider loggers are handed back for the tests to read.
* :func:`report`: a section of text printed in pytest's terminal summary (the fault matrix, the
  soak figures, the canary scan), so the figures are visible with or without ``-s``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FAULT_DAGS = Path(__file__).with_name("fault_dags")
DAG_RUNNER = Path(__file__).with_name("fault_dag_runner.py")
AIRFLOW = str(Path(sys.executable).parent / "airflow")


# --------------------------------------------------------------------------- Airflow connections


def immuta_connection(url: str, api_key: str, **extra: Any) -> str:
    """An ``immuta`` Airflow connection in the JSON form of ``AIRFLOW_CONN_<ID>``."""
    conn: dict[str, Any] = {"conn_type": "immuta", "host": url, "password": api_key}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


@contextmanager
def airflow_connection(conn_id: str, value: str) -> Iterator[None]:
    """Define an Airflow connection for this process (``AIRFLOW_CONN_<ID>``) while in the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        yield


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
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        result = DagTestResult(
            dag_id=self.dag_id,
            home=self.home,
            returncode=self.process.returncode,
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


class DagTests:
    """Airflow homes for ``dag.test()`` children: one migrated template, a copy per run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template"
        self._lock = threading.Lock()
        self._migrated = False
        self._runs = 0

    def env(
        self, home: Path, connections: Mapping[str, str], extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The whole environment of an Airflow child: nothing of this process's Airflow set-up."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(FAULT_DAGS),
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")])
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for conn_id, value in connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        env.update(extra or {})
        return env

    def migrate(self) -> None:
        """``airflow db migrate`` into the template home, once."""
        with self._lock:
            if self._migrated:
                return
            self.template.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                [AIRFLOW, "db", "migrate"],
                env=self.env(self.template, {}),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"airflow db migrate failed:\n{done.stdout}\n{done.stderr}")
            self._migrated = True

    def start(
        self,
        dag_file: str,
        dag_id: str,
        *,
        connections: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
    ) -> RunningDagTest:
        """Start ``dag.test()`` of ``dag_id`` from ``fault_dags/<dag_file>`` in a child process."""
        self.migrate()
        with self._lock:
            self._runs += 1
            home = self.root / f"{dag_id}-{self._runs}"
        shutil.copytree(self.template, home)
        with (home / "dag-test.log").open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(DAG_RUNNER),
                    str(FAULT_DAGS / dag_file),
                    dag_id,
                    str(home / "debug.log"),
                ],
                env=self.env(home, connections, extra_env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
            )
        return RunningDagTest(dag_id, home, process)


_DAG_TESTS: dict[str, DagTests] = {}


@pytest.fixture(scope="session")
def dag_tests(tmp_path_factory: pytest.TempPathFactory) -> DagTests:
    """The session's :class:`DagTests` (one migration per session, whichever module asks first).

    Test modules import this fixture; each import registers its own fixture definition, so the
    instance itself is cached here to keep it to one migration.
    """
    if "session" not in _DAG_TESTS:
        _DAG_TESTS["session"] = DagTests(tmp_path_factory.mktemp("fault-airflow"))
    return _DAG_TESTS["session"]


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
