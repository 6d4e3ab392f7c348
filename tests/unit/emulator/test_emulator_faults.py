"""Fault injection (each kind), counters and the admin fault API, in-process."""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.emulator.cli import load_faults_file
from immuta_provider.emulator.middleware import DroppedConnection

from .conftest import Api
from .test_emulator_validation import assert_error

CONNECTION = "/api/connections/snowflake-prod"


def add_fault(api: Api, **spec: Any) -> str:
    response = api.client.post("/_emulator/faults", json=spec)
    assert response.status_code == 200, response.text
    fault_id: str = response.json()["id"]
    return fault_id


def counters(api: Api) -> dict[str, Any]:
    result: dict[str, Any] = api.client.get("/_emulator/counters").json()
    return result


def test_status_fault_for_the_next_n_requests(api: Api) -> None:
    fault = add_fault(
        api, method="GET", path="^/api/connections/snowflake-prod$", status=503, count=2
    )
    assert_error(api.get(CONNECTION), 503, "unavailable")
    assert_error(api.get(CONNECTION), 503)
    assert api.get(CONNECTION).status_code == 200
    # Other methods and paths were never affected.
    assert api.get("/api/connections/databricks-analytics").status_code == 200
    seen = counters(api)
    assert seen["requests"][f"GET {CONNECTION}"] == 3
    assert seen["by_route"]["GET /api/connections/{connectionKey}"] == 4
    assert seen["faults"] == {fault: 2}
    assert seen["faults_by_kind"] == {"status_503": 2}
    [listed] = api.client.get("/_emulator/faults").json()["faults"]
    assert listed["remaining"] == 0 and listed["fired"] == 2


@pytest.mark.parametrize("status", [401, 403, 404, 409, 500, 502, 504])
def test_status_faults_answer_with_the_json_error_body(api: Api, status: int) -> None:
    add_fault(api, path="/tasks$", status=status, message="injected for the test")
    response = api.post(f"{CONNECTION}/tasks", json={"type": "DATA_OBJECT_SYNC"})
    assert_error(response, status, "injected for the test")
    # The fault answered before the route: no task was created.
    assert counters(api)["tasks_created"] == {}


def test_rate_limit_with_retry_after_seconds_and_http_date(api: Api) -> None:
    add_fault(api, status=429, retry_after="2", count=1)
    response = api.get(CONNECTION)
    assert_error(response, 429, "Rate limit")
    assert response.headers["retry-after"] == "2"
    add_fault(api, status=429, retry_after_date=30, count=1)
    response = api.get(CONNECTION)
    when = parsedate_to_datetime(response.headers["retry-after"]).timestamp()
    assert 25 < when - time.time() <= 31
    fixed = "Wed, 21 Oct 2037 07:28:00 GMT"
    add_fault(api, status=503, retry_after=fixed, count=1)
    assert api.get(CONNECTION).headers["retry-after"] == fixed


def test_latency_fault_delays_then_answers_normally(api: Api) -> None:
    add_fault(api, method="GET", path="snowflake-prod$", latency=0.3, count=1)
    started = time.perf_counter()
    assert api.get(CONNECTION).status_code == 200
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    api.get(CONNECTION)
    assert time.perf_counter() - started < 0.3
    assert counters(api)["faults_by_kind"] == {"latency": 1}


def test_html_fault_is_a_proxy_page(api: Api) -> None:
    add_fault(api, body="html", count=1)
    response = api.get(CONNECTION)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<html>") and "Bad Gateway" in response.text


def test_malformed_json_fault_truncates_the_real_answer(api: Api) -> None:
    task_id, run_id = api.start_sync()
    path = f"{CONNECTION}/tasks/{task_id}/runs/{run_id}"
    add_fault(api, path="/runs/", body="malformed_json", count=1)
    response = api.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text.startswith('{"runId":')
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(ValueError):
        json.loads(response.text)
    assert api.get(path).json()["runId"] == run_id


def test_malformed_json_on_create_still_creates(api: Api) -> None:
    add_fault(api, method="POST", path="/tasks$", body="malformed_json", count=1)
    response = api.post(f"{CONNECTION}/tasks", json={"type": "DATA_OBJECT_SYNC"})
    with pytest.raises(ValueError):
        response.json()
    assert counters(api)["tasks_created"] == {"snowflake-prod": 1}


def test_drop_fault_without_a_server_transport_raises(api: Api) -> None:
    # Over a real socket the connection is closed (see the process tests); in-process there is
    # no socket, so the app raises instead of answering anything.
    add_fault(api, drop=True, count=1)
    with pytest.raises(DroppedConnection):
        api.get(CONNECTION)
    assert counters(api)["faults_by_kind"] == {"drop": 1}


