"""What differs between Airflow 3.x and 2.11, for every test suite (unit, integration, reliability).

Every difference between the two versions that the tests meet is decided here, on
:data:`AIRFLOW_V3`: where the DagBag and the XCom table live, how the extra links are read back,
what the triggerer does with a trigger's kwargs, the connection class, the secrets masker, the
authoring imports a DAG file starts with, and how ``dag.test()`` prints its logs.
Airflow itself is only imported inside the functions, in whichever process needs it (the pytest
process or a ``dag.test()`` child), so importing this module stays cheap.
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

AIRFLOW_VERSION = version("apache-airflow")
AIRFLOW_V3 = int(AIRFLOW_VERSION.split(".")[0]) >= 3
"""True on Airflow 3.x, False on 2.11: the one switch of the test set-up."""


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


def dag_bag(dag_file: Path) -> Any:
    """A DagBag of one DAG file, parsed the way the DAG processor parses it."""
    import inspect

    try:
        from airflow.dag_processing.dagbag import DagBag  # 3.2+
    except ImportError:
        from airflow.models.dagbag import DagBag  # 2.11-3.1

    # 2.11-3.2 would also load their example DAGs unless told not to (the child env says so too);
    # 3.3 has no such option.
    if "include_examples" in inspect.signature(DagBag).parameters:
        return DagBag(dag_folder=str(dag_file), include_examples=False)
    return DagBag(dag_folder=str(dag_file))


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
        try:
            from airflow.sdk.serde import deserialize, serialize  # 3.2+
        except ImportError:
            from airflow.serialization.serde import deserialize, serialize  # 3.0-3.1

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

        if hasattr(Connection, "from_json"):  # 3.1+
            return Connection.from_json(value, conn_id=conn_id)
    from airflow.models.connection import Connection as ConnectionModel  # 2.11-3.0

    return ConnectionModel.from_json(value, conn_id=conn_id)


def connection_from_uri(uri: str, conn_id: str) -> Any:
    """An Airflow ``Connection`` from the URI form of ``AIRFLOW_CONN_<ID>``."""
    if AIRFLOW_V3:
        from airflow.sdk import Connection

        if hasattr(Connection, "from_uri"):  # 3.1+
            return Connection.from_uri(uri, conn_id=conn_id)
    from airflow.models.connection import Connection as ConnectionModel  # 2.11-3.0

    return ConnectionModel(conn_id=conn_id, uri=uri)


def redact(value: str) -> str:
    """``value`` as the secrets masker of task logs prints it."""
    if AIRFLOW_V3:
        try:
            from airflow.sdk._shared.secrets_masker import redact as _redact  # 3.1+
        except ImportError:
            from airflow.sdk.execution_time.secrets_masker import redact as _redact  # 3.0
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
