"""Every endpoint, in both clients: the request sent (line, query, body) and the parsed result.

One table of cases drives both clients (the ``api`` harness in conftest.py is parametrized).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from immuta_provider.client import (
    USER_AGENT,
    CancelTaskRunResult,
    Connection,
    ConnectionState,
    DataObject,
    HealthStatus,
    Task,
    TaskReference,
    TaskRun,
    TaskStatus,
    TaskTrigger,
    TaskType,
)
from immuta_provider.client.endpoints import ENDPOINTS

KEY = "snowflake-prod"
TASK_ID = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
RUN_ID = "9d8c7b6a-5f4e-4d3c-bb2a-1f0e9d8c7b6a"
OBJECT_ID = "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
STAMP = "2026-01-02T03:04:05Z"

CONNECTION = {
    "connectionKey": KEY,
    "technology": "Snowflake",
    "state": "ACTIVE",
    "clientConfiguration": {"host": "acme.snowflakecomputing.com", "password": "[REDACTED]"},
    "policyConfiguration": {"enabled": True},
    "auditConfiguration": {"enabled": False},
    "health": {"client": {"status": "HEALTHY", "message": None, "checkedAt": STAMP}},
    "createdBy": "user-1",
    "createdAt": STAMP,
    "updatedBy": "user-1",
    "updatedAt": STAMP,
}
DATA_OBJECT = {
    "id": OBJECT_ID,
    "name": "ORDERS",
    "type": "table",
    "normalizedType": "TABLE",
    "technology": "Snowflake",
    "remoteId": "DB.SALES.ORDERS",
    "lastSyncedAt": STAMP,
    "connectionKey": KEY,
    "parentId": None,
    "createdBy": "system",
    "createdAt": STAMP,
    "updatedBy": "system",
    "updatedAt": STAMP,
}
TASK = {
    "taskId": TASK_ID,
    "type": "DATA_OBJECT_SYNC",
    "status": "RUNNING",
    "trigger": "MANUAL",
    "createdBy": "user-1",
    "createdAt": STAMP,
}
RUN = {
    "runId": RUN_ID,
    "taskId": TASK_ID,
    "status": "COMPLETED",
    "createdAt": STAMP,
    "updatedAt": STAMP,
    "startedAt": STAMP,
    "completedAt": STAMP,
}
TASK_REFERENCE = {"taskId": TASK_ID}
CANCELLED = {"runId": RUN_ID, "message": "Cancel requested"}

CONNECTION_PATH = f"/api/connections/{KEY}"
OBJECT_PATH = f"{CONNECTION_PATH}/dataObjects/{OBJECT_ID}"
RUN_PATH = f"{CONNECTION_PATH}/tasks/{TASK_ID}/runs/{RUN_ID}"


@dataclass
class Case:
    """One endpoint call: arguments, the request it must send, the answer and what it parses to."""

    method: str
    args: tuple[Any, ...]
    http_method: str
    path: str
    response: Any
    expected_type: type
    kwargs: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    status: int = 200
    listing: bool = False


CASES = [
    Case("get_connection", (KEY,), "GET", CONNECTION_PATH, CONNECTION, Connection),
    Case(
        "delete_connection",
        (KEY,),
        "DELETE",
        CONNECTION_PATH,
        TASK_REFERENCE,
        TaskReference,
        status=202,
    ),
    Case(
        "update_connection",
        (KEY, {"policyConfiguration": {"enabled": False}}),
        "PATCH",
        CONNECTION_PATH,
        CONNECTION,
        Connection,
        body={"policyConfiguration": {"enabled": False}},
    ),
    Case(
        "update_connection",
        (KEY, {"auditConfiguration": {"enabled": True}}),
        "PATCH",
        CONNECTION_PATH,
        CONNECTION,
        Connection,
        kwargs={"dry_run": True},
        query={"dryRun": "true"},
        body={"auditConfiguration": {"enabled": True}},
    ),
    Case(
        "activate_connection",
        (KEY,),
        "POST",
        f"{CONNECTION_PATH}/_activate",
        CONNECTION,
        Connection,
    ),
    Case(
        "deactivate_connection",
        (KEY,),
        "POST",
        f"{CONNECTION_PATH}/_deactivate",
        CONNECTION,
        Connection,
    ),
    Case(
        "validate_connection",
        (KEY,),
        "POST",
        f"{CONNECTION_PATH}/_validate",
        CONNECTION,
        Connection,
    ),
    Case(
        "list_connections",
        (),
        "GET",
        "/api/connections",
        {"connections": [CONNECTION], "page": {"nextCursor": None}},
        Connection,
        kwargs={"page_size": 50},
        query={"page[limit]": "50"},
        listing=True,
    ),
    Case(
        "create_connection",
        ({"connectionKey": KEY, "technology": "Snowflake", "clientConfiguration": {"a": 1}},),
        "POST",
        "/api/connections",
        CONNECTION,
        Connection,
        body={"connectionKey": KEY, "technology": "Snowflake", "clientConfiguration": {"a": 1}},
    ),
    Case(
        "search_data_objects",
        (KEY, {"type": "table"}),
        "POST",
        "/api/connections/dataObjects/_search",
        {"dataObjects": [DATA_OBJECT], "page": {"nextCursor": None}},
        DataObject,
        kwargs={"page_size": 10},
        body={"connectionKey": KEY, "attributes": {"type": "table"}, "page": {"limit": 10}},
        listing=True,
    ),
    Case(
        "search_data_objects",
        (KEY,),
        "POST",
        "/api/connections/dataObjects/_search",
        {"dataObjects": [], "page": {"nextCursor": None}},
        DataObject,
        body={"connectionKey": KEY, "attributes": {}},
        listing=True,
    ),
    Case("get_data_object", (KEY, OBJECT_ID), "GET", OBJECT_PATH, DATA_OBJECT, DataObject),
    Case(
        "delete_data_object",
        (KEY, OBJECT_ID),
        "DELETE",
        OBJECT_PATH,
        TASK_REFERENCE,
        TaskReference,
        status=202,
    ),
    Case(
        "update_data_object",
        (KEY, OBJECT_ID, {"name": "ORDERS_V2"}),
        "PATCH",
        OBJECT_PATH,
        DATA_OBJECT,
        DataObject,
        body={"name": "ORDERS_V2"},
    ),
    Case(
        "list_data_object_children",
        (KEY, OBJECT_ID),
        "GET",
        f"{OBJECT_PATH}/children",
        {"dataObjects": [DATA_OBJECT, DATA_OBJECT], "page": {"nextCursor": None}},
        DataObject,
        listing=True,
    ),
    Case(
        "list_tasks",
        (KEY,),
        "GET",
        f"{CONNECTION_PATH}/tasks",
        {"tasks": [TASK], "page": {"nextCursor": None}},
        Task,
        kwargs={
            "type": TaskType.DATA_OBJECT_SYNC,
            "status": "RUNNING",
            "trigger": "MANUAL",
            "created_by": "user-1",
            "parent_id": TASK_ID,
            "page_size": 5,
        },
        query={
            "filter[type]": "DATA_OBJECT_SYNC",
            "filter[status]": "RUNNING",
            "filter[trigger]": "MANUAL",
            "filter[createdBy]": "user-1",
            "filter[parentId]": TASK_ID,
            "page[limit]": "5",
        },
        listing=True,
    ),
    Case(
        "create_task",
        (KEY,),
        "POST",
        f"{CONNECTION_PATH}/tasks",
        TASK,
        Task,
        body={"type": "DATA_OBJECT_SYNC"},
    ),
    Case(
        "create_task",
        (KEY, "DATA_OBJECT_SYNC"),
        "POST",
        f"{CONNECTION_PATH}/tasks",
        TASK,
        Task,
        kwargs={"extra_body": {"scope": {"dataObjectId": OBJECT_ID}}},
        body={"type": "DATA_OBJECT_SYNC", "scope": {"dataObjectId": OBJECT_ID}},
    ),
    Case("get_task", (KEY, TASK_ID), "GET", f"{CONNECTION_PATH}/tasks/{TASK_ID}", TASK, Task),
    Case(
        "list_task_runs",
        (KEY, TASK_ID),
        "GET",
        f"{CONNECTION_PATH}/tasks/{TASK_ID}/runs",
        {"runs": [RUN], "page": {"nextCursor": None}},
        TaskRun,
        kwargs={"status": TaskStatus.COMPLETED},
        query={"filter[status]": "COMPLETED"},
        listing=True,
    ),
    Case("get_task_run", (KEY, TASK_ID, RUN_ID), "GET", RUN_PATH, RUN, TaskRun),
    Case(
        "cancel_task_run",
        (KEY, TASK_ID, RUN_ID),
        "POST",
        f"{RUN_PATH}/_cancel",
        CANCELLED,
        CancelTaskRunResult,
    ),
]


def _case_id(case: Case) -> str:
    return f"{case.method}-{case.http_method}-{'-'.join(case.kwargs) or 'plain'}"


def test_the_table_covers_all_19_endpoints() -> None:
    assert len(ENDPOINTS) == 19
    assert {endpoint.name for endpoint in ENDPOINTS} == {case.method for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=_case_id)
async def test_endpoint_request_and_result(make_api: Any, case: Case) -> None:
    api, replies = make_api(httpx.Response(case.status, json=case.response))

    result = await api.call(case.method, *case.args, **case.kwargs)
    if case.listing:
        assert replies.count == 0, "a listing must not fetch before it is iterated"
        items = await api.collect(result)
        expected = case.response[next(k for k in case.response if k != "page")]
        assert len(items) == len(expected)
        assert all(isinstance(item, case.expected_type) for item in items)
        # The wire form round-trips: what came in is what a dump by alias gives back.
        assert [i.model_dump(mode="json", by_alias=True, exclude_unset=True) for i in items] == [
            _normalised(e) for e in expected
        ]
    else:
        assert isinstance(result, case.expected_type)
        assert result.model_dump(mode="json", by_alias=True, exclude_unset=True) == _normalised(
            case.response
        )

    assert replies.count == 1
    request = replies.requests[0]
    assert request.method == case.http_method
    assert request.url.path == case.path
    assert dict(request.url.params) == case.query
    if case.body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == case.body
        assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer test-api-key-0123456789"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.url.host == "acme.hosted.immutacloud.com"


def _normalised(payload: dict[str, Any]) -> dict[str, Any]:
    # Timestamps come back from pydantic as "...Z" too; nothing else changes.
    return json.loads(json.dumps(payload))


async def test_parsed_fields_use_snake_case_and_enums(make_api: Any) -> None:
    api, _ = make_api(httpx.Response(200, json=CONNECTION))
    connection = await api.call("get_connection", KEY)
    assert connection.connection_key == KEY
    assert connection.state is ConnectionState.ACTIVE
    assert connection.health.client.status is HealthStatus.HEALTHY
    assert connection.health.client.checked_at.year == 2026
    assert connection.client_configuration["password"] == "[REDACTED]"

    api, _ = make_api(httpx.Response(200, json=TASK))
    task = await api.call("get_task", KEY, TASK_ID)
    assert (task.type, task.status, task.trigger) == (
        TaskType.DATA_OBJECT_SYNC,
        TaskStatus.RUNNING,
        TaskTrigger.MANUAL,
    )
    assert task.is_terminal is False

    api, _ = make_api(httpx.Response(200, json=RUN))
    run = await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert run.status == "COMPLETED" and run.is_terminal
    assert run.task_id == TASK_ID
    assert (run.completed_at - run.started_at).total_seconds() == 0


def test_sync_and_async_clients_have_the_same_methods() -> None:
    import inspect

    from immuta_provider.client import AsyncImmutaClient, ImmutaClient

    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if not name.startswith("_") and callable(member)
        }

    sync_methods = public(ImmutaClient)
    async_methods = public(AsyncImmutaClient)
    sync_methods.pop("close")
    async_methods.pop("aclose")
    assert sync_methods.keys() == async_methods.keys()
    for name, signature in sync_methods.items():
        assert list(signature.parameters) == list(async_methods[name].parameters), name
        for parameter in signature.parameters.values():
            other = async_methods[name].parameters[parameter.name]
            assert (parameter.kind, parameter.default) == (other.kind, other.default), name
    assert {e.name for e in ENDPOINTS} <= sync_methods.keys()
