"""The nightly example DAG, run by a suite beside its own DAGs against an emulator of its own.

Both the integration suite and the version suite check that the example users copy first runs
on their Airflow; this is the one place that starts it and reads what it left in Immuta.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from immuta_provider.client import ImmutaClient
from immuta_provider.emulator.process import RunningEmulator, run_emulator
from tests.support.airflow_homes import REPO_ROOT
from tests.support.connections import immuta_connection

if TYPE_CHECKING:
    from tests.integration.airflow_env import AirflowEnvironment, DagRunResult, RunningDag

NIGHTLY_DAG = REPO_ROOT / "example_dags" / "immuta_nightly_sync.py"
NIGHTLY_DAG_ID = "immuta_nightly_sync"
# The demo seed's connections the nightly DAG looks at (snowflake-legacy is UNHEALTHY: skipped).
NIGHTLY_KEYS = ("snowflake-prod", "databricks-analytics", "snowflake-legacy")


def top_level_runs(client: ImmutaClient, key: str) -> list[dict[str, Any]]:
    """Every run of every top-level sync task of a connection, oldest first."""
    runs = []
    for task in client.list_tasks(key, type="DATA_OBJECT_SYNC"):
        if task.parent_id is None:
            for run in client.list_task_runs(key, task.task_id):
                runs.append({"task_id": task.task_id, **run.model_dump(mode="json")})
    return sorted(runs, key=lambda run: run["created_at"] or "")


class NightlyDag:
    """The nightly DAG's ``dag.test()`` child; after :meth:`wait`, what it did in Immuta."""

    def __init__(self, emulator: RunningEmulator, running: RunningDag) -> None:
        self.emulator = emulator
        self._running = running
        self.runs: dict[str, list[dict[str, Any]]] = {}
        self.tasks_created: dict[str, int] = {}

    def wait(self, timeout: float) -> DagRunResult:
        """Wait for the DAG run to end; return its result and read the emulator's state."""
        result = self._running.wait(timeout)
        with ImmutaClient(self.emulator.url, self.emulator.api_key) as client:
            self.runs = {key: top_level_runs(client, key) for key in NIGHTLY_KEYS}
        self.tasks_created = dict(self.emulator.admin.counters()["tasks_created"])
        return result


@contextmanager
def nightly_dag_started(
    airflow: AirflowEnvironment, log_dir: Path, *, extra_env: Mapping[str, str] | None = None
) -> Iterator[NightlyDag]:
    """Start the nightly DAG against a fresh demo emulator, stopped when the block ends."""
    with run_emulator(seed="demo", sync_duration=1.0, log_dir=log_dir) as emulator:
        running = airflow.start_dag(
            NIGHTLY_DAG,
            NIGHTLY_DAG_ID,
            connections={"immuta_default": immuta_connection(emulator.url, emulator.api_key)},
            extra_env=extra_env,
        )
        yield NightlyDag(emulator, running)
