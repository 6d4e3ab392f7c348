"""A real Airflow (``dag.test()`` in a child process) against an emulator that accepts exchanged
tokens only (``--auth exchange-only``) and lets each live ``TOKEN_TTL`` seconds: a deferred sync
and a blocking sync, each waiting longer than three token lifetimes, succeed; the provider
exchanges about once per token lifetime and never meets an expired token; no issued token
appears in the task logs or XComs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.emulator.process import RunningEmulator, run_emulator
from tests.integration.airflow_env import AirflowEnvironment, DagRunResult
from tests.support.connections import immuta_connection

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_FILE = Path(__file__).parent / "dags" / "token_scenarios.py"
DAG_ID = "immuta_token_lifetimes"
TOKEN_TTL = 3.0
SYNC_SECONDS = 3.5 * TOKEN_TTL  # each wait outlives three token lifetimes
RUN_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def token_run(
    airflow_env: AirflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DagRunResult, dict[str, Any], list[str]]]:
    with run_emulator(
        seed="demo",
        sync_duration=SYNC_SECONDS,
        auth="exchange-only",
        token_ttl=TOKEN_TTL,
        log_dir=tmp_path_factory.mktemp("token-emulator"),
    ) as emulator:
        result = _run(airflow_env, emulator)
        yield result, emulator.admin.counters(), emulator.admin.tokens()


def _run(airflow_env: AirflowEnvironment, emulator: RunningEmulator) -> DagRunResult:
    connections = {"immuta_default": immuta_connection(emulator.url, emulator.api_key)}
    return airflow_env.start_dag(DAG_FILE, DAG_ID, connections=connections).wait(RUN_TIMEOUT)


def test_syncs_outliving_three_token_lifetimes_succeed(
    token_run: tuple[DagRunResult, dict[str, Any], list[str]],
) -> None:
    run, counters, _ = token_run
    assert run.state == "success", run.describe()
    for task in ("sync_deferred_through_token_expiries", "sync_blocking_through_token_expiries"):
        assert run.state_of(task) == "success", run.describe()
        assert run.return_value(task)["status"] == "COMPLETED"
    # Each sync polled until its run ended, SYNC_SECONDS after it started.
    assert counters["tasks_created"] == {"snowflake-prod": 2}


def test_about_one_exchange_per_token_lifetime_and_no_expired_token_sent(
    token_run: tuple[DagRunResult, dict[str, Any], list[str]],
) -> None:
    run, counters, tokens = token_run
    auth = counters["auth"]
    lifetimes = 2 * SYNC_SECONDS / TOKEN_TTL  # two syncs, one after the other
    print(
        f"token lifetimes waited: {lifetimes:.1f}, exchanges: {auth['exchanges']}, "
        f"401s: {auth['unauthorized']}, wall: {run.wall_seconds}s"
    )
    # The key itself is never sent to /api/, and the tokens are renewed before they expire.
    assert auth["unauthorized"].get("key_not_accepted", 0) == 0
    assert auth["unauthorized"].get("expired_token", 0) == 0
    assert auth["exchanges"] == len(tokens)
    # At least one token per lifetime waited (renewals happened); at most a few more: one per
    # client (the operator's, the trigger's) plus the renewals 10 % early.
    assert lifetimes <= auth["exchanges"] <= lifetimes * 1.25 + 4


def test_no_token_in_the_task_logs_or_xcom(
    token_run: tuple[DagRunResult, dict[str, Any], list[str]],
) -> None:
    run, _, tokens = token_run
    assert tokens
    everything = run.output + repr(run.xcom)
    for token in tokens:
        assert token not in everything
