"""Retries: which failures are retried for which calls, waits (backoff, Retry-After, cap), the total
timeout, and the retry log lines. Sleeps are recorded by the harness, never slept."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from immuta_provider.client import (
    ImmutaAPIError,
    ImmutaRateLimitError,
    ImmutaServerError,
    ImmutaTimeoutError,
    ImmutaTransportError,
    TaskRun,
)
from immuta_provider.client.retries import is_retryable, parse_retry_after

KEY = "snowflake-prod"
TASK_ID = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
RUN_ID = "9d8c7b6a-5f4e-4d3c-bb2a-1f0e9d8c7b6a"
OBJECT_ID = "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
RUN = {"runId": RUN_ID, "status": "RUNNING"}
TASK = {"taskId": TASK_ID, "type": "DATA_OBJECT_SYNC", "status": "PENDING"}
CONNECTION = {"connectionKey": KEY, "state": "ACTIVE"}
RUN_PATH = f"/api/connections/{KEY}/tasks/{TASK_ID}/runs/{RUN_ID}"


def status(code: int, **headers: str) -> httpx.Response:
    return httpx.Response(code, json={"statusCode": code, "message": "try later"}, headers=headers)


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


# Every idempotent endpoint, and every call that must not be repeated once sent.
IDEMPOTENT_CALLS = [
    ("get_task_run", (KEY, TASK_ID, RUN_ID), RUN),
    ("validate_connection", (KEY,), CONNECTION),
    ("cancel_task_run", (KEY, TASK_ID, RUN_ID), {"runId": RUN_ID, "message": "ok"}),
]
UNSAFE_CALLS = [
    ("create_task", (KEY,), TASK),
    ("create_connection", ({"connectionKey": KEY, "technology": "Snowflake"},), CONNECTION),
    ("update_connection", (KEY, {"policyConfiguration": {}}), CONNECTION),
    ("delete_connection", (KEY,), {"taskId": TASK_ID}),
    ("delete_data_object", (KEY, OBJECT_ID), {"taskId": TASK_ID}),
    (
        "update_data_object",
        (KEY, OBJECT_ID, {"name": "x"}),
        {"id": OBJECT_ID, "connectionKey": KEY},
    ),
    ("activate_connection", (KEY,), CONNECTION),
    ("deactivate_connection", (KEY,), CONNECTION),
]


@pytest.mark.parametrize("code", [429, 502, 503, 504])
async def test_idempotent_get_is_retried_with_backoff(make_api: Any, code: int) -> None:
    api, replies = make_api(status(code), status(code), ok(RUN))
    run = await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert isinstance(run, TaskRun)
    assert replies.count == 3
    # Exponential (0.5s, 1s) plus up to 0.5s of jitter.
    assert len(api.sleeps) == 2
    assert 0.5 <= api.sleeps[0] <= 1.0
    assert 1.0 <= api.sleeps[1] <= 1.5


@pytest.mark.parametrize(("method", "args", "answer"), IDEMPOTENT_CALLS)
async def test_idempotent_posts_are_retried_too(
    make_api: Any, method: str, args: tuple[Any, ...], answer: Any
) -> None:
    api, replies = make_api(status(503), httpx.ReadTimeout("slow"), ok(answer))
    await api.call(method, *args)
    assert replies.count == 3


async def test_search_is_retried(make_api: Any) -> None:
    api, replies = make_api(status(502), ok({"dataObjects": [], "page": {"nextCursor": None}}))
    assert await api.collect(await api.call("search_data_objects", KEY)) == []
    assert replies.count == 2
    assert replies.bodies()[0] == replies.bodies()[1]


@pytest.mark.parametrize("code", [500, 501, 400, 404, 409])
async def test_other_statuses_are_not_retried(make_api: Any, code: int) -> None:
    api, replies = make_api(status(code), ok(RUN))
    with pytest.raises(ImmutaAPIError) as caught:
        await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert caught.value.status_code == code
    assert replies.count == 1
    assert api.sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        lambda: httpx.ReadTimeout("timed out"),
        lambda: httpx.RemoteProtocolError("Server disconnected without sending a response."),
        lambda: httpx.ReadError("connection reset"),
        connect_error,
        lambda: httpx.ConnectTimeout("timed out"),
    ],
)
async def test_transport_failures_on_get_are_retried(make_api: Any, failure: Any) -> None:
    api, replies = make_api(failure(), ok(RUN))
    assert (await api.call("get_task_run", KEY, TASK_ID, RUN_ID)).run_id == RUN_ID
    assert replies.count == 2


@pytest.mark.parametrize(("method", "args", "answer"), UNSAFE_CALLS)
@pytest.mark.parametrize(
    "failure",
    [
        lambda: status(503),
        lambda: status(502),
        lambda: httpx.ReadTimeout("timed out"),
        lambda: httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=["503", "502", "read-timeout", "dropped"],
)
async def test_calls_that_create_or_change_are_not_retried_once_sent(
    make_api: Any, method: str, args: tuple[Any, ...], answer: Any, failure: Any
) -> None:
    api, replies = make_api(failure(), ok(answer))
    with pytest.raises((ImmutaAPIError, ImmutaTransportError)):
        await api.call(method, *args)
    assert replies.count == 1, f"{method} was sent twice"
    assert api.sleeps == []


@pytest.mark.parametrize(("method", "args", "answer"), UNSAFE_CALLS)
@pytest.mark.parametrize(
    "failure",
    [connect_error, lambda: httpx.ConnectTimeout("timed out"), lambda: httpx.PoolTimeout("")],
    ids=["connect-error", "connect-timeout", "pool-timeout"],
)
async def test_calls_that_never_left_are_retried(
    make_api: Any, method: str, args: tuple[Any, ...], answer: Any, failure: Any
) -> None:
    api, replies = make_api(failure(), ok(answer))
    await api.call(method, *args)
    assert replies.count == 2
    assert len(api.sleeps) == 1


@pytest.mark.parametrize(("method", "args", "answer"), UNSAFE_CALLS)
async def test_calls_that_create_or_change_are_retried_after_a_429_retry_after(
    make_api: Any, method: str, args: tuple[Any, ...], answer: Any
) -> None:
    """A 429 says Immuta refused the request without acting on it: sending it again (after the
    wait it asked for) cannot start a second task. Before: one attempt, then the 429 raised."""
    api, replies = make_api(status(429, **{"Retry-After": "3"}), ok(answer))
    await api.call(method, *args)
    assert replies.count == 2
    assert api.sleeps == [3.0]


async def test_create_task_on_429_without_retry_after_backs_off_and_is_bounded(
    make_api: Any,
) -> None:
    api, replies = make_api(status(429), status(429), ok(TASK))
    task = await api.call("create_task", KEY)
    assert task.task_id == TASK_ID
    assert replies.count == 3
    assert len(api.sleeps) == 2
    api, replies = make_api(status(429), status(429), status(429), max_retries=2)
    with pytest.raises(ImmutaAPIError, match=r"\[after 3 attempts\]"):
        await api.call("create_task", KEY)
    assert replies.count == 3


async def test_create_task_on_503_and_read_timeout_is_sent_once(make_api: Any) -> None:
    for failure in (status(503), httpx.ReadTimeout("timed out")):
        api, replies = make_api(failure, ok(TASK))
        with pytest.raises((ImmutaServerError, ImmutaTimeoutError)):
            await api.call("create_task", KEY)
        assert replies.count == 1


async def test_create_task_on_connect_error_is_retried_and_succeeds(make_api: Any) -> None:
    api, replies = make_api(connect_error(), connect_error(), ok(TASK))
    task = await api.call("create_task", KEY)
    assert task.task_id == TASK_ID
    assert replies.count == 3
    assert replies.bodies() == [{"type": "DATA_OBJECT_SYNC"}] * 3


async def test_gives_up_after_max_retries_with_the_last_error(make_api: Any) -> None:
    api, replies = make_api(status(503), max_retries=2)
    with pytest.raises(ImmutaServerError) as caught:
        await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert replies.count == 3
    assert len(api.sleeps) == 2
    assert caught.value.attempts == 3
    assert str(caught.value).endswith("[after 3 attempts]")
    # The traceback shows the last failure alone, not chained onto the first attempt's.
    assert caught.value.__context__ is None


async def test_transport_error_after_retries_counts_attempts(make_api: Any) -> None:
    api, replies = make_api(connect_error(), max_retries=1)
    with pytest.raises(ImmutaTransportError, match=r"\[after 2 attempts\]") as caught:
        await api.call("get_task", KEY, TASK_ID)
    assert caught.value.attempts == 2
    assert replies.count == 2


async def test_max_retries_zero_disables_retries(make_api: Any) -> None:
    api, replies = make_api(status(503), ok(RUN), max_retries=0)
    with pytest.raises(ImmutaServerError):
        await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert replies.count == 1


async def test_retry_after_seconds_is_honoured(make_api: Any) -> None:
    api, replies = make_api(status(429, **{"Retry-After": "7"}), ok(RUN))
    await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert api.sleeps == [7.0]
    assert replies.count == 2


async def test_retry_after_on_503_is_honoured(make_api: Any) -> None:
    api, _ = make_api(status(503, **{"Retry-After": "2.5"}), ok(RUN))
    await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert api.sleeps == [2.5]


async def test_retry_after_http_date_is_honoured(make_api: Any) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    api, _ = make_api(status(429, **{"Retry-After": when}), ok(RUN))
    await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert len(api.sleeps) == 1
    assert 27.0 <= api.sleeps[0] <= 30.0


@pytest.mark.parametrize(
    "value",
    ["3600", format_datetime(datetime.now(timezone.utc) + timedelta(hours=2), usegmt=True)],
    ids=["seconds", "http-date"],
)
async def test_retry_after_is_capped(make_api: Any, value: str) -> None:
    api, _ = make_api(
        status(429, **{"Retry-After": value}), ok(RUN), retry_after_cap=20, total_timeout=300
    )
    await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert api.sleeps == [20.0]


async def test_a_wait_past_the_total_timeout_is_not_taken(make_api: Any) -> None:
    api, replies = make_api(status(429, **{"Retry-After": "50"}), ok(RUN), total_timeout=30)
    with pytest.raises(ImmutaRateLimitError) as caught:
        await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert caught.value.retry_after == 50.0
    assert api.sleeps == []
    assert replies.count == 1


async def test_attempt_timeouts_are_cut_to_the_total_timeout(make_api: Any) -> None:
    seen: list[dict[str, float]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return ok(RUN)

    api, _ = make_api(answer, total_timeout=5, read_timeout=30, connect_timeout=10)
    await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert 4.0 < seen[0]["read"] <= 5.0
    assert 4.0 < seen[0]["connect"] <= 5.0

    api, _ = make_api(answer, total_timeout=120, read_timeout=30, connect_timeout=10)
    await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert seen[1] == {"connect": 10.0, "read": 30.0, "write": 30.0, "pool": 10.0}


async def test_each_retry_is_logged_at_warning(
    make_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api, _ = make_api(status(503), httpx.ReadTimeout("timed out"), ok(RUN))
    await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    records = [r for r in caplog.records if r.name == "immuta_provider.client"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    first, second = (r.getMessage() for r in records)
    assert first.startswith(
        f"Immuta GET {RUN_PATH} failed with HTTP 503 on attempt 1; retry 1 of 3"
    )
    assert f"in {api.sleeps[0]:.2f}s" in first
    assert "ReadTimeout: timed out on attempt 2; retry 2 of 3" in second


async def test_retry_log_mentions_retry_after(
    make_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="immuta_provider.client")
    api, _ = make_api(status(429, **{"Retry-After": "4"}), ok(RUN))
    await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    assert "HTTP 429 (Retry-After 4s)" in caplog.records[0].getMessage()
    assert "in 4.00s" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  5 ", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)
    assert parse_retry_after(value, now=now) == expected


def test_retry_decisions() -> None:
    def api_error(code: int) -> ImmutaAPIError:
        return ImmutaAPIError(status_code=code, method="GET", path="/", message="")

    for code in (429, 502, 503, 504):
        assert is_retryable(api_error(code), idempotent=True)
    assert is_retryable(api_error(429), idempotent=False)
    for code in (502, 503, 504):
        assert not is_retryable(api_error(code), idempotent=False)
    for code in (400, 401, 403, 404, 409, 500):
        assert not is_retryable(api_error(code), idempotent=True)
    assert is_retryable(httpx.ConnectError(""), idempotent=False)
    assert is_retryable(httpx.ReadTimeout(""), idempotent=True)
    assert not is_retryable(httpx.ReadTimeout(""), idempotent=False)
    assert not is_retryable(ValueError(), idempotent=True)
