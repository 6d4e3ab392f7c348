"""The provider info Airflow reads: its schema, and the connection form each Airflow builds.

Airflow 3.2+ builds the ``immuta`` form from the provider info (``conn-fields``,
``ui-field-behaviour``) without importing the hook; 2.11 imports the hook named in
``connection-types`` and calls ``get_connection_form_widgets`` / ``get_ui_field_behaviour``.
"""

from __future__ import annotations

import importlib
import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest
from tests.support.airflow_versions import AIRFLOW_V3
from tests.versions.features import features

from immuta_provider import get_provider_info
from immuta_provider.hooks.immuta import ImmutaHook

AIRFLOW_DIR = Path(airflow.__file__).parent


def _connection_type() -> dict[str, object]:
    (conn_type,) = get_provider_info()["connection-types"]
    assert isinstance(conn_type, dict)
    return conn_type


def test_entry_point_points_at_get_provider_info() -> None:
    (entry,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("immuta_provider")
    ]
    assert entry.load() is get_provider_info


def test_provider_info_matches_airflows_schemas() -> None:
    info = get_provider_info()
    runtime_schema = json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text())
    jsonschema.validate(info, runtime_schema)
    # The declarative form (conn-fields, ui-field-behaviour) is described in provider.yaml's schema.
    yaml_schema = json.loads((AIRFLOW_DIR / "provider.yaml.schema.json").read_text())
    jsonschema.validate(info["connection-types"], yaml_schema["properties"]["connection-types"])


def test_every_class_path_in_provider_info_imports() -> None:
    info = get_provider_info()
    paths = [ct["hook-class-name"] for ct in info["connection-types"]] + info["extra-links"]
    for path in paths:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name)
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_connection_form_declaration() -> None:
    conn_type = _connection_type()
    assert conn_type["connection-type"] == ImmutaHook.conn_type == "immuta"
    assert conn_type["hook-name"] == ImmutaHook.hook_name == "Immuta"
    behaviour = conn_type["ui-field-behaviour"]
    assert isinstance(behaviour, dict)
    assert behaviour["relabeling"] == {"host": "Immuta URL", "password": "API key"}
    assert behaviour["placeholders"]["host"] == "https://acme.hosted.immutacloud.com"
    assert {"schema", "login", "port"} <= set(behaviour["hidden-fields"])
    assert "host" not in behaviour["hidden-fields"]
    assert "password" not in behaviour["hidden-fields"]
    fields = conn_type["conn-fields"]
    assert isinstance(fields, dict)
    assert set(fields) == {
        "timeout",
        "max_retries",
        "verify_ssl",
        "ca_bundle",
        "success_statuses",
        "failure_statuses",
        "active_statuses",
        "auth_method",
    }
    for name in ("success_statuses", "failure_statuses", "active_statuses"):
        # A one-line description that says both spellings and the default.
        description = fields[name]["description"]
        assert "comma-separated or a JSON list" in description and "Empty: " in description
        assert "\n" not in description
    assert fields["verify_ssl"]["schema"]["default"] is True
    assert fields["auth_method"]["schema"]["default"] == "auto"
    assert fields["auth_method"]["schema"]["enum"] == [
        "auto",
        "exchange",
        "bearer-key",
        "raw-key",
        None,
    ]


@pytest.mark.skipif(
    features()["connection_form"] != "conn-fields",
    reason="3.3's API server form (conn-fields, no hook import); other lines: tests/versions",
)
def test_airflow_ui_metadata_comes_from_provider_info_without_the_hook() -> None:
    """What Airflow 3.3's API server sends to the connection form for type ``immuta``."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    HookMetaService.hook_meta_data.cache_clear()
    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "immuta"]
    assert meta.hook_name == "Immuta"
    standard = meta.standard_fields
    assert standard is not None
    assert standard.host is not None and standard.host.title == "Immuta URL"
    assert standard.host.placeholder == "https://acme.hosted.immutacloud.com"
    assert standard.password is not None and standard.password.title == "API key"
    for hidden in (standard.login, standard.port, standard.url_schema):
        assert hidden is not None and hidden.hidden
    extras = meta.extra_fields
    assert extras is not None
    assert extras["timeout"]["schema"]["title"] == "Request timeout (seconds)"
    assert extras["timeout"]["value"] == 30
    assert extras["verify_ssl"]["value"] is True
    assert extras["ca_bundle"]["schema"]["title"] == "CA bundle path"
    assert extras["success_statuses"]["schema"]["title"] == "Success run statuses"
    assert standard is not None
    assert extras["auth_method"]["schema"]["title"] == "Authentication method"
    assert extras["auth_method"]["value"] == "auto"


def test_legacy_hook_form_methods_agree_with_provider_info() -> None:
    behaviour = ImmutaHook.get_ui_field_behaviour()
    declared = _connection_type()["ui-field-behaviour"]
    assert isinstance(declared, dict)
    assert behaviour["hidden_fields"] == declared["hidden-fields"]
    assert behaviour["relabeling"] == declared["relabeling"]
    assert behaviour["placeholders"] == declared["placeholders"]
    pytest.importorskip("wtforms", reason="the 2.11 form widgets need wtforms")
    pytest.importorskip("flask_appbuilder", reason="the 2.11 form widgets need flask-appbuilder")
    assert set(ImmutaHook.get_connection_form_widgets()) == set(_connection_type()["conn-fields"])


@pytest.mark.skipif(AIRFLOW_V3, reason="Airflow 2.11's web server form (3.x: conn-fields above)")
def test_airflow_2_builds_the_connection_form_from_the_hook_methods() -> None:
    """What the 2.11 web server's providers manager collects for type ``immuta``."""
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    hook = manager.hooks["immuta"]
    assert hook is not None
    assert hook.hook_class_name == "immuta_provider.hooks.immuta.ImmutaHook"
    assert hook.hook_name == "Immuta"
    assert hook.connection_testable  # the Test button
    widgets = {
        name: info for name, info in manager.connection_form_widgets.items() if "immuta" in name
    }
    # Stored in the connection's extra under the plain names connection_settings reads.
    assert {name: info.field_name for name, info in widgets.items()} == {
        f"extra__immuta__{field}": field for field in _connection_type()["conn-fields"]
    }
    assert not any(info.is_sensitive for info in widgets.values())
    # 2.11 validates the behaviour against its schema and drops it (with only a warning) if
    # it does not fit, so its presence here is the check.
    assert manager.field_behaviours["immuta"] == {
        "hidden_fields": ["schema", "login", "port"],
        "relabeling": {"host": "Immuta URL", "password": "API key"},
        "placeholders": {
            "host": "https://acme.hosted.immutacloud.com",
            "password": "Immuta API key",
            "extra__immuta__ca_bundle": "/etc/ssl/certs/immuta-ca.pem",
            "extra__immuta__success_statuses": "COMPLETED",
            "extra__immuta__failure_statuses": "FAILED, CANCELED",
            "extra__immuta__active_statuses": "PENDING, RUNNING, CANCELING",
        },
    }


