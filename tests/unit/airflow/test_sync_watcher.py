"""``ImmutaSyncCompletedTrigger`` against the real emulator, run the way the triggerer runs it.

Watchers that share a stream go through Airflow's own ``SharedStreamManager`` (the triggerer's
class): it calls ``open_shared_stream`` once per group and hands each watcher the broadcast to its
``filter_shared_stream``. No asset state store is injected here (the watermark stays in memory);
the state store, restarts and the no-double-run rule are covered by
tests/integration/test_sync_watcher_scheduling.py with a real triggerer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.connections import immuta_connection

from immuta_provider._compat import event_scheduling_unavailable
from immuta_provider.client import ImmutaClient
from immuta_provider.emulator.process import RunningEmulator

pytestmark = pytest.mark.skipif(
    event_scheduling_unavailable() is not None, reason="event-driven scheduling needs Airflow 3.3"
)

INTERVAL = 0.5
DIALECT = Path(__file__).resolve().parents[2] / "dialects" / "acme-data.json"
KEY = "snowflake-prod"
FIVE_CONNECTIONS = ["snowflake-prod", "databricks-analytics", "trino-archive", "snowflake-legacy"]


@pytest.fixture
def immuta(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> ImmutaClient:
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMMUTA_DEFAULT", immuta_connection(emulator.url, emulator.api_key)
    )
    emulator.admin.set_behaviour(KEY, sync_duration=0.2)
    with ImmutaClient(emulator.url, emulator.api_key) as client:
        yield client


def _sync(client: ImmutaClient, key: str = KEY) -> str:
    return client.create_task(key).task_id


def _wait_ended(client: ImmutaClient, key: str, task_id: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(client.get_task(key, task_id).status)
        if status in ("COMPLETED", "FAILED", "CANCELED"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"sync {task_id} of {key} did not end in {timeout}s")


class Watchers:
    """Triggers subscribed to Airflow's SharedStreamManager; their events collected by task."""

    def __init__(self) -> None:
        from airflow.triggers.shared_stream import SharedStreamManager

        self.manager = SharedStreamManager()
        self.events: dict[int, list[dict[str, Any]]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.triggers: dict[int, Any] = {}

    def add(self, trigger: Any) -> int:
        trigger_id = len(self.triggers) + 1
        self.triggers[trigger_id] = trigger
        self.events[trigger_id] = []
        key = trigger.shared_stream_key()
        stream = self.manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
        self.tasks.append(asyncio.create_task(self._drain(trigger_id, trigger, stream, key)))
        return trigger_id

    async def _drain(
        self, trigger_id: int, trigger: Any, stream: AsyncIterator[Any], key: Any
    ) -> None:
        try:
            async for event in trigger.filter_shared_stream(stream):
                self.events[trigger_id].append(event.payload)
        finally:
            await self.manager.unsubscribe(trigger_id, key)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.manager.stop_all()
        for task in self.tasks:  # a watcher that ended on its own must not have raised
            assert task.cancelled() or task.exception() is None, task.exception()


def _trigger(key: str = KEY, **kwargs: Any) -> Any:
    from immuta_provider.triggers import ImmutaSyncCompletedTrigger

    return ImmutaSyncCompletedTrigger(
        connection_key=key, poll_interval=kwargs.pop("poll_interval", INTERVAL), **kwargs
    )


async def _until(what: str, probe: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_history_does_not_fire_each_new_sync_fires_once(immuta: ImmutaClient) -> None:
    old = _sync(immuta)
    _wait_ended(immuta, KEY, old)
    watchers = Watchers()
    trigger = _trigger()
    first = watchers.add(trigger)
    try:
        await _until("the first look", lambda: trigger._memory is not None)
        await asyncio.sleep(3 * INTERVAL)
        assert watchers.events[first] == []  # the sync that ended before the watcher: no event

        new = await asyncio.to_thread(_sync, immuta)
        await _until("one event", lambda: watchers.events[first])
        await asyncio.sleep(3 * INTERVAL)
    finally:
        await watchers.stop()
    (payload,) = watchers.events[first]
    run = immuta.list_task_runs(KEY, new).get_page().items[0]
    assert payload["immuta_task_id"] == new
    assert payload["run_id"] == run.run_id
    assert payload["status"] == "COMPLETED" and payload["outcome"] == "success"
    assert payload["connection_key"] == KEY and payload["trigger"] == "MANUAL"
    assert payload["task_run_url"].endswith(f"/#/connections/{KEY}/tasks/{new}/runs/{run.run_id}")
    assert payload["completed_at"] and payload["duration_seconds"] is not None


async def test_a_restart_fires_what_ended_meanwhile_and_nothing_twice(immuta: ImmutaClient) -> None:
    watchers = Watchers()
    trigger = _trigger()
    first = watchers.add(trigger)
    try:
        await _until("the first look", lambda: trigger._memory is not None)
        fired = await asyncio.to_thread(_sync, immuta)
        await _until("the first event", lambda: watchers.events[first])
    finally:
        await watchers.stop()
    # The triggerer is down: a sync ends meanwhile.
    missed = await asyncio.to_thread(_sync, immuta)
    await asyncio.to_thread(_wait_ended, immuta, KEY, missed)

    restarted = Watchers()
    again = _trigger()
    again._memory = trigger._memory  # what the asset state store hands the restarted watcher
    second = restarted.add(again)
    try:
        await _until("the missed sync's event", lambda: restarted.events[second])
        await asyncio.sleep(4 * INTERVAL)
    finally:
        await restarted.stop()
    assert [p["immuta_task_id"] for p in watchers.events[first]] == [fired]
    assert [p["immuta_task_id"] for p in restarted.events[second]] == [missed]


async def test_failed_syncs_fire_only_when_asked(immuta: ImmutaClient) -> None:
    key = "snowflake-legacy"  # its syncs fail with CONNECTION_AUTH_FAILED
    watchers = Watchers()
    quiet, loud = _trigger(key), _trigger(key, fire_on_failure=True)
    quiet_id, loud_id = watchers.add(quiet), watchers.add(loud)
    try:
        await _until("the first looks", lambda: quiet._memory and loud._memory)
        task_id = await asyncio.to_thread(_sync, immuta, key)
        await _until("the failure event", lambda: watchers.events[loud_id], timeout=20)
        await asyncio.sleep(3 * INTERVAL)
    finally:
        await watchers.stop()
    assert watchers.events[quiet_id] == []
    (payload,) = watchers.events[loud_id]
    assert payload["immuta_task_id"] == task_id
    assert payload["outcome"] == "failure" and payload["status"] == "FAILED"
    assert payload["error_code"] == "CONNECTION_AUTH_FAILED"


async def test_twenty_watchers_on_five_connections_share_one_loop(
    immuta: ImmutaClient, emulator: RunningEmulator
) -> None:
    body = {
        "connectionKey": "snowflake-fifth",
        "technology": "Snowflake",
        "clientConfiguration": {"hostname": "fifth.snowflakecomputing.com", "warehouse": "WH"},
    }
    immuta.create_connection(body)
    keys = [*FIVE_CONNECTIONS, "snowflake-fifth"]
    watchers = Watchers()
    triggers = []
    for i in range(20):  # 4 watchers per connection, half of them also firing on failures
        triggers.append(_trigger(keys[i % 5], fire_on_failure=bool(i % 2), poll_interval=1.0))
        watchers.add(triggers[-1])
    try:
        await _until("every first look", lambda: all(t._memory for t in triggers))
        before = emulator.admin.counters()["by_route"]
        started = time.monotonic()
        await asyncio.sleep(5.0)
        after = emulator.admin.counters()["by_route"]
        elapsed = time.monotonic() - started
        # One sync, watched by 4 watchers of snowflake-prod: its run is read once.
        task_id = await asyncio.to_thread(_sync, immuta)
        await _until("4 events", lambda: sum(len(e) for e in watchers.events.values()) == 4)
    finally:
        await watchers.stop()
    route = "GET /api/connections/{connectionKey}/tasks"
    lists = after.get(route, 0) - before.get(route, 0)
    per_interval = lists / elapsed  # poll_interval is 1 s
    logging.getLogger(__name__).warning(
        "list calls per interval with 20 watchers on 5 connections: %.2f", per_interval
    )
    # One list call per connection per interval (5), not one per watcher (20).
    assert 4.5 <= per_interval <= 6.0, (lists, elapsed)
    others = {
        r: after[r] - before.get(r, 0) for r in after if r != route and after[r] != before.get(r, 0)
    }
    assert others == {}, others
    fired = [p["immuta_task_id"] for e in watchers.events.values() for p in e]
    assert fired == [task_id] * 4
    runs_route = "GET /api/connections/{connectionKey}/tasks/{taskId}/runs"
    assert emulator.admin.counters()["by_route"].get(runs_route, 0) - after.get(runs_route, 0) == 1


async def test_transient_errors_are_ridden_out(
    immuta: ImmutaClient, emulator: RunningEmulator
) -> None:
    watchers = Watchers()
    trigger = _trigger()
    first = watchers.add(trigger)
    try:
        await _until("the first look", lambda: trigger._memory is not None)
        emulator.admin.add_fault(
            method="GET", path=r"/api/connections/snowflake-prod/tasks$", status=503, count=8
        )
        task_id = await asyncio.to_thread(_sync, immuta)
        await _until("the event after the errors", lambda: watchers.events[first], timeout=30)
    finally:
        await watchers.stop()
    assert [p["immuta_task_id"] for p in watchers.events[first]] == [task_id]
    assert emulator.admin.faults()[0]["fired"] == 8


@pytest.mark.parametrize("problem", ["deleted connection", "rejected key"])
async def test_permanent_errors_are_logged_and_retried_slowly(
    immuta: ImmutaClient,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    problem: str,
) -> None:
    monkeypatch.setenv("AIRFLOW__IMMUTA__SYNC_WATCHER_ERROR_RETRY_INTERVAL", "1.5")
    key = KEY
    if problem == "deleted connection":
        key = "no-such-connection"
    else:
        monkeypatch.setenv(
            "AIRFLOW_CONN_IMMUTA_DEFAULT",
            immuta_connection(emulator.url, "wrong-key-1234", auth_method="bearer-key"),
        )
    watchers = Watchers()
    watchers.add(_trigger(key, poll_interval=0.2))
    before = emulator.admin.counters()["requests"]
    try:
        with caplog.at_level(logging.ERROR, logger="immuta_provider.triggers.sync_completed"):
            await asyncio.sleep(4.0)
    finally:
        await watchers.stop()
    path = f"GET /api/connections/{key}/tasks"
    calls = emulator.admin.counters()["requests"].get(path, 0) - before.get(path, 0)
    # Every 1.5 s instead of every 0.2 s: 3 in 4 s (at 0, 1.5 and 3 s), not 20.
    assert 2 <= calls <= 4, calls
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == calls
    assert f"connection {key!r} cannot be watched" in errors[0]
    assert "polling it again in 1.5 s" in errors[0]
    assert "wrong-key-1234" not in caplog.text


async def test_a_tenant_with_other_status_names_fires_on_its_success_status(
    start_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection's success_statuses / failure_statuses extras decide what ended and how."""
    tenant = start_emulator(dialect=DIALECT)
    extras = {"success_statuses": "SUCCEEDED", "failure_statuses": "ERROR, ABORTED"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMMUTA_DEFAULT", immuta_connection(tenant.url, tenant.api_key, **extras)
    )
    tenant.admin.set_behaviour(KEY, sync_duration=0.2)
    watchers = Watchers()
    trigger = _trigger()
    first = watchers.add(trigger)
    with ImmutaClient(tenant.url, tenant.api_key) as client:
        try:
            await _until("the first look", lambda: trigger._memory is not None)
            task_id = await asyncio.to_thread(_sync, client)
            await _until("the event", lambda: watchers.events[first], timeout=20)
            await asyncio.sleep(3 * INTERVAL)
        finally:
            await watchers.stop()
    (payload,) = watchers.events[first]
    assert payload["immuta_task_id"] == task_id
    assert payload["status"] == "SUCCEEDED" and payload["outcome"] == "success"
