"""The ``immuta`` connection form, described once.

``get_provider_info()`` hands these to Airflow 3.2+ (which renders the form without importing the
hook); ``ImmutaHook.get_connection_form_widgets`` / ``get_ui_field_behaviour`` build the Airflow
2.11 form from the same values. Extras are stored under these plain names in the connection's
``extra`` JSON; ``hooks/connection_settings.py`` reads them.
"""

from __future__ import annotations

from typing import Any

from immuta_provider.client.vocabulary import (
    ACTIVE_STATUSES,
    AUTH_METHODS,
    FAILURE_STATUSES,
    SUCCESS_STATUSES,
)
from immuta_provider.hooks.connection_settings import (
    DEFAULT_AUTH_METHOD,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)

STATUS_FIELDS: tuple[str, ...] = ("success_statuses", "failure_statuses", "active_statuses")
"""The extras naming the tenant's run statuses (free text: a JSON list or comma-separated)."""

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Request timeout (seconds)",
        "description": "How long one HTTP request to Immuta may take. Default 30.",
        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT, "minimum": 1},
    },
    "max_retries": {
        "label": "Max retries",
        "description": (
            "Retries of a request after a rate limit (429), a 502/503/504 or a dropped connection. "
            "Default 3."
        ),
        "schema": {"type": ["integer", "null"], "default": DEFAULT_MAX_RETRIES, "minimum": 0},
    },
    "verify_ssl": {
        "label": "Verify TLS certificate",
        "description": "Check Immuta's TLS certificate. Turn off only for a test instance.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "ca_bundle": {
        "label": "CA bundle path",
        "description": (
            "Path (on every Airflow worker and triggerer) of a PEM file with the CA certificates "
            "that signed Immuta's certificate, for a private CA. Empty: the system's CAs."
        ),
        "schema": {"type": ["string", "null"]},
    },
    "success_statuses": {
        "label": "Success run statuses",
        "description": (
            "Run statuses that mean a sync or deletion succeeded, comma-separated or a JSON list. "
            f"Empty: {', '.join(SUCCESS_STATUSES)}."
        ),
        "schema": {"type": ["string", "null"]},
    },
    "failure_statuses": {
        "label": "Failure run statuses",
        "description": (
            "Run statuses that mean it ended badly (the task fails), comma-separated or a JSON "
            f"list. Empty: {', '.join(FAILURE_STATUSES)}."
        ),
        "schema": {"type": ["string", "null"]},
    },
    "active_statuses": {
        "label": "Still-going run statuses",
        "description": (
            "Run statuses of a run that has not ended yet, comma-separated or a JSON list. "
            f"Empty: {', '.join(ACTIVE_STATUSES)}."
        ),
        "schema": {"type": ["string", "null"]},
    },
    "auth_method": {
        "label": "Authentication method",
        "description": (
            "auto (default): exchange the API key for a token, or send the key itself where "
            "Immuta has no exchange; pin exchange, bearer-key or raw-key if your tenant needs it."
        ),
        "schema": {
            "type": ["string", "null"],
            "default": DEFAULT_AUTH_METHOD,
            "enum": [*AUTH_METHODS, None],
        },
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    # The Immuta URL carries scheme, port and path; a login or schema means nothing to Immuta.
    "hidden-fields": ["schema", "login", "port"],
    "relabeling": {"host": "Immuta URL", "password": "API key"},
    "placeholders": {
        "host": "https://acme.hosted.immutacloud.com",
        "password": "Immuta API key",
        "ca_bundle": "/etc/ssl/certs/immuta-ca.pem",
        "success_statuses": ", ".join(SUCCESS_STATUSES),
        "failure_statuses": ", ".join(FAILURE_STATUSES),
        "active_statuses": ", ".join(ACTIVE_STATUSES),
    },
}
