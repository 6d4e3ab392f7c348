"""Tasks and runs over (fake) time: sync lifecycle and its effects, children, cancel, failures."""

from __future__ import annotations

from typing import Any

from .conftest import Api
from .test_emulator_validation import assert_error

KEY = "snowflake-prod"


def test_sync_goes_pending_running_completed_with_timestamps(api: Api) -> None:
    task_id, run_id = api.start_sync()
    run = api.run(KEY, task_id, run_id)
    assert run["status"] == "PENDING" and run["taskId"] == task_id
    assert "startedAt" not in run and "completedAt" not in run
    api.clock.advance(0.5)
    assert api.run(KEY, task_id, run_id)["status"] == "PENDING"
    api.clock.advance(0.6)  # pending is the first 10% of the 10 s duration
    run = api.run(KEY, task_id, run_id)
    assert run["status"] == "RUNNING"
    assert run["startedAt"] == "2027-01-15T08:00:01.000Z" == run["updatedAt"]
    api.clock.advance(5)
    assert api.ok("GET", f"/api/connections/{KEY}/tasks/{task_id}")["status"] == "RUNNING"
    api.clock.advance(5)
    run = api.run(KEY, task_id, run_id)
    assert run["status"] == "COMPLETED"
    assert run["completedAt"] == "2027-01-15T08:00:10.000Z"
    assert "error" not in run
    assert api.ok("GET", f"/api/connections/{KEY}/tasks/{task_id}")["status"] == "COMPLETED"


def test_completed_sync_changes_the_inventory(api: Api) -> None:
    state = api.emulator.state
    before = state.inventory.count(KEY)
    some_table = api.search(KEY, type="table")[0]
    api.start_sync()
    api.clock.advance(10)
    api.ok("GET", "/api/connections")  # any request applies what is due
    assert state.inventory.count(KEY) == before + 3
    new = api.search(KEY, name="CUSTOMERS_SYNC_0001")
    assert len(new) == 1 and new[0]["createdBy"] == "system"
    assert new[0]["lastSyncedAt"] == "2027-01-15T08:00:10.000Z"
    again = api.ok("GET", f"/api/connections/{KEY}/dataObjects/{some_table['id']}")
    assert again["lastSyncedAt"] == "2027-01-15T08:00:10.000Z" > some_table["lastSyncedAt"]
    api.start_sync()
    api.clock.advance(10)
    api.ok("GET", "/api/connections")
    assert state.inventory.count(KEY) == before + 6


def test_first_sync_of_an_empty_connection_discovers_a_tree(api: Api) -> None:
    api.ok(
        "POST",
        "/api/connections",
        json={"connectionKey": "fresh", "technology": "Databricks", "clientConfiguration": {}},
    )
    api.start_sync("fresh")
    api.clock.advance(10)
    kinds = sorted(o["type"] for o in api.search("fresh"))
    assert kinds == ["database", "schema", "table", "table", "table"]


def test_sync_fans_out_one_child_task_per_database(api: Api) -> None:
    task_id, _ = api.start_sync()
    children = api.ok("GET", f"/api/connections/{KEY}/tasks", params={"filter[parentId]": task_id})[
        "tasks"
    ]
    assert len(children) == 3
    assert {c["trigger"] for c in children} == {"SYSTEM"}
    databases = {d["id"] for d in api.search(KEY, type="database")}
    assert {c["dataObjectId"] for c in children} == databases
    api.clock.advance(10)
    for child in children:
        assert (
            api.ok("GET", f"/api/connections/{KEY}/tasks/{child['taskId']}")["status"]
            == "COMPLETED"
        )
    counters = api.client.get("/_emulator/counters").json()
    assert counters["tasks_created"] == {KEY: 1}
    assert counters["child_tasks_created"] == {KEY: 3}


