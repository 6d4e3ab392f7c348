"""Apache Airflow provider for Immuta's Connections API."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (read through the ``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "airflow-provider-immuta",
        "name": "Immuta",
        "description": "Drive Immuta's Connections API (data object syncs, connections, task runs).",
        "versions": [__version__],
    }