def test_drop_answer_fault_does_the_work_then_drops_the_answer(api: Api) -> None:
    # In-process there is no socket to close: the app raises once the route has done its work.
    add_fault(api, method="POST", path="/tasks$", drop_answer=True, count=1)
    with pytest.raises(DroppedConnection):
        api.post(f"{CONNECTION}/tasks", json={"type": "DATA_OBJECT_SYNC"})
    assert counters(api)["tasks_created"] == {"snowflake-prod": 1}
    assert counters(api)["faults_by_kind"] == {"drop_answer": 1}
    listed = api.get("/_emulator/faults").json()["faults"]
    assert listed[0]["drop_answer"] is True and listed[0]["fired"] == 1


def test_probability_zero_never_fires_and_one_always_does(api: Api) -> None:
    never = add_fault(api, status=500, probability=0.0)
    for _ in range(20):
        assert api.get(CONNECTION).status_code == 200
    api.client.delete(f"/_emulator/faults/{never}")
    add_fault(api, status=500, probability=1.0)
    assert all(api.get(CONNECTION).status_code == 500 for _ in range(5))


def test_half_probability_fires_sometimes(api: Api) -> None:
    add_fault(api, status=500, probability=0.5)
    statuses = [api.get(CONNECTION).status_code for _ in range(60)]
    assert 0 < statuses.count(500) < 60


def test_first_matching_fault_wins_and_admin_paths_are_never_faulted(api: Api) -> None:
    add_fault(api, path="/api/", status=502, count=1)
    add_fault(api, path="/api/", status=504, count=1)
    add_fault(api, path=".*", status=500)  # would break the admin API if it applied there
    assert api.get(CONNECTION).status_code == 502
    assert api.get(CONNECTION).status_code == 504
    assert api.get(CONNECTION).status_code == 500
    assert api.client.get("/_emulator/counters").status_code == 200
    assert api.client.delete("/_emulator/faults").json() == {"cleared": 3}
    assert api.get(CONNECTION).status_code == 200


def test_faults_apply_before_auth(api: Api) -> None:
    add_fault(api, status=503, count=1)
    assert api.client.get(CONNECTION).status_code == 503  # no key, yet the "proxy" answered
    assert api.client.get(CONNECTION).status_code == 401


def test_reset_clears_faults_counters_and_state(api: Api) -> None:
    add_fault(api, status=500)
    api.client.put("/_emulator/connections/snowflake-prod/behaviour", json={"stuck": True})
    api.get(CONNECTION)
    api.client.delete("/_emulator/faults")
    api.ok("POST", "/api/connections/trino-archive/_activate")
    add_fault(api, status=500)
    assert api.client.post("/_emulator/reset").json() == {"status": "reset"}
    assert api.client.get("/_emulator/faults").json() == {"faults": []}
    assert counters(api) == {
        "requests": {},
        "by_route": {},
        "faults": {},
        "faults_by_kind": {},
        "tasks_created": {},
        "child_tasks_created": {},
        "auth": {
            "mode": "any",
            "token_ttl": 3600.0,
            "exchanges": 0,
            "exchanges_refused": 0,
            "unauthorized": {},
        },
    }
    assert api.ok("GET", "/api/connections/trino-archive")["state"] == "INACTIVE"
    assert (
        api.client.get("/_emulator/connections/snowflake-prod/behaviour").json()["stuck"] is False
    )


def test_unmatched_requests_are_counted_too(api: Api) -> None:
    api.get("/api/unknown")
    api.client.get("/api/connections")  # a 401 still counts
    seen = counters(api)
    assert seen["by_route"] == {"GET <unmatched>": 1, "GET /api/connections": 1}


def test_faults_file_list_and_object_forms(tmp_path: Path, make_api: Any) -> None:
    plain = tmp_path / "faults.json"
    plain.write_text(json.dumps([{"path": "/runs/", "status": 503, "count": 3}]))
    faults, behaviours = load_faults_file(plain)
    assert [f.status for f in faults] == [503] and behaviours == {}
    full = tmp_path / "full.json"
    full.write_text(
        json.dumps(
            {
                "faults": [{"method": "post", "path": "/_validate$", "drop": True}],
                "behaviours": {"snowflake-prod": {"stuck": True}},
            }
        )
    )
    faults, behaviours = load_faults_file(full)
    assert faults[0].method == "POST" and faults[0].kind == "drop"
    assert behaviours["snowflake-prod"].stuck
    api = make_api(faults=faults, behaviours=behaviours)
    [listed] = api.client.get("/_emulator/faults").json()["faults"]
    assert listed["drop"] is True and listed["path"] == "/_validate$"
    with pytest.raises(DroppedConnection):
        api.post(f"{CONNECTION}/_validate")
    task_id, run_id = api.start_sync()
    api.clock.advance(3600)
    assert api.run("snowflake-prod", task_id, run_id)["status"] == "RUNNING"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fault": []}))
    with pytest.raises(ValueError):
        load_faults_file(bad)
