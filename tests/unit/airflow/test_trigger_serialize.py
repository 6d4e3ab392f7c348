"""ImmutaTaskRunTrigger.serialize(): complete, JSON-safe, and a faithful round trip."""

from __future__ import annotations

import importlib
import json
import time
from typing import Any

import pytest
from tests.support.airflow_versions import trigger_round_trip

from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

TASK = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"
RUN = "6f1d1e2a-3b4c-4d5e-8f60-718293a4b5c6"


def _trigger(**overrides: Any) -> ImmutaTaskRunTrigger:
    kwargs: dict[str, Any] = {
        "immuta_conn_id": "immuta_default",
        "connection_key": "snowflake-prod",
        "immuta_task_id": TASK,
        "run_id": RUN,
        "poll_interval": 0.5,
        "deadline": time.time() + 60,
        "cancel_on_kill": True,
        "failure_statuses": ("FAILED", "CANCELED"),
        "last_status": "RUNNING",
        "started_at": time.time() - 3,
        "max_consecutive_errors": 4,
        "statuses": {
            "success": ["SUCCEEDED"],
            "failure": ["FAILED", "CANCELED"],
            "active": ["QUEUED", "IN_PROGRESS"],
        },
    }
    kwargs.update(overrides)
    return ImmutaTaskRunTrigger(**kwargs)


def _is_json_safe(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list):
        return all(_is_json_safe(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_safe(v) for k, v in value.items())
    return False


def test_serialize_is_json_safe_and_complete() -> None:
    trigger = _trigger()
    classpath, kwargs = trigger.serialize()
    assert _is_json_safe(kwargs), kwargs
    assert json.loads(json.dumps(kwargs)) == kwargs
    # Every constructor argument is carried, so nothing resets when the trigger moves.
    assert set(kwargs) == {
        "immuta_conn_id",
        "connection_key",
        "immuta_task_id",
        "run_id",
        "poll_interval",
        "deadline",
        "cancel_on_kill",
        "failure_statuses",
        "last_status",
        "started_at",
        "max_consecutive_errors",
        "statuses",
    }
    # The connection's status names travel with the trigger: the triggerer need not read them.
    assert kwargs["statuses"]["success"] == ["SUCCEEDED"]
    module, _, name = classpath.rpartition(".")
    assert getattr(importlib.import_module(module), name) is ImmutaTaskRunTrigger


def test_round_trip_through_airflow_serde_rebuilds_the_same_trigger() -> None:
    classpath, kwargs = _trigger().serialize()
    rebuilt_kwargs = trigger_round_trip(kwargs)  # as stored and read back on this Airflow
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**rebuilt_kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_defaults_and_optional_values_serialize() -> None:
    trigger = ImmutaTaskRunTrigger(
        immuta_conn_id="immuta_default", connection_key="k", immuta_task_id=TASK
    )
    _, kwargs = trigger.serialize()
    assert kwargs["run_id"] is None
    assert kwargs["deadline"] is None
    assert kwargs["cancel_on_kill"] is False
    assert kwargs["failure_statuses"] is None  # no per-task override: the connection's set
    assert kwargs["statuses"] == {
        "success": ["COMPLETED"],
        "failure": ["FAILED", "CANCELED"],
        "active": ["PENDING", "RUNNING", "CANCELING"],
    }
    assert _is_json_safe(kwargs)


def test_a_trigger_with_overlapping_statuses_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="is in both"):
        _trigger(statuses={"success": ["DONE"], "failure": ["DONE"], "active": ["GOING"]})


def test_repr_has_no_secret_material() -> None:
    # The trigger only carries the Airflow connection id; the key is read in the triggerer.
    text = repr(_trigger())
    assert "immuta_default" in text
    assert "password" not in text and "api_key" not in text


@pytest.mark.parametrize("interval", [0, -1, float("nan")])
def test_trigger_refuses_a_poll_interval_that_would_spin(interval: float) -> None:
    with pytest.raises(ValueError, match="poll_interval must be a number of seconds > 0"):
        _trigger(poll_interval=interval)