def test_list_tasks_newest_first_with_filters(api: Api) -> None:
    first, _ = api.start_sync()
    api.clock.advance(10)
    second, _ = api.start_sync()
    path = f"/api/connections/{KEY}/tasks"
    manual = api.ok("GET", path, params={"filter[trigger]": "MANUAL"})["tasks"]
    assert [t["taskId"] for t in manual] == [second, first]
    assert [
        t["taskId"]
        for t in api.ok(
            "GET", path, params={"filter[status]": "PENDING", "filter[trigger]": "MANUAL"}
        )["tasks"]
    ] == [second]
    scheduled = api.ok("GET", path, params={"filter[trigger]": "SCHEDULED"})["tasks"]
    assert len(scheduled) == 1 and scheduled[0]["status"] == "COMPLETED"  # the seeded history
    mine = api.ok(
        "GET", path, params={"filter[createdBy]": "api-key-1", "filter[type]": "DATA_OBJECT_SYNC"}
    )["tasks"]
    assert {t["taskId"] for t in mine} == {first, second}
    # Pages of 2 through 1 + 2 x (1 + 3) tasks, newest first, without repeats.
    seen: list[str] = []
    params: dict[str, Any] = {"page[limit]": 2}
    while True:
        body = api.ok("GET", path, params=params)
        seen += [t["taskId"] for t in body["tasks"]]
        if body["page"]["nextCursor"] is None:
            break
        params["page[cursor]"] = body["page"]["nextCursor"]
    assert len(seen) == len(set(seen)) == 9 and seen[0] != first


def test_task_and_run_404s(api: Api) -> None:
    task_id, run_id = api.start_sync()
    other = "22222222-2222-4222-8222-222222222222"
    assert_error(api.get(f"/api/connections/{KEY}/tasks/{other}"), 404, other)
    assert_error(api.get(f"/api/connections/{KEY}/tasks/{task_id}/runs/{other}"), 404, other)
    assert_error(api.get(f"/api/connections/{KEY}/tasks/{other}/runs/{run_id}"), 404)
    # The task exists but under another connection.
    assert_error(api.get(f"/api/connections/databricks-analytics/tasks/{task_id}"), 404)
    assert_error(api.get(f"/api/connections/nope/tasks/{task_id}"), 404, "Connection 'nope'")
    assert_error(api.post("/api/connections/nope/tasks", json={"type": "DATA_OBJECT_SYNC"}), 404)


def test_runs_list_and_status_filter(api: Api) -> None:
    task_id, run_id = api.start_sync()
    path = f"/api/connections/{KEY}/tasks/{task_id}/runs"
    assert [r["runId"] for r in api.ok("GET", path)["runs"]] == [run_id]
    assert api.ok("GET", path, params={"filter[status]": "COMPLETED"})["runs"] == []
    api.clock.advance(10)
    assert len(api.ok("GET", path, params={"filter[status]": "COMPLETED"})["runs"]) == 1


def test_cancel_goes_canceling_then_canceled_and_takes_the_children(api: Api) -> None:
    task_id, run_id = api.start_sync()
    api.clock.advance(2)
    cancel = api.ok("POST", f"/api/connections/{KEY}/tasks/{task_id}/runs/{run_id}/_cancel")
    assert cancel["runId"] == run_id and "requested" in cancel["message"]
    run = api.run(KEY, task_id, run_id)
    assert run["status"] == "CANCELING" and run["canceledBy"] == "api-key-1"
    # Asking again while CANCELING is harmless.
    api.ok("POST", f"/api/connections/{KEY}/tasks/{task_id}/runs/{run_id}/_cancel")
    api.clock.advance(2.5)  # a quarter of the duration, at most 2 s
    run = api.run(KEY, task_id, run_id)
    assert run["status"] == "CANCELED" and run["completedAt"] == "2027-01-15T08:00:04.000Z"
    children = api.ok("GET", f"/api/connections/{KEY}/tasks", params={"filter[parentId]": task_id})[
        "tasks"
    ]
    assert {c["status"] for c in children} == {"CANCELED"}
    before = api.emulator.state.inventory.count(KEY)
    api.clock.advance(60)
    assert api.emulator.state.inventory.count(KEY) == before  # a cancelled sync changes nothing
    assert_error(
        api.post(f"/api/connections/{KEY}/tasks/{task_id}/runs/{run_id}/_cancel"),
        409,
        "Unable to cancel task run",
        "CANCELED",
    )


