"""Models are tolerant (unknown fields and enum values kept, optional fields optional) and keep
secrets redacted; update_connection leaves "[REDACTED]" out, create_connection refuses it."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from immuta_provider.client import (
    REDACTED,
    TERMINAL_STATUSES,
    Connection,
    DataObject,
    HealthStatus,
    ImmutaValidationError,
    Task,
    TaskRun,
    TaskStatus,
    is_terminal_status,
)

KEY = "snowflake-prod"
RUN_ID = "9d8c7b6a-5f4e-4d3c-bb2a-1f0e9d8c7b6a"
TASK_ID = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"


def test_unknown_fields_are_kept_and_dumped_back() -> None:
    wire = {
        "connectionKey": KEY,
        "state": "ACTIVE",
        "brandNewField": {"nested": [1, 2]},
        "health": {"client": {"status": "HEALTHY", "latencyMs": 12}},
    }
    connection = Connection.model_validate(wire)
    assert connection.model_extra == {"brandNewField": {"nested": [1, 2]}}
    dumped = connection.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert dumped == wire


def test_unknown_enum_values_are_kept_as_plain_strings() -> None:
    connection = Connection.model_validate({"connectionKey": KEY, "state": "DEGRADED"})
    assert connection.state == "DEGRADED" and type(connection.state) is str

    run = TaskRun.model_validate({"runId": RUN_ID, "status": "PAUSED"})
    assert run.status == "PAUSED" and not run.is_terminal

    task = Task.model_validate(
        {"taskId": TASK_ID, "type": "SCHEMA_MONITOR", "status": "QUEUED", "trigger": "WEBHOOK"}
    )
    assert (task.type, task.status, task.trigger) == ("SCHEMA_MONITOR", "QUEUED", "WEBHOOK")
    assert task.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "taskId": TASK_ID,
        "type": "SCHEMA_MONITOR",
        "status": "QUEUED",
        "trigger": "WEBHOOK",
    }


def test_known_enum_values_become_members_that_compare_as_strings() -> None:
    run = TaskRun.model_validate({"runId": RUN_ID, "status": "FAILED"})
    assert run.status is TaskStatus.FAILED
    assert run.status == "FAILED"
    assert str(run.status) == "FAILED" and f"{run.status}" == "FAILED"
    health = Connection.model_validate(
        {"connectionKey": KEY, "health": {"audit": {"status": "UNKNOWN"}}}
    ).health
    assert health is not None and health.audit is not None
    assert health.audit.status is HealthStatus.UNKNOWN


@pytest.mark.parametrize("status", list(TaskStatus))
def test_terminal_statuses(status: TaskStatus) -> None:
    terminal = status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED)
    assert is_terminal_status(status) is terminal
    assert is_terminal_status(status.value) is terminal
    run = TaskRun(run_id=RUN_ID, status=status)
    task = Task(task_id=TASK_ID, type="DATA_OBJECT_SYNC", status=status)
    assert run.is_terminal is terminal and task.is_terminal is terminal


def test_unknown_and_missing_statuses_are_not_terminal() -> None:
    assert {"COMPLETED", "FAILED", "CANCELED"} == TERMINAL_STATUSES
    assert not is_terminal_status("PAUSED")
    assert not is_terminal_status(None)
    assert not is_terminal_status("completed")


def test_missing_optional_fields_are_fine() -> None:
    assert Connection.model_validate({"connectionKey": KEY}).state is None
    run = TaskRun.model_validate({"runId": RUN_ID, "status": "PENDING"})
    assert (run.started_at, run.error, run.task_id) == (None, None, None)
    obj = DataObject.model_validate({"id": TASK_ID, "connectionKey": KEY})
    assert obj.parent_id is None and obj.remote_kind is None


def test_identity_fields_are_required() -> None:
    with pytest.raises(ValidationError):
        TaskRun.model_validate({"status": "RUNNING"})
    with pytest.raises(ValidationError):
        Task.model_validate({"taskId": TASK_ID, "type": "DATA_OBJECT_SYNC"})


def test_models_accept_snake_case_names_too() -> None:
    run = TaskRun(run_id=RUN_ID, status="RUNNING", canceled_by="user-1")
    assert run.model_dump(by_alias=True, exclude_none=True) == {
        "runId": RUN_ID,
        "status": TaskStatus.RUNNING,
        "canceledBy": "user-1",
    }


def test_run_error_is_parsed() -> None:
    run = TaskRun.model_validate(
        {
            "runId": RUN_ID,
            "status": "FAILED",
            "error": {"code": "CONNECTION_AUTH_FAILED", "message": "bad password", "hint": "x"},
        }
    )
    assert run.error is not None
    assert (run.error.code, run.error.message) == ("CONNECTION_AUTH_FAILED", "bad password")
    assert run.error.model_extra == {"hint": "x"}


def test_redacted_secrets_stay_redacted() -> None:
    wire = {
        "connectionKey": KEY,
        "clientConfiguration": {
            "username": "svc",
            "password": REDACTED,
            "oauth": {"key": REDACTED},
        },
    }
    connection = Connection.model_validate(wire)
    assert connection.client_configuration == wire["clientConfiguration"]
    assert connection.model_dump(by_alias=True, exclude_none=True) == wire


async def test_update_connection_leaves_redacted_values_out(
    make_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="immuta_provider.client")
    api, replies = make_api(httpx.Response(200, json={"connectionKey": KEY}))
    changes = {
        "clientConfiguration": {
            "host": "new.snowflakecomputing.com",
            "password": REDACTED,
            "oauth": {"clientSecret": REDACTED, "clientId": "abc"},
        },
        "policyConfiguration": {"enabled": True},
    }
    await api.call("update_connection", KEY, changes)

    assert replies.bodies() == [
        {
            "clientConfiguration": {
                "host": "new.snowflakecomputing.com",
                "oauth": {"clientId": "abc"},
            },
            "policyConfiguration": {"enabled": True},
        }
    ]
    # The caller's mapping is not changed.
    assert changes["clientConfiguration"]["password"] == REDACTED  # type: ignore[index]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "clientConfiguration.password, clientConfiguration.oauth.clientSecret" in (
        record.getMessage()
    )


async def test_a_fetched_connection_can_be_sent_back_as_changes(make_api: Any) -> None:
    fetched = Connection.model_validate(
        {
            "connectionKey": KEY,
            "state": "ACTIVE",
            "clientConfiguration": {"host": "h", "password": REDACTED},
            "createdAt": "2026-01-02T03:04:05Z",
        }
    )
    api, replies = make_api(httpx.Response(200, json={"connectionKey": KEY}))
    await api.call("update_connection", KEY, fetched.model_dump(by_alias=True, exclude_none=True))
    assert replies.bodies() == [
        {
            "connectionKey": KEY,
            "state": "ACTIVE",
            "clientConfiguration": {"host": "h"},
            "createdAt": "2026-01-02T03:04:05Z",
        }
    ]


async def test_redacted_value_inside_a_list_is_refused(make_api: Any) -> None:
    api, replies = make_api(httpx.Response(200, json={"connectionKey": KEY}))
    with pytest.raises(
        ImmutaValidationError, match=r"inside a list at clientConfiguration.keys\[1\]"
    ):
        await api.call("update_connection", KEY, {"clientConfiguration": {"keys": ["a", REDACTED]}})
    assert replies.count == 0


async def test_create_connection_refuses_redacted_values(make_api: Any) -> None:
    api, replies = make_api(httpx.Response(200, json={"connectionKey": KEY}))
    body = {"connectionKey": KEY, "clientConfiguration": {"password": REDACTED}}
    with pytest.raises(ImmutaValidationError) as caught:
        await api.call("create_connection", body)
    assert "clientConfiguration.password" in str(caught.value)
    assert "needs the real secret" in str(caught.value)
    assert replies.count == 0
