"""/openapi.json describes the 19 endpoints, and what the emulator sends matches it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Api

KEY = "snowflake-prod"


@pytest.fixture
def openapi(api: Api) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def test_schema_lists_the_19_endpoints_with_bearer_auth(openapi: dict[str, Any]) -> None:
    operations = [
        (method.upper(), path) for path, item in openapi["paths"].items() for method in item
    ]
    assert len(operations) == 19
    assert all(path.startswith("/api/connections") for _, path in operations)
    assert openapi["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, item in openapi["paths"].items():
        for operation in item.values():
            assert operation["security"] == [{"bearerAuth": []}], path
            assert "422" not in operation["responses"], path
            for status in ("400", "401", "404", "409", "429", "503"):
                assert status in operation["responses"], (path, status)
    assert "HTTPValidationError" not in openapi["components"]["schemas"]


def test_identifier_patterns_are_declared(openapi: dict[str, Any]) -> None:
    run = openapi["paths"]["/api/connections/{connectionKey}/tasks/{taskId}/runs/{runId}"]["get"]
    patterns = {p["name"]: p["schema"].get("pattern") for p in run["parameters"]}
    assert patterns["connectionKey"] == "^[A-Za-z0-9_-]+$"
    assert (
        patterns["taskId"].startswith("^([0-9a-fA-F]{8}-")
        and patterns["runId"] == patterns["taskId"]
    )
    listing = openapi["paths"]["/api/connections"]["get"]
    limit = next(p for p in listing["parameters"] if p["name"] == "page[limit]")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"], limit["schema"]["default"]) == (
        1,
        100,
        20,
    )


def _check(openapi: dict[str, Any], method: str, template: str, response: Any) -> None:
    """Validate one response against the schema the document gives for it."""
    operation = openapi["paths"][template][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {template}: {response.status_code} not documented"
    schema = documented["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": openapi["components"]}).validate(
        response.json()
    )


def test_every_endpoint_answers_what_the_schema_says(api: Api, openapi: dict[str, Any]) -> None:
    base = "/api/connections"
    database = api.search(KEY, type="database")[0]
    table = api.search(KEY, type="table")[0]
    task = api.ok("POST", f"{base}/{KEY}/tasks", json={"type": "DATA_OBJECT_SYNC", "note": "x"})
    task_id = task["taskId"]
    run_id = api.ok("GET", f"{base}/{KEY}/tasks/{task_id}/runs")["runs"][0]["runId"]
    legacy_task, legacy_run = api.start_sync("snowflake-legacy")
    api.clock.advance(20)  # the legacy sync FAILED: its run carries an error
    new_task, new_run = api.start_sync()
    new = {
        "connectionKey": "fresh",
        "technology": "Trino",
        "clientConfiguration": {"password": "x"},
    }
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("GET", "/api/connections", base, {}),
        ("POST", "/api/connections", base, {"json": new}),
        ("GET", "/api/connections/{connectionKey}", f"{base}/{KEY}", {}),
        (
            "PATCH",
            "/api/connections/{connectionKey}",
            f"{base}/{KEY}",
            {"json": {"auditConfiguration": {"enabled": True}}},
        ),
        (
            "POST",
            "/api/connections/{connectionKey}/_validate",
            f"{base}/snowflake-legacy/_validate",
            {},
        ),
        ("POST", "/api/connections/{connectionKey}/_deactivate", f"{base}/fresh/_deactivate", {}),
        ("POST", "/api/connections/{connectionKey}/_activate", f"{base}/fresh/_activate", {}),
        (
            "POST",
            "/api/connections/dataObjects/_search",
            f"{base}/dataObjects/_search",
            {"json": {"connectionKey": KEY, "page": {"limit": 3}}},
        ),
        (
            "GET",
            "/api/connections/{connectionKey}/dataObjects/{id}",
            f"{base}/{KEY}/dataObjects/{table['id']}",
            {},
        ),
        (
            "PATCH",
            "/api/connections/{connectionKey}/dataObjects/{id}",
            f"{base}/{KEY}/dataObjects/{table['id']}",
            {"json": {"name": "N"}},
        ),
        (
            "GET",
            "/api/connections/{connectionKey}/dataObjects/{id}/children",
            f"{base}/{KEY}/dataObjects/{database['id']}/children",
            {},
        ),
        ("GET", "/api/connections/{connectionKey}/tasks", f"{base}/{KEY}/tasks", {}),
        (
            "POST",
            "/api/connections/{connectionKey}/tasks",
            f"{base}/{KEY}/tasks",
            {"json": {"type": "DATA_OBJECT_SYNC"}},
        ),
        (
            "GET",
            "/api/connections/{connectionKey}/tasks/{taskId}",
            f"{base}/{KEY}/tasks/{task_id}",
            {},
        ),
        (
            "GET",
            "/api/connections/{connectionKey}/tasks/{taskId}/runs",
            f"{base}/snowflake-legacy/tasks/{legacy_task}/runs",
            {},
        ),
        (
            "GET",
            "/api/connections/{connectionKey}/tasks/{taskId}/runs/{runId}",
            f"{base}/snowflake-legacy/tasks/{legacy_task}/runs/{legacy_run}",
            {},
        ),
        (
            "GET",
            "/api/connections/{connectionKey}/tasks/{taskId}/runs/{runId}",
            f"{base}/{KEY}/tasks/{task_id}/runs/{run_id}",
            {},
        ),
        (
            "POST",
            "/api/connections/{connectionKey}/tasks/{taskId}/runs/{runId}/_cancel",
            f"{base}/{KEY}/tasks/{new_task}/runs/{new_run}/_cancel",
            {},
        ),
        (
            "GET",
            "/api/connections/{connectionKey}/tasks/{taskId}/runs/{runId}",
            f"{base}/{KEY}/tasks/{new_task}/runs/{new_run}",
            {},
        ),
        (
            "DELETE",
            "/api/connections/{connectionKey}/dataObjects/{id}",
            f"{base}/{KEY}/dataObjects/{database['id']}",
            {},
        ),
        ("DELETE", "/api/connections/{connectionKey}", f"{base}/trino-archive", {}),
        # Errors are documented too.
        ("DELETE", "/api/connections/{connectionKey}", f"{base}/{KEY}", {}),
        ("GET", "/api/connections/{connectionKey}", f"{base}/missing", {}),
        ("GET", "/api/connections", base, {"params": {"page[limit]": 500}}),
        (
            "POST",
            "/api/connections/{connectionKey}/tasks/{taskId}/runs/{runId}/_cancel",
            f"{base}/{KEY}/tasks/{task_id}/runs/{run_id}/_cancel",
            {},
        ),
    ]
    templates = set()
    for method, template, path, kw in calls:
        response = api.request(method, path, **kw)
        assert response.status_code < 500, response.text
        _check(openapi, method, template, response)
        templates.add((method, template))
    assert len(templates) == 19
    assert api.client.get(f"{base}/{KEY}").status_code == 401


def test_nothing_outside_the_emulator_imports_fastapi() -> None:
    source = Path(__file__).resolve().parents[3] / "src" / "immuta_provider"
    offenders = [
        str(path)
        for path in source.rglob("*.py")
        if "emulator" not in path.relative_to(source).parts
        and re.search(r"^\s*(from|import)\s+(fastapi|starlette|uvicorn)\b", path.read_text(), re.M)
    ]
    assert offenders == []
    probe = (
        "import sys, immuta_provider, immuta_provider.emulator, immuta_provider.emulator.process;"
        "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))"
    )
    assert _python(probe, source.parent) == "[]"


def test_emulator_does_not_import_the_client() -> None:
    source = Path(__file__).resolve().parents[3] / "src"
    probe = (
        "import sys, immuta_provider.emulator.app, immuta_provider.emulator.cli;"
        "print([m for m in sys.modules if m.startswith('immuta_provider.client')])"
    )
    assert _python(probe, source) == "[]"


def _python(code: str, source: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(source)},
    )
    return result.stdout.strip()


# A small stand-in for a schema-driven fuzzer: random identifiers, limits and bodies must get a
# documented status whose body matches the document, and never a 500.
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_identifier = st.one_of(
    _text.filter(lambda s: "/" not in s and s not in ("", ".", "..")),
    st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z"),
    st.uuids().map(str),
    st.sampled_from(["sync", "snowflake-prod", "00000000-0000-0000-0000-000000000000"]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=_identifier,
    task=_identifier,
    run=_identifier,
    limit=st.one_of(st.integers(-5, 120), _text),
)
def test_random_identifiers_get_documented_answers(
    api: Api, openapi: dict[str, Any], key: str, task: str, run: str, limit: Any
) -> None:
    quoted = [quote(part, safe="") for part in (key, task, run)]
    calls = [
        ("GET", "/api/connections/{connectionKey}", f"/api/connections/{quoted[0]}", {}),
        (
            "GET",
            "/api/connections/{connectionKey}/tasks",
            f"/api/connections/{quoted[0]}/tasks",
            {"params": {"page[limit]": limit}},
        ),
        (
            "GET",
            "/api/connections/{connectionKey}/tasks/{taskId}/runs/{runId}",
            "/api/connections/{}/tasks/{}/runs/{}".format(*quoted),
            {},
        ),
    ]
    for method, template, path, kw in calls:
        response = api.request(method, path, **kw)
        assert response.status_code in (200, 400, 404), (path, response.text)
        _check(openapi, method, template, response)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.dictionaries(
            _text, st.one_of(st.none(), st.booleans(), st.integers(), _text), max_size=4
        ),
        st.fixed_dictionaries(
            {
                "connectionKey": _identifier,
                "technology": _text,
                "clientConfiguration": st.dictionaries(_text, _text, max_size=3),
            },
            optional={"policyConfiguration": st.fixed_dictionaries({"enabled": st.booleans()})},
        ),
    )
)
def test_random_create_bodies_get_documented_answers(
    api: Api, openapi: dict[str, Any], body: dict[str, Any]
) -> None:
    response = api.post("/api/connections", json=body)
    assert response.status_code in (200, 400, 409), response.text
    _check(openapi, "POST", "/api/connections", response)
