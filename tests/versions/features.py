"""What the installed Airflow line can do, for the version suite (docs/installation.md's table).

Each flag is read from Airflow itself (a class attribute, a module, a key the runtime sets), not
from its version number, so a test that expects a feature fails if Airflow lacks it, and a test
of the degraded behaviour fails if a line gains it without the docs saying so. ``EXPECTED`` is
the support table: :func:`test_support_table_matches_this_airflow` compares the two.

Airflow is imported inside the functions only; importing this module stays cheap.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from importlib.metadata import version

AIRFLOW_VERSION = version("apache-airflow")
AIRFLOW_LINE = ".".join(AIRFLOW_VERSION.split(".")[:2])
"""The installed minor line: ``"2.11"``, ``"3.0"`` ... ``"3.3"``."""

LINES = ("2.11", "3.0", "3.1", "3.2", "3.3")
"""Every line the package claims (pyproject's ``apache-airflow>=2.11,<4``), each tested."""


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@cache
def features() -> dict[str, bool | str]:
    """The features of the installed Airflow that the provider adapts to."""
    import inspect

    from airflow.triggers import base as triggers_base
    from airflow.triggers.base import BaseTrigger

    from immuta_provider._compat import BaseHook

    return {
        # Triggers read their connection with it; else sync get_connection via sync_to_async.
        "aget_connection": hasattr(BaseHook, "aget_connection"),
        # Where the UI's connection form comes from (see _connection_form).
        "connection_form": _connection_form(),
        # The triggerer calls trigger.on_kill() after mark-failed / clear.
        "trigger_on_kill": "on_kill" in vars(BaseTrigger),
        # A task instance's store that survives retries (the operator resumes the run).
        "task_state_store": _has_module("airflow.sdk.bases.resumablejobmixin"),
        # Per-asset state and shared poll loops for event (asset watcher) triggers.
        "asset_state_store": "asset_state_store" in inspect.getsource(triggers_base),
        "shared_streams": _has_module("airflow.triggers.shared_stream"),
        # Asset URI normalizers for tasks come from the Task SDK's own providers manager.
        "task_runtime_providers_manager": _has_module("airflow.sdk.providers_manager_runtime"),
        # Asset() drops user info from a URI with a warning, before our normalizer sees it.
        "asset_drops_user_info": _asset_drops_user_info(),
    }


def _asset_drops_user_info() -> bool:
    import warnings

    try:
        from airflow.sdk import Asset
    except ImportError:  # 2.11: Dataset drops it
        return True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return "someone@" not in Asset("vstest://someone@acme.example/p").uri


def _connection_form() -> str:
    """``conn-fields``: from the provider info, without importing the hook (3.3);
    ``conn-fields+hook``: the provider info's ``conn-fields``, the hook imported too (3.2);
    ``hook``: the hook's ``get_connection_form_widgets`` / ``get_ui_field_behaviour`` (2.11's
    Flask UI, 3.1's API server with FAB mocked); ``generic``: Airflow's plain form with no
    provider fields (3.0's API server without flask-appbuilder/wtforms installed)."""
    import inspect

    from airflow import providers_manager

    try:
        from airflow.api_fastapi.core_api.services.ui import connections as ui
    except ImportError:  # 2.11: the Flask UI, which ships flask-appbuilder and wtforms
        return "hook"
    ui_source = inspect.getsource(ui)
    if "conn-fields" in inspect.getsource(providers_manager):
        return "conn-fields" if "_from_metadata" in ui_source else "conn-fields+hook"
    if '"flask_appbuilder.fieldwidgets",' in ui_source or _has_module("wtforms"):
        return "hook"
    return "generic"


EXPECTED: dict[str, dict[str, bool | str]] = {
    "2.11": {
        "aget_connection": False,
        "connection_form": "hook",
        "trigger_on_kill": False,
        "task_state_store": False,
        "asset_state_store": False,
        "shared_streams": False,
        "task_runtime_providers_manager": False,
        "asset_drops_user_info": True,
    },
    "3.0": {
        "aget_connection": False,
        "connection_form": "generic",
        "trigger_on_kill": False,
        "task_state_store": False,
        "asset_state_store": False,
        "shared_streams": False,
        "task_runtime_providers_manager": False,
        "asset_drops_user_info": True,
    },
    "3.1": {
        "aget_connection": True,
        "connection_form": "hook",
        "trigger_on_kill": False,
        "task_state_store": False,
        "asset_state_store": False,
        "shared_streams": False,
        "task_runtime_providers_manager": False,
        "asset_drops_user_info": False,
    },
    "3.2": {
        "aget_connection": True,
        "connection_form": "conn-fields+hook",
        "trigger_on_kill": False,
        "task_state_store": False,
        "asset_state_store": False,
        "shared_streams": False,
        "task_runtime_providers_manager": True,
        "asset_drops_user_info": False,
    },
    "3.3": {
        "aget_connection": True,
        "connection_form": "conn-fields",
        "trigger_on_kill": True,
        "task_state_store": True,
        "asset_state_store": True,
        "shared_streams": True,
        "task_runtime_providers_manager": True,
        "asset_drops_user_info": False,
    },
}
"""The support table of docs/installation.md, as data."""


def has(feature: str) -> bool:
    """Whether the installed Airflow has ``feature`` (a boolean key of :func:`features`)."""
    return features()[feature] is True
