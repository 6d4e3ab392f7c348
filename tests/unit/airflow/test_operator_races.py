"""What the operators do when Immuta's state changes between their check and their request.

These paths are hard to reach against the emulator at the right moment, so the operators run
here with a real ``ImmutaClient`` over an ``httpx.MockTransport`` that answers each request from
a per-route queue. The everyday paths are in tests/integration/test_connection_operators.py.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from typing import Any

import httpx
import pytest

from immuta_provider._compat import AirflowException
from immuta_provider.client import ImmutaClient, ui
from immuta_provider.client.statuses import RunStatuses
from immuta_provider.operators import (
    ImmutaActivateConnectionOperator,
    ImmutaCancelTaskRunOperator,
    ImmutaCreateConnectionOperator,
    ImmutaDeleteConnectionOperator,
    ImmutaUpdateConnectionOperator,
)

BASE_URL = "https://acme.hosted.immutacloud.com"
TASK = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"
RUN = "6f1d1e2a-3b4c-4d5e-8f60-718293a4b5c6"
KEY = "snowflake-prod"


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def _conflict(message: str) -> httpx.Response:
    return _json(409, {"statusCode": 409, "error": "Conflict", "message": message})


def _connection(state: str, **fields: Any) -> dict[str, Any]:
    return {"connectionKey": KEY, "technology": "Snowflake", "state": state, **fields}


def _run(status: str) -> dict[str, Any]:
    return {"runId": RUN, "taskId": TASK, "status": status, "createdAt": "2026-11-25T02:00:00Z"}


class FakeImmuta:
    """Answers each ``METHOD /path`` from its own queue; the last answer repeats."""

    def __init__(self, routes: dict[str, list[Any]]) -> None:
        self.routes = {route: deque(replies) for route, replies in routes.items()}
        self.calls: dict[str, int] = defaultdict(int)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = f"{request.method} {request.url.path}"
        self.calls[route] += 1
        replies = self.routes.get(route)
        if not replies:
            return _json(404, {"statusCode": 404, "error": "Not Found", "message": route})
        reply = replies.popleft() if len(replies) > 1 else replies[0]
        if isinstance(reply, Exception):
            raise reply  # the answer is lost (the request did reach the fake Immuta)
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)


class FakeHook:
    """The parts of ImmutaHook the operators use, around a client of the fake Immuta."""

    base_url = BASE_URL
    run_statuses = RunStatuses()

    def __init__(self, immuta: FakeImmuta) -> None:
        self.client = ImmutaClient(
            BASE_URL,
            "unit-test-key",
            transport=httpx.MockTransport(immuta),
            auth_method="bearer-key",
        )

    def get_client(self) -> ImmutaClient:
        return self.client

    def connection_url(self, connection_key: str) -> str:
        return ui.connection_url(BASE_URL, connection_key)

    def task_run_url(self, connection_key: str, task_id: str, run_id: str) -> str:
        return ui.task_run_url(BASE_URL, connection_key, task_id, run_id)


class FakeTaskInstance:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = json.loads(json.dumps(value))  # XCom values must be JSON-safe


def run(operator: Any, routes: dict[str, list[Any]]) -> tuple[Any, FakeImmuta]:
    immuta = FakeImmuta(routes)
    operator._hook = FakeHook(immuta)
    return operator.execute({"ti": FakeTaskInstance()}), immuta


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    """The task log so far (Airflow's task logger writes to stdout outside a task runner)."""
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_activate_succeeds_when_someone_else_activated_it_meanwhile(
    capsys: pytest.CaptureFixture[str],
) -> None:
    operator = ImmutaActivateConnectionOperator(task_id="activate", connection_key=KEY)
    result, immuta = run(
        operator,
        {
            f"GET /api/connections/{KEY}": [
                _json(200, _connection("INACTIVE")),
                _json(200, _connection("ACTIVE")),
            ],
            f"POST /api/connections/{KEY}/_activate": [
                _conflict("Connection state must be INACTIVE to be activated.")
            ],
        },
    )
    assert result == {
        "connection_key": KEY,
        "previous_state": "INACTIVE",
        "state": "ACTIVE",
        "changed": False,
    }
    assert immuta.calls[f"POST /api/connections/{KEY}/_activate"] == 1
    assert "changed meanwhile, outside this task" in logged(capsys)


def test_activate_fails_with_immutas_message_when_the_state_still_forbids_it() -> None:
    operator = ImmutaActivateConnectionOperator(task_id="activate", connection_key=KEY)
    with pytest.raises(AirflowException) as error:
        run(
            operator,
            {
                f"GET /api/connections/{KEY}": [_json(200, _connection("INACTIVE"))],
                f"POST /api/connections/{KEY}/_activate": [
                    _conflict("Unable to activate connection. The connection is being deleted.")
                ],
            },
        )
    message = str(error.value)
    assert f"Could not activate Immuta connection '{KEY}' (state INACTIVE)" in message
    assert "The connection is being deleted." in message


def test_cancel_of_a_run_that_ended_meanwhile_is_a_success(
    capsys: pytest.CaptureFixture[str],
) -> None:
    operator = ImmutaCancelTaskRunOperator(
        task_id="cancel", connection_key=KEY, immuta_task_id=TASK, run_id=RUN
    )
    run_path = f"/api/connections/{KEY}/tasks/{TASK}/runs/{RUN}"
    result, immuta = run(
        operator,
        {
            f"GET {run_path}": [_json(200, _run("RUNNING")), _json(200, _run("COMPLETED"))],
            f"POST {run_path}/_cancel": [_conflict("Task run is already COMPLETED.")],
        },
    )
    assert result["status"] == "COMPLETED"
    assert result["run_id"] == RUN
    assert "it had already ended COMPLETED (409: Task run is already COMPLETED.)" in logged(capsys)
    assert immuta.calls[f"POST {run_path}/_cancel"] == 1


def test_cancel_whose_answer_was_lost_reports_the_cancellation_not_a_refusal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The first _cancel reached Immuta but its answer was lost (read timeout); the client's
    retry got 409 because the run is already CANCELING. Before: "Immuta refused to cancel task
    run ... (status CANCELING)" failed the task."""
    operator = ImmutaCancelTaskRunOperator(
        task_id="cancel", connection_key=KEY, immuta_task_id=TASK, run_id=RUN
    )
    run_path = f"/api/connections/{KEY}/tasks/{TASK}/runs/{RUN}"
    result, immuta = run(
        operator,
        {
            f"GET {run_path}": [_json(200, _run("RUNNING")), _json(200, _run("CANCELING"))],
            f"POST {run_path}/_cancel": [
                httpx.ReadTimeout("timed out"),
                _conflict("Task run is already CANCELING."),
            ],
        },
    )
    assert result["status"] == "CANCELING"
    assert immuta.calls[f"POST {run_path}/_cancel"] == 2
    log = logged(capsys)
    assert "The run is being cancelled (status CANCELING)" in log
    assert "the first request reached Immuta but its answer was lost" in log
    assert "refused" not in log


def test_cancel_after_timeout_whose_answer_was_lost_says_the_run_was_cancelled() -> None:
    """The timeout/kill path (the waiting base's _cancel_run): before, a lost answer then a 409
    read "The run was not cancelled, it had already ended"."""
    operator = ImmutaCancelTaskRunOperator(
        task_id="cancel", connection_key=KEY, immuta_task_id=TASK, run_id=RUN
    )
    run_path = f"/api/connections/{KEY}/tasks/{TASK}/runs/{RUN}"
    immuta = FakeImmuta(
        {
            f"GET {run_path}": [
                _json(200, {**_run("CANCELED"), "completedAt": "2026-11-25T02:01:00Z"})
            ],
            f"POST {run_path}/_cancel": [
                httpx.RemoteProtocolError("Server disconnected without sending a response."),
                _conflict("Task run has already ended."),
            ],
        }
    )
    operator._hook = FakeHook(immuta)
    operator._immuta_task_id, operator._run_id = TASK, RUN
    message = operator._cancel_run(operator._hook.client)
    assert message.startswith("The run is cancelled (status CANCELED)")
    assert "its answer was lost" in message
    assert "not cancelled" not in message


def test_cancel_waiting_warns_when_the_run_completed_instead(
    capsys: pytest.CaptureFixture[str],
) -> None:
    operator = ImmutaCancelTaskRunOperator(
        task_id="cancel",
        connection_key=KEY,
        immuta_task_id=TASK,
        run_id=RUN,
        wait_for_cancellation=True,
        deferrable=False,
        poll_interval=0.01,
    )
    run_path = f"/api/connections/{KEY}/tasks/{TASK}/runs/{RUN}"
    result, _ = run(
        operator,
        {
            f"GET {run_path}": [
                _json(200, _run("RUNNING")),
                _json(200, _run("CANCELING")),
                _json(200, _run("COMPLETED")),
            ],
            f"POST {run_path}/_cancel": [_json(200, {"runId": RUN, "message": "Requested."})],
        },
    )
    assert result["status"] == "COMPLETED"  # stopped either way: not a failure
    assert "ended COMPLETED rather than CANCELED" in logged(capsys)


def test_create_accepts_a_connection_created_meanwhile_with_the_same_configuration() -> None:
    body = {
        "connectionKey": KEY,
        "technology": "Snowflake",
        "clientConfiguration": {"hostname": "h", "password": "real-password-1"},
    }
    existing = _connection(
        "ACTIVE", clientConfiguration={"hostname": "h", "password": "[REDACTED]"}
    )
    operator = ImmutaCreateConnectionOperator(task_id="create", body=body)
    result, immuta = run(
        operator,
        {
            f"GET /api/connections/{KEY}": [_json(404, {"message": "nope"}), _json(200, existing)],
            "POST /api/connections": [_conflict(f"A connection with key '{KEY}' already exists.")],
        },
    )
    assert result["clientConfiguration"]["password"] == "[REDACTED]"
    assert immuta.calls["POST /api/connections"] == 1


def test_delete_follows_a_deletion_already_running_instead_of_failing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    operator = ImmutaDeleteConnectionOperator(
        task_id="delete", connection_key=KEY, wait_for_completion=False
    )
    deletion = {"taskId": TASK, "type": "CONNECTION_DELETE", "status": "RUNNING"}
    result, immuta = run(
        operator,
        {
            f"DELETE /api/connections/{KEY}": [
                _conflict(
                    "Unable to delete connection. A deletion of this connection is in progress."
                )
            ],
            f"GET /api/connections/{KEY}/tasks": [
                _json(200, {"tasks": [], "page": {"nextCursor": None}}),  # none PENDING
                _json(200, {"tasks": [deletion], "page": {"nextCursor": None}}),  # one RUNNING
            ],
            f"GET /api/connections/{KEY}/tasks/{TASK}/runs": [
                _json(200, {"runs": [_run("RUNNING")], "page": {"nextCursor": None}})
            ],
        },
    )
    assert result["immuta_task_id"] == TASK
    assert result["status"] == "RUNNING"
    log = logged(capsys)
    assert "is already RUNNING" in log and "following it" in log
    assert immuta.calls[f"DELETE /api/connections/{KEY}"] == 1


@pytest.mark.parametrize(
    ("state", "advice"),
    [
        ("INACTIVE", "activate it first"),
        ("ACTIVE", "Immuta's message says what conflicts"),
    ],
)
def test_update_conflict_advice_follows_the_state_read_after_it(state: str, advice: str) -> None:
    operator = ImmutaUpdateConnectionOperator(
        task_id="update", connection_key=KEY, changes={"clientConfiguration": {"warehouse": "W"}}
    )
    with pytest.raises(AirflowException) as error:
        run(
            operator,
            {
                f"PATCH /api/connections/{KEY}": [_conflict("A sync is running.")],
                f"GET /api/connections/{KEY}": [_json(200, _connection(state))],
            },
        )
    message = str(error.value)
    assert f"which is {state}" in message
    assert "A sync is running." in message
    assert advice in message
    if state != "INACTIVE":
        assert "activate it first" not in message
