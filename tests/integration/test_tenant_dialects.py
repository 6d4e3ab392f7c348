"""A tenant that differs from API-NOTES.md in every guessed respect (tests/dialects), end to end:

* ``immuta-doctor`` (the real command, over real HTTP) exits 0 against the emulator's default and
  1 against each dialect, naming the status names and the envelope it saw, and suggesting the
  connection extras.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.emulator.dialect import Dialect
from immuta_provider.emulator.process import RunningEmulator
from tests.integration.airflow_env import AirflowEnvironment, DagRunResult
from tests.support.airflow_homes import REPO_ROOT
from tests.support.connections import immuta_connection

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIALECTS = REPO_ROOT / "tests" / "dialects"
DIALECT_FILES = sorted(DIALECTS.glob("*.json"))
NIGHTLY_DAG = REPO_ROOT / "example_dags" / "immuta_nightly_sync.py"
RUN_TIMEOUT = 600.0
FAST = {"IMMUTA_SYNC_POLL_INTERVAL": "0.25", "IMMUTA_SYNC_RETRY_DELAY": "0"}
ACTIVE = ["snowflake-prod", "databricks-analytics"]


@dataclass
class Doctor:
    """One ``immuta-doctor`` run: exit status, terminal output, JSON report."""

    returncode: int
    output: str
    report: dict[str, Any]

    def check(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(c for c in self.report["checks"] if c["name"] == name)
        return found


def run_doctor(emulator: RunningEmulator, tmp_path: Path) -> Doctor:
    """``python -m immuta_provider.doctor --url ... --json ...`` with the key in the environment."""
    report = tmp_path / f"doctor-{os.getpid()}-{len(list(tmp_path.iterdir()))}.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "immuta_provider.doctor",
            "--url",
            emulator.url,
            "--json",
            str(report),
        ],
        env={**os.environ, "IMMUTA_API_KEY": emulator.api_key},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert emulator.api_key not in output + report.read_text()
    return Doctor(done.returncode, output, json.loads(report.read_text()))


@dataclass
class DialectTenant:
    """Two emulators speaking one dialect (one per nightly DAG run) and the doctor's findings."""

    dialect: Dialect
    doctor: Doctor
    emulators: dict[str, RunningEmulator]


@pytest.fixture(scope="module")
def tenants(
    start_emulator: Callable[..., RunningEmulator], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, DialectTenant]:
    """Per dialect file: its emulators, and immuta-doctor run against the first."""
    scratch = tmp_path_factory.mktemp("dialects")
    found = {}
    for path in DIALECT_FILES:
        emulators = {variant: start_emulator(dialect=path) for variant in ("with", "without")}
        found[path.stem] = DialectTenant(
            Dialect.load(path), run_doctor(emulators["with"], scratch), emulators
        )
    return found


@pytest.fixture(scope="module")
def nightly_runs(
    airflow_env: AirflowEnvironment, tenants: dict[str, DialectTenant]
) -> dict[tuple[str, str], DagRunResult]:
    """The nightly DAG against each dialect, with the doctor's extras and without, in parallel."""
    started = {}
    for name, tenant in tenants.items():
        for variant, emulator in tenant.emulators.items():
            extras = tenant.doctor.report["suggested_extras"] if variant == "with" else {}
            started[name, variant] = airflow_env.start_dag(
                NIGHTLY_DAG,
                "immuta_nightly_sync",
                connections={
                    "immuta_default": immuta_connection(emulator.url, emulator.api_key, **extras)
                },
                extra_env=FAST,
            )
    return {key: dag.wait(RUN_TIMEOUT) for key, dag in started.items()}


# --- the doctor -------------------------------------------------------------------------------


