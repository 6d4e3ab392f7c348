"""Validation (400), auth (401) and routing errors, all with the JSON error body."""

from __future__ import annotations

import uuid

import pytest

from .conftest import Api

RUN_PATH = "/api/connections/snowflake-prod/tasks/{task}/runs/{run}"


def assert_error(response: object, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"statusCode", "error", "message"}
    assert body["statusCode"] == status
    for fragment in fragments:
        assert fragment in body["message"], body["message"]


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("bad key", "only letters, numbers, hyphens, and underscores"),
        ("dots.are.bad", "only letters"),
        ("sync", "reserved"),
        ("bulk", "reserved"),
        ("upgrade", "reserved"),
    ],
)
def test_bad_connection_keys_in_paths_are_400(api: Api, key: str, fragment: str) -> None:
    for method, suffix in [("GET", ""), ("POST", "/_activate"), ("GET", "/tasks")]:
        response = api.request(method, f"/api/connections/{key}{suffix}")
        assert_error(response, 400, fragment, repr(key))


def test_reserved_names_are_exact_matches(api: Api) -> None:
    # "sync-jobs" contains a reserved word but is not one: a 404 (unknown), not a 400.
    assert_error(api.get("/api/connections/sync-jobs"), 404, "sync-jobs")


def test_bad_connection_key_in_bodies_is_400(api: Api) -> None:
    for key in ("with space", "search"):
        create = {"connectionKey": key, "technology": "Snowflake", "clientConfiguration": {}}
        assert_error(api.post("/api/connections", json=create), 400, "connectionKey")
        search = {"connectionKey": key}
        assert_error(api.post("/api/connections/dataObjects/_search", json=search), 400, key)


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-uuid",
        "12345678-1234-0234-8234-123456789012",  # version nibble 0
        "12345678-1234-4234-c234-123456789012",  # variant c
        "12345678123442348234123456789012",  # no hyphens
    ],
)
def test_bad_uuids_are_400(api: Api, bad: str) -> None:
    good = str(uuid.uuid4())
    assert_error(api.get(RUN_PATH.format(task=bad, run=good)), 400, "taskId", "UUID")
    assert_error(api.get(RUN_PATH.format(task=good, run=bad)), 400, "runId", "UUID")
    assert_error(api.get(f"/api/connections/snowflake-prod/tasks/{bad}"), 400, "taskId")
    assert_error(api.get(f"/api/connections/snowflake-prod/dataObjects/{bad}"), 400, "id")
    assert_error(
        api.get("/api/connections/snowflake-prod/tasks", params={"filter[parentId]": bad}),
        400,
        "parentId",
    )


def test_a_trailing_newline_is_not_part_of_a_valid_identifier(api: Api) -> None:
    task_id, run_id = api.start_sync()
    assert_error(api.get(RUN_PATH.format(task=task_id, run=run_id + "%0A")), 400, "runId")
    assert_error(api.get(RUN_PATH.format(task=task_id + "%0A", run=run_id)), 400, "taskId")
    assert_error(api.get("/api/connections/snowflake-prod%0A"), 400, "connectionKey")
    body = {"connectionKey": "snowflake-prod\n"}
    assert_error(api.post("/api/connections/dataObjects/_search", json=body), 400)


def test_nil_uuid_is_valid_and_simply_not_found(api: Api) -> None:
    nil = "00000000-0000-0000-0000-000000000000"
    assert_error(api.get(RUN_PATH.format(task=nil, run=nil)), 404, nil)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "2.5"])
def test_page_limit_out_of_range_is_400(api: Api, limit: str) -> None:
    response = api.get("/api/connections", params={"page[limit]": limit})
    assert_error(response, 400, "page[limit]", "between 1 and 100")


@pytest.mark.parametrize("limit", [0, 101])
def test_search_page_limit_out_of_range_is_400(api: Api, limit: int) -> None:
    body = {"connectionKey": "snowflake-prod", "page": {"limit": limit}}
    response = api.post("/api/connections/dataObjects/_search", json=body)
    assert_error(response, 400, "page[limit]")


def test_page_limit_bounds_are_accepted(api: Api) -> None:
    for limit in ("1", "100"):
        assert api.get("/api/connections", params={"page[limit]": limit}).status_code == 200


@pytest.mark.parametrize("cursor", ["!!!", "bm90IGpzb24=", "eyJpZCI6IjEyMzQ1In0="])
def test_cursor_that_is_not_ours_is_400(api: Api, cursor: str) -> None:
    response = api.get("/api/connections", params={"page[cursor]": cursor})
    assert_error(response, 400, "page[cursor]")


