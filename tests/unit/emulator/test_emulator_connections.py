"""Connections: the demo seed, listing, create, update, state rules (409s), validate, delete."""

from __future__ import annotations

from typing import Any

from .conftest import START, Api
from .test_emulator_validation import assert_error

NEW = {
    "connectionKey": "new-warehouse",
    "technology": "Snowflake",
    "clientConfiguration": {"hostname": "new.snowflakecomputing.com", "password": "pw-1"},
}


def test_demo_seed_has_one_connection_in_each_state(api: Api) -> None:
    connections = api.ok("GET", "/api/connections")["connections"]
    states = {c["connectionKey"]: c["state"] for c in connections}
    assert states == {
        "snowflake-prod": "ACTIVE",
        "databricks-analytics": "ACTIVE",
        "trino-archive": "INACTIVE",
        "snowflake-legacy": "UNHEALTHY",
    }
    legacy = api.ok("GET", "/api/connections/snowflake-legacy")
    assert legacy["health"]["client"]["status"] == "UNHEALTHY"
    assert api.emulator.state.inventory.count("snowflake-prod") > 100
    assert 200 <= len(api.emulator.state.inventory) <= 600


def test_secrets_are_redacted_at_any_depth(api: Api) -> None:
    body = dict(NEW, clientConfiguration={"auth": {"privateKey": "k", "user": "u"}, "token": "t"})
    created = api.ok("POST", "/api/connections", json=body)
    assert created["clientConfiguration"] == {
        "auth": {"privateKey": "[REDACTED]", "user": "u"},
        "token": "[REDACTED]",
    }
    for connection in api.ok("GET", "/api/connections")["connections"]:
        secrets = [
            v for k, v in connection["clientConfiguration"].items() if "pass" in k or k == "token"
        ]
        assert secrets and set(secrets) == {"[REDACTED]"}


def test_list_envelope_and_cursor_pagination(api: Api) -> None:
    for index in range(7):
        api.ok("POST", "/api/connections", json=dict(NEW, connectionKey=f"extra-{index}"))
    keys: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"page[limit]": 3}
        if cursor:
            params["page[cursor]"] = cursor
        body = api.ok("GET", "/api/connections", params=params)
        assert set(body) == {"connections", "page"} and set(body["page"]) == {"nextCursor"}
        keys += [c["connectionKey"] for c in body["connections"]]
        pages += 1
        cursor = body["page"]["nextCursor"]
        if cursor is None:
            break
    assert pages == 4  # 11 connections, 3 a page, no empty last page
    assert len(keys) == len(set(keys)) == 11
    assert keys[:4] == [
        "snowflake-prod",
        "databricks-analytics",
        "trino-archive",
        "snowflake-legacy",
    ]


def test_create_connection(api: Api) -> None:
    created = api.ok("POST", "/api/connections", json=NEW)
    assert created["state"] == "ACTIVE"
    assert created["createdBy"] == "api-key-1"
    assert created["policyConfiguration"] == {"enabled": False}
    assert {c["status"] for c in created["health"].values()} == {"UNKNOWN"}
    assert api.ok("GET", "/api/connections/new-warehouse")["createdAt"] == created["createdAt"]
    assert_error(
        api.post("/api/connections", json=NEW), 409, "Unable to create connection", "already exists"
    )


def test_get_unknown_connection_is_404(api: Api) -> None:
    assert_error(api.get("/api/connections/nope"), 404, "Connection 'nope' not found")


def test_patch_merges_keeps_redacted_secrets_and_dry_run_changes_nothing(api: Api) -> None:
    path = "/api/connections/snowflake-prod"
    before = api.ok("GET", path)
    dry = api.ok(
        "PATCH",
        path,
        params={"dryRun": "true"},
        json={"clientConfiguration": {"warehouse": "BIG_WH"}},
    )
    assert dry["clientConfiguration"]["warehouse"] == "BIG_WH"
    assert api.ok("GET", path) == before
    api.clock.advance(5)
    # Sending back what GET returned (secrets as [REDACTED]) keeps the stored secret.
    changed = api.ok(
        "PATCH",
        path,
        json={"clientConfiguration": {**before["clientConfiguration"], "warehouse": "BIG_WH"}},
    )
    assert changed["clientConfiguration"]["warehouse"] == "BIG_WH"
    assert changed["updatedAt"] != before["updatedAt"]
    stored = api.emulator.state.connections["snowflake-prod"].client_configuration
    assert stored["password"] == "demo-snowflake-password"
    assert changed["state"] == "ACTIVE"
    assert api.ok("PATCH", path, json={"auditConfiguration": {"enabled": False}})[
        "auditConfiguration"
    ] == {"enabled": False}


def test_patch_with_new_credentials_heals_an_unhealthy_connection(api: Api) -> None:
    path = "/api/connections/snowflake-legacy"
    healed = api.ok("PATCH", path, json={"clientConfiguration": {"password": "new-good-password"}})
    assert healed["state"] == "ACTIVE"
    assert healed["health"]["client"]["status"] == "HEALTHY"
    broken = api.ok("PATCH", path, json={"clientConfiguration": {"password": "invalid-again"}})
    assert broken["state"] == "UNHEALTHY"


