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
            {
                "integration-name": "Immuta",
                "python-modules": [
                    "immuta_provider.triggers.immuta",
                    "immuta_provider.triggers.sync_completed",
                ],
            }
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
        # immuta://<host>[:<port>]/connections/<key>: validated wherever an Asset is built.
        "asset-uris": [_ASSET_URIS],
        "dataset-uris": [_ASSET_URIS],  # the same on Airflow 2.11, which reads this key
        "config": {"immuta": CONFIG_SECTION},
    }


_ASSET_URIS = {"schemes": ["immuta"], "handler": "immuta_provider.assets.normalize_asset_uri"}

CONFIG_SECTION: dict[str, Any] = {
    "description": "Options of the Immuta provider (airflow-provider-immuta).",
    "options": {
        "progress_log_interval": {
            "description": (
                "Seconds between two progress lines in the log of a task (or deferred task) "
                "waiting for an Immuta task run whose status does not change. Every status "
                "change is logged at once regardless. In a triggerer with more than 300 "
                "waits, deferred waits space these lines further apart, so that together they "
                "write at most 5 a second. A value that is not a positive number falls back to "
                "the default."
            ),
            "version_added": None,
            "type": "float",
            "example": "300",
            "default": "60",
        },
        "sync_watcher_error_retry_interval": {
            "description": (
                "Seconds before an Immuta sync watcher (ImmutaSyncCompletedTrigger) polls again "
                "a connection that failed with a permanent error (rejected API key, missing "
                "permission, connection deleted in Immuta, unusable Airflow connection). "
                "Transient errors (timeouts, 429, 5xx) are retried at the watcher's own poll "
                "interval. Never shorter than the poll interval; a value that is not a positive "
                "number falls back to the default."
            ),
            "version_added": None,
            "type": "float",
            "example": "600",
            "default": "300",
        },
    },
}
"""The ``[immuta]`` section of Airflow's configuration: every option the provider reads."""
