"""immuta-doctor over ``httpx.MockTransport``: a small fake tenant whose answers each test bends
(status names, envelopes, missing fields, errors), and what the doctor reports, suggests and exits
with. The doctor against the real emulator process is in tests/integration/test_tenant_dialects.py.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from immuta_provider.doctor.checks import StatusSets, Target, run_checks
from immuta_provider.doctor.cli import main
from immuta_provider.doctor.probe import ReadOnlyTransport, RefusedRequest, is_read_only
from immuta_provider.doctor.report import Report

URL = "https://acme.hosted.immutacloud.com"
KEY = "DOCTOR-CANARY-KEY-5b1e7d"
T1 = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
T2 = "4a1f8c0b-2d3e-4f60-9bac-1d2e3f4a5b6c"
R1 = "00000000-0000-4000-8000-000000000001"
R2 = "00000000-0000-4000-8000-000000000002"
DB = "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
SCHEMA = "1b2c3d4e-5f60-4b7c-8d9e-8f7a6b5c4d3e"
AT = "2026-11-29T10:00:00Z"


def tenant_data() -> dict[str, Any]:
    """One connection, two sync tasks (one completed, one failed), a database and a schema."""
    return {
        "connections": [
            {"connectionKey": "snowflake-prod", "technology": "Snowflake", "state": "ACTIVE"},
            {"connectionKey": "trino-archive", "technology": "Trino", "state": "INACTIVE"},
        ],
        "tasks": [
            {"taskId": T1, "type": "DATA_OBJECT_SYNC", "status": "COMPLETED", "trigger": "MANUAL"},
            {"taskId": T2, "type": "DATA_OBJECT_SYNC", "status": "FAILED", "trigger": "SCHEDULED"},
        ],
        "runs": {
            T1: [{"runId": R1, "taskId": T1, "status": "COMPLETED", "completedAt": AT}],
            T2: [
                {
                    "runId": R2,
                    "taskId": T2,
                    "status": "FAILED",
                    "completedAt": AT,
                    "error": {"code": "AUTH", "message": "Snowflake rejected the credentials"},
                }
            ],
        },
        "objects": [
            {"id": DB, "connectionKey": "snowflake-prod", "type": "database", "parentId": None},
            {"id": SCHEMA, "connectionKey": "snowflake-prod", "type": "schema", "parentId": DB},
        ],
    }


class FakeTenant:
    """A MockTransport handler serving ``data`` with a chosen list envelope.

    ``envelope``: ``"documented"`` ({"<key>": [...], "page": {"nextCursor"}}), ``"data"``
    ({"data": [...], "nextCursor"}), ``"no-cursor"`` (documented, but never a cursor) or
    ``"unreadable"`` ({"results": {...}, "total": n}). Records every request (method, path).
    """

    def __init__(self, data: dict[str, Any] | None = None, envelope: str = "documented") -> None:
        self.data = data or tenant_data()
        self.envelope = envelope
        self.requests: list[tuple[str, str]] = []
        self.status: int | None = None
        self.error_body: dict[str, Any] = {}

    def _list(self, key: str, items: list[Any], request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            page = json.loads(request.content).get("page", {})
            limit, cursor = page.get("limit", 20), page.get("cursor")
        else:
            query = parse_qs(request.url.query.decode())
            limit = int(query.get("page[limit]", ["20"])[0])
            cursor = query.get("page[cursor]", [None])[0]
        start = int(cursor) if cursor else 0
        chunk = items[start : start + limit]
        after = str(start + limit) if start + limit < len(items) else None
        if self.envelope == "data":
            return httpx.Response(200, json={"data": chunk, "nextCursor": after})
        if self.envelope == "no-cursor":
            return httpx.Response(200, json={key: chunk})
        if self.envelope == "unreadable":
            return httpx.Response(200, json={"results": {"x": chunk}, "total": len(items)})
        return httpx.Response(200, json={key: chunk, "page": {"nextCursor": after}})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append((request.method, path))
        if self.status is not None:
            return httpx.Response(self.status, json=self.error_body)
        parts = path.strip("/").split("/")[2:]  # after "api/connections"
        data = self.data
        if parts == []:
            return self._list("connections", data["connections"], request)
        if parts == ["dataObjects", "_search"]:
            return self._list("dataObjects", data["objects"], request)
        key = parts[0]
        if len(parts) == 1:
            found = [c for c in data["connections"] if c["connectionKey"] == key]
            return httpx.Response(200, json=found[0]) if found else httpx.Response(404, json={})
        if parts[1] == "tasks" and len(parts) == 2:
            tasks = data["tasks"] if key == "snowflake-prod" else []
            return self._list("tasks", tasks, request)
        if parts[1] == "tasks" and len(parts) == 3:
            return httpx.Response(
                200, json=next(t for t in data["tasks"] if t["taskId"] == parts[2])
            )
        if parts[1] == "tasks" and len(parts) == 4:
            return self._list("runs", data["runs"][parts[2]], request)
        if parts[1] == "tasks" and len(parts) == 5:
            return httpx.Response(
                200, json=next(r for r in data["runs"][parts[2]] if r["runId"] == parts[4])
            )
        if parts[1] == "dataObjects" and parts[-1] == "children":
            children = [o for o in data["objects"] if o["parentId"] == parts[2]]
            return self._list("dataObjects", children, request)
        return httpx.Response(404, json={"message": f"no route {path}"})


def doctor(tenant: FakeTenant, **target: Any) -> Report:
    return run_checks(Target(URL, KEY, **target), transport=httpx.MockTransport(tenant))


def by_name(report: Report) -> dict[str, Any]:
    return {check.name: check for check in report.checks}


def rename_statuses(data: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for item in data["tasks"] + [r for runs in data["runs"].values() for r in runs]:
        item["status"] = names.get(item["status"], item["status"])
    return data


# --- what it reports --------------------------------------------------------------------------


def test_a_tenant_that_fits_reports_only_ok_and_exits_0() -> None:
    report = doctor(FakeTenant())
    assert [c.name for c in report.checks if c.result != "ok"] == []
    assert report.exit_code == 0 and report.suggested_extras == {}
    checks = by_name(report)
    assert "the next cursor was followed" in checks["list envelope: list_connections"].detail
    assert "each with error.message" in checks["failure reasons"].detail
    assert {
        "list envelope: list_tasks",
        "list envelope: list_task_runs",
        "list envelope: search_data_objects",
        "list envelope: list_data_object_children",
        "fields: connection",
        "fields: task",
        "fields: task run",
        "fields: data object",
        "connection states",
        "task types",
        "task triggers",
        "run statuses",
        "ended runs carry completedAt",
    } <= set(checks)


def test_renamed_ended_statuses_fail_and_suggest_the_status_extras() -> None:
    data = rename_statuses(tenant_data(), {"COMPLETED": "SUCCEEDED", "FAILED": "ERRORED"})
    report = doctor(FakeTenant(data))
    check = by_name(report)["run statuses"]
    assert check.result == "fail"
    assert "SUCCEEDED (1, ended)" in check.detail and "ERRORED (1, ended)" in check.detail
    assert "SUCCEEDED, ERRORED" in check.advice and "success_statuses" in check.advice
    assert report.suggested_extras == {
        "success_statuses": ["COMPLETED", "SUCCEEDED"],
        "failure_statuses": ["FAILED", "CANCELED", "ERRORED"],
    }
    assert report.exit_code == 1
    # The failed runs' reason is found under the renamed failure status too.
    assert by_name(report)["failure reasons"].result == "ok"


def test_configured_status_names_make_the_same_tenant_fit() -> None:
    data = rename_statuses(tenant_data(), {"COMPLETED": "SUCCEEDED", "FAILED": "ERRORED"})
    statuses = StatusSets(success=("SUCCEEDED",), failure=("ERRORED",), active=("QUEUED",))
    report = doctor(FakeTenant(data), statuses=statuses)
    assert by_name(report)["run statuses"].result == "ok"
    assert report.exit_code == 0 and report.suggested_extras == {}


def test_an_unknown_status_without_completed_at_warns_and_suggests_active_statuses() -> None:
    data = tenant_data()
    data["runs"][T1][0].update(status="IN_PROGRESS", completedAt=None)
    report = doctor(FakeTenant(data))
    check = by_name(report)["run statuses"]
    assert check.result == "warn" and "active_statuses" in check.advice
    assert report.suggested_extras == {
        "active_statuses": ["PENDING", "RUNNING", "CANCELING", "IN_PROGRESS"]
    }
    assert report.exit_code == 0


def test_ended_runs_without_completed_at_warn() -> None:
    data = tenant_data()
    data["runs"][T1][0]["completedAt"] = None
    check = by_name(doctor(FakeTenant(data)))["ended runs carry completedAt"]
    assert check.result == "warn" and "1 of 2 ended runs have no completedAt" in check.detail


def test_a_failure_reason_elsewhere_is_named() -> None:
    data = tenant_data()
    run = data["runs"][T2][0]
    del run["error"]
    run["failureReason"] = "credentials rejected"
    check = by_name(doctor(FakeTenant(data)))["failure reasons"]
    assert check.result == "warn"
    assert "carry no error.message; a reason may be under failureReason" in check.detail


def test_a_data_envelope_with_top_level_cursor_warns_but_fits() -> None:
    report = doctor(FakeTenant(envelope="data"))
    check = by_name(report)["list envelope: list_connections"]
    assert check.result == "warn"
    assert "items under 'data', next cursor at nextCursor" in check.detail
    assert "the next cursor was followed to a second page" in check.detail
    assert "nothing to set" in check.advice
    assert report.exit_code == 0
    # The rest of the checks still ran on the items read from 'data'.
    assert by_name(report)["run statuses"].result == "ok"


def test_an_unreadable_envelope_fails_naming_the_keys() -> None:
    report = doctor(FakeTenant(envelope="unreadable"))
    check = by_name(report)["list envelope: list_connections"]
    assert check.result == "fail"
    assert check.detail == (
        "no 'connections' list and no list-valued key to read the items from instead; "
        "top-level keys seen: results, total"
    )
    assert report.exit_code == 1


def test_a_listing_with_more_items_but_no_cursor_fails() -> None:
    check = by_name(doctor(FakeTenant(envelope="no-cursor")))["list envelope: list_connections"]
    assert check.result == "fail"
    assert "no next cursor" in check.detail and "first page" in check.advice


def test_missing_required_fields_fail_and_unknown_fields_warn() -> None:
    data = tenant_data()
    del data["runs"][T1][0]["runId"]
    data["tasks"][0]["progressPercent"] = 100
    checks = by_name(doctor(FakeTenant(data)))
    assert checks["fields: task run"].result == "fail"
    assert "runId: missing" in checks["fields: task run"].detail
    assert checks["fields: task"].result == "warn"
    assert "progressPercent" in checks["fields: task"].detail


def test_unknown_states_types_and_triggers_warn() -> None:
    data = tenant_data()
    data["connections"][1]["state"] = "DISABLED"
    data["tasks"][0]["type"] = "METADATA_REFRESH"
    data["tasks"][0]["trigger"] = "API"
    checks = by_name(doctor(FakeTenant(data)))
    for name, value in (
        ("connection states", "DISABLED"),
        ("task types", "METADATA_REFRESH"),
        ("task triggers", "API"),
    ):
        assert checks[name].result == "warn" and value in checks[name].advice


def test_only_one_connection_with_connection_key() -> None:
    tenant = FakeTenant()
    report = doctor(tenant, connection_key="snowflake-prod")
    assert report.exit_code == 0
    assert ("GET", "/api/connections/trino-archive") not in tenant.requests
    missing = doctor(FakeTenant(), connection_key="nope")
    assert by_name(missing)["connection nope"].result == "fail"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_fails_authentication_and_never_shows_the_key(
    status: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = FakeTenant()
    tenant.status = status
    tenant.error_body = {"message": f"Invalid API key {KEY}"}
    monkeypatch.setenv("DOCTOR_KEY", KEY)
    out = io.StringIO()
    code = main(
        ["--url", URL, "--api-key-env", "DOCTOR_KEY", "--json", str(tmp_path / "r.json")],
        stdout=out,
        transport=httpx.MockTransport(tenant),
    )
    assert code == 1
    text = out.getvalue()
    report = json.loads((tmp_path / "r.json").read_text())
    assert [c["result"] for c in report["checks"]][-1] == "fail"
    assert report["checks"][-1]["name"] == "authentication"
    assert "no way of using the API key works" in text
    assert report["checks"][-1]["detail"].count(f"HTTP {status}") >= 3
    assert KEY not in text and KEY not in json.dumps(report)


def test_a_tenant_taking_only_the_raw_key_suggests_auth_method_raw_key() -> None:
    tenant = FakeTenant()

    def raw_key_only(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/bim/apikey/authenticate":
            return httpx.Response(404, json={"message": "Not Found"})
        if request.headers.get("authorization") != KEY:
            return httpx.Response(401, json={"message": "Invalid credentials"})
        return tenant(request)

    report = run_checks(Target(URL, KEY), transport=httpx.MockTransport(raw_key_only))
    check = by_name(report)["authentication"]
    assert check.result == "fail"
    assert "the configured auth_method 'auto' is refused (HTTP 401)" in check.detail
    assert (
        "works: raw-key; refused: exchange (HTTP 404 at the exchange), bearer-key (HTTP 401)"
        in (check.detail)
    )
    assert report.suggested_extras == {"auth_method": "raw-key"}
    # The rest was checked with the method that works.
    assert by_name(report)["run statuses"].result == "ok"
    assert report.exit_code == 1
    pinned = run_checks(
        Target(URL, KEY, client_options={"auth_method": "raw-key"}),
        transport=httpx.MockTransport(raw_key_only),
    )
    assert pinned.exit_code == 0 and pinned.suggested_extras == {}


def test_an_unreachable_tenant_fails_reachability() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")

    report = run_checks(Target(URL, KEY), transport=httpx.MockTransport(refuse))
    assert [(c.name, c.result) for c in report.checks] == [("reachable", "fail")]
    assert "--ca-bundle" in report.checks[0].advice
    assert report.exit_code == 1


def test_plain_http_away_from_loopback_warns() -> None:
    report = run_checks(
        Target("http://immuta.acme.example", KEY), transport=httpx.MockTransport(FakeTenant())
    )
    assert by_name(report)["TLS"].result == "warn"


# --- read-only --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/connections", True),
        ("POST", "/api/connections/dataObjects/_search", True),
        ("POST", "/bim/apikey/authenticate", True),
        ("POST", "/api/connections", False),
        ("POST", "/api/connections/k/tasks", False),
        ("POST", "/api/connections/k/_validate", False),
        ("POST", f"/api/connections/k/tasks/{T1}/runs/{R1}/_cancel", False),
        ("PATCH", "/api/connections/k", False),
        ("DELETE", "/api/connections/k", False),
    ],
)
def test_only_reads_are_sent(method: str, path: str, allowed: bool) -> None:
    assert is_read_only(method, path) is allowed
    sent: list[str] = []
    transport = ReadOnlyTransport(
        httpx.MockTransport(lambda r: sent.append(r.method) or httpx.Response(200, json={}))
    )
    request = httpx.Request(method, f"{URL}{path}")
    if allowed:
        assert transport.handle_request(request).status_code == 200
        assert sent == [method]
    else:
        with pytest.raises(RefusedRequest, match=f"refused to send {method} {path}"):
            transport.handle_request(request)
        assert sent == []


def test_a_whole_run_sends_only_gets_and_search() -> None:
    tenant = FakeTenant(rename_statuses(tenant_data(), {"COMPLETED": "DONE"}))
    doctor(tenant)
    assert {method for method, _ in tenant.requests} == {"GET", "POST"}
    # The key exchange (auth_method auto) is a POST too, and changes nothing either.
    assert {path for method, path in tenant.requests if method == "POST"} == {
        "/api/connections/dataObjects/_search",
        "/bim/apikey/authenticate",
    }


# --- the command line -------------------------------------------------------------------------


def test_cli_prints_the_table_and_writes_the_json_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMMUTA_API_KEY", KEY)
    data = rename_statuses(tenant_data(), {"COMPLETED": "SUCCEEDED"})
    out = io.StringIO()
    path = tmp_path / "report.json"
    code = main(
        ["--url", URL, "--json", str(path)],
        stdout=out,
        transport=httpx.MockTransport(FakeTenant(data)),
    )
    assert code == 1
    text = out.getvalue()
    assert text.startswith(f"immuta-doctor: {URL} (--url)\n")
    assert "run statuses" in text and "FAIL" in text
    assert '"success_statuses": [\n    "COMPLETED",\n    "SUCCEEDED"\n  ]' in text
    assert "something the provider relies on would break (exit 1)" in text
    report = json.loads(path.read_text())
    assert set(report) == {"target", "checks", "suggested_extras"}
    assert all(set(c) == {"name", "result", "detail", "advice"} for c in report["checks"])
    assert report["suggested_extras"] == {"success_statuses": ["COMPLETED", "SUCCEEDED"]}
    assert KEY not in text + path.read_text()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--url", URL, "--api-key-env", "NO_SUCH_VARIABLE_X"], "NO_SUCH_VARIABLE_X is not set"),
        (["--url", "ftp://acme.example"], "base_url"),
        (["--url", URL, "--timeout", "0"], "--timeout 0 must be a positive number"),
        (["--url", URL, "--api-key-env", KEY], "takes the name of an environment variable"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMMUTA_API_KEY", KEY)
    monkeypatch.delenv("NO_SUCH_VARIABLE_X", raising=False)
    assert main(argv, transport=httpx.MockTransport(FakeTenant())) == 2
    said_err = capsys.readouterr().err
    assert said in said_err and KEY not in said_err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--url", URL, "--conn-id", "immuta_default"],
        ["--url", URL, "--api-key", KEY],
        ["--url", URL, KEY],
    ],
)
def test_argument_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert KEY not in capsys.readouterr().err


def test_the_doctor_imports_no_airflow_unless_given_a_conn_id() -> None:
    import subprocess
    import sys

    code = (
        "import sys, immuta_provider.doctor.cli, immuta_provider.doctor.checks; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'fastapi')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_table_lines_up_and_wraps_advice_under_the_detail() -> None:
    from immuta_provider.doctor.report import Check, render_table

    report = Report(target="https://t (--url)")
    report.add(Check("short", "ok", "fine"))
    report.add(Check("a longer name", "fail", "word " * 40, "do this " * 20))
    lines = render_table(report, width=80).splitlines()
    assert lines[2] == "CHECK          RESULT  SEEN / DO"
    assert lines[3] == "short          OK      fine"
    assert lines[4].startswith("a longer name  FAIL    word word")
    assert all(len(line) <= 80 for line in lines)
    advice = [line for line in lines if line.lstrip().startswith("-> ")]
    assert advice and advice[0].startswith(" " * 23 + "-> do this")
    assert (
        lines[-1] == "1 ok, 0 warn, 1 fail: something the provider relies on would break (exit 1)"
    )
