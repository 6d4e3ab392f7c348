"""An ``immuta`` Airflow connection the way users define one in containers: ``AIRFLOW_CONN_<ID>``
in JSON form (real Airflow reads it; nothing is mocked)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def immuta_connection(url: str, api_key: str, **extra: Any) -> str:
    """An ``immuta`` connection in the JSON form of ``AIRFLOW_CONN_<ID>``."""
    conn: dict[str, Any] = {"conn_type": "immuta", "host": url, "password": api_key}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


@contextmanager
def airflow_connection(conn_id: str, value: str) -> Iterator[None]:
    """Define an Airflow connection for this process (``AIRFLOW_CONN_<ID>``) while in the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        yield
