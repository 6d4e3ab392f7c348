"""Nightly sync of every active Immuta connection.

Every night at 02:00 this DAG:

1. lists the Immuta connections that are ACTIVE;
2. validates each one (Immuta checks its credentials and components) and counts its data objects;
   unhealthy connections are flagged and left out of the sync;
3. syncs the data objects of each healthy connection, one mapped task per connection, waiting in
   the triggerer (deferrable) so no worker slot is held while Immuta works;
4. summarises: which connections were synced, which failed or were skipped, and how many data
   objects each had before and after.

It needs an Airflow connection ``immuta_default`` of type ``immuta`` (Immuta URL + API key), e.g.
``AIRFLOW_CONN_IMMUTA_DEFAULT='{"conn_type": "immuta", "host": "https://acme.hosted.immutacloud.com",
"password": "<API key>"}'``, and a running triggerer.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import dag, task

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

IMMUTA_CONN_ID = "immuta_default"
# Seconds between two status checks of a running sync. Syncs of large connections take minutes,
# so there is no point asking more often; the variable lets a test instance poll faster.
POLL_INTERVAL = float(os.environ.get("IMMUTA_SYNC_POLL_INTERVAL", "30"))
# A sync still running after this is cancelled in Immuta and its task fails.
SYNC_TIMEOUT = timedelta(hours=2)
# A failed task is tried once more after this; the variable lets a test instance retry at once.
RETRY_DELAY = timedelta(seconds=float(os.environ.get("IMMUTA_SYNC_RETRY_DELAY", "300")))

log = logging.getLogger("immuta_nightly_sync")


def _count_data_objects(client: Any, connection_key: str) -> int:
    """All data objects of a connection (Immuta's search, paged 100 at a time)."""
    return sum(1 for _ in client.search_data_objects(connection_key, page_size=100))


@dag(
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["immuta"],
    default_args={"retries": 1, "retry_delay": RETRY_DELAY},
    doc_md=__doc__,
)
def immuta_nightly_sync() -> None:
    @task
    def list_active_connections() -> list[str]:
        """The keys of all ACTIVE Immuta connections."""
        # Imported here, not at the top: the scheduler parses this file often, tasks run rarely.
        from immuta_provider.hooks.immuta import ImmutaHook

        client = ImmutaHook(IMMUTA_CONN_ID).get_client()
        keys = [
            connection.connection_key
            for connection in client.list_connections(page_size=100)
            if connection.state == "ACTIVE"
        ]
        log.info("%d active Immuta connection(s): %s", len(keys), ", ".join(keys) or "none")
        return keys

    @task
    def validate_connections(connection_keys: list[str], ti: Any = None) -> list[str]:
        """Validate each connection; return the healthy ones and count their data objects.

        The healthy keys are the return value (the sync maps over it); the reasons for skipping
        the others and the data object counts go to the XComs ``unhealthy`` and
        ``objects_before`` for the summary.
        """
        from immuta_provider.hooks.immuta import ImmutaHook

        client = ImmutaHook(IMMUTA_CONN_ID).get_client()
        healthy: list[str] = []
        unhealthy: dict[str, str] = {}
        objects_before: dict[str, int] = {}
        for key in connection_keys:
            connection = client.validate_connection(key)
            health = connection.health
            problems = [
                f"{name}: {component.message or component.status}"
                for name, component in (
                    ("client", health.client if health else None),
                    ("policy", health.policy if health else None),
                    ("audit", health.audit if health else None),
                )
                if component is not None and component.status == "UNHEALTHY"
            ]
            if connection.state != "ACTIVE" or problems:
                unhealthy[key] = "; ".join(problems) or f"state {connection.state}"
                log.warning("Skipping %s, it is unhealthy: %s", key, unhealthy[key])
                continue
            healthy.append(key)
            objects_before[key] = _count_data_objects(client, key)
        ti.xcom_push(key="unhealthy", value=unhealthy)
        ti.xcom_push(key="objects_before", value=objects_before)
        return healthy

    # all_done: summarise even when some syncs failed; no retries, it only reports.
    @task(trigger_rule="all_done", retries=0)
    def summarize(
        results: list[dict[str, Any]],
        healthy: list[str],
        unhealthy: dict[str, str],
        objects_before: dict[str, int],
    ) -> dict[str, Any]:
        """Log a summary of the night's syncs; fail if any sync failed."""
        from immuta_provider.hooks.immuta import ImmutaHook

        client = ImmutaHook(IMMUTA_CONN_ID).get_client()
        # A failed sync has no result; the ones that completed return their run summary.
        # results[:] reads all of them in one request (iterating probes one past the end).
        synced = {result["connection_key"]: result for result in results[:] if result}
        failed = [key for key in healthy if key not in synced]
        objects_after = {key: _count_data_objects(client, key) for key in synced}

        lines = ["Immuta nightly sync summary"]
        for key in healthy:
            if key in synced:
                lines.append(
                    f"  {key:<28} synced in {synced[key]['duration_seconds']}s, data objects "
                    f"{objects_before.get(key, '?')} -> {objects_after[key]}"
                )
            else:
                lines.append(f"  {key:<28} SYNC FAILED (see the sync_data_objects task log)")
        for key, reason in unhealthy.items():
            lines.append(f"  {key:<28} skipped, unhealthy: {reason}")
        lines.append(
            f"  {len(synced)} synced, {len(failed)} failed, {len(unhealthy)} skipped as unhealthy"
        )
        log.info("\n".join(lines))

        summary = {
            "synced": sorted(synced),
            "failed": failed,
            "unhealthy": unhealthy,
            "data_objects_before": objects_before,
            "data_objects_after": objects_after,
        }
        if failed:
            # The sync tasks are not leaves of the DAG, so without this the run would succeed.
            raise RuntimeError(f"Data object sync failed for: {', '.join(failed)}")
        return summary

    healthy = validate_connections(list_active_connections())
    synced = ImmutaDataObjectSyncOperator.partial(
        task_id="sync_data_objects",
        immuta_conn_id=IMMUTA_CONN_ID,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=SYNC_TIMEOUT.total_seconds(),
    ).expand(connection_key=healthy)
    summarize(synced.output, healthy, healthy["unhealthy"], healthy["objects_before"])


immuta_nightly_sync()
