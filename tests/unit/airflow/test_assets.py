"""The asset of an Immuta connection: its URI, Airflow's acceptance of it, and the sync operator's
alias outlet and event (Airflow's own outlet-event accessors; Immuta behind a MockTransport)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
import warnings
from typing import Any

import httpx
import pytest
from tests.support.airflow_versions import AIRFLOW_V3, AUTHORING_MODULES
from tests.support.connections import immuta_connection
from tests.versions.features import features

from immuta_provider._compat import AssetAlias
from immuta_provider.assets import (
    DEFAULT_ASSET_ALIAS,
    MAX_COUNTED_DATA_OBJECTS,
    connection_asset_uri,
    count_data_objects,
    immuta_connection_asset,
)
from immuta_provider.client import ImmutaClient
from immuta_provider.hooks.immuta import ImmutaHook
from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

BASE = "https://acme.hosted.immutacloud.com"
API_KEY = "unit-test-api-key-4f9c"
TASK = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"
RUN = "6f1d1e2a-3b4c-4d5e-8f60-718293a4b5c6"


@pytest.mark.parametrize(
    ("host_or_url", "uri"),
    [
        ("acme.hosted.immutacloud.com", "immuta://acme.hosted.immutacloud.com/connections/k-1"),
        (f"{BASE}/", "immuta://acme.hosted.immutacloud.com/connections/k-1"),
        (
            "HTTPS://Acme.Hosted.ImmutaCloud.com:443/immuta/",
            "immuta://acme.hosted.immutacloud.com/connections/k-1",
        ),
        ("http://127.0.0.1:8765", "immuta://127.0.0.1:8765/connections/k-1"),
        ("http://127.0.0.1:80", "immuta://127.0.0.1/connections/k-1"),
        ("https://user:secret@acme.example:8443", "immuta://acme.example:8443/connections/k-1"),
        ("http://[::1]:8765", "immuta://[::1]:8765/connections/k-1"),
    ],
)
def test_the_asset_uri_is_host_and_connection_key(host_or_url: str, uri: str) -> None:
    assert connection_asset_uri(host_or_url, "k-1") == uri
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Airflow warns about URIs it has to fix up
        asset = immuta_connection_asset(host_or_url, "k-1")
    assert asset.uri == uri  # Airflow's validation keeps it as it is
    if AIRFLOW_V3:
        assert asset.name == uri


@pytest.mark.parametrize(
    ("host_or_url", "key"),
    [("", "k"), ("https://", "k"), (BASE, ""), (BASE, "{{ params.key }}"), ("http://h:99999", "k")],
)
def test_bad_hosts_and_unrendered_keys_are_refused(host_or_url: str, key: str) -> None:
    with pytest.raises(ValueError):
        connection_asset_uri(host_or_url, key)


def test_the_helper_and_the_operator_agree_whatever_form_the_host_takes() -> None:
    assert immuta_connection_asset("ACME.hosted.immutacloud.com", "snowflake-prod") == (
        immuta_connection_asset(f"{BASE}/", "snowflake-prod")
    )


def _alias_names(operator: Any) -> list[str]:
    return [outlet.name for outlet in operator.outlets if isinstance(outlet, AssetAlias)]


def test_the_operator_declares_its_alias_as_an_outlet_unless_told_not_to() -> None:
    default = ImmutaDataObjectSyncOperator(task_id="a", connection_key="{{ params.key }}")
    assert _alias_names(default) == [DEFAULT_ASSET_ALIAS]
    named = ImmutaDataObjectSyncOperator(task_id="b", connection_key="k", asset_alias="inventory")
    assert _alias_names(named) == ["inventory"]
    assert (
        _alias_names(
            ImmutaDataObjectSyncOperator(task_id="c", connection_key="k", emit_asset=False)
        )
        == []
    )
    # Returning before the sync ends: the inventory is not fresh yet, so no event.
    not_waiting = ImmutaDataObjectSyncOperator(
        task_id="d", connection_key="k", wait_for_completion=False
    )
    assert _alias_names(not_waiting) == [] and not not_waiting.emit_asset
    # The user's own outlets are kept.
    own = immuta_connection_asset(BASE, "other")
    mixed = ImmutaDataObjectSyncOperator(task_id="e", connection_key="k", outlets=[own])
    assert own in mixed.outlets and _alias_names(mixed) == [DEFAULT_ASSET_ALIAS]


# ---- counting and emitting -------------------------------------------------------------------


def _search_pages(total: int | None, requests: list[httpx.Request]) -> Any:
    """A search endpoint with ``total`` objects (``None``: endless), 100 a page."""

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        body = json.loads(request.content)
        done = int(body["page"].get("cursor") or 0)
        size = body["page"]["limit"] if total is None else min(body["page"]["limit"], total - done)
        items = [
            {"id": str(uuid.uuid4()), "connectionKey": body["connectionKey"], "name": f"t{i}"}
            for i in range(size)
        ]
        more = total is None or done + size < total
        return httpx.Response(
            200,
            json={"dataObjects": items, "page": {"nextCursor": str(done + size) if more else None}},
        )

    return handler


def test_count_is_exact_for_a_small_inventory() -> None:
    requests: list[httpx.Request] = []
    client = ImmutaClient(
        BASE,
        API_KEY,
        transport=httpx.MockTransport(_search_pages(250, requests)),
        auth_method="bearer-key",
    )
    assert count_data_objects(client, "k") == (250, True)
    assert len(requests) == 3


def test_count_stops_at_the_limit_for_a_large_inventory() -> None:
    requests: list[httpx.Request] = []
    client = ImmutaClient(
        BASE,
        API_KEY,
        transport=httpx.MockTransport(_search_pages(None, requests)),
        auth_method="bearer-key",
    )
    assert count_data_objects(client, "k") == (MAX_COUNTED_DATA_OBJECTS, False)
    assert len(requests) == MAX_COUNTED_DATA_OBJECTS // 100


def _outlet_events() -> Any:
    """Airflow's own outlet-event accessors, as a task's context holds them."""
    if AIRFLOW_V3:
        from airflow.sdk.execution_time.context import OutletEventAccessors
    else:
        from airflow.utils.context import OutletEventAccessors  # type: ignore[no-redef]
    return OutletEventAccessors()


def _emitted(events: Any, alias: str) -> list[tuple[str, dict[str, Any]]]:
    accessor = events[AssetAlias(alias)]
    if AIRFLOW_V3:
        return [(e.dest_asset_key.uri, e.extra) for e in accessor.asset_alias_events]
    return [(e["dest_dataset_uri"], e["extra"]) for e in accessor.dataset_alias_events]


SUMMARY = {
    "connection_key": "snowflake-prod",
    "immuta_task_id": TASK,
    "run_id": RUN,
    "status": "COMPLETED",
    "created_at": None,
    "started_at": None,
    "completed_at": None,
    "duration_seconds": 3.5,
}


def _operator(monkeypatch: pytest.MonkeyPatch, handler: Any) -> ImmutaDataObjectSyncOperator:
    monkeypatch.setenv("AIRFLOW_CONN_IMMUTA_DEFAULT", immuta_connection(BASE, API_KEY))
    operator = ImmutaDataObjectSyncOperator(task_id="sync", connection_key="snowflake-prod")
    hook = ImmutaHook()
    hook._client = ImmutaClient(
        BASE,
        API_KEY,
        transport=httpx.MockTransport(handler),
        max_retries=0,
        auth_method="bearer-key",
    )
    operator._hook = hook
    return operator


def test_a_completed_sync_adds_the_connections_asset_with_the_run_and_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operator = _operator(monkeypatch, _search_pages(42, []))
    events = _outlet_events()
    operator._emit_asset_event({"outlet_events": events}, dict(SUMMARY))
    ((uri, extra),) = _emitted(events, DEFAULT_ASSET_ALIAS)
    assert uri == "immuta://acme.hosted.immutacloud.com/connections/snowflake-prod"
    assert extra == {
        **SUMMARY,
        "task_run_url": f"{BASE}/#/connections/snowflake-prod/tasks/{TASK}/runs/{RUN}",
        "data_object_count": 42,
        "data_object_count_exact": True,
    }
    assert API_KEY not in json.dumps(extra)


def test_a_failed_count_still_emits_the_event_without_a_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operator = _operator(monkeypatch, lambda request: httpx.Response(503, json={"message": "busy"}))
    events = _outlet_events()
    operator._emit_asset_event({"outlet_events": events}, dict(SUMMARY))
    ((_, extra),) = _emitted(events, DEFAULT_ASSET_ALIAS)
    assert (extra["data_object_count"], extra["data_object_count_exact"]) == (None, False)


def test_the_assets_module_is_light_to_import() -> None:
    code = (
        "import json, sys\n"
        f"import {', '.join(AUTHORING_MODULES)}\n"
        "before = set(sys.modules)\n"
        "import immuta_provider.assets\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    added = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(m.startswith("immuta_provider") for m in added), added
    assert not any(m.startswith("immuta_provider.client") for m in added), added


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("immuta://acme.example/connections/snowflake-prod", None),
        (
            "immuta://ACME.Example:8443/connections/k_1",
            "immuta://acme.example:8443/connections/k_1",
        ),
        ("immuta://[::1]:8765/connections/k-1", None),
        ("immuta://acme.example/connections/k-1/", "immuta://acme.example/connections/k-1"),
    ],
)
def test_airflow_accepts_and_normalizes_immuta_uris(given: str, normalized: str | None) -> None:
    from immuta_provider._compat import Asset

    asset = Asset(given)
    assert asset.uri == (normalized or given)
    # What connection_asset_uri builds is already normal.
    assert Asset(connection_asset_uri("http://ACME.example:8443", "k_1")).uri == (
        "immuta://acme.example:8443/connections/k_1"
    )


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("immuta://acme.example/foo/k-1", "the path must be /connections/<connection key>"),
        ("immuta://acme.example/connections", "the path must be /connections/<connection key>"),
        ("immuta://acme.example/connections/a/b", "the path must be /connections/<connection key>"),
        ("immuta://acme.example/connections/a%20b", "'a b' is not an Immuta connection key"),
        ("immuta:///connections/k-1", "the Immuta host is missing"),
        ("immuta://someone@acme.example/connections/k-1", "must not contain credentials"),
        ("immuta://acme.example:99999/connections/k-1", "the port is not a number"),
        ("immuta://acme.example/connections/k-1?x=1", "must not have a query string"),
    ],
)
def test_airflow_refuses_malformed_immuta_uris(uri: str, problem: str) -> None:
    from urllib.parse import urlsplit

    from immuta_provider._compat import Asset
    from immuta_provider.assets import normalize_asset_uri

    with pytest.raises(ValueError, match="Invalid Immuta asset URI") as raised:
        normalize_asset_uri(urlsplit(uri))
    assert problem in str(raised.value)
    assert "immuta://<host>[:<port>]/connections/<connection key>" in str(raised.value)
    if AIRFLOW_V3 and not ("@" in uri and features()["asset_drops_user_info"]):
        with pytest.raises(ValueError, match="Invalid Immuta asset URI"):
            Asset(uri)  # Airflow calls the registered normalizer
    elif AIRFLOW_V3:  # 3.0 drops user info itself (warning) before the normalizer sees the URI
        with pytest.warns(UserWarning, match="auth info"):
            assert "@" not in Asset(uri).uri
    elif "@" not in uri:  # 2.11 drops user info itself, and only warns about the rest
        # (unless [core] strict_dataset_uri_validation is on)
        with pytest.warns(UserWarning, match="Invalid Immuta asset URI"):
            Asset(uri)
