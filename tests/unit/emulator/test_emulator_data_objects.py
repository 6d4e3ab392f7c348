"""Data objects: the tree, search, children, pagination over large inventories, update, delete."""

from __future__ import annotations

from typing import Any

import pytest

from immuta_provider.emulator.pagination import decode_cursor, encode_cursor, keyset_page
from immuta_provider.emulator.rules import is_uuid

from .conftest import Api
from .test_emulator_validation import assert_error

SEARCH = "/api/connections/dataObjects/_search"


def all_pages(
    api: Api, method: str, path: str, limit: int, **kw: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a paginated listing, and how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        if method == "GET":
            params: dict[str, Any] = {"page[limit]": limit}
            if cursor:
                params["page[cursor]"] = cursor
            body = api.ok("GET", path, params=params)
        else:
            page: dict[str, Any] = {"limit": limit}
            if cursor:
                page["cursor"] = cursor
            body = api.ok("POST", path, json={**kw, "page": page})
        items += body["dataObjects"]
        pages += 1
        cursor = body["page"]["nextCursor"]
        if cursor is None:
            return items, pages


def test_objects_form_a_database_schema_table_tree(api: Api) -> None:
    databases = api.search("snowflake-prod", type="database")
    assert [d["name"] for d in databases] == ["ANALYTICS", "RAW", "FINANCE"]
    database = databases[0]
    assert database["parentId"] is None and is_uuid(database["id"])
    schemas = api.ok(
        "GET", f"/api/connections/snowflake-prod/dataObjects/{database['id']}/children"
    )
    schema = schemas["dataObjects"][0]
    assert schema["type"] == "schema" and schema["parentId"] == database["id"]
    assert schema["remoteId"] == "ANALYTICS.PUBLIC"
    tables = api.search("snowflake-prod", parentId=schema["id"])
    assert {t["type"] for t in tables} == {"table", "view"}
    table = next(t for t in tables if t["name"] == "ORDERS")
    assert table["remoteId"] == "ANALYTICS.PUBLIC.ORDERS"
    assert table["normalizedType"] == "TABLE" and table["remoteType"] == "BASE TABLE"
    for field in ("lastSyncedAt", "createdAt", "updatedAt", "remoteCreatedAt", "createdBy"):
        assert table[field]
    lakehouse = api.search("databricks-analytics", type="table")[0]
    assert lakehouse["remoteFormat"] == "DELTA" and lakehouse["remoteId"].islower()


def test_get_data_object_and_404s(api: Api) -> None:
    table = api.search("snowflake-prod", type="table")[0]
    path = f"/api/connections/snowflake-prod/dataObjects/{table['id']}"
    assert api.ok("GET", path) == table
    # The object exists, but not in this connection.
    assert_error(api.get(f"/api/connections/databricks-analytics/dataObjects/{table['id']}"), 404)
    missing = "11111111-1111-4111-8111-111111111111"
    assert_error(api.get(f"/api/connections/snowflake-prod/dataObjects/{missing}"), 404, missing)
    assert_error(api.get(f"/api/connections/snowflake-prod/dataObjects/{missing}/children"), 404)
    assert_error(api.post(SEARCH, json={"connectionKey": "nope"}), 404, "nope")


def test_search_matches_attributes_exactly(api: Api) -> None:
    assert [o["name"] for o in api.search("snowflake-prod", name="ORDERS", type="table")] == [
        "ORDERS"
    ] * 9
    assert api.search("snowflake-prod", name="orders") == []
    roots = api.search("snowflake-prod", parentId=None)
    assert {o["type"] for o in roots} == {"database"}
    views = api.search("snowflake-prod", normalizedType="TABLE", remoteType="VIEW")
    assert views and {v["type"] for v in views} == {"view"}


def test_search_and_children_paginate_without_gaps_or_repeats(api: Api) -> None:
    everything, pages = all_pages(api, "POST", SEARCH, 7, connectionKey="snowflake-prod")
    assert len(everything) == api.emulator.state.inventory.count("snowflake-prod")
    assert len({o["id"] for o in everything}) == len(everything)
    assert pages == -(-len(everything) // 7)
    schema = api.search("snowflake-prod", type="schema")[0]
    children, pages = all_pages(
        api, "GET", f"/api/connections/snowflake-prod/dataObjects/{schema['id']}/children", 5
    )
    assert len(children) == 16 and pages == 4
    filtered, _ = all_pages(
        api, "POST", SEARCH, 4, connectionKey="snowflake-prod", attributes={"type": "view"}
    )
    assert len(filtered) == len(api.search("snowflake-prod", type="view"))


def test_pages_stay_consistent_while_objects_are_removed(api: Api) -> None:
    first = api.ok("POST", SEARCH, json={"connectionKey": "snowflake-prod", "page": {"limit": 10}})
    removed = first["dataObjects"][-1]
    api.emulator.state.inventory.remove_subtree(removed["id"])
    page = {"limit": 10, "cursor": first["page"]["nextCursor"]}
    second = api.ok("POST", SEARCH, json={"connectionKey": "snowflake-prod", "page": page})
    assert not {o["id"] for o in first["dataObjects"]} & {o["id"] for o in second["dataObjects"]}


def test_large_inventory_pages_end_to_end(make_api: Any) -> None:
    api = make_api(seed="none", seed_objects=20_000)
    assert api.emulator.state.inventory.count("snowflake-large") == 20_000
    schemas = api.search("snowflake-large", type="schema")
    assert len(schemas) == 8
    tables, pages = all_pages(
        api,
        "GET",
        f"/api/connections/snowflake-large/dataObjects/{schemas[-1]['id']}/children",
        100,
    )
    assert len(tables) == len({t["name"] for t in tables}) == (20_000 - 9) // 8
    assert pages == -(-len(tables) // 100)


def test_keyset_pages_cost_the_page_not_the_inventory() -> None:
    seqs = list(range(1, 100_001))
    looked_up: list[int] = []

    def lookup(seq: int) -> int:
        looked_up.append(seq)
        return seq

    items, cursor = keyset_page(seqs, lookup, cursor=encode_cursor(99_000), limit=100)
    assert items == list(range(99_001, 99_101))
    assert len(looked_up) == 100
    assert decode_cursor(cursor) == 99_100
    items, cursor = keyset_page(seqs, lookup, cursor=encode_cursor(99_950), limit=100)
    assert items == list(range(99_951, 100_001)) and cursor is None


def test_hundred_thousand_objects_seed(make_api: Any) -> None:
    api = make_api(seed="demo", seed_objects=100_000)
    assert api.emulator.state.inventory.count("snowflake-large") == 100_000
    body = api.ok(
        "POST",
        SEARCH,
        json={"connectionKey": "snowflake-large", "attributes": {"type": "database"}},
    )
    assert len(body["dataObjects"]) == 5 and body["page"]["nextCursor"] is None


@pytest.mark.parametrize("total", [1, 2, 5, 9, 10])
def test_tiny_large_seeds_have_exactly_the_asked_count(make_api: Any, total: int) -> None:
    api = make_api(seed="none", seed_objects=total)
    assert api.emulator.state.inventory.count("snowflake-large") == total
    assert len(api.search("snowflake-large", type="database")) == 1


def test_patch_data_object_returns_the_whole_object(api: Api) -> None:
    table = api.search("snowflake-prod", type="table")[0]
    api.clock.advance(30)
    path = f"/api/connections/snowflake-prod/dataObjects/{table['id']}"
    updated = api.ok("PATCH", path, json={"name": "ORDERS_RENAMED", "remoteKind": "EXTERNAL"})
    assert updated["name"] == "ORDERS_RENAMED" and updated["remoteKind"] == "EXTERNAL"
    assert updated["updatedBy"] == "api-key-1" and updated["updatedAt"] > table["updatedAt"]
    assert {
        k: v
        for k, v in updated.items()
        if k not in ("name", "remoteKind", "updatedAt", "updatedBy")
    } == {
        k: v for k, v in table.items() if k not in ("name", "remoteKind", "updatedAt", "updatedBy")
    }
    assert api.ok("GET", path)["name"] == "ORDERS_RENAMED"


def test_delete_data_object_removes_it_and_its_descendants_when_the_task_completes(
    api: Api,
) -> None:
    database = api.search("snowflake-prod", type="database")[0]
    before = api.emulator.state.inventory.count("snowflake-prod")
    path = f"/api/connections/snowflake-prod/dataObjects/{database['id']}"
    task_id = api.ok("DELETE", path, status=202)["taskId"]
    task = api.ok("GET", f"/api/connections/snowflake-prod/tasks/{task_id}")
    assert task["type"] == "DATA_OBJECT_DELETE" and task["dataObjectId"] == database["id"]
    assert_error(api.delete(path), 409, "in progress")
    assert api.ok("GET", path)["id"] == database["id"]
    api.clock.advance(10)
    assert_error(api.get(path), 404)
    assert api.emulator.state.inventory.count("snowflake-prod") == before - (1 + 3 + 3 * 16)
    assert api.search("snowflake-prod", remoteId="ANALYTICS.PUBLIC.ORDERS") == []
    assert (
        api.ok("GET", f"/api/connections/snowflake-prod/tasks/{task_id}")["status"] == "COMPLETED"
    )
