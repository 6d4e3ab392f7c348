"""Inputs are checked before any request: messages name the bad value and the rule, and nothing
is sent."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from immuta_provider.client import ImmutaClient, ImmutaValidationError
from immuta_provider.client.validation import (
    RESERVED_CONNECTION_KEYS,
    validate_base_url,
    validate_connection_key,
    validate_page_size,
    validate_uuid,
)

KEY = "snowflake-prod"
TASK_ID = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
RUN_ID = "9d8c7b6a-5f4e-4d3c-bb2a-1f0e9d8c7b6a"
OBJECT_ID = "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
RESERVED = (
    "reserved: bulk, connection, crawl, data, metadata, object, permission, search, settings, "
    "sync, upgrade"
)

BAD_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    (
        "get_connection",
        ("sync",),
        {},
        f"connection_key 'sync' is a reserved name in Immuta ({RESERVED}); choose another key",
    ),
    ("get_connection", ("",), {}, "connection_key '' must be at least 1 character long"),
    (
        "delete_connection",
        ("my key!",),
        {},
        "connection_key 'my key!' may contain only letters, digits, '-' and '_'",
    ),
    ("activate_connection", ("a/b",), {}, "connection_key 'a/b' may contain only"),
    ("deactivate_connection", (None,), {}, "connection_key None must be a string"),
    ("validate_connection", ("metadata",), {}, "connection_key 'metadata' is a reserved name"),
    ("get_task", (KEY, "not-a-uuid"), {}, "task_id 'not-a-uuid' is not a UUID"),
    (
        "get_task_run",
        (KEY, TASK_ID, "3f0e7b9a-1c2d-9e5f-8a9b-0c1d2e3f4a5b"),
        {},
        "run_id '3f0e7b9a-1c2d-9e5f-8a9b-0c1d2e3f4a5b' is not a UUID",
    ),
    ("cancel_task_run", (KEY, 42, RUN_ID), {}, "task_id 42 must be a string UUID"),
    ("get_data_object", (KEY, "DB.SALES"), {}, "data_object_id 'DB.SALES' is not a UUID"),
    ("delete_data_object", ("upgrade", OBJECT_ID), {}, "connection_key 'upgrade' is a reserved"),
    ("update_data_object", (KEY, OBJECT_ID, ["name"]), {}, "changes must be a mapping"),
    ("list_connections", (), {"page_size": 0}, "page_size 0 is out of range"),
    ("list_connections", (), {"page_size": 101}, "page_size 101 is out of range"),
    ("list_connections", (), {"page_size": "20"}, "page_size '20' must be an integer"),
    ("list_connections", (), {"page_size": True}, "page_size True must be an integer"),
    ("list_tasks", (KEY,), {"parent_id": "x"}, "parent_id 'x' is not a UUID"),
    ("list_tasks", (KEY,), {"status": ""}, "status '' must not be empty"),
    ("list_tasks", (KEY,), {"type": 3}, "type 3 must be a string"),
    ("list_task_runs", (KEY, "nope"), {}, "task_id 'nope' is not a UUID"),
    ("list_data_object_children", (KEY, OBJECT_ID), {"page_size": -1}, "page_size -1"),
    ("search_data_objects", ("data",), {}, "connection_key 'data' is a reserved name"),
    ("search_data_objects", (KEY, ["type"]), {}, "attributes must be a mapping"),
    ("update_connection", (KEY, "policy"), {}, "changes must be a mapping (e.g. a dict), got str"),
    ("update_connection", (KEY, {}), {"dry_run": "yes"}, "dry_run 'yes' must be True or False"),
    ("create_connection", ({"technology": "Snowflake"},), {}, "body must contain 'connectionKey'"),
    (
        "create_connection",
        ({"connectionKey": "sync"},),
        {},
        "body['connectionKey'] 'sync' is a reserved name",
    ),
    ("create_task", (KEY, None), {}, "type None must be a task type"),
    ("create_task", (KEY,), {"extra_body": {"type": "X"}}, "extra_body must not contain 'type'"),
    ("create_task", (KEY,), {"extra_body": "x"}, "extra_body must be a mapping"),
    (
        "update_data_object",
        (KEY, OBJECT_ID, {"name": object()}),
        {},
        "update_data_object: the request body is not JSON-serialisable",
    ),
]


@pytest.mark.parametrize(("method", "args", "kwargs", "message"), BAD_CALLS)
async def test_bad_input_raises_before_any_request(
    make_api: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    api, replies = make_api(httpx.Response(200, json={}))
    with pytest.raises(ImmutaValidationError, match=re.escape(message)):
        await api.call(method, *args, **kwargs)
    assert replies.count == 0


@given(st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True))
def test_keys_of_allowed_characters_pass_unless_reserved(key: str) -> None:
    if key in RESERVED_CONNECTION_KEYS:
        with pytest.raises(ImmutaValidationError, match="reserved"):
            validate_connection_key(key)
    else:
        assert validate_connection_key(key) == key


@given(st.text(min_size=1).filter(lambda s: re.fullmatch(r"[A-Za-z0-9_-]+", s) is None))
def test_keys_with_other_characters_fail(key: str) -> None:
    with pytest.raises(ImmutaValidationError, match="may contain only"):
        validate_connection_key(key)


def test_reserved_names_are_case_sensitive_like_the_reference() -> None:
    assert validate_connection_key("Sync") == "Sync"


@given(st.uuids())
def test_real_uuids_pass(value: uuid.UUID) -> None:
    if value.version is not None and 1 <= value.version <= 8 and str(value)[19] in "89ab":
        assert validate_uuid(str(value), "task_id") == str(value)
        assert validate_uuid(str(value).upper(), "task_id") == str(value).upper()


@pytest.mark.parametrize(
    "value",
    [
        "00000000-0000-0000-0000-000000000000",
        "3F0E7B9A-1C2D-4E5F-8A9B-0C1D2E3F4A5B",
        "3f0e7b9a-1c2d-8e5f-bfff-0c1d2e3f4a5b",
    ],
)
def test_uuid_edge_cases_pass(value: str) -> None:
    assert validate_uuid(value, "run_id") == value


@pytest.mark.parametrize(
    "value",
    [
        "3f0e7b9a1c2d4e5f8a9b0c1d2e3f4a5b",
        "3f0e7b9a-1c2d-0e5f-8a9b-0c1d2e3f4a5b",
        "3f0e7b9a-1c2d-4e5f-7a9b-0c1d2e3f4a5b",
        "{3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b}",
        " 3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\n",
        "",
    ],
)
def test_uuid_rejects(value: str) -> None:
    with pytest.raises(ImmutaValidationError, match="is not a UUID"):
        validate_uuid(value, "run_id")


@pytest.mark.parametrize("size", [None, 1, 20, 100])
def test_page_sizes_in_range(size: int | None) -> None:
    assert validate_page_size(size) == size


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://acme.hosted.immutacloud.com", "https://acme.hosted.immutacloud.com"),
        ("https://acme.hosted.immutacloud.com/", "https://acme.hosted.immutacloud.com"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("  https://proxy.example/immuta/ ", "https://proxy.example/immuta"),
    ],
)
def test_base_urls_accepted(url: str, normalised: str) -> None:
    assert validate_base_url(url) == normalised


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("acme.hosted.immutacloud.com", "must start with http:// or https://"),
        ("ftp://acme.example", "'ftp://acme.example' must start with http:// or https://"),
        ("https://", "'https://' must include a host name"),
        ("https:///api", "must include a host name"),
        ("https://acme.example/?x=1", "must not contain a query or fragment"),
        ("https://[::1", "is not a valid URL"),
        (None, "base_url None must be a string"),
    ],
)
def test_base_urls_rejected(url: Any, message: str) -> None:
    with pytest.raises(ImmutaValidationError, match=re.escape(message)):
        validate_base_url(url)


def test_base_url_with_credentials_is_rejected_without_echoing_them() -> None:
    with pytest.raises(ImmutaValidationError) as caught:
        validate_base_url("https://admin:hunter2@acme.example")
    assert "hunter2" not in str(caught.value)
    assert "must not contain credentials" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": "acme"}, "base_url 'acme' must start with http"),
        ({"max_retries": -1}, "max_retries -1 must be an integer >= 0"),
        ({"max_retries": 1.5}, "max_retries 1.5 must be an integer >= 0"),
        ({"connect_timeout": 0}, "connect_timeout 0 must be a number greater than 0"),
        ({"read_timeout": "30"}, "read_timeout '30' must be a number greater than 0"),
        ({"total_timeout": float("nan")}, "total_timeout nan must be a number greater than 0"),
        ({"retry_after_cap": -1}, "retry_after_cap -1 must be a number >= 0"),
        ({"verify": 1}, "verify 1 must be True, False or the path of a CA bundle"),
        ({"api_key": ""}, "api_key must not be empty"),
        ({"api_key": None}, "api_key must be a string, got NoneType"),
        ({"api_key": "abc def"}, "api_key contains whitespace"),
        ({"api_key": "abc\x00def"}, "api_key contains whitespace, control"),
    ],
)
def test_client_options_are_validated(options: dict[str, Any], message: str) -> None:
    arguments = {"base_url": "https://acme.example", "api_key": "k", **options}
    with pytest.raises(ImmutaValidationError, match=re.escape(message)) as caught:
        ImmutaClient(**arguments)
    if options.get("api_key"):
        assert options["api_key"] not in str(caught.value)


def test_api_key_surrounding_whitespace_is_stripped() -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["authorization"])
        return httpx.Response(200, json={"connectionKey": KEY})

    with ImmutaClient(
        "https://acme.example",
        "  the-key\n",
        transport=httpx.MockTransport(answer),
        auth_method="bearer-key",
    ) as client:
        client.get_connection(KEY)
    assert sent == ["Bearer the-key"]


def test_base_url_path_prefix_is_kept() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"connectionKey": KEY})

    with ImmutaClient(
        "https://proxy.example/immuta/",
        "k",
        transport=httpx.MockTransport(answer),
        auth_method="bearer-key",
    ) as client:
        client.get_connection(KEY)
    assert seen == [f"https://proxy.example/immuta/api/connections/{KEY}"]
