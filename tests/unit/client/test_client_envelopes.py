"""List envelopes a tenant may answer with (API-NOTES.md, *Meeting a real tenant*): items under
the documented key, else under the one list-valued key; the cursor under ``page.nextCursor``,
else a top-level ``nextCursor``; one warning per endpoint and process on a fallback; a body that
fits none raises ``ImmutaResponseError`` naming the top-level keys, never their values.

The sync and async clients run over ``httpx.MockTransport`` (the ``make_api`` harness); the
async client's aiohttp backend cannot send through an httpx transport, so it reads the same
answers from a small HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from immuta_provider.client import AsyncImmutaClient, ImmutaResponseError, TaskRun
from immuta_provider.client.envelopes import (
    EnvelopeMismatch,
    forget_warnings,
    read_list_envelope,
)

KEY = "snowflake-prod"
TASK_ID = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
SECRET_LOOKING = "VALUE-THAT-MUST-NOT-APPEAR-9d1c"


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    forget_warnings()
    yield
    forget_warnings()


def run(n: int) -> dict[str, Any]:
    return {"runId": f"00000000-0000-4000-8000-{n:012d}", "status": "SUCCEEDED"}


def data_page(numbers: list[int], cursor: str | None) -> dict[str, Any]:
    """The shape of the first test dialect: ``{"data": [...], "nextCursor": ...}``."""
    return {"data": [run(n) for n in numbers], "nextCursor": cursor}


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "immuta_provider.client" and r.levelno == logging.WARNING
    ]


# --- the rules, without HTTP -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "items_key", "cursor", "cursor_at"),
    [
        ({"runs": [1], "page": {"nextCursor": "c"}}, "runs", "c", "page.nextCursor"),
        ({"runs": [1], "page": {"nextCursor": None}}, "runs", None, "page.nextCursor"),
        ({"runs": [1]}, "runs", None, None),
        ({"data": [1], "nextCursor": "c"}, "data", "c", "nextCursor"),
        ({"items": [1], "total": 1, "page": {"nextCursor": ""}}, "items", None, "page.nextCursor"),
        # page.nextCursor wins over a top-level one; a page without nextCursor falls through.
        (
            {"runs": [1], "page": {"nextCursor": "a"}, "nextCursor": "b"},
            "runs",
            "a",
            "page.nextCursor",
        ),
        ({"results": [1], "page": {"size": 1}, "nextCursor": "b"}, "results", "b", "nextCursor"),
        # The documented key wins over other list-valued keys.
        ({"runs": [1], "warnings": []}, "runs", None, None),
    ],
)
def test_envelope_rules(
    body: Any, items_key: str, cursor: str | None, cursor_at: str | None
) -> None:
    envelope = read_list_envelope(body, "runs")
    assert envelope.items == [1]
    assert envelope.items_key == items_key
    assert envelope.next_cursor == cursor
    assert envelope.cursor_at == cursor_at


def test_differences_name_what_is_not_documented() -> None:
    assert read_list_envelope({"runs": [], "page": {"nextCursor": None}}, "runs").differences == []
    assert read_list_envelope({"data": [], "nextCursor": None}, "runs").differences == [
        "items under 'data' instead of 'runs'",
        "next-page cursor at top-level 'nextCursor' instead of 'page.nextCursor'",
    ]


@pytest.mark.parametrize(
    ("body", "keys"),
    [
        ({"runs": None, "count": 3}, ["runs", "count"]),
        ({"a": [], "b": []}, ["a", "b"]),
        ("text", []),
        ({"runs": [], "nextCursor": {"after": 3}}, ["runs", "nextCursor"]),
    ],
)
def test_mismatch_keeps_keys_only(body: Any, keys: list[str]) -> None:
    with pytest.raises(EnvelopeMismatch) as caught:
        read_list_envelope(body, "runs")
    assert caught.value.keys == keys


# --- through the sync and async clients (MockTransport) ----------------------------------------


async def test_items_and_cursor_fallbacks_follow_every_page(make_api: Any) -> None:
    api, replies = make_api(
        httpx.Response(200, json=data_page([1, 2], "c1")),
        httpx.Response(200, json=data_page([3], None)),
    )
    runs = await api.collect(await api.call("list_task_runs", KEY, TASK_ID, page_size=2))
    assert [r.run_id[-1] for r in runs] == ["1", "2", "3"]
    assert all(isinstance(r, TaskRun) for r in runs)
    assert runs[0].status == "SUCCEEDED"
    assert [dict(r.url.params) for r in replies.requests] == [
        {"page[limit]": "2"},
        {"page[limit]": "2", "page[cursor]": "c1"},
    ]


async def test_search_reads_a_fallback_envelope_too(make_api: Any) -> None:
    obj = {"id": "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d", "connectionKey": KEY}
    api, replies = make_api(
        httpx.Response(200, json={"items": [obj], "nextCursor": "n1"}),
        httpx.Response(200, json={"items": [obj], "nextCursor": None}),
    )
    items = await api.collect(await api.call("search_data_objects", KEY, page_size=1))
    assert len(items) == 2
    assert json.loads(replies.requests[1].content)["page"] == {"limit": 1, "cursor": "n1"}


async def test_one_warning_per_endpoint_and_process(
    make_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="immuta_provider.client")
    api, _ = make_api(
        lambda request: httpx.Response(
            200,
            json=(
                data_page([1], None)
                if request.url.path.endswith("/runs")
                else {"data": [], "nextCursor": None}
            ),
        )
    )
    for _ in range(3):
        await api.collect(await api.call("list_task_runs", KEY, TASK_ID))
    await api.collect(await api.call("list_tasks", KEY))
    await api.collect(await api.call("list_tasks", KEY))
    said = warnings_of(caplog)
    assert len(said) == 2, said
    assert said[0].startswith("list_task_runs: ") and said[1].startswith("list_tasks: ")
    assert "items under 'data' instead of 'runs'" in said[0]
    assert "top-level 'nextCursor' instead of 'page.nextCursor'" in said[0]
    assert "immuta-doctor" in said[0]


async def test_the_documented_envelope_warns_nothing(
    make_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="immuta_provider.client")
    api, _ = make_api(httpx.Response(200, json={"runs": [run(1)], "page": {"nextCursor": None}}))
    assert len(await api.collect(await api.call("list_task_runs", KEY, TASK_ID))) == 1
    assert warnings_of(caplog) == []


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            {"results": {"runId": SECRET_LOOKING}, "total": 7},
            "no 'runs' list and no list-valued key to read the items from instead; "
            "top-level keys seen: 'results', 'total'",
        ),
        (
            {"running": [SECRET_LOOKING], "finished": [SECRET_LOOKING]},
            "no 'runs' list and 2 list-valued keys to read the items from instead; "
            "top-level keys seen: 'running', 'finished'",
        ),
        (
            [SECRET_LOOKING],
            "a body that is an array, not a JSON object holding a list; top-level keys seen: none",
        ),
        (
            {"runs": [], "nextCursor": 12345},
            "a next-page cursor at 'nextCursor' that is a number, not a string; "
            "top-level keys seen: 'runs', 'nextCursor'",
        ),
    ],
)
async def test_a_body_fitting_no_rule_names_its_keys_not_its_values(
    make_api: Any, body: Any, said: str
) -> None:
    api, _ = make_api(httpx.Response(200, json=body))
    with pytest.raises(ImmutaResponseError) as caught:
        await api.collect(await api.call("list_task_runs", KEY, TASK_ID))
    error = caught.value
    text = str(error)
    assert said in text
    assert text.startswith(
        f"list_task_runs (GET /api/connections/{KEY}/tasks/{TASK_ID}/runs) got 200 with a list "
        "envelope the client cannot read: "
    )
    assert '{"runs": [...], "page": {"nextCursor": ...}}' in text
    assert SECRET_LOOKING not in text + repr(vars(error))
    assert "12345" not in text
    assert error.endpoint == "list_task_runs" and error.status_code == 200


# --- the aiohttp backend, over real HTTP --------------------------------------------------------


class _Pages(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        self.server.cursors.append(query.get("page[cursor]", [None])[0])
        body = self.server.answers[len(self.server.cursors) - 1]
        content = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    answers: list[Any]
    cursors: list[str | None]


@pytest.fixture
def pages_server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Pages)
    httpd.answers, httpd.cursors = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


async def test_aiohttp_backend_reads_fallback_envelopes(
    pages_server: _Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="immuta_provider.client")
    pages_server.answers = [data_page([1, 2], "c1"), data_page([3], None)]
    url = f"http://127.0.0.1:{pages_server.server_address[1]}"
    async with AsyncImmutaClient(
        url, "key", http_backend="aiohttp", auth_method="bearer-key"
    ) as client:
        assert client.http_backend == "aiohttp"
        runs = [r async for r in client.list_task_runs(KEY, TASK_ID, page_size=2)]
    assert [r.run_id[-1] for r in runs] == ["1", "2", "3"]
    assert pages_server.cursors == [None, "c1"]
    assert len(warnings_of(caplog)) == 1


async def test_aiohttp_backend_names_keys_of_an_unreadable_envelope(
    pages_server: _Server,
) -> None:
    pages_server.answers = [{"results": {"x": SECRET_LOOKING}, "total": 1}]
    url = f"http://127.0.0.1:{pages_server.server_address[1]}"
    async with AsyncImmutaClient(
        url, "key", http_backend="aiohttp", auth_method="bearer-key"
    ) as client:
        with pytest.raises(ImmutaResponseError) as caught:
            [r async for r in client.list_task_runs(KEY, TASK_ID)]
    assert "top-level keys seen: 'results', 'total'" in str(caught.value)
    assert SECRET_LOOKING not in str(caught.value)
