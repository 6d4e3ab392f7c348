"""RunWatch: the waiting rules shared by the sync operator, the sensor and the trigger."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest

from immuta_provider._task_runs import (
    ERROR,
    FAILURE,
    SUCCESS,
    TIMEOUT,
    RunWatch,
    format_elapsed,
    latest_run,
    run_summary,
)
from immuta_provider.client.errors import (
    ImmutaAuthenticationError,
    ImmutaRateLimitError,
    ImmutaServerError,
    ImmutaTimeoutError,
)
from immuta_provider.client.models import TaskRun

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
TASK = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"
RUN = "6f1d1e2a-3b4c-4d5e-8f60-718293a4b5c6"


def run(status: str, **fields: object) -> TaskRun:
    return TaskRun.model_validate({"runId": RUN, "taskId": TASK, "status": status, **fields})


def watch(caplog: pytest.LogCaptureFixture, **kwargs: object) -> RunWatch:
    caplog.set_level(logging.INFO, logger="test.watch")
    params: dict[str, object] = {
        "connection_key": "snowflake-prod",
        "immuta_task_id": TASK,
        "run_id": RUN,
        "logger": logging.getLogger("test.watch"),
    }
    params.update(kwargs)
    return RunWatch(**params)  # type: ignore[arg-type]


def test_status_changes_are_logged_once_each_with_elapsed_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = watch(caplog, started_at=time.time() - 65)
    assert w.observe_run(run("PENDING")) is None
    assert w.observe_run(run("PENDING")) is None
    assert w.observe_run(run("RUNNING")) is None
    changes = [r.getMessage() for r in caplog.records if "->" in r.getMessage()]
    assert len(changes) == 2
    assert "(start) -> PENDING after 1m 05s" in changes[0]
    assert "PENDING -> RUNNING" in changes[1]


def test_completed_run_is_a_success_with_a_json_safe_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = watch(caplog)
    outcome = w.observe_run(
        run(
            "COMPLETED",
            createdAt=T0.isoformat(),
            startedAt=(T0 + timedelta(seconds=1)).isoformat(),
            completedAt=(T0 + timedelta(seconds=4.5)).isoformat(),
        )
    )
    assert outcome is not None
    assert outcome["status"] == SUCCESS
    assert outcome["run"] == {
        "connection_key": "snowflake-prod",
        "immuta_task_id": TASK,
        "run_id": RUN,
        "status": "COMPLETED",
        "created_at": "2026-11-25T02:00:00+00:00",
        "started_at": "2026-11-25T02:00:01+00:00",
        "completed_at": "2026-11-25T02:00:04.500000+00:00",
        "duration_seconds": 3.5,
    }
    assert json.loads(json.dumps(outcome)) == outcome


def test_failed_run_carries_immutas_error_code_and_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome = watch(caplog).observe_run(
        run("FAILED", error={"code": "CONNECTION_AUTH_FAILED", "message": "bad password"})
    )
    assert outcome is not None
    assert outcome["status"] == FAILURE
    assert outcome["error_code"] == "CONNECTION_AUTH_FAILED"
    assert "[CONNECTION_AUTH_FAILED] bad password" in outcome["message"]


def test_canceled_run_says_who_cancelled_or_that_it_is_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    by_alice = watch(caplog).observe_run(run("CANCELED", canceledBy="alice@acme.com"))
    assert by_alice is not None and "canceled by alice@acme.com" in by_alice["message"]
    unknown = watch(caplog).observe_run(run("CANCELED"))
    assert unknown is not None and "canceled by unknown" in unknown["message"]


def test_failure_statuses_decide_what_counts_as_failure(caplog: pytest.LogCaptureFixture) -> None:
    outcome = watch(caplog, failure_statuses=("FAILED",)).observe_run(run("CANCELED"))
    assert outcome is not None and outcome["status"] == SUCCESS


def test_unknown_status_is_kept_logged_and_waited_on(caplog: pytest.LogCaptureFixture) -> None:
    w = watch(caplog)
    assert w.observe_run(run("QUEUED_FOR_GPU")) is None
    assert w.last_status == "QUEUED_FOR_GPU"
    assert any("unknown status 'QUEUED_FOR_GPU'" in r.getMessage() for r in caplog.records)
    assert w.observe_run(run("CANCELING")) is None  # known, not terminal


def test_latest_run_is_resolved_and_kept(caplog: pytest.LogCaptureFixture) -> None:
    w = watch(caplog, run_id=None)
    assert w.observe_run(None) is None
    assert w.run_id is None
    w.observe_run(run("RUNNING"))
    assert w.run_id == RUN


def test_transient_errors_are_tolerated_up_to_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    w = watch(caplog, max_consecutive_errors=3)
    errors = [
        ImmutaTimeoutError("read timed out", method="GET", path="/api/x"),
        ImmutaServerError(status_code=503, method="GET", path="/api/x", message="busy"),
    ]
    assert w.observe_error(errors[0]) is None
    assert w.observe_error(errors[1]) is None
    assert w.observe_run(run("RUNNING")) is None  # a success resets the count
    assert w.observe_error(errors[0]) is None
    assert w.observe_error(errors[1]) is None
    outcome = w.observe_error(
        ImmutaRateLimitError(status_code=429, method="GET", path="/api/x", message="slow down")
    )
    assert outcome is not None
    assert outcome["status"] == ERROR
    assert "3 failed polls in a row" in outcome["message"]


def test_a_permanent_error_ends_the_wait_at_once(caplog: pytest.LogCaptureFixture) -> None:
    outcome = watch(caplog).observe_error(
        ImmutaAuthenticationError(status_code=401, method="GET", path="/api/x", message="no")
    )
    assert outcome is not None and outcome["status"] == ERROR
    assert "401" in outcome["message"]


def test_deadline_is_absolute_wall_clock(caplog: pytest.LogCaptureFixture) -> None:
    assert watch(caplog, deadline=None).check_deadline() is None
    assert watch(caplog, deadline=time.time() + 60).check_deadline() is None
    late = watch(caplog, deadline=time.time() - 1, last_status="RUNNING")
    outcome = late.check_deadline()
    assert outcome is not None and outcome["status"] == TIMEOUT
    assert "last status RUNNING" in outcome["message"]
    assert late.next_sleep(10) == 0
    soon = watch(caplog, deadline=time.time() + 2)
    assert 0 < soon.next_sleep(10) <= 2
    assert watch(caplog).next_sleep(10) == 10


def test_latest_run_picks_the_newest_created() -> None:
    older = run("COMPLETED", createdAt=T0.isoformat())
    newer = TaskRun.model_validate(
        {
            "runId": "00000000-0000-0000-0000-000000000000",
            "status": "RUNNING",
            "createdAt": (T0 + timedelta(minutes=5)).isoformat(),
        }
    )
    assert latest_run([older, newer]) is newer
    assert latest_run([newer, older]) is newer
    assert latest_run([]) is None


def test_summary_without_timestamps() -> None:
    summary = run_summary("k", TASK, run("PENDING"))
    assert summary["created_at"] is None and summary["duration_seconds"] is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.04, "0.0s"), (4.25, "4.2s"), (187, "3m 07s"), (7500, "2h 05m")]
)
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text
