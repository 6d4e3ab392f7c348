"""Emulator dialects (``--dialect``): renamed run and task statuses in every answer and in
``filter[status]`` (an unknown name matches nothing), another list envelope; the shipped dialect
files in tests/dialects; and the checks on a dialect file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.emulator.cli import main as emulator_main
from immuta_provider.emulator.dialect import DOCUMENTED, RUN_STATUSES, Dialect, DialectError

from .conftest import Api

DIALECTS = Path(__file__).resolve().parents[2] / "dialects"
ACME_DATA = Dialect.load(DIALECTS / "acme-data.json")
KEY = "snowflake-prod"


@pytest.fixture
def acme(make_api: Callable[..., Api]) -> Api:
    return make_api(dialect=ACME_DATA)


def test_shipped_dialects_differ_from_api_notes_in_every_guessed_respect() -> None:
    files = sorted(DIALECTS.glob("*.json"))
    assert len(files) >= 2
    for path in files:
        dialect = Dialect.load(path)
        renamed = [dialect.status_out(status) for status in RUN_STATUSES]
        assert not set(renamed) & set(RUN_STATUSES), path  # terminal ones included
        assert dialect.items_key not in (None, "connections", "dataObjects", "tasks", "runs")
        assert dialect.cursor_at == "nextCursor"


def test_statuses_are_renamed_in_every_task_and_run_answer(acme: Api) -> None:
    base = f"/api/connections/{KEY}/tasks"
    task = acme.ok("POST", base, json={"type": "DATA_OBJECT_SYNC"})
    assert task["status"] == "QUEUED"
    task_id = task["taskId"]
    listed = acme.ok("GET", f"{base}/{task_id}/runs")
    assert set(listed) == {"data", "nextCursor"}
    run_id = listed["data"][0]["runId"]
    assert listed["data"][0]["status"] == "QUEUED"
    acme.clock.advance(2)
    assert acme.ok("GET", f"{base}/{task_id}/runs/{run_id}")["status"] == "IN_PROGRESS"
    assert acme.ok("GET", f"{base}/{task_id}")["status"] == "IN_PROGRESS"
    acme.clock.advance(60)
    run = acme.ok("GET", f"{base}/{task_id}/runs/{run_id}")
    assert run["status"] == "SUCCEEDED" and run["completedAt"]
    assert acme.ok("GET", base)["data"][0]["status"] == "SUCCEEDED"


def test_a_failed_and_a_cancelled_run_use_the_dialect_names(acme: Api) -> None:
    base = "/api/connections/snowflake-legacy/tasks"
    task = acme.ok("POST", base, json={"type": "DATA_OBJECT_SYNC"})
    acme.clock.advance(60)
    run = acme.ok("GET", f"{base}/{task['taskId']}/runs")["data"][0]
    assert run["status"] == "ERROR" and run["error"]["message"]
    task_id = acme.ok("POST", f"/api/connections/{KEY}/tasks", json={"type": "DATA_OBJECT_SYNC"})[
        "taskId"
    ]
    run_id = acme.ok("GET", f"/api/connections/{KEY}/tasks/{task_id}/runs")["data"][0]["runId"]
    acme.ok("POST", f"/api/connections/{KEY}/tasks/{task_id}/runs/{run_id}/_cancel")
    acme.clock.advance(60)
    assert acme.run(KEY, task_id, run_id)["status"] == "ABORTED"


def test_status_filters_take_the_dialect_names_and_unknown_ones_match_nothing(acme: Api) -> None:
    base = f"/api/connections/{KEY}/tasks"
    task_id = acme.ok("POST", base, json={"type": "DATA_OBJECT_SYNC"})["taskId"]
    runs = f"{base}/{task_id}/runs"

    def statuses(path: str, status: str) -> list[str]:
        body = acme.ok("GET", path, params={"filter[status]": status})
        return [item["status"] for item in body["data"]]

    queued = statuses(base, "QUEUED")  # the sync and its child tasks
    assert queued and set(queued) == {"QUEUED"}
    assert statuses(runs, "QUEUED") == ["QUEUED"]
    for documented_or_unknown in ("PENDING", "RUNNING", "COMPLETED", "nope"):
        assert statuses(base, documented_or_unknown) == []
        assert statuses(runs, documented_or_unknown) == []
    assert len(statuses(base, "SUCCEEDED")) == 1  # the seeded sync


def test_every_listing_uses_the_dialect_envelope_and_cursor(acme: Api) -> None:
    first = acme.ok("GET", "/api/connections", params={"page[limit]": 2})
    assert set(first) == {"data", "nextCursor"} and len(first["data"]) == 2
    second = acme.ok(
        "GET", "/api/connections", params={"page[limit]": 2, "page[cursor]": first["nextCursor"]}
    )
    assert {c["connectionKey"] for c in first["data"]}.isdisjoint(
        c["connectionKey"] for c in second["data"]
    )
    search = acme.ok(
        "POST",
        "/api/connections/dataObjects/_search",
        json={"connectionKey": KEY, "attributes": {}, "page": {"limit": 3}},
    )
    assert set(search) == {"data", "nextCursor"} and search["nextCursor"]
    root = search["data"][0]["id"]
    children = acme.ok("GET", f"/api/connections/{KEY}/dataObjects/{root}/children")
    assert set(children) == {"data", "nextCursor"}


def test_the_default_dialect_is_unchanged(api: Api) -> None:
    assert set(api.ok("GET", "/api/connections")) == {"connections", "page"}
    response = api.get(f"/api/connections/{KEY}/tasks", params={"filter[status]": "DONE"})
    assert response.status_code == 400 and "filter[status]" in response.json()["message"]
    assert DOCUMENTED.is_documented and not ACME_DATA.is_documented


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ([], "expected an object"),
        ({"statuses": {"DONE": "X"}}, "maps documented statuses"),
        ({"statuses": {"COMPLETED": "FAILED"}}, "distinct non-empty"),
        ({"statuses": {"COMPLETED": ""}}, "distinct non-empty"),
        ({"envelope": {"items": ""}}, "must be a key name"),
        ({"envelope": {"cursor": "next"}}, "'cursor' is one of"),
        ({"envelope": {"page": 1}}, "'envelope' has"),
        ({"colour": "blue"}, "expected an object"),
    ],
)
def test_a_bad_dialect_says_what_to_fix(data: Any, said: str) -> None:
    with pytest.raises(DialectError, match=said):
        Dialect.from_dict(data)


def test_the_command_line_refuses_a_bad_dialect_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"envelope": {"cursor": "elsewhere"}}))
    assert emulator_main(["--dialect", str(path), "--port", "0"]) == 2
    assert "Cannot use --dialect" in capsys.readouterr().err
