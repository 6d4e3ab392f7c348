"""Run one DAG with ``dag.test()`` in this (child) process and write what happened as JSON.

    python tests/integration/dag_runner.py DAG_FILE DAG_ID RESULT_JSON

The parent (``airflow_env.py``) prepares ``AIRFLOW_HOME`` and the environment. Everything below
is plain Airflow: the DAG file is imported like the DAG processor would, ``dag.test()`` runs it
(deferred tasks run their trigger in-line through ``serialize()``), and the result is read back
from the metadata database: the run's state, every task instance and every XCom (and on
Airflow 2.11, which computes extra links on demand, every extra link).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.airflow_versions import dag_bag, extra_links, read_xcoms, write_dag_to_db


def _load_dag(dag_file: Path, dag_id: str) -> Any:
    """Parse the DAG file the way the DAG processor does and pick the DAG."""
    bag = dag_bag(dag_file)
    if dag_id not in bag.dags:
        raise SystemExit(f"no DAG {dag_id!r} in {dag_file}; import errors: {bag.import_errors}")
    return bag.dags[dag_id]


def _collect(dag: Any, run_id: str) -> dict[str, Any]:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def name(task_id: str, map_index: int) -> str:
        return task_id if map_index < 0 else f"{task_id}[{map_index}]"

    dag_id = dag.dag_id
    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).one()
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
        tasks = {
            name(ti.task_id, ti.map_index): {
                "state": str(ti.state) if ti.state else None,
                "try_number": ti.try_number,
                "start_date": ti.start_date.isoformat() if ti.start_date else None,
                "end_date": ti.end_date.isoformat() if ti.end_date else None,
            }
            for ti in tis
        }
        xcom: dict[str, dict[str, Any]] = {}
        for task_id, map_index, key, value in read_xcoms(session, dag_id, run_id):
            xcom.setdefault(name(task_id, map_index), {})[key] = value
        links = {
            name(task_id, map_index): urls
            for (task_id, map_index), urls in extra_links(dag, list(tis)).items()
        }
        return {
            "state": str(run.state),
            "run_id": run_id,
            "tasks": tasks,
            "xcom": xcom,
            "links": links,
        }


def main(dag_file: str, dag_id: str, result_path: str) -> int:
    dag = _load_dag(Path(dag_file), dag_id)
    write_dag_to_db(dag)
    started = time.monotonic()
    dag_run = dag.test()
    result = _collect(dag, dag_run.run_id)
    result["seconds"] = round(time.monotonic() - started, 2)
    result["finished_at"] = time.time()
    Path(result_path).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