@pytest.mark.skipif(AIRFLOW_V3, reason="Airflow 2.11's web server form (3.x: conn-fields above)")
@pytest.mark.parametrize(
    ("typed", "errors"),
    [
        ({}, set()),
        ({"timeout": "45", "max_retries": "0", "ca_bundle": "/etc/ca.pem"}, set()),
        ({"success_statuses": "SUCCEEDED, DONE", "failure_statuses": '["ERROR"]'}, set()),
        ({"timeout": "0"}, {"timeout"}),
        ({"max_retries": "-1"}, {"max_retries"}),
        ({"timeout": "soon"}, {"timeout"}),
        ({"auth_method": "raw-key"}, set()),
        ({"auth_method": "oauth"}, {"auth_method"}),
    ],
)
def test_airflow_2_connection_form_validates_the_extras(
    typed: dict[str, str], errors: set[str]
) -> None:
    """The 2.11 connection form class, filled in as a user would, accepts or rejects the extras."""
    from airflow.www.forms import create_connection_form_class
    from flask import Flask
    from werkzeug.datastructures import MultiDict

    app = Flask(__name__)
    app.config.update(SECRET_KEY="form-test", WTF_CSRF_ENABLED=False)
    data = {"conn_id": "immuta_form", "conn_type": "immuta", "host": "https://acme.example"}
    data.update({f"extra__immuta__{name}": value for name, value in typed.items()})
    with app.test_request_context():
        form_class = create_connection_form_class()
        form = form_class(formdata=MultiDict(data))
        form.validate()
        assert {name.removeprefix("extra__immuta__") for name in form.errors} == errors
        # A new connection's form starts with the defaults of connection_form.CONN_FIELDS.
        empty = form_class().data
        assert empty["extra__immuta__verify_ssl"] is True
        assert (empty["extra__immuta__timeout"], empty["extra__immuta__max_retries"]) == (30, 3)
        assert empty["extra__immuta__auth_method"] == "auto"


def test_config_section_declares_every_option_the_provider_reads() -> None:
    """Each ``conf.get*("immuta", ...)`` in src/ has a declared option, with the code's default."""
    import re

    from immuta_provider import _task_runs
    from immuta_provider.triggers import sync_completed

    src = Path(__file__).resolve().parents[3] / "src"
    read = set()
    for path in src.rglob("*.py"):
        read |= set(re.findall(r'conf\.get\w*\(\s*"immuta",\s*"(\w+)"', path.read_text()))
    options = get_provider_info()["config"]["immuta"]["options"]
    assert read and set(options) == read
    for option in options.values():
        assert option["description"] and option["type"] == "float" and option["example"]
    assert float(options["progress_log_interval"]["default"]) == _task_runs.PROGRESS_LOG_INTERVAL
    assert (
        float(options["sync_watcher_error_retry_interval"]["default"])
        == sync_completed.ERROR_RETRY_INTERVAL
    )


def test_airflow_reads_the_declared_defaults_and_lists_the_section() -> None:
    """``airflow config list`` shows ``[immuta]``; the declared defaults are what code gets."""
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env["AIRFLOW_HOME"] = home
        airflow_cli = str(Path(sys.executable).parent / "airflow")
        listed = subprocess.run(
            [airflow_cli, "config", "list", "--section", "immuta", "--include-descriptions"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        got = subprocess.run(
            [airflow_cli, "config", "get-value", "immuta", "sync_watcher_error_retry_interval"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    assert "[immuta]" in listed
    assert "progress_log_interval" in listed and "sync_watcher_error_retry_interval" in listed
    assert "permanent error" in listed  # the description
    assert got.strip().splitlines()[-1] == "300"  # 3.0 logs INFO lines to stdout first


def test_the_immuta_asset_scheme_is_registered_with_its_normalizer() -> None:
    from immuta_provider.assets import normalize_asset_uri

    if features()["task_runtime_providers_manager"]:  # 3.2+
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        handlers = ProvidersManagerTaskRuntime().asset_uri_handlers
    elif AIRFLOW_V3:  # 3.0-3.1
        from airflow.providers_manager import ProvidersManager

        handlers = ProvidersManager().asset_uri_handlers
    else:
        from airflow.providers_manager import ProvidersManager

        handlers = ProvidersManager().dataset_uri_handlers
    assert handlers["immuta"] is normalize_asset_uri
