"""The ``immuta`` connection form, described once.

``get_provider_info()`` hands these to Airflow 3.2+ (which renders the form without importing the
hook); ``ImmutaHook.get_connection_form_widgets`` / ``get_ui_field_behaviour`` build the Airflow
2.11 form from the same values. Extras are stored under these plain names in the connection's
``extra`` JSON; ``hooks/connection_settings.py`` reads them.
"""

from __future__ import annotations

from typing import Any

from immuta_provider.hooks.connection_settings import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT

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
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    # The Immuta URL carries scheme, port and path; a login or schema means nothing to Immuta.
    "hidden-fields": ["schema", "login", "port"],
    "relabeling": {"host": "Immuta URL", "password": "API key"},
    "placeholders": {
        "host": "https://acme.hosted.immutacloud.com",
        "password": "Immuta API key",
        "ca_bundle": "/etc/ssl/certs/immuta-ca.pem",
    },
}
