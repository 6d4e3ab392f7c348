"""Error mapping: one class per status, Immuta's message, request ids, non-JSON bodies, 2xx that
do not parse, transport failures."""

from __future__ import annotations

import pickle
from typing import Any

import httpx
import pytest

from immuta_provider.client import (
    ImmutaAPIError,
    ImmutaAuthenticationError,
    ImmutaBadRequestError,
    ImmutaConflictError,
    ImmutaError,
    ImmutaNotFoundError,
    ImmutaPermissionError,
    ImmutaRateLimitError,
    ImmutaResponseError,
    ImmutaServerError,
    ImmutaTimeoutError,
    ImmutaTransportError,
    ImmutaValidationError,
    RequestContext,
)

KEY = "trino-archive"
PATH = f"/api/connections/{KEY}"
TASK_ID = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
RUN_ID = "9d8c7b6a-5f4e-4d3c-bb2a-1f0e9d8c7b6a"


def immuta_error(status: int, message: str, **headers: str) -> httpx.Response:
    body = {"statusCode": status, "error": "whatever", "message": message}
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, ImmutaBadRequestError),
        (401, ImmutaAuthenticationError),
        (403, ImmutaPermissionError),
        (404, ImmutaNotFoundError),
        (409, ImmutaConflictError),
        (429, ImmutaRateLimitError),
        (500, ImmutaServerError),
        (503, ImmutaServerError),
        (418, ImmutaAPIError),
        (302, ImmutaAPIError),
    ],
)
async def test_each_status_maps_to_its_class(
    make_api: Any, status: int, error_class: type[ImmutaAPIError]
) -> None:
    api, replies = make_api(immuta_error(status, "Immuta says no"), max_retries=0)
    with pytest.raises(error_class) as caught:
        await api.call("delete_connection", KEY)
    error = caught.value
    assert type(error) is error_class
    assert isinstance(error, ImmutaError)
    assert (error.status_code, error.method, error.path) == (status, "DELETE", PATH)
    assert error.message == "Immuta says no"
    assert f"{status}" in str(error) and f"DELETE {PATH}" in str(error)
    assert "Immuta says no" in str(error)
    assert replies.count == 1


async def test_conflict_carries_immutas_state_message(make_api: Any) -> None:
    text = "Unable to delete connection. Connection state must be INACTIVE to be deleted."
    api, _ = make_api(immuta_error(409, text, **{"X-Request-ID": "req-42"}))
    with pytest.raises(ImmutaConflictError) as caught:
        await api.call("delete_connection", KEY)
    assert caught.value.message == text
    assert caught.value.request_id == "req-42"
    assert str(caught.value) == (
        f"Immuta returned 409 Conflict for DELETE {PATH}: {text} [request id: req-42]"
    )


@pytest.mark.parametrize("header", ["x-request-id", "X-Correlation-Id", "Request-Id"])
async def test_request_id_header_is_found_case_insensitively(make_api: Any, header: str) -> None:
    api, _ = make_api(immuta_error(404, "No connection", **{header: "abc-123"}))
    with pytest.raises(ImmutaNotFoundError) as caught:
        await api.call("get_connection", KEY)
    assert caught.value.request_id == "abc-123"


@pytest.mark.parametrize(
    ("status", "error_class", "advice"),
    [
        (401, ImmutaAuthenticationError, "check the API key"),
        (403, ImmutaPermissionError, "check the API key and its permissions"),
    ],
)
async def test_auth_errors_say_what_to_check(
    make_api: Any, status: int, error_class: type[ImmutaAPIError], advice: str
) -> None:
    api, _ = make_api(immuta_error(status, "Forbidden"))
    with pytest.raises(error_class, match=advice):
        await api.call("get_connection", KEY)


async def test_rate_limit_error_carries_retry_after(make_api: Any) -> None:
    api, _ = make_api(immuta_error(429, "Slow down", **{"Retry-After": "7"}), max_retries=0)
    with pytest.raises(ImmutaRateLimitError) as caught:
        await api.call("get_connection", KEY)
    assert caught.value.retry_after == 7.0


async def test_html_error_page_becomes_a_short_readable_message(make_api: Any) -> None:
    page = (
        "<html><head><title>502 Bad Gateway</title><style>body {color: red}</style></head>"
        "<body>\n\n<h1>Bad   Gateway</h1>\n<p>The proxy &amp; the upstream disagree.</p>"
        + "<p>filler</p>" * 200
        + "</body></html>"
    )
    api, _ = make_api(httpx.Response(502, text=page), max_retries=0)
    with pytest.raises(ImmutaServerError) as caught:
        await api.call("get_connection", KEY)
    message = caught.value.message
    assert message.startswith("502 Bad Gateway Bad Gateway The proxy & the upstream disagree.")
    assert "<" not in message and "color" not in message and "  " not in message
    assert len(message) <= 200 and message.endswith("…")
    assert caught.value.body_excerpt == message


