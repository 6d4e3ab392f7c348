"""Links into the Immuta UI."""

from __future__ import annotations

from immuta_provider.client import connection_url, data_object_url, task_run_url

BASE = "https://acme.hosted.immutacloud.com"
TASK_ID = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
RUN_ID = "9d8c7b6a-5f4e-4d3c-bb2a-1f0e9d8c7b6a"


def test_connection_url() -> None:
    assert connection_url(BASE, "snowflake-prod") == f"{BASE}/#/connections/snowflake-prod"
    assert connection_url(BASE + "/", "k") == f"{BASE}/#/connections/k"


def test_data_object_url() -> None:
    assert data_object_url(BASE, "snowflake-prod", TASK_ID) == (
        f"{BASE}/#/connections/snowflake-prod/data-objects/{TASK_ID}"
    )


def test_task_run_url() -> None:
    assert task_run_url(BASE, "k", TASK_ID, RUN_ID) == (
        f"{BASE}/#/connections/k/tasks/{TASK_ID}/runs/{RUN_ID}"
    )


def test_segments_are_quoted() -> None:
    assert connection_url(BASE, "a/b c?#") == f"{BASE}/#/connections/a%2Fb%20c%3F%23"
    assert data_object_url("http://h:1/prefix", "k", "x/../y") == (
        "http://h:1/prefix/#/connections/k/data-objects/x%2F..%2Fy"
    )
