"""The sync watcher imports on every supported Airflow; building it needs Airflow 3.3+.

Runs on 3.3 (``make test``) and on 2.11 (``make test-airflow-2.11``), where DAG files that import
the watcher still load and using it says what is missing.
"""

from __future__ import annotations

import pytest

from immuta_provider._compat import event_scheduling_unavailable
from immuta_provider.assets import immuta_sync_completed_asset
from immuta_provider.triggers import ImmutaSyncCompletedTrigger

UNAVAILABLE = event_scheduling_unavailable()


@pytest.mark.skipif(UNAVAILABLE is None, reason="this Airflow has event-driven scheduling")
def test_older_airflow_imports_the_watcher_and_refuses_to_build_it() -> None:
    assert UNAVAILABLE is not None
    assert "needs Airflow 3.3 or later" in UNAVAILABLE
    assert "immuta_connection_asset" in UNAVAILABLE  # what to do instead
    with pytest.raises(RuntimeError, match="Event-driven scheduling on Immuta syncs needs Airflow"):
        ImmutaSyncCompletedTrigger(connection_key="snowflake-prod")
    with pytest.raises(RuntimeError, match=r"needs Airflow 3\.3 or later"):
        immuta_sync_completed_asset("acme.example", "snowflake-prod")


@pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))
def test_the_helper_builds_the_operators_asset_with_a_watcher() -> None:
    from airflow.triggers.base import BaseEventTrigger

    from immuta_provider.assets import immuta_connection_asset

    asset = immuta_sync_completed_asset(
        "https://Acme.example/", "snowflake-prod", immuta_conn_id="immuta_prod", poll_interval=30
    )
    assert asset.uri == immuta_connection_asset("acme.example", "snowflake-prod").uri
    (watcher,) = asset.watchers
    assert watcher.name == "immuta_sync_snowflake_prod"
    trigger = watcher.trigger
    assert isinstance(trigger, ImmutaSyncCompletedTrigger)
    assert isinstance(trigger, BaseEventTrigger)
    assert trigger.serialize() == (
        "immuta_provider.triggers.sync_completed.ImmutaSyncCompletedTrigger",
        {
            "connection_key": "snowflake-prod",
            "immuta_conn_id": "immuta_prod",
            "poll_interval": 30.0,
            "fire_on_failure": False,
        },
    )
    # Watchers of one Airflow connection and interval share a poll loop, whatever the key.
    other = ImmutaSyncCompletedTrigger(
        connection_key="databricks-analytics", immuta_conn_id="immuta_prod", poll_interval=30
    )
    assert trigger.shared_stream_key() == other.shared_stream_key()
    slower = ImmutaSyncCompletedTrigger(connection_key="x", immuta_conn_id="immuta_prod")
    assert slower.shared_stream_key() != trigger.shared_stream_key()


@pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"connection_key": "k", "poll_interval": 0}, "poll_interval must be"),
        ({"connection_key": ""}, "connection_key must be"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_parsed(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ImmutaSyncCompletedTrigger(**kwargs)  # type: ignore[arg-type]