@pytest.mark.parametrize("content", [b"", b"   \n"])
async def test_empty_error_body(make_api: Any, content: bytes) -> None:
    api, _ = make_api(httpx.Response(500, content=content))
    with pytest.raises(ImmutaServerError) as caught:
        await api.call("get_connection", KEY)
    assert caught.value.message == "(empty response body)"
    assert str(caught.value) == (
        f"Immuta returned 500 Internal Server Error for GET {PATH}: (empty response body)"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": ["name is required", "type is invalid"]}, "name is required; type is invalid"),
        ({"error": "Bad Request"}, "Bad Request"),
        ({"detail": "x"}, '{"detail":"x"}'),
        (["odd"], '["odd"]'),
    ],
)
async def test_json_error_bodies_of_other_shapes(make_api: Any, body: Any, message: str) -> None:
    api, _ = make_api(httpx.Response(400, json=body))
    with pytest.raises(ImmutaBadRequestError) as caught:
        await api.call("get_connection", KEY)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"<html>maintenance</html>", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"runId": "x"}', r"does not match TaskRun: status: Field required"),
        (b'{"runId": 5, "status": "RUNNING"}', "does not match TaskRun: runId: Input should be"),
        (b"[]", "does not match TaskRun"),
    ],
)
async def test_unparseable_2xx_is_a_response_error_naming_the_endpoint(
    make_api: Any, content: bytes, problem: str
) -> None:
    api, _ = make_api(httpx.Response(200, content=content))
    with pytest.raises(ImmutaResponseError, match=problem) as caught:
        await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    error = caught.value
    assert error.endpoint == "get_task_run"
    assert str(error).startswith("get_task_run (GET /api/connections/")
    assert error.status_code == 200


@pytest.mark.parametrize(
    ("raised", "error_class", "text"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), ImmutaTransportError, "refused"),
        (httpx.ConnectTimeout("timed out"), ImmutaTimeoutError, "connect timeout of 10s"),
        (httpx.ReadTimeout("timed out"), ImmutaTimeoutError, "read timeout of 30s"),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            ImmutaTransportError,
            "RemoteProtocolError: Server disconnected",
        ),
    ],
)
async def test_transport_failures(
    make_api: Any, raised: Exception, error_class: type[Exception], text: str
) -> None:
    api, _ = make_api(raised, max_retries=0)
    with pytest.raises(error_class, match=text) as caught:
        await api.call("get_connection", KEY)
    assert type(caught.value) is error_class
    assert "https://acme.hosted.immutacloud.com" in str(caught.value)
    assert caught.value.__cause__ is raised


def test_errors_survive_pickling() -> None:
    errors: list[ImmutaError] = [
        ImmutaConflictError(
            status_code=409, method="DELETE", path=PATH, message="state", request_id="r1"
        ),
        ImmutaRateLimitError(
            status_code=429, method="GET", path=PATH, message="slow", retry_after=3.0
        ),
        ImmutaTimeoutError("timed out", method="GET", path=PATH, attempts=2),
        ImmutaResponseError(
            "bad", endpoint="get_task", method="GET", path=PATH, status_code=200, body_excerpt=""
        ),
        ImmutaValidationError("connection_key 'sync' is reserved"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


def test_validation_error_is_a_value_error() -> None:
    assert issubclass(ImmutaValidationError, ValueError)
    assert issubclass(ImmutaTimeoutError, ImmutaTransportError)


async def test_json_messages_keep_angle_brackets(make_api: Any) -> None:
    api, _ = make_api(immuta_error(400, "limit must be <= 100 and > 0"))
    with pytest.raises(ImmutaBadRequestError) as caught:
        await api.call("get_connection", KEY)
    assert caught.value.message == "limit must be <= 100 and > 0"


@pytest.mark.parametrize(
    "reply",
    [
        immuta_error(409, "state"),
        httpx.Response(200, content=b"not json"),
        httpx.ConnectError("refused"),
    ],
    ids=["api-error", "response-error", "transport-error"],
)
async def test_every_error_of_a_call_carries_its_request_context(make_api: Any, reply: Any) -> None:
    api, _ = make_api(reply, max_retries=0)
    with pytest.raises(ImmutaError) as caught:
        await api.call("get_task_run", KEY, TASK_ID, RUN_ID)
    expected = RequestContext(
        "get_task_run", "GET", f"{PATH}/tasks/{TASK_ID}/runs/{RUN_ID}", attempts=1
    )
    assert caught.value.request == expected
    assert (caught.value.endpoint, caught.value.method, caught.value.attempts) == (
        "get_task_run",
        "GET",
        1,
    )
    assert pickle.loads(pickle.dumps(caught.value)).request == expected


async def test_rejected_arguments_name_the_endpoint_and_its_path_template(make_api: Any) -> None:
    api, replies = make_api()
    with pytest.raises(ImmutaValidationError, match="reserved") as caught:
        await api.call("get_task_run", "sync", TASK_ID, RUN_ID)
    assert caught.value.request == RequestContext(
        "get_task_run", "GET", "/api/connections/{connectionKey}/tasks/{taskId}/runs/{runId}", 0
    )
    assert replies.bodies() == []  # nothing was sent
    assert str(caught.value.request).startswith("get_task_run (GET /api/connections/")


def test_a_request_context_reads_as_the_call_it_describes() -> None:
    assert str(RequestContext("get_connection", "GET", PATH, 2)) == f"get_connection (GET {PATH})"
    assert str(RequestContext()) == ""
    assert ImmutaValidationError("bad").request == RequestContext()
