"""Run one DAG with ``dag.test()`` in this (child) process.

    python tests/reliability/fault_dag_runner.py DAG_FILE DAG_ID DEBUG_LOG

``fault_fixtures.DagTests`` prepares ``AIRFLOW_HOME`` and the environment and reads the results
back from the metadata database. Besides what Airflow prints (the task logs, on stdout), the HTTP
client loggers (``httpx``, ``httpcore``) and the provider's loggers are written at DEBUG to
``DEBUG_LOG`` through a plain handler that Airflow's secrets masker does not touch: whatever our
code or httpx logs reaches that file exactly as it was logged.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

RAW_LOGGERS = ("httpx", "httpcore", "immuta_provider")


def _raw_debug_handler(path: str) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def _attach(handler: logging.Handler) -> None:
    for name in RAW_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        if handler not in logger.handlers:
            logger.addHandler(handler)


def _load_dag(dag_file: Path, dag_id: str) -> Any:
    from airflow.sdk import DAG

    spec = importlib.util.spec_from_file_location(f"fault_dag_{dag_file.stem}", dag_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for value in vars(module).values():
        if isinstance(value, DAG) and value.dag_id == dag_id:
            return value
    raise SystemExit(f"no DAG {dag_id!r} in {dag_file}")


def main(dag_file: str, dag_id: str, debug_log: str) -> int:
    handler = _raw_debug_handler(debug_log)
    _attach(handler)
    dag = _load_dag(Path(dag_file), dag_id)
    # Loading the DAG imports Airflow, which configures logging: attach again in case it was reset.
    _attach(handler)
    dag_run = dag.test()
    handler.flush()
    print(f"[fault_dag_runner] {dag_id} finished: {dag_run.state}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