def test_patch_needs_active_or_unhealthy(api: Api) -> None:
    assert_error(
        api.patch("/api/connections/trino-archive", json={"clientConfiguration": {"port": 1}}),
        409,
        "Unable to update connection. Connection state must be ACTIVE or UNHEALTHY to be updated.",
    )


def test_activate_and_deactivate_follow_the_state_rules(api: Api) -> None:
    assert_error(
        api.post("/api/connections/snowflake-prod/_activate"),
        409,
        "Unable to activate connection. Connection state must be INACTIVE to be activated.",
    )
    assert api.ok("POST", "/api/connections/trino-archive/_activate")["state"] == "ACTIVE"
    assert api.ok("POST", "/api/connections/trino-archive/_deactivate")["state"] == "INACTIVE"
    assert_error(
        api.post("/api/connections/trino-archive/_deactivate"),
        409,
        "Connection state must be ACTIVE or UNHEALTHY to be deactivated.",
    )
    assert api.ok("POST", "/api/connections/snowflake-legacy/_deactivate")["state"] == "INACTIVE"


def test_validate_checks_enabled_components_and_persists_health(api: Api) -> None:
    api.clock.advance(60)
    healthy = api.ok("POST", "/api/connections/snowflake-prod/_validate")
    assert healthy["state"] == "ACTIVE"
    assert {h["status"] for h in healthy["health"].values()} == {"HEALTHY"}
    assert healthy["health"]["client"]["checkedAt"].startswith("2027-01-15T08:01:00")
    legacy = api.ok("POST", "/api/connections/snowflake-legacy/_validate")
    assert legacy["state"] == "UNHEALTHY"
    assert legacy["health"]["client"]["status"] == "UNHEALTHY"
    assert "rejected the credentials" in legacy["health"]["client"]["message"]
    # Trino's audit component is disabled: validation leaves it as it was.
    trino_before = api.ok("GET", "/api/connections/trino-archive")["health"]["audit"]
    trino = api.ok("POST", "/api/connections/trino-archive/_validate")
    assert trino["state"] == "INACTIVE" and trino["health"]["audit"] == trino_before
    assert api.ok("GET", "/api/connections/snowflake-legacy")["health"] == legacy["health"]


def test_validate_a_new_connection_with_bad_credentials_makes_it_unhealthy(api: Api) -> None:
    api.ok(
        "POST", "/api/connections", json=dict(NEW, clientConfiguration={"password": "invalid-pw"})
    )
    assert api.ok("POST", "/api/connections/new-warehouse/_validate")["state"] == "UNHEALTHY"


def test_delete_needs_inactive_then_completes_as_a_task(api: Api) -> None:
    assert_error(
        api.delete("/api/connections/snowflake-prod"),
        409,
        "Unable to delete connection. Connection state must be INACTIVE to be deleted.",
    )
    response = api.delete("/api/connections/trino-archive")
    assert response.status_code == 202
    task_id = response.json()["taskId"]
    assert set(response.json()) == {"taskId"}
    task = api.ok("GET", f"/api/connections/trino-archive/tasks/{task_id}")
    assert task["type"] == "CONNECTION_DELETE" and task["status"] == "PENDING"
    assert_error(api.delete("/api/connections/trino-archive"), 409, "in progress")
    assert_error(api.post("/api/connections/trino-archive/_activate"), 409, "being deleted")
    # Still there while the deletion runs.
    assert api.ok("GET", "/api/connections/trino-archive")["state"] == "INACTIVE"
    api.clock.advance(10)
    assert_error(api.get("/api/connections/trino-archive"), 404)
    assert api.emulator.state.inventory.count("trino-archive") == 0
    # The deletion task stays visible so that its caller can see it complete.
    assert api.ok("GET", f"/api/connections/trino-archive/tasks/{task_id}")["status"] == "COMPLETED"
    [run] = api.ok("GET", f"/api/connections/trino-archive/tasks/{task_id}/runs")["runs"]
    assert run["status"] == "COMPLETED" and run["completedAt"]
    assert [
        t["taskId"] for t in api.ok("GET", "/api/connections/trino-archive/tasks")["tasks"]
    ] == [task_id]
    assert_error(
        api.get("/api/connections/trino-archive/tasks/" + "0" * 8 + "-0000-4000-8000-" + "0" * 12),
        404,
    )
    # The key can be used again, with a clean history.
    api.ok("POST", "/api/connections", json=dict(NEW, connectionKey="trino-archive"))
    assert api.ok("GET", "/api/connections/trino-archive/tasks")["tasks"] == []


def test_a_cancelled_deletion_deletes_nothing(api: Api) -> None:
    task_id = api.ok("DELETE", "/api/connections/trino-archive", status=202)["taskId"]
    [run] = api.ok("GET", f"/api/connections/trino-archive/tasks/{task_id}/runs")["runs"]
    api.ok("POST", f"/api/connections/trino-archive/tasks/{task_id}/runs/{run['runId']}/_cancel")
    api.clock.advance(60)
    assert api.run("trino-archive", task_id, run["runId"])["status"] == "CANCELED"
    assert api.ok("GET", "/api/connections/trino-archive")["connectionKey"] == "trino-archive"


def test_timestamps_are_iso_8601_utc(api: Api) -> None:
    created = api.ok("POST", "/api/connections", json=NEW)
    assert created["createdAt"] == "2027-01-15T08:00:00.000Z"
    assert START == 1_800_000_000.0
