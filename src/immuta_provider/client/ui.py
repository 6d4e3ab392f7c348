"""Links to the Immuta UI, built in one place (Airflow extra links use these).

The UI routes are ours (API-NOTES "UI links"); every segment is URL-quoted.
"""

from __future__ import annotations

from urllib.parse import quote


def _join(base_url: str, *segments: str) -> str:
    path = "/".join(quote(str(segment), safe="") for segment in segments)
    return f"{base_url.rstrip('/')}/#/{path}"


def connection_url(base_url: str, connection_key: str) -> str:
    """``<base>/#/connections/<connectionKey>``: the connection's page."""
    return _join(base_url, "connections", connection_key)


def data_object_url(base_url: str, connection_key: str, data_object_id: str) -> str:
    """``<base>/#/connections/<connectionKey>/data-objects/<id>``: a data object's page."""
    return _join(base_url, "connections", connection_key, "data-objects", data_object_id)


def task_run_url(base_url: str, connection_key: str, task_id: str, run_id: str) -> str:
    """``<base>/#/connections/<connectionKey>/tasks/<taskId>/runs/<runId>``: a task run's page."""
    return _join(base_url, "connections", connection_key, "tasks", task_id, "runs", run_id)
