"""Constructor checks of the sync operator and the task run sensor (no Airflow run needed)."""

from __future__ import annotations

import pytest

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator
from immuta_provider.sensors.immuta import ImmutaTaskRunSensor

TASK = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"poll_interval": 0}, "poll_interval must be a number of seconds > 0"),
        ({"poll_interval": -5}, "poll_interval must be a number of seconds > 0"),
        ({"timeout": 0}, "timeout must be a number of seconds > 0"),
        ({"timeout": float("nan")}, "timeout must be a number of seconds > 0"),
    ],
)
def test_sync_operator_rejects_non_positive_intervals(
    kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ImmutaDataObjectSyncOperator(task_id="sync", connection_key="snowflake-prod", **kwargs)


def test_sync_operator_defaults_and_templated_fields() -> None:
    op = ImmutaDataObjectSyncOperator(task_id="sync", connection_key="snowflake-prod")
    assert op.immuta_conn_id == "immuta_default"
    assert op.wait_for_completion is True
    assert op.deferrable is False  # [operators] default_deferrable is False here
    assert (op.poll_interval, op.timeout) == (10, None)
    assert op.reuse_running_sync is True and op.cancel_on_kill is True
    assert "connection_key" in op.template_fields
    assert [link.name for link in op.operator_extra_links] == [
        "Immuta connection",
        "Immuta task run",
    ]


def test_sensor_templated_fields_match_the_operators_xcom_names() -> None:
    sensor = ImmutaTaskRunSensor(
        task_id="wait", connection_key="snowflake-prod", immuta_task_id=TASK
    )
    assert set(sensor.template_fields) == {"connection_key", "immuta_task_id", "run_id"}
    assert sensor.run_id is None
    assert sensor.failure_statuses is None  # the connection's failure_statuses extra decides
    assert sensor.task_id == "wait"


def test_sensor_rejects_a_single_string_of_failure_statuses() -> None:
    with pytest.raises(ValueError, match="must be a list of statuses"):
        ImmutaTaskRunSensor(
            task_id="wait",
            connection_key="snowflake-prod",
            immuta_task_id=TASK,
            failure_statuses="FAILED",
        )


def test_deferred_sensor_refuses_a_zero_poke_interval() -> None:
    # Deferred, a 0 interval would make the trigger poll Immuta in a tight loop.
    with pytest.raises(ValueError, match="poke_interval must be > 0 with deferrable=True"):
        ImmutaTaskRunSensor(
            task_id="wait",
            connection_key="snowflake-prod",
            immuta_task_id=TASK,
            poke_interval=0,
            deferrable=True,
        )
    # Airflow allows 0 in poke mode; the sensor does not second-guess that.
    poke = ImmutaTaskRunSensor(
        task_id="wait", connection_key="snowflake-prod", immuta_task_id=TASK, poke_interval=0
    )
    assert poke.poke_interval == 0