def test_cancel_of_a_completed_run_is_409(api: Api) -> None:
    task_id, run_id = api.start_sync()
    api.clock.advance(11)
    assert_error(
        api.post(f"/api/connections/{KEY}/tasks/{task_id}/runs/{run_id}/_cancel"), 409, "COMPLETED"
    )


def test_unhealthy_connection_sync_fails_with_auth_error(api: Api) -> None:
    task_id, run_id = api.start_sync("snowflake-legacy")
    api.clock.advance(10)
    run = api.run("snowflake-legacy", task_id, run_id)
    assert run["status"] == "FAILED"
    assert run["error"]["code"] == "CONNECTION_AUTH_FAILED"
    assert "snowflake-legacy" in run["error"]["message"]
    assert api.ok("GET", f"/api/connections/snowflake-legacy/tasks/{task_id}")["status"] == "FAILED"


def test_task_on_inactive_connection_is_409(api: Api) -> None:
    assert_error(
        api.post("/api/connections/trino-archive/tasks", json={"type": "DATA_OBJECT_SYNC"}),
        409,
        "Connection state must be ACTIVE or UNHEALTHY",
    )


def test_extra_create_fields_are_passed_through(api: Api) -> None:
    body = {"type": "DATA_OBJECT_SYNC", "note": "nightly", "options": {"depth": 2}}
    task = api.ok("POST", f"/api/connections/{KEY}/tasks", json=body)
    assert task["note"] == "nightly" and task["options"] == {"depth": 2}
    assert api.ok("GET", f"/api/connections/{KEY}/tasks/{task['taskId']}")["note"] == "nightly"


def test_behaviour_fail_duration_and_stuck(api: Api) -> None:
    admin = api.client
    behaviour = {
        "sync_duration": 2.0,
        "fail": {"code": "WAREHOUSE_SUSPENDED", "message": "Warehouse IMMUTA_WH is suspended."},
    }
    assert (
        admin.put(f"/_emulator/connections/{KEY}/behaviour", json=behaviour).json()["sync_duration"]
        == 2.0
    )
    task_id, run_id = api.start_sync()
    api.clock.advance(2)
    run = api.run(KEY, task_id, run_id)
    assert run["status"] == "FAILED"
    assert run["error"] == {
        "code": "WAREHOUSE_SUSPENDED",
        "message": "Warehouse IMMUTA_WH is suspended.",
    }
    admin.put(f"/_emulator/connections/{KEY}/behaviour", json={"stuck": True})
    task_id, run_id = api.start_sync()
    api.clock.advance(86_400)
    assert api.run(KEY, task_id, run_id)["status"] == "RUNNING"
    api.ok("POST", f"/api/connections/{KEY}/tasks/{task_id}/runs/{run_id}/_cancel")
    api.clock.advance(3)
    assert api.run(KEY, task_id, run_id)["status"] == "CANCELED"
    assert admin.get(f"/_emulator/connections/{KEY}/behaviour").json()["stuck"] is True
    admin.delete(f"/_emulator/connections/{KEY}/behaviour")
    task_id, run_id = api.start_sync()
    api.clock.advance(10)
    assert api.run(KEY, task_id, run_id)["status"] == "COMPLETED"


def test_zero_duration_sync_is_complete_at_once(api: Api) -> None:
    api.client.put(f"/_emulator/connections/{KEY}/behaviour", json={"sync_duration": 0})
    task = api.ok("POST", f"/api/connections/{KEY}/tasks", json={"type": "DATA_OBJECT_SYNC"})
    assert task["status"] == "COMPLETED"


def test_admin_clock_advance_moves_runs(api: Api) -> None:
    task_id, run_id = api.start_sync()
    api.client.post("/_emulator/clock/advance", json={"seconds": 10})
    assert api.run(KEY, task_id, run_id)["status"] == "COMPLETED"
    api.client.post("/_emulator/reset")
    assert api.emulator.now() == api.clock.now
