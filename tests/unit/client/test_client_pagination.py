"""Paginators: lazy page-by-page iteration following page.nextCursor, pages(), get_page()."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from immuta_provider.client import (
    AsyncImmutaClient,
    AsyncPaginator,
    ImmutaResponseError,
    Page,
    TaskRun,
)

KEY = "snowflake-prod"
TASK_ID = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
OBJECT_ID = "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"


def run(n: int) -> dict[str, Any]:
    return {"runId": f"00000000-0000-4000-8000-{n:012d}", "status": "COMPLETED"}


def runs_page(numbers: list[int], cursor: str | None) -> httpx.Response:
    return httpx.Response(
        200, json={"runs": [run(n) for n in numbers], "page": {"nextCursor": cursor}}
    )


THREE_PAGES = (runs_page([1, 2], "c1"), runs_page([3, 4], "c2"), runs_page([5], None))


async def test_iteration_follows_cursors_across_pages(make_api: Any) -> None:
    api, replies = make_api(*THREE_PAGES)
    runs = await api.collect(await api.call("list_task_runs", KEY, TASK_ID, page_size=2))

    assert [r.run_id[-1] for r in runs] == ["1", "2", "3", "4", "5"]
    assert all(isinstance(r, TaskRun) for r in runs)
    assert [dict(r.url.params) for r in replies.requests] == [
        {"page[limit]": "2"},
        {"page[limit]": "2", "page[cursor]": "c1"},
        {"page[limit]": "2", "page[cursor]": "c2"},
    ]


async def test_next_page_is_fetched_only_when_needed(make_api: Any, client_kind: str) -> None:
    api, replies = make_api(*THREE_PAGES)
    paginator = await api.call("list_task_runs", KEY, TASK_ID)
    assert replies.count == 0

    seen = []
    if client_kind == "sync":
        iterator = iter(paginator)
        seen.append(next(iterator))
        assert replies.count == 1
        seen.append(next(iterator))
        assert replies.count == 1, "page 2 fetched before page 1 was used up"
        seen.append(next(iterator))
        assert replies.count == 2
    else:
        iterator = paginator.__aiter__()
        seen.append(await iterator.__anext__())
        assert replies.count == 1
        seen.append(await iterator.__anext__())
        assert replies.count == 1, "page 2 fetched before page 1 was used up"
        seen.append(await iterator.__anext__())
        assert replies.count == 2
        await iterator.aclose()
    assert [r.run_id[-1] for r in seen] == ["1", "2", "3"]


async def test_pages_and_get_page(make_api: Any) -> None:
    api, replies = make_api(*THREE_PAGES)
    pages = await api.pages(await api.call("list_task_runs", KEY, TASK_ID))
    assert [len(p.items) for p in pages] == [2, 2, 1]
    assert [p.next_cursor for p in pages] == ["c1", "c2", None]
    assert all(isinstance(p, Page) for p in pages)

    api, replies = make_api(runs_page([3, 4], "c2"))
    paginator = await api.call("list_task_runs", KEY, TASK_ID)
    page = await api.get_page(paginator, "c1")
    assert page.next_cursor == "c2" and len(page.items) == 2
    assert replies.count == 1
    assert dict(replies.requests[0].url.params) == {"page[cursor]": "c1"}


async def test_iterating_twice_starts_again(make_api: Any) -> None:
    api, replies = make_api(runs_page([1], None))
    paginator = await api.call("list_task_runs", KEY, TASK_ID)
    assert len(await api.collect(paginator)) == 1
    assert len(await api.collect(paginator)) == 1
    assert replies.count == 2


async def test_search_sends_page_and_cursor_in_the_body(make_api: Any) -> None:
    obj = {"id": OBJECT_ID, "connectionKey": KEY}
    api, replies = make_api(
        httpx.Response(200, json={"dataObjects": [obj], "page": {"nextCursor": "next=1"}}),
        httpx.Response(200, json={"dataObjects": [obj], "page": {"nextCursor": None}}),
    )
    items = await api.collect(
        await api.call("search_data_objects", KEY, {"type": "table"}, page_size=1)
    )
    assert len(items) == 2
    assert [json.loads(r.content) for r in replies.requests] == [
        {"connectionKey": KEY, "attributes": {"type": "table"}, "page": {"limit": 1}},
        {
            "connectionKey": KEY,
            "attributes": {"type": "table"},
            "page": {"limit": 1, "cursor": "next=1"},
        },
    ]
    assert all(r.url.params == httpx.QueryParams() for r in replies.requests)


async def test_missing_page_object_means_last_page(make_api: Any) -> None:
    api, replies = make_api(httpx.Response(200, json={"runs": [run(1)]}))
    assert len(await api.collect(await api.call("list_task_runs", KEY, TASK_ID))) == 1
    assert replies.count == 1


@pytest.mark.parametrize("page", [None, [1], "x", {}, {"nextCursor": None}, {"nextCursor": ""}])
async def test_a_page_object_without_a_cursor_means_last_page(make_api: Any, page: Any) -> None:
    # Bodies the one-pass page validator rejects (page not an object) take the step-by-step path.
    api, replies = make_api(httpx.Response(200, json={"runs": [run(1)], "page": page}))
    assert len(await api.collect(await api.call("list_task_runs", KEY, TASK_ID))) == 1
    assert replies.count == 1


async def test_a_cursor_that_does_not_advance_stops_with_an_error(make_api: Any) -> None:
    api, replies = make_api(runs_page([1], "same"))
    paginator = await api.call("list_task_runs", KEY, TASK_ID)
    with pytest.raises(ImmutaResponseError, match=r"list_task_runs.*'same'.*endless"):
        await api.collect(paginator)
    assert replies.count == 2


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"runs": {"runId": "x"}}, "no 'runs' list and no list-valued key"),
        ({"data": [], "more": []}, "no 'runs' list and 2 list-valued keys"),
        ([1, 2], "a body that is an array, not a JSON object"),
        ({"runs": [{"status": "RUNNING"}]}, r"does not match TaskRun: 0.runId: Field required"),
        ({"runs": [], "page": {"nextCursor": 7}}, "cursor at 'page.nextCursor' that is a number"),
    ],
)
async def test_malformed_envelopes_raise_response_errors(
    make_api: Any, body: Any, problem: str
) -> None:
    api, _ = make_api(httpx.Response(200, json=body))
    with pytest.raises(ImmutaResponseError, match=problem) as caught:
        await api.collect(await api.call("list_task_runs", KEY, TASK_ID))
    assert caught.value.endpoint == "list_task_runs"
    assert caught.value.path == f"/api/connections/{KEY}/tasks/{TASK_ID}/runs"


async def test_async_paginator_can_also_be_awaited() -> None:
    transport = httpx.MockTransport(lambda request: runs_page([1], None))
    async with AsyncImmutaClient(
        "https://immuta.test", "key", transport=transport, auth_method="bearer-key"
    ) as client:
        paginator = client.list_task_runs(KEY, TASK_ID)
        assert isinstance(paginator, AsyncPaginator)
        assert await paginator is paginator
        assert [r.run_id async for r in await client.list_task_runs(KEY, TASK_ID)] == [
            run(1)["runId"]
        ]
        assert repr(paginator) == (
            f"<AsyncPaginator list_task_runs GET /api/connections/{KEY}/tasks/{TASK_ID}/runs>"
        )
