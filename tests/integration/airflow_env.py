"""A throw-away Airflow installation for the integration tests, run in child processes.

The metadata database is migrated once per session into a template ``AIRFLOW_HOME`` (SQLite,
no example DAGs). Each DAG run gets its own copy of that home, so several ``dag.test()`` runs
can go at the same time (SQLite does not like concurrent writers), and each runs in its own
process with its own, explicit environment: the pytest process's Airflow configuration (or lack
of one) never leaks in, and nothing of Airflow is mocked.

The Immuta connection is passed the way users pass it in containers: an ``AIRFLOW_CONN_<ID>``
environment variable in JSON form.

The suite runs on Airflow 3.x and on 2.11 (``make test-airflow-2.11``). Every difference between
the two that the tests meet is decided here, on :data:`AIRFLOW_V3`: where the DagBag and the XCom
table live, how the extra links are read back, what the triggerer does with a trigger's kwargs,
the connection class, the secrets masker, the authoring imports a DAG file starts with, and
what ``dag.test()`` does or leaves to the DAG processor.
Airflow itself is only imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

AIRFLOW_VERSION = version("apache-airflow")
AIRFLOW_V3 = int(AIRFLOW_VERSION.split(".")[0]) >= 3
"""True on Airflow 3.x, False on 2.11: the one switch of the test set-up."""

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
            run.links = data.get("links", {})
            if not AIRFLOW_V3:
                _start_dates_from_the_log(run)
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


# ---- what differs between Airflow 3.x and 2.11 -----------------------------------------------
# Each function imports Airflow when called, in whichever process needs it (the pytest process
# or a dag_runner child).


_RECORD_START = re.compile(r"^\[\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}[,.]\d{3}")
_DAG_TEST_TASK_COPY = re.compile(r"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\] ")
_DAG_TEST_FAILURE_COPY = re.compile(r"\{dag\.py:\d+\} ERROR - Task failed; ti=")


def log_lines(output: str) -> list[str]:
    """The lines of a ``dag.test()`` child's output, with each log record once.

    2.11's ``dag.test()`` prints every task log record twice: through the stdout handler it adds
    to the task logger (``[2026-01-01 10:00:00,123] {file.py:1} INFO - ...``) and through the
    console handler the task logger propagates to (``[2026-01-01T10:00:00.123+0000] ...``); and
    after a task fails it logs the task's traceback once more (``{dag.py:...} ERROR - Task
    failed; ti=...``). Those copies, with their continuation lines, are left out here, so a
    test can count records the same way on both versions.
    """
    if AIRFLOW_V3:
        return output.splitlines()
    kept: list[str] = []
    copy = False
    for line in output.splitlines():
        if _RECORD_START.match(line):
            copy = bool(_DAG_TEST_TASK_COPY.match(line) or _DAG_TEST_FAILURE_COPY.search(line))
        if not copy:
            kept.append(line)
    return kept


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


def dag_bag(dag_file: Path) -> Any:
    """A DagBag of one DAG file, parsed the way the DAG processor parses it."""
    if AIRFLOW_V3:
        from airflow.dag_processing.dagbag import DagBag

        return DagBag(dag_folder=str(dag_file))
    from airflow.models.dagbag import DagBag  # 2.11

    # 2.11 would also load its example DAGs unless told not to (the child env says so too).
    return DagBag(dag_folder=str(dag_file), include_examples=False)


def write_dag_to_db(dag: Any) -> None:
    """Store the DAG in the metadata database as the DAG processor does, before ``dag.test()``.

    3.x's ``dag.test()`` does this itself. 2.11's does not, and a task that emits dataset events
    through a ``DatasetAlias`` outlet then fails (2.11 attaches the event to the alias's row,
    which only the DAG processor creates).
    """
    if not AIRFLOW_V3:
        dag.sync_to_db()


def read_xcoms(session: Any, dag_id: str, run_id: str) -> list[tuple[str, int, str, Any]]:
    """Every XCom of a DAG run as ``(task_id, map_index, key, value)``, values deserialized."""
    from sqlalchemy import select

    if AIRFLOW_V3:
        from airflow.models.xcom import XComModel

        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        ).all()
        return [
            (row.task_id, row.map_index, row.key, XComModel.deserialize_value(row)) for row in rows
        ]
    from airflow.models.xcom import BaseXCom  # 2.11: the ORM deserializes the value on load

    rows = session.scalars(
        select(BaseXCom).where(BaseXCom.dag_id == dag_id, BaseXCom.run_id == run_id)
    ).all()
    return [(row.task_id, row.map_index, row.key, row.value) for row in rows]


def extra_links(dag: Any, task_instances: list[Any]) -> dict[tuple[str, int], dict[str, str]]:
    """On 2.11, each task instance's extra links, by link class name, as the 2.11 UI gets them.

    3.x stores every link's URL in the XCom ``_link_<class name>`` when the task ends, so there
    this returns nothing and :meth:`DagRunResult.link` reads the XCom. 2.11 computes a link when
    the UI asks: from the *serialized* DAG (which finds the link classes through the provider
    info's ``extra-links``), calling ``get_extra_links(ti, name)``, i.e. our ``get_link`` with a
    ``ti_key`` that reads the XCom table.
    """
    if AIRFLOW_V3:
        return {}
    from airflow.serialization.serialized_objects import SerializedDAG

    serialized = SerializedDAG.from_dict(SerializedDAG.to_dict(dag))
    links: dict[tuple[str, int], dict[str, str]] = {}
    for ti in task_instances:
        task = serialized.get_task(ti.task_id)
        for link in task.operator_extra_links:
            url = task.get_extra_links(ti, link.name)
            links.setdefault((ti.task_id, ti.map_index), {})[type(link).__name__] = url
    return links


def trigger_round_trip(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A trigger's ``serialize()`` kwargs after the trip through the metadata database.

    3.x encodes them with the SDK's serde; 2.11's ``Trigger`` row encodes them with
    ``BaseSerialization`` (and Fernet, when a key is set) and decodes them in the triggerer.
    """
    if AIRFLOW_V3:
        from airflow.sdk.serde import deserialize, serialize

        decoded: dict[str, Any] = deserialize(serialize(kwargs))
        return decoded
    from airflow.models.trigger import Trigger  # 2.11

    row = Trigger(classpath="unused.Trigger", kwargs=kwargs)
    stored: dict[str, Any] = row.kwargs
    return stored


def connection_from_json(value: str, conn_id: str) -> Any:
    """An Airflow ``Connection`` from the JSON form of ``AIRFLOW_CONN_<ID>``."""
    if AIRFLOW_V3:
        from airflow.sdk import Connection

        return Connection.from_json(value, conn_id=conn_id)
    from airflow.models.connection import Connection as ConnectionModel  # 2.11

    return ConnectionModel.from_json(value, conn_id=conn_id)


def connection_from_uri(uri: str, conn_id: str) -> Any:
    """An Airflow ``Connection`` from the URI form of ``AIRFLOW_CONN_<ID>``."""
    if AIRFLOW_V3:
        from airflow.sdk import Connection

        return Connection.from_uri(uri, conn_id=conn_id)
    from airflow.models.connection import Connection as ConnectionModel  # 2.11

    return ConnectionModel(conn_id=conn_id, uri=uri)


def redact(value: str) -> str:
    """``value`` as the secrets masker of task logs prints it."""
    if AIRFLOW_V3:
        from airflow.sdk._shared.secrets_masker import redact as _redact
    else:
        from airflow.utils.log.secrets_masker import redact as _redact  # 2.11
    return str(_redact(value))


AUTHORING_MODULES = (
    ("airflow.sdk",)
    if AIRFLOW_V3
    else (
        "airflow.models.baseoperator",
        "airflow.models.baseoperatorlink",
        "airflow.sensors.base",
        "airflow.hooks.base",
    )
)
"""Airflow's authoring API, which a DAG file has loaded before it imports an operator: the
modules ``immuta_provider._compat`` takes its base classes from (import-cost tests)."""

AUTHORING_PREFIXES = ("airflow.sdk.bases.",) if AIRFLOW_V3 else ()
"""Airflow modules an operator module may add on top of :data:`AUTHORING_MODULES`."""

# Where each name that DAG files import from ``airflow.sdk`` lives on 2.11
# (docs/installation.md shows the same table to users).
AIRFLOW2_LOCATIONS = {
    "DAG": "airflow.models.dag",
    "Param": "airflow.models.param",
    "chain": "airflow.models.baseoperator",
    "dag": "airflow.decorators",
    "task": "airflow.decorators",
}


def authoring(name: str) -> Any:
    """One name of the authoring API (``DAG``, ``Param``, ``chain``, ``dag``, ``task``)."""
    module = "airflow.sdk" if AIRFLOW_V3 else AIRFLOW2_LOCATIONS[name]
    return getattr(importlib.import_module(module), name)


def authoring_source(code: str) -> str:
    """DAG source written for 3.x, with its ``from airflow.sdk import ...`` lines rewritten to
    the 2.11 locations on 2.11 (unchanged on 3.x)."""
    if AIRFLOW_V3:
        return code
    lines = []
    for line in code.splitlines():
        stripped = line.split("#", 1)[0].strip()
        prefix = "from airflow.sdk import "
        if stripped.startswith(prefix):
            indent = line[: len(line) - len(line.lstrip())]
            names = [n.strip() for n in stripped.removeprefix(prefix).split(",")]
            lines.extend(f"{indent}from {AIRFLOW2_LOCATIONS[n]} import {n}" for n in names if n)
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"
