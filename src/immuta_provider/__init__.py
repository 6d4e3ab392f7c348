"""Apache Airflow provider for Immuta's Connections API."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (read through the ``apache_airflow_provider`` entry point).

    Airflow 3.2+ renders the ``immuta`` connection form from ``conn-fields`` and
    ``ui-field-behaviour`` here, without importing the hook.
    """
    from immuta_provider.connection_form import CONN_FIELDS, UI_FIELD_BEHAVIOUR

    return {
        "package-name": "airflow-provider-immuta",
        "name": "Immuta",
        "description": (
            "Drive Immuta's Connections API (data object syncs, connections, task runs)."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Immuta",
                "external-doc-url": "https://documentation.immuta.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Immuta", "python-modules": ["immuta_provider.hooks.immuta"]}
        ],
        "operators": [
            {
                "integration-name": "Immuta",
                "python-modules": [
                    "immuta_provider.operators.immuta",
                    "immuta_provider.operators.connections",
                    "immuta_provider.operators.data_objects",
                    "immuta_provider.operators.task_runs",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Immuta",
                "python-modules": [
                    "immuta_provider.sensors.immuta",
                    "immuta_provider.sensors.connection_health",
                ],
            }
        ],
        "triggers": [
            {"integration-name": "Immuta", "python-modules": ["immuta_provider.triggers.immuta"]}
        ],
        "connection-types": [
            {
                "connection-type": "immuta",
                "hook-class-name": "immuta_provider.hooks.immuta.ImmutaHook",
                "hook-name": "Immuta",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": [
            "immuta_provider.links.ImmutaConnectionLink",
            "immuta_provider.links.ImmutaTaskRunLink",
        ],
    }
