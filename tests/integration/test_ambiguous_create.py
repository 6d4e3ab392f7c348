"""An ambiguous create (issue 14, item 6): the sync operator's create-task request reaches the
emulator, which creates the task, but its answer is lost (the connection dropped after the work,
or a truncated JSON body). With ``retries=0`` the task must still succeed by following the sync
Immuta started, and exactly one sync must exist. A create that never reached Immuta still fails,
saying so. A real Airflow (``dag.test()``) against its own emulator over HTTP on 127.0.0.1.

Before: both lost answers failed the task (``ImmutaTransportError`` / ``ImmutaResponseError``),
leaving a sync running in Immuta that nothing followed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.client import ImmutaClient
from immuta_provider.emulator.process import run_emulator
from tests.integration.airflow_env import AirflowEnvironment, DagRunResult
from tests.integration.dags import lost_answer_scenarios as dag
from tests.support.connections import immuta_connection

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_FILE = Path(dag.__file__)


def _task(key: str) -> str:
    return f"sync_{key.replace('-', '_')}"


def _syncs(client: ImmutaClient, key: str) -> list[Any]:
    return [
        task for task in client.list_tasks(key, type="DATA_OBJECT_SYNC") if task.parent_id is None
    ]


@pytest.fixture(scope="module")
def outcome(
    airflow_env: AirflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DagRunResult, dict[str, Any], dict[str, list[Any]]]]:
    with run_emulator(
        seed="none", sync_duration=1.0, log_dir=tmp_path_factory.mktemp("lost-answer-emulator")
    ) as emulator:
        client = ImmutaClient(emulator.url, emulator.api_key)
        keys = (dag.DROPPED_ANSWER, dag.MALFORMED_ANSWER, dag.NEVER_ARRIVED)
        for key in keys:
            client.create_connection(
                {
                    "connectionKey": key,
                    "technology": "Snowflake",
                    "clientConfiguration": {"hostname": "it.example.invalid"},
                }
            )
        assert all(_syncs(client, key) == [] for key in keys)
        tasks = "/api/connections/{}/tasks$"
        emulator.admin.add_fault(
            method="POST", path=tasks.format(dag.DROPPED_ANSWER), drop_answer=True, count=1
        )
        emulator.admin.add_fault(
            method="POST", path=tasks.format(dag.MALFORMED_ANSWER), body="malformed_json", count=1
        )
        emulator.admin.add_fault(
            method="POST", path=tasks.format(dag.NEVER_ARRIVED), drop=True, count=1
        )
        connections = {"immuta_default": immuta_connection(emulator.url, emulator.api_key)}
        result = airflow_env.start_dag(DAG_FILE, dag.DAG_ID, connections=connections).wait(240)
        counters = emulator.admin.counters()
        syncs = {key: _syncs(client, key) for key in keys}
        client.close()
        yield result, counters, syncs


@pytest.mark.parametrize("key", [dag.DROPPED_ANSWER, dag.MALFORMED_ANSWER])
def test_a_lost_create_answer_is_followed_to_success_with_one_sync(
    outcome: tuple[DagRunResult, dict[str, Any], dict[str, list[Any]]], key: str
) -> None:
    result, counters, syncs = outcome
    assert result.state_of(_task(key)) == "success", result.describe()
    # The faults fired: the create reached the emulator once and was not sent again.
    assert counters["requests"][f"POST /api/connections/{key}/tasks"] == 1
    assert len(syncs[key]) == 1, syncs[key]
    summary = result.return_value(_task(key))
    assert summary["immuta_task_id"] == syncs[key][0].task_id
    assert summary["status"] == "COMPLETED"
    assert result.lines_with("answer to the request creating a sync", f"'{key}'")
    assert result.lines_with("Following the sync Immuta started", syncs[key][0].task_id)


def test_a_create_that_never_reached_immuta_fails_saying_so(
    outcome: tuple[DagRunResult, dict[str, Any], dict[str, list[Any]]],
) -> None:
    result, counters, syncs = outcome
    assert counters["faults_by_kind"] == {"drop_answer": 1, "malformed_json": 1, "drop": 1}
    assert result.state_of(_task(dag.NEVER_ARRIVED)) == "failed"
    assert syncs[dag.NEVER_ARRIVED] == []
    assert result.lines_with(
        f"Creating a sync of Immuta connection '{dag.NEVER_ARRIVED}' got no usable answer",
        "the request did not take effect",
    ), result.describe()
