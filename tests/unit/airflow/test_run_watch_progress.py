"""RunWatch's progress lines: one per status change, and while nothing changes at most one a
minute (a heartbeat), each with the elapsed time and the Immuta link. Time is an injected clock."""

from __future__ import annotations

import logging
from itertools import pairwise

import pytest

from immuta_provider import _task_runs
from immuta_provider._task_runs import PROGRESS_LOG_INTERVAL, RunWatch, progress_log_interval
from immuta_provider.client.models import TaskRun

TASK = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"
RUN = "6f1d1e2a-3b4c-4d5e-8f60-718293a4b5c6"
BASE = "https://acme.hosted.immutacloud.com"
RUN_URL = f"{BASE}/#/connections/snowflake-prod/tasks/{TASK}/runs/{RUN}"


class Clock:
    """A wall clock that moves only when told to."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run(status: str) -> TaskRun:
    return TaskRun.model_validate({"runId": RUN, "taskId": TASK, "status": status})


class Lines(logging.Handler):
    """The messages logged to the watch's own logger (Airflow's logging set-up cannot hide
    them, as it can from caplog once ``airflow`` is imported)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def captured() -> Lines:
    return Lines()


def lines(captured: Lines) -> list[str]:
    return list(captured.messages)


def new_watch(captured: Lines, clock: Clock, **kwargs: object) -> RunWatch:
    logger = logging.Logger("test.progress", logging.INFO)  # not registered: no propagation
    logger.addHandler(captured)
    params: dict[str, object] = {
        "connection_key": "snowflake-prod",
        "immuta_task_id": TASK,
        "run_id": RUN,
        "logger": logger,
        "base_url": BASE,
        "clock": clock,
    }
    params.update(kwargs)
    return RunWatch(**params)  # type: ignore[arg-type]


def test_a_line_per_status_change_and_at_most_one_a_minute_in_between(
    captured: Lines,
) -> None:
    clock = Clock()
    watch = new_watch(captured, clock, progress_interval=60)
    # Polls every 10 s for 10 minutes: PENDING for 25 s, RUNNING until 9m 50s, then COMPLETED.
    statuses = []
    outcome = None
    for second in range(0, 600, 10):
        clock.now = 1_800_000_000.0 + second
        status = "PENDING" if second < 25 else "RUNNING" if second < 590 else "COMPLETED"
        statuses.append(status)
        outcome = watch.observe_run(run(status))
    assert outcome is not None and outcome["status"] == "success"
    logged = lines(captured)
    changes = [line for line in logged if "->" in line]
    heartbeats = [line for line in logged if "still" in line]
    assert [line.split(": ", 1)[1].split(" after")[0] for line in changes] == [
        "(start) -> PENDING",
        "PENDING -> RUNNING",
        "RUNNING -> COMPLETED",
    ]
    # RUNNING from 30 s to 9m 50s: a heartbeat 60 s after the last line (1m 30s, 2m 30s, ...
    # 9m 30s).
    assert len(heartbeats) == 9
    assert len(logged) == 12  # not one line per poll (60 polls)
    assert heartbeats[0].endswith(f"still RUNNING after 1m 30s - {RUN_URL}")
    assert all(line.endswith(f" - {RUN_URL}") for line in logged)
    assert "RUNNING -> COMPLETED after 9m 50s" in changes[-1]


def test_never_two_lines_within_the_interval_unless_the_status_changes(
    captured: Lines,
) -> None:
    clock = Clock()
    watch = new_watch(captured, clock, progress_interval=60)
    times = []
    for second in range(0, 3600, 7):  # an hour of polls, 7 s apart, never changing status
        clock.now = 1_800_000_000.0 + second
        watch.observe_run(run("RUNNING"))
        if len(lines(captured)) > len(times):
            times.append(second)
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert gaps and min(gaps) >= 60
    assert max(gaps) < 60 + 7  # and the heartbeat does come, within a poll of the minute
    assert len(times) == 1 + 3600 // 63  # the first line, then one per 63 s (9 polls)


def test_no_run_yet_is_logged_then_repeated_at_most_once_a_minute(
    captured: Lines,
) -> None:
    clock = Clock()
    watch = new_watch(captured, clock, run_id=None, progress_interval=60)
    for second in range(0, 130, 5):
        clock.now = 1_800_000_000.0 + second
        watch.observe_run(None)
    logged = lines(captured)
    assert len(logged) == 3  # at 0 s, 60 s and 120 s
    # No run yet: the link is the connection's page.
    assert all(line.endswith(f" - {BASE}/#/connections/snowflake-prod") for line in logged)
    assert "no run yet after 2m 00s" in logged[-1]


def test_without_a_base_url_the_lines_have_no_link(captured: Lines) -> None:
    watch = new_watch(captured, Clock(), base_url=None)
    watch.observe_run(run("RUNNING"))
    (line,) = lines(captured)
    assert line.endswith("(start) -> RUNNING after 0.0s")


def test_the_interval_defaults_to_the_module_constant_or_airflows_option(
    captured: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW__IMMUTA__PROGRESS_LOG_INTERVAL", raising=False)
    assert PROGRESS_LOG_INTERVAL == 60
    assert progress_log_interval() == 60
    # The provider info declares the option with the same default (test_provider_info checks it).
    assert new_watch(captured, Clock()).progress_interval == 60
    monkeypatch.setattr(_task_runs, "PROGRESS_LOG_INTERVAL", 5.0)
    monkeypatch.setenv("AIRFLOW__IMMUTA__PROGRESS_LOG_INTERVAL", "300")
    assert new_watch(captured, Clock()).progress_interval == 300
    for nonsense in ("0", "-1", "every minute"):  # the default, never an error
        monkeypatch.setenv("AIRFLOW__IMMUTA__PROGRESS_LOG_INTERVAL", nonsense)
        assert progress_log_interval() == 5.0
