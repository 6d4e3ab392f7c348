"""Every Immuta operator and sensor gets its hook and its link XCom from one place."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.support.airflow_versions import authoring

import immuta_provider.operators as operators
import immuta_provider.sensors as sensors
from immuta_provider._immuta_mixin import ImmutaMixin
from immuta_provider.links import LINK_XCOM_KEY
from immuta_provider.sensors import ImmutaTaskRunSensor

TASK = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"
RUN = "6f1d1e2a-3b4c-4d5e-8f60-718293a4b5c6"


class RecordingTaskInstance:
    """Stands in for the task instance only as the place XComs are pushed to."""

    def __init__(self) -> None:
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


@pytest.mark.parametrize("name", [*operators.__all__, *sensors.__all__])
def test_each_operator_and_sensor_uses_the_one_hook_and_link_base(name: str) -> None:
    module = operators if name in operators.__all__ else sensors
    cls = getattr(module, name)
    assert issubclass(cls, ImmutaMixin)
    for klass in cls.__mro__:
        if klass is not ImmutaMixin:
            assert "hook" not in vars(klass), f"{klass.__name__} re-declares the hook"


def test_the_hook_is_built_once_and_links_are_pushed_once_per_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMMUTA_DEFAULT",
        json.dumps(
            {"conn_type": "immuta", "host": "https://acme.example", "password": "not-a-real-key"}
        ),
    )
    sensor = ImmutaTaskRunSensor(
        task_id="wait", connection_key="snowflake-prod", immuta_task_id=TASK
    )
    assert sensor.hook is sensor.hook
    ti = RecordingTaskInstance()
    context = {"ti": ti}
    sensor.push_immuta_link(context, TASK)
    sensor.push_immuta_link(context, TASK)  # a later poke: nothing new
    sensor.push_immuta_link(context, TASK, RUN)  # the run became known
    assert [value["run_id"] for key, value in ti.pushed if key == LINK_XCOM_KEY] == [None, RUN]
    assert ti.pushed[-1][1] == {
        "base_url": "https://acme.example",
        "connection_key": "snowflake-prod",
        "immuta_task_id": TASK,
        "run_id": RUN,
    }


def test_mapped_operators_keep_airflows_default_inlets_and_outlets() -> None:
    """Airflow patches the ``__init__`` of a class whose first base is not where its ``__init__``
    comes from; with the mixin first, every Immuta operator got BaseOperator's signature as its
    own and a mapped task's inlets became None, failing every mapped sync (the nightly DAG)."""
    from immuta_provider.operators import ImmutaDataObjectSyncOperator

    with authoring("DAG")("mixin_mapping", schedule=None):
        mapped = ImmutaDataObjectSyncOperator.partial(task_id="sync").expand(
            connection_key=["snowflake-prod", "databricks-analytics"]
        )
    assert mapped.inlets == []
    assert mapped.outlets is not None
    assert "__init__" not in vars(ImmutaMixin)
