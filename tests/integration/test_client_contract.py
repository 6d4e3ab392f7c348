"""Contract tests: the client (sync and async) against the emulator, over real HTTP on 127.0.0.1.

The client and the emulator are two independent implementations of API-NOTES.md; every test runs
with both ``ImmutaClient`` and ``AsyncImmutaClient``. Retries are real but their waits are only
recorded (the clients take a ``sleep`` function), and the emulator's clock is fast-forwarded
through its admin API, so the suite does not sleep.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from immuta_provider.client import (
    AsyncImmutaClient,
    CancelTaskRunResult,
    Connection,
    DataObject,
    ImmutaAPIError,
    ImmutaAuthenticationError,
    ImmutaBadRequestError,
    ImmutaClient,
    ImmutaConflictError,
    ImmutaNotFoundError,
    ImmutaPermissionError,
    ImmutaRateLimitError,
    ImmutaResponseError,
    ImmutaServerError,
    ImmutaTimeoutError,
    ImmutaTransportError,
    ImmutaValidationError,
    Task,
    TaskReference,
    TaskRun,
)
from immuta_provider.emulator.process import RunningEmulator, run_emulator

pytestmark = pytest.mark.integration

KEY = "snowflake-prod"
RUN_PATH = "/api/connections/{key}/tasks/{task}/runs/{run}"
LARGE_OBJECTS = 5_000


# The async client runs on each of its HTTP backends: they must behave identically here.
KINDS = ["sync", "async-httpx", "async-aiohttp"]


class Contract:
    """One client (sync, or async on one HTTP backend) behind one awaitable interface, with its
    recorded waits."""

    def __init__(self, kind: str, url: str, api_key: str, **options: Any) -> None:
        self.kind = kind
        self.sleeps: list[float] = []
        self.client: ImmutaClient | AsyncImmutaClient
        if kind == "sync":
            self.client = ImmutaClient(url, api_key, sleep=self.sleeps.append, **options)
        else:

            async def record(seconds: float) -> None:
                self.sleeps.append(seconds)

            backend = kind.removeprefix("async-")
            self.client = AsyncImmutaClient(
                url, api_key, sleep=record, http_backend=backend, **options
            )
            assert self.client.http_backend == backend

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a client method; await it if the client is async."""
        result = getattr(self.client, method)(*args, **kwargs)
        if self.kind != "sync":
            result = await result
        return result

    async def collect(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Every item of a listing method, following cursors to the end."""
        paginator = getattr(self.client, method)(*args, **kwargs)
        if self.kind == "sync":
            return list(paginator)
        return [item async for item in paginator]

    async def page_sizes(self, method: str, *args: Any, **kwargs: Any) -> list[int]:
        """The number of items on each page of a listing."""
        paginator = getattr(self.client, method)(*args, **kwargs)
        if self.kind == "sync":
            return [len(page.items) for page in paginator.pages()]
        return [len(page.items) async for page in paginator.pages()]

    async def close(self) -> None:
        if isinstance(self.client, AsyncImmutaClient):
            await self.client.aclose()
        else:
            self.client.close()


@pytest.fixture(params=KINDS)
async def make_contract(
    request: pytest.FixtureRequest, emulator: RunningEmulator
) -> AsyncIterator[Any]:
    """Build clients of one kind (see ``KINDS``) against the emulator; closed at the end."""
    made: list[Contract] = []

    def make(*, url: str | None = None, api_key: str | None = None, **options: Any) -> Contract:
        contract = Contract(
            request.param, url or emulator.url, api_key or emulator.api_key, **options
        )
        made.append(contract)
        return contract

    yield make
    for contract in made:
        await contract.close()


@pytest.fixture
def contract(make_contract: Any) -> Contract:
    result: Contract = make_contract()
    return result


def raw_status(emulator: RunningEmulator, path: str, **params: Any) -> int:
    """The status the emulator answers to a GET sent without the client."""
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    return httpx.get(f"{emulator.url}{path}", params=params, headers=headers).status_code


def requests_to(emulator: RunningEmulator, method: str, path: str) -> int:
    count: int = emulator.admin.counters()["requests"].get(f"{method} {path}", 0)
    return count


# --- the 19 endpoints ------------------------------------------------------------------------


async def test_connection_endpoints(contract: Contract, emulator: RunningEmulator) -> None:
    connections = await contract.collect("list_connections", page_size=3)
    assert [c.connection_key for c in connections] == [
        "snowflake-prod",
        "databricks-analytics",
        "trino-archive",
        "snowflake-legacy",
    ]
    assert [str(c.state) for c in connections] == ["ACTIVE", "ACTIVE", "INACTIVE", "UNHEALTHY"]
    prod = await contract.call("get_connection", KEY)
    assert isinstance(prod, Connection) and prod.client_configuration is not None
    assert prod.client_configuration["password"] == "[REDACTED]"
    assert prod.health is not None and prod.health.client is not None
    assert str(prod.health.client.status) == "HEALTHY"
    assert isinstance(prod.health.client.checked_at, datetime)

    body = {
        "connectionKey": "contract-new",
        "technology": "Databricks",
        "clientConfiguration": {"hostname": "dbc.example", "token": "dapi-secret"},
        "policyConfiguration": {"enabled": True},
    }
    created = await contract.call("create_connection", body)
    assert created.connection_key == "contract-new" and str(created.state) == "ACTIVE"
    assert created.client_configuration == {"hostname": "dbc.example", "token": "[REDACTED]"}

    dry = await contract.call(
        "update_connection", "contract-new", {"clientConfiguration": {"port": 444}}, dry_run=True
    )
    assert dry.client_configuration["port"] == 444
    assert (
        "port" not in (await contract.call("get_connection", "contract-new")).client_configuration
    )
    # Echoing a GET back: the client drops "[REDACTED]", the emulator keeps the secret.
    echoed = {"clientConfiguration": {**created.client_configuration, "port": 445}}
    updated = await contract.call("update_connection", "contract-new", echoed)
    assert updated.client_configuration == {
        "hostname": "dbc.example",
        "token": "[REDACTED]",
        "port": 445,
    }

    assert str((await contract.call("deactivate_connection", "contract-new")).state) == "INACTIVE"
    assert str((await contract.call("activate_connection", "contract-new")).state) == "ACTIVE"
    legacy = await contract.call("validate_connection", "snowflake-legacy")
    assert str(legacy.state) == "UNHEALTHY"
    assert str(legacy.health.client.status) == "UNHEALTHY"
    assert "rejected the credentials" in legacy.health.client.message

    await contract.call("deactivate_connection", "contract-new")
    reference = await contract.call("delete_connection", "contract-new")
    assert isinstance(reference, TaskReference)
    task = await contract.call("get_task", "contract-new", reference.task_id)
    assert str(task.type) == "CONNECTION_DELETE" and not task.is_terminal
    emulator.admin.advance_clock(5)
    assert (await contract.call("get_task", "contract-new", reference.task_id)).is_terminal
    with pytest.raises(ImmutaNotFoundError, match="contract-new"):
        await contract.call("get_connection", "contract-new")


async def test_data_object_endpoints(contract: Contract, emulator: RunningEmulator) -> None:
    databases = await contract.collect("search_data_objects", KEY, {"type": "database"})
    assert [d.name for d in databases] == ["ANALYTICS", "RAW", "FINANCE"]
    assert all(isinstance(d, DataObject) and d.parent_id is None for d in databases)
    schemas = await contract.collect("list_data_object_children", KEY, databases[0].id, page_size=2)
    assert len(schemas) == 3 and {s.parent_id for s in schemas} == {databases[0].id}
    tables = await contract.collect("search_data_objects", KEY, {"parentId": schemas[0].id})
    orders = next(t for t in tables if t.name == "ORDERS")
    got = await contract.call("get_data_object", KEY, orders.id)
    assert got == orders
    assert got.remote_id == "ANALYTICS.PUBLIC.ORDERS" and isinstance(got.last_synced_at, datetime)
    renamed = await contract.call("update_data_object", KEY, orders.id, {"name": "ORDERS_V2"})
    assert renamed.name == "ORDERS_V2" and renamed.remote_id == orders.remote_id

    reference = await contract.call("delete_data_object", KEY, schemas[0].id)
    task = await contract.call("get_task", KEY, reference.task_id)
    assert str(task.type) == "DATA_OBJECT_DELETE"
    emulator.admin.advance_clock(5)
    with pytest.raises(ImmutaNotFoundError):
        await contract.call("get_data_object", KEY, orders.id)
    assert len(await contract.collect("list_data_object_children", KEY, databases[0].id)) == 2


async def test_task_endpoints_and_the_sync_lifecycle(
    contract: Contract, emulator: RunningEmulator
) -> None:
    before = len(await contract.collect("search_data_objects", KEY))
    task = await contract.call("create_task", KEY, extra_body={"note": "contract"})
    assert isinstance(task, Task) and str(task.status) == "PENDING" and not task.is_terminal
    assert str(task.trigger) == "MANUAL" and task.model_dump(by_alias=True)["note"] == "contract"
    [run] = await contract.collect("list_task_runs", KEY, task.task_id)
    assert isinstance(run, TaskRun) and run.task_id == task.task_id
    children = await contract.collect("list_tasks", KEY, parent_id=task.task_id)
    assert len(children) == 3 and {str(c.trigger) for c in children} == {"SYSTEM"}
    manual = await contract.collect("list_tasks", KEY, trigger="MANUAL", type="DATA_OBJECT_SYNC")
    assert [t.task_id for t in manual] == [task.task_id]

    emulator.admin.advance_clock(0.5)
    running = await contract.call("get_task_run", KEY, task.task_id, run.run_id)
    assert str(running.status) == "RUNNING" and running.started_at is not None
    emulator.admin.advance_clock(1)
    done = await contract.call("get_task_run", KEY, task.task_id, run.run_id)
    assert str(done.status) == "COMPLETED" and done.is_terminal and done.error is None
    assert done.completed_at is not None and done.completed_at >= done.started_at
    assert str((await contract.call("get_task", KEY, task.task_id)).status) == "COMPLETED"
    completed = await contract.collect("list_task_runs", KEY, task.task_id, status="COMPLETED")
    assert [r.run_id for r in completed] == [run.run_id]
    # The sync changed the inventory.
    assert len(await contract.collect("search_data_objects", KEY)) == before + 3
    assert emulator.admin.counters()["tasks_created"] == {KEY: 1}


async def test_cancel(contract: Contract, emulator: RunningEmulator) -> None:
    task = await contract.call("create_task", KEY)
    [run] = await contract.collect("list_task_runs", KEY, task.task_id)
    result = await contract.call("cancel_task_run", KEY, task.task_id, run.run_id)
    assert isinstance(result, CancelTaskRunResult) and result.run_id == run.run_id
    canceling = await contract.call("get_task_run", KEY, task.task_id, run.run_id)
    assert str(canceling.status) == "CANCELING" and canceling.canceled_by == "api-key-1"
    assert not canceling.is_terminal
    emulator.admin.advance_clock(1)
    canceled = await contract.call("get_task_run", KEY, task.task_id, run.run_id)
    assert str(canceled.status) == "CANCELED" and canceled.is_terminal
    with pytest.raises(ImmutaConflictError, match="already CANCELED"):
        await contract.call("cancel_task_run", KEY, task.task_id, run.run_id)


async def test_failed_runs_carry_their_error(contract: Contract, emulator: RunningEmulator) -> None:
    task = await contract.call("create_task", "snowflake-legacy")
    [run] = await contract.collect("list_task_runs", "snowflake-legacy", task.task_id)
    emulator.admin.advance_clock(2)
    failed = await contract.call("get_task_run", "snowflake-legacy", task.task_id, run.run_id)
    assert str(failed.status) == "FAILED" and failed.is_terminal
    assert failed.error is not None and failed.error.code == "CONNECTION_AUTH_FAILED"

    emulator.admin.set_behaviour(KEY, fail={"code": "WAREHOUSE_SUSPENDED", "message": "suspended"})
    task = await contract.call("create_task", KEY)
    [run] = await contract.collect("list_task_runs", KEY, task.task_id)
    emulator.admin.advance_clock(2)
    failed = await contract.call("get_task_run", KEY, task.task_id, run.run_id)
    assert (failed.error.code, failed.error.message) == ("WAREHOUSE_SUSPENDED", "suspended")


async def test_stuck_run_stays_running_until_cancelled(
    contract: Contract, emulator: RunningEmulator
) -> None:
    emulator.admin.set_behaviour(KEY, stuck=True)
    task = await contract.call("create_task", KEY)
    [run] = await contract.collect("list_task_runs", KEY, task.task_id)
    emulator.admin.advance_clock(3600)
    assert str((await contract.call("get_task_run", KEY, task.task_id, run.run_id)).status) == (
        "RUNNING"
    )
    await contract.call("cancel_task_run", KEY, task.task_id, run.run_id)
    emulator.admin.advance_clock(1)
    assert (await contract.call("get_task_run", KEY, task.task_id, run.run_id)).is_terminal


# --- error statuses ----------------------------------------------------------------------------


async def test_state_conflicts_are_409_with_immutas_message(contract: Contract) -> None:
    with pytest.raises(ImmutaConflictError) as caught:
        await contract.call("delete_connection", KEY)
    error = caught.value
    assert error.status_code == 409 and error.method == "DELETE"
    assert error.path == f"/api/connections/{KEY}"
    assert error.message == (
        "Unable to delete connection. Connection state must be INACTIVE to be deleted."
    )
    with pytest.raises(ImmutaConflictError, match="must be INACTIVE to be activated"):
        await contract.call("activate_connection", KEY)
    with pytest.raises(ImmutaConflictError, match="ACTIVE or UNHEALTHY"):
        await contract.call("create_task", "trino-archive")


async def test_not_found_is_404(contract: Contract) -> None:
    with pytest.raises(ImmutaNotFoundError) as caught:
        await contract.call("get_connection", "no-such-connection")
    assert caught.value.status_code == 404 and "no-such-connection" in caught.value.message
    missing = "11111111-1111-4111-8111-111111111111"
    with pytest.raises(ImmutaNotFoundError):
        await contract.call("get_task_run", KEY, missing, missing)


async def test_server_side_validation_is_400(contract: Contract, emulator: RunningEmulator) -> None:
    with pytest.raises(ImmutaBadRequestError, match="colour"):
        await contract.collect("search_data_objects", KEY, {"colour": "blue"})
    with pytest.raises(ImmutaBadRequestError, match="type"):
        await contract.call("create_task", KEY, "CONNECTION_DELETE")
    with pytest.raises(ImmutaBadRequestError) as caught:
        await contract.call("update_connection", KEY, {"technology": "Trino"})
    assert caught.value.status_code == 400
    assert emulator.admin.counters()["tasks_created"] == {}


async def test_wrong_key_is_401(make_contract: Any) -> None:
    contract = make_contract(api_key="not-the-key")
    with pytest.raises(ImmutaAuthenticationError) as caught:
        await contract.call("get_connection", KEY)
    assert caught.value.status_code == 401 and "check the API key" in str(caught.value)
    assert "not-the-key" not in str(caught.value)
    assert contract.sleeps == []  # never retried


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (401, ImmutaAuthenticationError),
        (403, ImmutaPermissionError),
        (404, ImmutaNotFoundError),
        (409, ImmutaConflictError),
        (500, ImmutaServerError),
    ],
)
async def test_non_retryable_statuses_raise_at_once(
    contract: Contract, emulator: RunningEmulator, status: int, error_type: type[ImmutaAPIError]
) -> None:
    fault = emulator.admin.add_fault(method="GET", path=f"^/api/connections/{KEY}$", status=status)
    with pytest.raises(error_type) as caught:
        await contract.call("get_connection", KEY)
    # A 401 is answered by one new key exchange and one repeat of the call (the token may have
    # expired); the second 401 is the real one. Nothing else is sent again.
    sent = 2 if status == 401 else 1
    assert caught.value.status_code == status and caught.value.attempts == 1
    assert caught.value.message  # the emulator's JSON message, not a body dump
    assert emulator.admin.counters()["faults"] == {fault: sent}
    assert requests_to(emulator, "GET", f"/api/connections/{KEY}") == sent
    assert contract.sleeps == []


# --- client-side validation agrees with the emulator's -----------------------------------------


@pytest.mark.parametrize(
    "connection_key",
    ["bad key", "dots.not.allowed", "sync", "search", "bulk", "upgrade", "ümlaut"],
)
async def test_client_refuses_what_the_emulator_refuses(
    contract: Contract, emulator: RunningEmulator, connection_key: str
) -> None:
    assert raw_status(emulator, f"/api/connections/{connection_key}") == 400
    with pytest.raises(ImmutaValidationError):
        await contract.call("get_connection", connection_key)
    assert requests_to(emulator, "GET", f"/api/connections/{connection_key}") == 1  # only raw


@pytest.mark.parametrize(
    "run_id",
    [
        "not-a-uuid",
        "12345678-1234-0234-8234-123456789012",
        "12345678-1234-4234-c234-123456789012",
        "{12345678-1234-4234-8234-123456789012}",
    ],
)
async def test_client_and_emulator_agree_on_uuids(
    contract: Contract, emulator: RunningEmulator, run_id: str
) -> None:
    task = "11111111-1111-4111-8111-111111111111"
    path = RUN_PATH.format(key=KEY, task=task, run=run_id)
    assert raw_status(emulator, path) == 400
    with pytest.raises(ImmutaValidationError):
        await contract.call("get_task_run", KEY, task, run_id)


@pytest.mark.parametrize("page_size", [0, 101])
async def test_page_size_bounds_agree(
    contract: Contract, emulator: RunningEmulator, page_size: int
) -> None:
    assert raw_status(emulator, "/api/connections", **{"page[limit]": page_size}) == 400
    with pytest.raises(ImmutaValidationError):
        await contract.collect("list_connections", page_size=page_size)


# --- pagination through thousands of objects ---------------------------------------------------


@pytest.fixture(scope="module")
def large_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """A second emulator with ``LARGE_OBJECTS`` objects in ``snowflake-large``."""
    with run_emulator(
        seed="none", seed_objects=LARGE_OBJECTS, log_dir=tmp_path_factory.mktemp("large")
    ) as server:
        yield server


@pytest.mark.parametrize("kind", KINDS)
async def test_pagination_through_thousands_of_objects(
    large_emulator: RunningEmulator, kind: str
) -> None:
    large_emulator.admin.reset()
    contract = Contract(kind, large_emulator.url, large_emulator.api_key)
    try:
        objects = await contract.collect("search_data_objects", "snowflake-large", page_size=100)
        assert len(objects) == LARGE_OBJECTS
        assert len({o.id for o in objects}) == LARGE_OBJECTS
        counted = large_emulator.admin.counters()["requests"]
        assert counted["POST /api/connections/dataObjects/_search"] == LARGE_OBJECTS // 100

        schema = (
            await contract.collect("search_data_objects", "snowflake-large", {"type": "schema"})
        )[0]
        expected = sum(1 for o in objects if o.parent_id == schema.id)
        sizes = await contract.page_sizes(
            "list_data_object_children", "snowflake-large", schema.id, page_size=37
        )
        assert sum(sizes) == expected and len(sizes) == math.ceil(expected / 37)
        assert all(size == 37 for size in sizes[:-1])
        tables = await contract.collect(
            "search_data_objects", "snowflake-large", {"type": "table"}, page_size=100
        )
        assert len(tables) == LARGE_OBJECTS - 9
    finally:
        await contract.close()


# --- faults: retryable ones are retried to success ---------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"status": 429, "retry_after": "1"},
        {"status": 429},
        {"status": 502},
        {"status": 503},
        {"status": 504},
        {"body": "html"},
        {"drop": True},
    ],
    ids=["429-retry-after", "429-bare", "502", "503", "504", "html-502", "drop"],
)
async def test_retryable_faults_are_retried_to_success(
    contract: Contract, emulator: RunningEmulator, spec: dict[str, Any]
) -> None:
    task = await contract.call("create_task", KEY)
    [run] = await contract.collect("list_task_runs", KEY, task.task_id)
    path = RUN_PATH.format(key=KEY, task=task.task_id, run=run.run_id)
    fault = emulator.admin.add_fault(method="GET", path="/runs/[^/]+$", count=2, **spec)
    got = await contract.call("get_task_run", KEY, task.task_id, run.run_id)
    assert got.run_id == run.run_id
    counters = emulator.admin.counters()
    assert counters["requests"][f"GET {path}"] == 3  # two faults, then the answer
    assert counters["faults"] == {fault: 2}
    assert len(contract.sleeps) == 2
    if spec.get("retry_after") == "1":
        assert contract.sleeps == [1.0, 1.0]


async def test_retry_after_http_date_and_cap(make_contract: Any, emulator: RunningEmulator) -> None:
    contract = make_contract(retry_after_cap=5.0)
    emulator.admin.add_fault(method="GET", status=429, retry_after_date=3, count=1)
    emulator.admin.add_fault(method="GET", status=503, retry_after="600", count=1)
    await contract.call("get_connection", KEY)
    assert 1.0 <= contract.sleeps[0] <= 3.0  # an HTTP date about 3 s ahead
    assert contract.sleeps[1] == 5.0  # 600 s asked, capped


async def test_retries_give_up_with_the_last_error(
    make_contract: Any, emulator: RunningEmulator
) -> None:
    contract = make_contract(max_retries=2)
    emulator.admin.add_fault(method="GET", status=503, message="maintenance window")
    with pytest.raises(ImmutaServerError) as caught:
        await contract.call("get_connection", KEY)
    assert caught.value.attempts == 3 and caught.value.message == "maintenance window"
    assert requests_to(emulator, "GET", f"/api/connections/{KEY}") == 3
    emulator.admin.clear_faults()
    emulator.admin.add_fault(method="GET", status=429, retry_after="2")
    with pytest.raises(ImmutaRateLimitError) as limited:
        await contract.call("get_connection", KEY)
    assert limited.value.retry_after == 2.0


async def test_html_proxy_page_exhausting_retries(
    make_contract: Any, emulator: RunningEmulator
) -> None:
    contract = make_contract(max_retries=1)
    emulator.admin.add_fault(body="html")
    with pytest.raises(ImmutaServerError) as caught:
        await contract.call("get_connection", KEY)
    assert caught.value.status_code == 502
    assert "Bad Gateway" in caught.value.message and "<" not in caught.value.message


async def test_validate_search_and_cancel_are_retried_too(
    contract: Contract, emulator: RunningEmulator
) -> None:
    emulator.admin.add_fault(method="POST", path="/_validate$", status=503, count=1)
    emulator.admin.add_fault(method="POST", path="/_search$", status=502, count=1)
    await contract.call("validate_connection", KEY)
    assert len(await contract.collect("search_data_objects", KEY, {"type": "database"})) == 3
    task = await contract.call("create_task", KEY)
    [run] = await contract.collect("list_task_runs", KEY, task.task_id)
    emulator.admin.add_fault(method="POST", path="/_cancel$", drop=True, count=1)
    await contract.call("cancel_task_run", KEY, task.task_id, run.run_id)
    counters = emulator.admin.counters()["requests"]
    assert counters[f"POST /api/connections/{KEY}/_validate"] == 2
    assert counters["POST /api/connections/dataObjects/_search"] == 2
    assert (
        counters[f"POST {RUN_PATH.format(key=KEY, task=task.task_id, run=run.run_id)}/_cancel"] == 2
    )


# --- faults: the rest raise the right typed error ----------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"status": 503}, ImmutaServerError),
        ({"drop": True}, ImmutaTransportError),
    ],
)
async def test_creating_a_task_is_never_blindly_retried(
    contract: Contract,
    emulator: RunningEmulator,
    spec: dict[str, Any],
    expected: type[Exception],
) -> None:
    emulator.admin.add_fault(method="POST", path="/tasks$", count=1, **spec)
    with pytest.raises(expected):
        await contract.call("create_task", KEY)
    assert requests_to(emulator, "POST", f"/api/connections/{KEY}/tasks") == 1
    assert contract.sleeps == []


async def test_creating_a_task_refused_with_429_is_retried_after_retry_after(
    contract: Contract, emulator: RunningEmulator
) -> None:
    """A 429 is a refusal before any work: the create is sent again after the wait Immuta asked
    for, and exactly one task exists. Before: the 429 failed the call."""

    async def syncs() -> set[str]:
        tasks = await contract.collect("list_tasks", KEY)
        return {t.task_id for t in tasks if t.parent_id is None}  # not the per-database sub-tasks

    before = await syncs()
    emulator.admin.add_fault(method="POST", path="/tasks$", status=429, retry_after="1", count=1)
    task = await contract.call("create_task", KEY)
    assert requests_to(emulator, "POST", f"/api/connections/{KEY}/tasks") == 2
    assert contract.sleeps == [1.0]
    assert await syncs() == before | {task.task_id}


async def test_malformed_json_is_a_response_error_and_not_retried(
    contract: Contract, emulator: RunningEmulator
) -> None:
    task = await contract.call("create_task", KEY)
    [run] = await contract.collect("list_task_runs", KEY, task.task_id)
    emulator.admin.add_fault(method="GET", path="/runs/[^/]+$", body="malformed_json", count=1)
    with pytest.raises(ImmutaResponseError) as caught:
        await contract.call("get_task_run", KEY, task.task_id, run.run_id)
    assert caught.value.status_code == 200 and "not valid JSON" in str(caught.value)
    assert caught.value.body_excerpt.startswith('{"runId":')
    path = RUN_PATH.format(key=KEY, task=task.task_id, run=run.run_id)
    assert requests_to(emulator, "GET", path) == 1
    # A malformed page of a listing too.
    emulator.admin.add_fault(method="GET", path="/tasks$", body="malformed_json", count=1)
    with pytest.raises(ImmutaResponseError):
        await contract.collect("list_tasks", KEY)


async def test_a_slow_answer_times_out_and_an_idempotent_call_is_retried(
    make_contract: Any, emulator: RunningEmulator
) -> None:
    contract = make_contract(read_timeout=0.3)
    emulator.admin.add_fault(method="GET", path=f"^/api/connections/{KEY}$", latency=1.0, count=1)
    assert (await contract.call("get_connection", KEY)).connection_key == KEY
    assert requests_to(emulator, "GET", f"/api/connections/{KEY}") == 2
    emulator.admin.add_fault(method="POST", path="/tasks$", latency=1.0, count=1)
    with pytest.raises(ImmutaTimeoutError):
        await contract.call("create_task", KEY)
    assert requests_to(emulator, "POST", f"/api/connections/{KEY}/tasks") == 1


async def test_dropped_connections_exhausting_retries_are_transport_errors(
    make_contract: Any, emulator: RunningEmulator
) -> None:
    contract = make_contract(max_retries=1)
    emulator.admin.add_fault(method="GET", drop=True)
    with pytest.raises(ImmutaTransportError) as caught:
        await contract.call("get_connection", KEY)
    assert not isinstance(caught.value, ImmutaTimeoutError)
    assert caught.value.attempts == 2
    assert emulator.admin.counters()["faults_by_kind"] == {"drop": 2}


async def test_total_timeout_bounds_a_call_against_a_slow_server(
    make_contract: Any, emulator: RunningEmulator
) -> None:
    contract = make_contract(read_timeout=0.4, total_timeout=1.0, max_retries=10)
    emulator.admin.add_fault(method="GET", path=f"^/api/connections/{KEY}$", latency=3.0)
    started = time.monotonic()
    with pytest.raises(ImmutaTimeoutError):
        await contract.call("get_connection", KEY)
    assert time.monotonic() - started < 2.0
    # A retry whose backoff would end past the deadline is not attempted.
    assert 1 <= requests_to(emulator, "GET", f"/api/connections/{KEY}") <= 3


async def test_connection_refused_is_retried_then_a_transport_error(make_contract: Any) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = make_contract(url=f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(ImmutaTransportError) as caught:
        await refused.call("create_task", KEY)  # it never reached a server: safe to retry
    assert caught.value.attempts == 3 and len(refused.sleeps) == 2