def test_bodies_that_are_not_json_objects_are_400(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(api.post("/api/connections", content=b"{", headers=headers), 400, "JSON")
    assert_error(api.post("/api/connections", content=b"", headers=headers), 400)
    assert_error(api.post("/api/connections", json=[1, 2]), 400)


def test_task_type_other_than_sync_is_400(api: Api) -> None:
    for body in ({"type": "CONNECTION_DELETE"}, {"type": "nope"}, {}):
        response = api.post("/api/connections/snowflake-prod/tasks", json=body)
        assert_error(response, 400, "type")


def test_unknown_filter_values_are_400(api: Api) -> None:
    tasks = "/api/connections/snowflake-prod/tasks"
    assert_error(api.get(tasks, params={"filter[status]": "DONE"}), 400, "filter[status]")
    assert_error(api.get(tasks, params={"filter[type]": "X"}), 400, "filter[type]")


def test_search_unknown_attribute_is_400(api: Api) -> None:
    body = {"connectionKey": "snowflake-prod", "attributes": {"colour": "blue"}}
    assert_error(api.post("/api/connections/dataObjects/_search", json=body), 400, "colour")


def test_patch_of_read_only_or_unknown_fields_is_400(api: Api) -> None:
    path = "/api/connections/snowflake-prod"
    assert_error(api.patch(path, json={"technology": "Trino"}), 400, "technology")
    assert_error(api.patch(path, json={"clientConfiguration": "x"}), 400)
    [table] = api.search("snowflake-prod", name="ORDERS", parentId=None) or [None]
    obj = api.search("snowflake-prod", type="table")[0]
    object_path = f"/api/connections/snowflake-prod/dataObjects/{obj['id']}"
    assert_error(api.patch(object_path, json={"remoteId": "X.Y.Z"}), 400, "remoteId")
    assert_error(api.patch(object_path, json={"name": ""}), 400, "name")
    assert table is None  # databases are not named ORDERS: the search filters exactly


def test_missing_or_wrong_api_key_is_401(api: Api) -> None:
    client = api.client
    for headers in (
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": "Basic aW1tdXRhLWRlbW8ta2V5"},
        {"Authorization": "immuta-demo-key-but-not-quite"},
        {"Authorization": "Bearer "},
    ):
        response = client.get("/api/connections", headers=headers)
        assert_error(response, 401, "API key")
        assert response.headers["www-authenticate"] == "Bearer"


def test_bearer_scheme_is_case_insensitive(api: Api) -> None:
    response = api.client.get(
        "/api/connections", headers={"Authorization": "bearer immuta-demo-key"}
    )
    assert response.status_code == 200


def test_every_configured_key_works_and_names_its_principal(make_api: object) -> None:
    api = make_api(api_keys=("key-one", "key-two"))  # type: ignore[operator]
    for number, key in enumerate(("key-one", "key-two"), start=1):
        response = api.client.post(
            "/api/connections/snowflake-prod/tasks",
            json={"type": "DATA_OBJECT_SYNC"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200
        assert response.json()["createdBy"] == f"api-key-{number}"
    assert (
        api.client.get(
            "/api/connections", headers={"Authorization": "Bearer immuta-demo-key"}
        ).status_code
        == 401
    )


def test_auth_is_checked_before_validation(api: Api) -> None:
    assert_error(api.client.get("/api/connections/bad key"), 401)


def test_unknown_route_and_method_are_json_errors(api: Api) -> None:
    assert_error(api.get("/api/nothing-here"), 404, "/api/nothing-here")
    assert_error(api.get("/api/connections/"), 404)
    response = api.request("PUT", "/api/connections")
    assert_error(response, 405, "PUT")
    assert "GET" in response.headers["allow"]


def test_admin_api_needs_no_key_and_validates_its_input(api: Api) -> None:
    assert api.client.get("/_emulator/health").json()["status"] == "ok"
    assert_error(
        api.client.post("/_emulator/faults", json={"path": "("}), 400, "regular expression"
    )
    assert_error(api.client.post("/_emulator/faults", json={"method": "GET"}), 400, "at least one")
    assert_error(api.client.post("/_emulator/faults", json={"status": 503, "colour": 1}), 400)
    assert_error(
        api.client.put("/_emulator/connections/sync/behaviour", json={"stuck": True}),
        400,
        "reserved",
    )
