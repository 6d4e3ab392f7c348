"""ImmutaTaskRunTrigger.run() and on_kill(), driven directly over an ``httpx.MockTransport``.

The trigger is built as the triggerer builds it (from its serialized kwargs) and its async
generator is driven here. Its Airflow connection is a real ``AIRFLOW_CONN_*`` variable read by
Airflow; only the process-wide client registry is pointed at a factory that sends through a
scripted tenant (``shared_async_clients.factory``), so every request the trigger makes is seen.
The integration and reliability suites run the same trigger in real triggerers.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.support.connections import immuta_connection

from immuta_provider.client import AsyncImmutaClient
from immuta_provider.hooks.connection_settings import ImmutaConnectionSettings
from immuta_provider.hooks.shared_clients import shared_async_clients
from immuta_provider.triggers import immuta as trigger_module
from immuta_provider.triggers.immuta import (
    HEARTBEATS_PER_SECOND,
    ImmutaTaskRunTrigger,
    heartbeat_interval,
)

CONN_ID = "immuta_trigger_unit"
URL = "https://acme.immuta.example"
API_KEY = "trigger-unit-key-5f3a"
KEY = "snowflake-prod"
TASK = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"
RUN = "6f1d1e2a-3b4c-4d5e-8f60-718293a4b5c6"
RUN_PATH = f"/api/connections/{KEY}/tasks/{TASK}/runs/{RUN}"
RUNS_PATH = f"/api/connections/{KEY}/tasks/{TASK}/runs"
CANCEL_PATH = f"{RUN_PATH}/_cancel"


def run_body(status: str, **fields: Any) -> dict[str, Any]:
    return {"runId": RUN, "taskId": TASK, "status": status, **fields}


class Tenant:
    """Answers the run's status from a script (the last answer repeats) and cancels on request.

    A script entry is a run status (``"RUNNING"``), a run body (a dict) or an HTTP status code
    (an error answer with Immuta's error body).
    """

    def __init__(self) -> None:
        self.script: list[str | int | dict[str, Any]] = ["RUNNING"]
        self.cancel_status = 200
        self.requests: list[tuple[str, str]] = []
        self.polled_twice = asyncio.Event()

    def answer(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        self.requests.append((request.method, request.url.path))
        if len(self.requests) >= 2:
            self.polled_twice.set()
        if request.method == "POST" and request.url.path == CANCEL_PATH:
            if self.cancel_status != 200:
                return _error(self.cancel_status, "Unable to cancel task run. It is COMPLETED.")
            return httpx.Response(200, json={"runId": RUN, "message": "Cancellation requested."})
        if request.method == "GET" and request.url.path in (RUN_PATH, RUNS_PATH):
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            if isinstance(step, int):
                return _error(step, "The service is unavailable.")
            body = step if isinstance(step, dict) else run_body(step)
            if request.url.path == RUNS_PATH:
                return httpx.Response(200, json={"runs": [body], "page": {"nextCursor": None}})
            return httpx.Response(200, json=body)
        return _error(404, f"Not found: {request.method} {request.url.path}")

    def count(self, method: str, path: str) -> int:
        return self.requests.count((method, path))


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"statusCode": status, "error": "Error", "message": message})


@pytest.fixture
def tenant(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tenant]:
    tenant = Tenant()
    # No client retries: each failed poll is one request, so the counts below are exact.
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        immuta_connection(URL, API_KEY, max_retries=0, auth_method="bearer-key"),
    )

    def factory(settings: ImmutaConnectionSettings) -> AsyncImmutaClient:
        return AsyncImmutaClient(
            **settings.client_kwargs(), transport=httpx.MockTransport(tenant.answer)
        )

    monkeypatch.setattr(shared_async_clients, "factory", factory)
    yield tenant
    assert len(shared_async_clients) == 0, "a lease of the shared client was not returned"


def make_trigger(**overrides: Any) -> ImmutaTaskRunTrigger:
    """A trigger rebuilt from its serialized kwargs, as the triggerer does."""
    kwargs: dict[str, Any] = {
        "immuta_conn_id": CONN_ID,
        "connection_key": KEY,
        "immuta_task_id": TASK,
        "run_id": RUN,
        "poll_interval": 0.01,
        "deadline": time.time() + 60,
        "cancel_on_kill": False,
        "max_consecutive_errors": 3,
    }
    kwargs.update(overrides)
    _, serialized = ImmutaTaskRunTrigger(**kwargs).serialize()
    return ImmutaTaskRunTrigger(**json.loads(json.dumps(serialized)))


async def events_of(trigger: ImmutaTaskRunTrigger) -> list[dict[str, Any]]:
    """Every event ``run()`` yields, as payloads (it must yield exactly one)."""
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1, events
    payload: dict[str, Any] = events[0]
    return [payload]


async def test_a_completed_run_yields_success_with_the_run_summary(tenant: Tenant) -> None:
    tenant.script = [
        "PENDING",
        "RUNNING",
        run_body(
            "COMPLETED",
            startedAt="2026-11-25T02:00:00Z",
            completedAt="2026-11-25T02:01:30Z",
        ),
    ]
    (event,) = await events_of(make_trigger())
    assert event["status"] == "success"
    assert event["run_id"] == RUN and event["run_status"] == "COMPLETED"
    assert event["run"]["status"] == "COMPLETED"
    assert event["run"]["duration_seconds"] == 90.0
    assert event["error_code"] is None and event["error_message"] is None
    assert tenant.count("GET", RUN_PATH) == 3
    assert tenant.count("POST", CANCEL_PATH) == 0


async def test_a_failed_run_yields_failure_with_immutas_error_code_and_message(
    tenant: Tenant,
) -> None:
    tenant.script = [
        "RUNNING",
        run_body(
            "FAILED",
            error={"code": "CONNECTION_AUTH_FAILED", "message": "Snowflake rejected the password."},
        ),
    ]
    (event,) = await events_of(make_trigger())
    assert event["status"] == "failure"
    assert event["error_code"] == "CONNECTION_AUTH_FAILED"
    assert event["error_message"] == "Snowflake rejected the password."
    assert "[CONNECTION_AUTH_FAILED] Snowflake rejected the password." in event["message"]
    assert event["run_status"] == "FAILED"


async def test_a_canceled_run_yields_failure_naming_who_canceled_it(tenant: Tenant) -> None:
    tenant.script = ["RUNNING", "CANCELING", run_body("CANCELED", canceledBy="jane@acme.example")]
    (event,) = await events_of(make_trigger())
    assert event["status"] == "failure"
    assert event["run_status"] == "CANCELED"
    assert event["canceled_by"] == "jane@acme.example"
    assert "canceled by jane@acme.example" in event["message"]
    assert tenant.count("POST", CANCEL_PATH) == 0


async def test_failed_polls_below_the_limit_are_tolerated(tenant: Tenant) -> None:
    # Two failures in a row, a good poll (which resets the count), two more, then the end.
    tenant.script = [503, 503, "RUNNING", 502, 503, "COMPLETED"]
    (event,) = await events_of(make_trigger(max_consecutive_errors=3))
    assert event["status"] == "success", event["message"]
    assert tenant.count("GET", RUN_PATH) == 6


async def test_failed_polls_up_to_the_limit_end_the_wait_with_an_error(tenant: Tenant) -> None:
    tenant.script = ["RUNNING", 503]
    (event,) = await events_of(make_trigger(max_consecutive_errors=3))
    assert event["status"] == "error"
    assert "giving up after 3 failed polls in a row" in event["message"]
    assert event["run_status"] == "RUNNING"  # the last status seen is kept
    assert tenant.count("GET", RUN_PATH) == 1 + 3
    assert tenant.count("POST", CANCEL_PATH) == 0  # an unreachable Immuta is no reason to cancel


async def test_the_deadline_yields_a_timeout_event_and_leaves_cancelling_to_the_operator(
    tenant: Tenant,
) -> None:
    started = time.monotonic()
    (event,) = await events_of(make_trigger(deadline=time.time() + 0.5, poll_interval=0.1))
    waited = time.monotonic() - started
    assert event["status"] == "timeout"
    assert "did not finish before the deadline" in event["message"]
    assert "last status RUNNING" in event["message"]
    assert event["run_id"] == RUN  # what the operator cancels when it resumes
    assert 0.4 <= waited < 5, waited
    assert tenant.count("GET", RUN_PATH) >= 3
    # The trigger itself never cancels: the resumed operator does (cancel_on_kill), so a
    # timeout event lost to a triggerer restart cannot cancel a run that someone still follows.
    assert tenant.count("POST", CANCEL_PATH) == 0


async def test_an_unusable_airflow_connection_yields_an_error_event(tenant: Tenant) -> None:
    (event,) = await events_of(make_trigger(immuta_conn_id="immuta_trigger_unit_missing"))
    assert event["status"] == "error"
    assert (
        "Could not poll Immuta with Airflow connection 'immuta_trigger_unit_missing'"
        in (event["message"])
    )
    assert tenant.requests == []


async def _killed_while_waiting(trigger: ImmutaTaskRunTrigger, tenant: Tenant) -> None:
    """Run the trigger until it has polled twice, then cancel it as the triggerer does."""
    task = asyncio.create_task(events_of(trigger))
    await asyncio.wait_for(tenant.polled_twice.wait(), timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tenant.count("POST", CANCEL_PATH) == 0  # cancelling run() alone never cancels the run


async def test_on_kill_cancels_the_run_learned_while_waiting_when_cancel_on_kill(
    tenant: Tenant,
) -> None:
    trigger = make_trigger(run_id=None, cancel_on_kill=True)  # waits for the task's latest run
    await _killed_while_waiting(trigger, tenant)
    assert trigger.run_id == RUN
    await trigger.on_kill()
    assert tenant.count("POST", CANCEL_PATH) == 1
    # The latest run was listed once; once known, the run itself was polled.
    assert tenant.count("GET", RUNS_PATH) == 1
    assert tenant.count("GET", RUN_PATH) >= 1


async def test_on_kill_leaves_the_run_alone_without_cancel_on_kill(tenant: Tenant) -> None:
    trigger = make_trigger(cancel_on_kill=False)
    await _killed_while_waiting(trigger, tenant)
    polls = len(tenant.requests)
    await trigger.on_kill()
    assert tenant.count("POST", CANCEL_PATH) == 0
    assert len(tenant.requests) == polls  # not even a request


async def test_on_kill_with_no_run_yet_sends_nothing(tenant: Tenant) -> None:
    await make_trigger(run_id=None, cancel_on_kill=True).on_kill()
    assert tenant.requests == []


async def test_on_kill_after_the_run_ended_logs_immutas_refusal_and_does_not_raise(
    tenant: Tenant, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.cancel_status = 409
    caplog.set_level("INFO")
    await make_trigger(cancel_on_kill=True).on_kill()
    assert tenant.count("POST", CANCEL_PATH) == 1
    # Airflow 3 logs through structlog to stdout, 2.11 through logging.
    logged = capsys.readouterr().out + caplog.text
    assert f"Immuta task run {RUN} was not cancelled" in logged
    assert "Unable to cancel task run. It is COMPLETED." in logged
    assert "asked Immuta to cancel" not in logged


TRIGGER_CONTEXT: contextvars.ContextVar[str] = contextvars.ContextVar("trigger", default="")


class SlowLog:
    """A trigger log whose first write blocks until the test releases it (as a full log socket
    blocks Airflow's trigger runner); records each line with its thread and context."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, int, str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.waited_out = False

    def _write(self, level: str, message: str, *args: Any) -> None:
        if not self.entered.is_set():
            self.entered.set()
            # Released by the test from the event loop: only possible if the loop is not blocked.
            self.waited_out = not self.release.wait(timeout=5)
        self.lines.append((level, message % args, threading.get_ident(), TRIGGER_CONTEXT.get()))

    def info(self, message: str, *args: Any) -> None:
        self._write("info", message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self._write("warning", message, *args)


async def test_progress_lines_are_written_off_the_event_loop_in_order(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant.script = ["PENDING", "RUNNING", 503, "COMPLETED"]
    log = SlowLog()
    monkeypatch.setattr(ImmutaTaskRunTrigger, "log", log)
    TRIGGER_CONTEXT.set("trigger 7")  # Airflow binds the trigger id to the context like this
    waiting = asyncio.create_task(events_of(make_trigger()))
    await asyncio.to_thread(log.entered.wait, 5)
    log.release.set()  # the loop still runs while a line is being written
    (event,) = await waiting

    assert event["status"] == "success"
    assert not log.waited_out, "a log line blocked the event loop"
    loop_thread = threading.get_ident()
    assert all(thread != loop_thread for _, _, thread, _ in log.lines)
    assert all(context == "trigger 7" for *_, context in log.lines)
    messages = [(level, text.split(": ", 1)[1]) for level, text, _, _ in log.lines]
    assert [level for level, _ in messages] == ["info", "info", "warning", "info"]
    assert messages[0][1].startswith("(start) -> PENDING")
    assert messages[1][1].startswith("PENDING -> RUNNING")
    assert messages[2][1].startswith("poll failed (1 of 3 in a row allowed)")
    assert messages[3][1].startswith("RUNNING -> COMPLETED")


class Lines:
    """A trigger log that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)

    warning = info


def test_heartbeat_lines_are_spaced_out_when_many_waits_share_a_triggerer() -> None:
    assert heartbeat_interval(60.0, 1) == 60.0
    assert heartbeat_interval(60.0, 300) == 60.0
    assert heartbeat_interval(60.0, 10_000) == 10_000 / HEARTBEATS_PER_SECOND


@pytest.mark.parametrize(("other_waits", "heartbeats_expected"), [(0, True), (999, False)])
async def test_the_trigger_spaces_heartbeats_by_the_waits_running_beside_it(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch, other_waits: int, heartbeats_expected: bool
) -> None:
    monkeypatch.setenv("AIRFLOW__IMMUTA__PROGRESS_LOG_INTERVAL", "0.02")
    monkeypatch.setattr(trigger_module, "HEARTBEATS_PER_SECOND", 1000.0)
    monkeypatch.setattr(trigger_module._LiveWaits, "count", other_waits)
    log = Lines()
    monkeypatch.setattr(ImmutaTaskRunTrigger, "log", log)
    tenant.script = ["RUNNING"] * 12 + ["COMPLETED"]

    (event,) = await events_of(make_trigger(last_status="RUNNING"))

    assert event["status"] == "success"
    heartbeats = [line for line in log.lines if "still RUNNING after" in line]
    # 1,000 waits at 1,000 lines/s in all: one line a second per wait, none in this short wait.
    assert bool(heartbeats) is heartbeats_expected, log.lines
    assert trigger_module._LiveWaits.count == other_waits  # this wait counted itself out