def test_doctor_exits_0_against_the_default_emulator(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    assert emulator.access_log is not None
    seen_before = len(emulator.access_log.read_text().splitlines())
    doctor = run_doctor(emulator, tmp_path)
    assert doctor.returncode == 0, doctor.output
    assert doctor.report["suggested_extras"] == {}
    assert {c["result"] for c in doctor.report["checks"]} == {"ok"}, doctor.output
    assert "the provider fits this tenant (exit 0)" in doctor.output
    # Read-only: GETs and the data object search, nothing created, validated or cancelled.
    assert emulator.admin.counters()["tasks_created"] == {}
    requests = [
        line.split('"')[1].split()[:2]
        for line in emulator.access_log.read_text().splitlines()[seen_before:]
        if "/api/" in line or "/bim/" in line
    ]
    assert len(requests) > 20
    assert {(method, path) for method, path in requests if method != "GET"} == {
        ("POST", "/api/connections/dataObjects/_search"),
        ("POST", "/bim/apikey/authenticate"),
    }


@pytest.mark.parametrize("name", [path.stem for path in DIALECT_FILES])
def test_doctor_exits_1_naming_what_differs_and_suggesting_the_extras(
    tenants: dict[str, DialectTenant], name: str
) -> None:
    doctor, dialect = tenants[name].doctor, tenants[name].dialect
    assert doctor.returncode == 1, doctor.output
    succeeded, failed = dialect.status_out("COMPLETED"), dialect.status_out("FAILED")
    statuses = doctor.check("run statuses")
    assert statuses["result"] == "fail"
    assert f"{succeeded} (" in statuses["detail"] and f"{failed} (" in statuses["detail"]
    assert "success_statuses" in statuses["advice"]
    assert doctor.report["suggested_extras"] == {
        "success_statuses": ["COMPLETED", succeeded],
        "failure_statuses": ["FAILED", "CANCELED", failed],
    }
    for listing in ("list_connections", "list_tasks", "list_task_runs", "search_data_objects"):
        envelope = doctor.check(f"list envelope: {listing}")
        assert envelope["result"] == "warn", envelope
        assert f"items under {dialect.items_key!r}, next cursor at nextCursor" in envelope["detail"]
    assert (
        "FAIL" in doctor.output and "something the provider relies on would break" in doctor.output
    )


def test_doctor_names_the_auth_methods_of_a_dialect_with_exchange_only(
    start_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = start_emulator(dialect=DIALECT_FILES[0], auth="exchange-only")
    doctor = run_doctor(emulator, tmp_path)
    assert doctor.returncode == 1, doctor.output  # the dialect's statuses
    auth = doctor.check("authentication")
    assert auth["result"] == "ok", auth
    assert "works: exchange; refused: bearer-key (HTTP 401), raw-key (HTTP 401)" in auth["detail"]
    assert "auth_method" not in doctor.report["suggested_extras"]
    assert doctor.check("run statuses")["result"] == "fail"


# --- the nightly example DAG ------------------------------------------------------------------


@pytest.mark.parametrize("name", [path.stem for path in DIALECT_FILES])
def test_nightly_dag_succeeds_with_the_suggested_extras(
    nightly_runs: dict[tuple[str, str], DagRunResult], name: str
) -> None:
    run = nightly_runs[name, "with"]
    assert run.state == "success", run.describe()
    assert sorted(run.return_value("list_active_connections")) == sorted(ACTIVE)
    summary = run.return_value("summarize")
    assert sorted(summary["synced"]) == sorted(ACTIVE) and summary["failed"] == []
    for index in range(len(ACTIVE)):
        assert run.state_of(f"sync_data_objects[{index}]") == "success"
        assert run.tasks[f"sync_data_objects[{index}]"]["try_number"] == 1
    for key in ACTIVE:
        assert summary["data_objects_after"][key] > summary["data_objects_before"][key] > 0


@pytest.mark.parametrize("name", [path.stem for path in DIALECT_FILES])
def test_nightly_dag_without_the_extras_fails_fast_naming_the_status_and_the_extras(
    tenants: dict[str, DialectTenant],
    nightly_runs: dict[tuple[str, str], DagRunResult],
    name: str,
) -> None:
    run = nightly_runs[name, "without"]
    succeeded = tenants[name].dialect.status_out("COMPLETED")
    assert run.state == "failed", run.describe()
    for index in range(len(ACTIVE)):
        task = run.tasks[f"sync_data_objects[{index}]"]
        assert task["state"] == "failed", run.describe()
        # Each try ends as soon as its run has (1 s syncs, polled every 0.25 s): never a wait.
        seconds = (
            datetime.fromisoformat(task["end_date"]) - datetime.fromisoformat(task["start_date"])
        ).total_seconds()
        assert seconds < 30, (index, seconds)
    lines = run.lines_with(f"ended with the status {succeeded!r}", "success_statuses")
    assert lines, run.describe()
    assert run.return_value("summarize") is None
