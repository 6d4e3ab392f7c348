"""``ImmutaSyncCompletedTrigger``: an asset watcher that fires when a sync of a connection ends.

Event-driven scheduling (Airflow 3.3+)::

    from airflow.sdk import DAG, Asset, AssetWatcher
    from immuta_provider.triggers import ImmutaSyncCompletedTrigger

    asset = Asset(
        "immuta://acme.hosted.immutacloud.com/connections/snowflake-prod",
        watchers=[
            AssetWatcher(
                name="snowflake_prod_synced",
                trigger=ImmutaSyncCompletedTrigger(connection_key="snowflake-prod"),
            )
        ],
    )

or, in one call, :func:`immuta_provider.assets.immuta_sync_completed_asset`.

How it polls: every watcher on the same Airflow connection and poll interval joins one shared
stream in the triggerer (``shared_stream_key``). The stream's single poll loop lists the top-level
``DATA_OBJECT_SYNC`` tasks of each watched Immuta connection once per interval (one list call per
connection, however many watchers) and hands the snapshot to every watcher, which decides against
its own watermark (kept in Airflow's asset state store, see
:mod:`immuta_provider._sync_watermark`) which ended syncs are new. Reading a new sync's run (for
the event's summary) is shared too: one request per sync, not per watcher.

This module is imported by DAG files (for the watcher) and must stay light: the client and the
hook are imported only inside the triggerer's code paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Collection, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from immuta_provider._compat import BaseEventTrigger, TriggerEvent, event_scheduling_unavailable
from immuta_provider._sync_watermark import ObservedSync, SyncWatermark, first_look
from immuta_provider._task_runs import check_positive, is_transient
from immuta_provider.assets import ANNOUNCED_SYNCS_KEY
from immuta_provider.client.vocabulary import FAILURE_STATUSES, SUCCESS_STATUSES

if TYPE_CHECKING:
    from immuta_provider.client import AsyncImmutaClient

log = logging.getLogger(__name__)

SYNC_TASK_TYPE = "DATA_OBJECT_SYNC"
DEFAULT_POLL_INTERVAL = 60.0
ERROR_RETRY_INTERVAL = 300.0
"""Default seconds before a connection that failed permanently (401, 403, 404...) is polled
again. Airflow's ``[immuta] sync_watcher_error_retry_interval`` overrides it."""
WATERMARK_KEY_PREFIX = "immuta_sync_watermark"
_PAGE_SIZE = 100
_MAX_PAGES = 10
_SUMMARY_CACHE_SIZE = 512


def error_retry_interval() -> float:
    """``[immuta] sync_watcher_error_retry_interval`` from Airflow's configuration, else 300 s."""
    from immuta_provider._compat import conf

    try:
        value = conf.getfloat(
            "immuta", "sync_watcher_error_retry_interval", fallback=ERROR_RETRY_INTERVAL
        )
    except Exception:  # not a number: fall back rather than stop watching
        return ERROR_RETRY_INTERVAL
    return value if value > 0 else ERROR_RETRY_INTERVAL


# ---- the shared poll loop ----------------------------------------------------------------------


class _Group:
    """The Immuta connections the watchers of one shared stream want polled."""

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.wake: asyncio.Event | None = None

    def add(self, connection_key: str) -> None:
        self.keys[connection_key] += 1
        if self.wake is not None:
            self.wake.set()  # a new connection is polled at once, not after a full interval

    def remove(self, connection_key: str) -> None:
        self.keys[connection_key] -= 1
        if self.keys[connection_key] <= 0:
            del self.keys[connection_key]


_groups: dict[Hashable, _Group] = {}
"""Per triggerer process, like Airflow's shared stream groups themselves."""


def _group(key: Hashable) -> _Group:
    group = _groups.get(key)
    if group is None:
        group = _groups[key] = _Group()
    return group


def _task_wire(task: Any) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "status": str(task.status),
        "created_at": task.created_at.isoformat() if task.created_at is not None else None,
        "trigger": None if task.trigger is None else str(task.trigger),
        "created_by": task.created_by,
    }


class _ConnectionPoll:
    """What the loop remembers of one Immuta connection between polls (to bound the paging)."""

    def __init__(self, connection_key: str) -> None:
        self.connection_key = connection_key
        self.due = 0.0
        self.failing: str | None = None
        self.oldest_needed: str | None = None

    async def poll(self, client: AsyncImmutaClient, ended: Collection[str]) -> list[dict[str, Any]]:
        """The connection's top-level syncs, newest first: one page of 100 in the steady state.

        A further page is read only when the first one may not reach back to the oldest sync
        that mattered at the last poll (one still going, or the newest one then).
        """
        listing = client.list_tasks(self.connection_key, type=SYNC_TASK_TYPE, page_size=_PAGE_SIZE)
        seen: list[dict[str, Any]] = []
        pages = 0
        async for page in listing.pages():
            pages += 1
            items = [_task_wire(task) for task in page.items]
            # Child tasks (one per database of a sync) have a parent; the sync itself has none.
            seen.extend(_task_wire(task) for task in page.items if task.parent_id is None)
            if page.next_cursor is None or pages >= _MAX_PAGES or not items:
                break
            first, last = items[0]["created_at"] or "", items[-1]["created_at"] or ""
            ascending = first < last  # a tenant listing oldest first: read to the end
            if not ascending and (self.oldest_needed is None or last <= self.oldest_needed):
                break
        going = [s["created_at"] for s in seen if s["status"] not in ended and s["created_at"]]
        stamps = [s["created_at"] for s in seen if s["created_at"]]
        self.oldest_needed = min(going) if going else max(stamps) if stamps else None
        return seen


def end_statuses(settings: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(success, failure) statuses of a run: the Airflow connection's, else the defaults."""
    success = tuple(getattr(settings, "success_statuses", None) or SUCCESS_STATUSES)
    failure = tuple(getattr(settings, "failure_statuses", None) or FAILURE_STATUSES)
    return success, failure


async def _shared_poll(
    group_key: Hashable, immuta_conn_id: str, poll_interval: float
) -> AsyncIterator[dict[str, Any]]:
    """Poll every watched connection once per interval and yield one snapshot per connection.

    Never raises for Immuta's or the connection's sake (that would fail every watcher of the
    stream and have the triggerer restart them in a loop): errors are logged and polled again,
    transient ones after the interval, permanent ones after the error retry interval.
    """
    from immuta_provider._compat import AirflowException

    # The first import of the hook (httpx, pydantic models) takes seconds on a busy host: not on
    # the triggerer's event loop, where every other trigger would wait for it.
    hooks = await asyncio.to_thread(importlib.import_module, "immuta_provider.hooks.immuta")
    ImmutaHook = hooks.ImmutaHook
    group = _group(group_key)
    group.wake = asyncio.Event()
    polls: dict[str, _ConnectionPoll] = {}
    retry = max(error_retry_interval(), poll_interval)
    while True:
        try:
            hook = ImmutaHook(immuta_conn_id=immuta_conn_id)
            success, failure = end_statuses(await hook.aget_settings())
            ended = (*success, *failure)
            async with hook.shared_async_client() as client:
                base_url = client.base_url
                while True:
                    now = time.time()
                    for key in sorted(group.keys):
                        state = polls.setdefault(key, _ConnectionPoll(key))
                        if state.due > now:
                            continue
                        snapshot = await _poll_one(state, client, ended, poll_interval, retry)
                        if snapshot is not None:
                            snapshot["base_url"] = base_url
                            snapshot["success_statuses"] = list(success)
                            snapshot["failure_statuses"] = list(failure)
                            yield snapshot
                    for gone in set(polls) - set(group.keys):
                        del polls[gone]
                    due = [state.due for state in polls.values()]
                    wait = max(0.0, min(due) - time.time()) if due else poll_interval
                    group.wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(group.wake.wait(), timeout=wait)
        except (AirflowException, ValueError, OSError) as exc:
            log.error(
                "Immuta sync watcher: cannot use Airflow connection %r: %s. Watchers on it fire "
                "nothing until this is fixed; trying again in %g s.",
                immuta_conn_id,
                exc,
                retry,
            )
            await asyncio.sleep(retry)


async def _poll_one(
    state: _ConnectionPoll,
    client: AsyncImmutaClient,
    ended: Collection[str],
    poll_interval: float,
    retry: float,
) -> dict[str, Any] | None:
    """One connection's snapshot, or ``None`` after logging why it could not be read."""
    from immuta_provider.client.errors import ImmutaError

    key = state.connection_key
    started = time.time()  # the next poll is due one interval after this one started
    try:
        tasks = await state.poll(client, ended)
    except ImmutaError as exc:
        if is_transient(exc):
            state.due = started + poll_interval
            log.warning(
                "Immuta sync watcher: listing the syncs of connection %r failed (%s); polling "
                "again in %g s.",
                key,
                exc,
                poll_interval,
            )
        else:
            state.due = started + retry
            state.failing = str(exc)
            log.error(
                "Immuta sync watcher: connection %r cannot be watched: %s. Check that the "
                "connection exists in Immuta and that the API key may read its tasks; polling "
                "it again in %g s (every %g s until it answers).",
                key,
                exc,
                retry,
                retry,
            )
        return None
    if state.failing is not None:
        log.info("Immuta sync watcher: connection %r answers again.", key)
        state.failing = None
    state.due = started + poll_interval
    return {"connection_key": key, "tasks": tasks, "polled_at": time.time()}


class _RunSummaries:
    """The summary of each ended sync's run, read once per triggerer for all its watchers."""

    def __init__(self) -> None:
        self._done: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()
        self._pending: dict[tuple[str, str, str], asyncio.Future[dict[str, Any]]] = {}

    async def get(self, immuta_conn_id: str, connection_key: str, task_id: str) -> dict[str, Any]:
        key = (immuta_conn_id, connection_key, task_id)
        if key in self._done:
            return self._done[key]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            summary = await _read_summary(immuta_conn_id, connection_key, task_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._pending[key]
        future.set_result(summary)
        self._done[key] = summary
        while len(self._done) > _SUMMARY_CACHE_SIZE:
            self._done.popitem(last=False)
        return summary


async def _read_summary(immuta_conn_id: str, connection_key: str, task_id: str) -> dict[str, Any]:
    from immuta_provider._task_runs import afetch_run, run_summary
    from immuta_provider.client import ui
    from immuta_provider.hooks.immuta import ImmutaHook

    async with ImmutaHook(immuta_conn_id=immuta_conn_id).shared_async_client() as client:
        run = await afetch_run(client, connection_key, task_id, None)
        base_url = client.base_url
    if run is None:
        return {
            "connection_key": connection_key,
            "immuta_task_id": task_id,
            "task_run_url": ui.connection_url(base_url, connection_key),
        }
    summary = run_summary(connection_key, task_id, run)
    summary["task_run_url"] = ui.task_run_url(base_url, connection_key, task_id, run.run_id)
    if run.error is not None:
        summary["error_code"], summary["error_message"] = run.error.code, run.error.message
    if run.canceled_by:
        summary["canceled_by"] = run.canceled_by
    return summary


_summaries = _RunSummaries()


# ---- the trigger -------------------------------------------------------------------------------


class ImmutaSyncCompletedTrigger(BaseEventTrigger):  # type: ignore[misc, valid-type, unused-ignore]
    """Fire once for each sync of an Immuta connection that completes, whoever started it.

    For event-driven scheduling (Airflow 3.3+): use it in an ``AssetWatcher`` of the connection's
    asset (:func:`~immuta_provider.assets.immuta_sync_completed_asset` builds the asset in one
    call), and schedule DAGs on that asset. It yields one event per top-level
    ``DATA_OBJECT_SYNC`` task of the connection that ends with a success status (``COMPLETED``,
    or the Airflow connection's success statuses where it sets them), started from
    Airflow, from Immuta's UI or by Immuta's own schedule. The event's payload is the run summary
    (``connection_key``, ``immuta_task_id``, ``run_id``, ``status``, ``created_at``,
    ``started_at``, ``completed_at``, ``duration_seconds``), the run's Immuta page
    (``task_run_url``), the task's ``trigger`` and ``created_by``, and ``outcome``
    (``success`` or ``failure``).

    What you can rely on:

    * Syncs that ended before the watcher first started never fire (no flood of history).
    * The watcher's watermark lives in Airflow's asset state store, so after a triggerer restart
      or a move to another triggerer, syncs already fired do not fire again and syncs that ended
      while no triggerer ran fire then. Without an asset state store (the trigger run outside an
      asset watcher) it lives in memory, and a restart starts afresh.
    * A sync that :class:`~immuta_provider.operators.immuta.ImmutaDataObjectSyncOperator` runs
      (and announces in the same asset's state store when it starts it) does not fire: the
      operator emits that asset's event itself, with the data object count, so a DAG scheduled on
      the asset runs once per sync.
    * All watchers of one Airflow connection and poll interval share one poll loop in the
      triggerer: one list request per Immuta connection per interval, however many watchers.
    * Transient errors (timeouts, 429, 5xx) are retried at the next interval; permanent ones
      (401, 403, a deleted connection) are logged as errors and retried every
      ``[immuta] sync_watcher_error_retry_interval`` seconds (300 by default). The watcher never
      stops on its own.

    :param connection_key: The Immuta connection whose syncs to watch.
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    :param poll_interval: Seconds between two looks at the connection's syncs; must be > 0.
    :param fire_on_failure: Also fire for syncs that end with a failure status (``FAILED``,
        ``CANCELED``); the payload's ``outcome`` is then ``failure``, with Immuta's
        ``error_code`` and ``error_message``.
    :raises RuntimeError: On Airflow before 3.3, which has no event-driven scheduling with shared
        streams and asset state (importing this class works there; building it does not).
    """

    def __init__(
        self,
        connection_key: str,
        immuta_conn_id: str = "immuta_default",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        fire_on_failure: bool = False,
    ) -> None:
        unavailable = event_scheduling_unavailable()
        if unavailable is not None:
            raise RuntimeError(unavailable)
        super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
        check_positive("poll_interval", poll_interval)
        if not isinstance(connection_key, str) or not connection_key.strip():
            raise ValueError(
                f"connection_key must be the key of an Immuta connection, got {connection_key!r}."
            )
        self.connection_key = connection_key
        self.immuta_conn_id = immuta_conn_id
        self.poll_interval = float(poll_interval)
        self.fire_on_failure = bool(fire_on_failure)
        self._memory: Any = None  # the watermark when there is no asset state store

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and JSON-safe keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "connection_key": self.connection_key,
                "immuta_conn_id": self.immuta_conn_id,
                "poll_interval": self.poll_interval,
                "fire_on_failure": self.fire_on_failure,
            },
        )

    # -- the shared stream -------------------------------------------------------------------

    def shared_stream_key(self) -> Hashable:
        """Watchers of one Airflow connection and poll interval share one poll loop."""
        return ("immuta-sync-completed", self.immuta_conn_id, self.poll_interval)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """The group's poll loop: one snapshot per watched Immuta connection per interval."""
        conn_id, interval = kwargs["immuta_conn_id"], float(kwargs["poll_interval"])
        key = ("immuta-sync-completed", conn_id, interval)
        async for snapshot in _shared_poll(key, conn_id, interval):
            yield snapshot

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Standalone run (a triggerer that does not share streams): a private poll loop."""
        stream = self.open_shared_stream(self.serialize()[1])
        async for event in self.filter_shared_stream(stream):
            yield event

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """This watcher's events from the shared snapshots, checked against its watermark."""
        group = _group(self.shared_stream_key())
        group.add(self.connection_key)
        try:
            watermark = await self._load_watermark()
            async for snapshot in shared_stream:
                if snapshot.get("connection_key") != self.connection_key:
                    continue
                async for event, current in self._handle(snapshot, watermark):
                    watermark = current
                    if event is not None:
                        yield event
        finally:
            group.remove(self.connection_key)

    async def _handle(
        self, snapshot: dict[str, Any], watermark: SyncWatermark | None
    ) -> AsyncIterator[tuple[TriggerEvent | None, SyncWatermark]]:
        """Events for one snapshot, each followed by the watermark saved after it."""
        success = tuple(snapshot["success_statuses"])
        ended = (*success, *snapshot["failure_statuses"])
        tasks = {item["task_id"]: item for item in snapshot["tasks"]}
        syncs = [ObservedSync.from_wire(item) for item in snapshot["tasks"]]
        if watermark is None:
            watermark = first_look(syncs, ended)
            await self._save_watermark(watermark)
            self.log.info(
                "Watching the syncs of Immuta connection %r: %d sync(s) that already ended will "
                "not fire; the next ones will.",
                self.connection_key,
                sum(1 for sync in syncs if sync.status in ended),
            )
            yield None, watermark
            return
        fresh = watermark.new_ended(syncs, ended)
        if not fresh:
            new = watermark.advance(syncs, ended, handled_now=())
            if new != watermark:
                await self._save_watermark(new)
            yield None, new
            return
        announced = await self._announced_syncs()
        remaining = [sync.task_id for sync in fresh]
        postponed: list[str] = []
        for sync in fresh:
            remaining.remove(sync.task_id)
            event = await self._event_for(sync, tasks[sync.task_id], success, announced, postponed)
            if sync.task_id in postponed:
                continue
            if event is not None:
                yield event, watermark
            watermark = watermark.advance(
                syncs, ended, handled_now=[sync.task_id], postponed=[*remaining, *postponed]
            )
            await self._save_watermark(watermark)
        watermark = watermark.advance(syncs, ended, handled_now=(), postponed=postponed)
        await self._save_watermark(watermark)
        yield None, watermark

    async def _event_for(
        self,
        sync: ObservedSync,
        task: dict[str, Any],
        success: Sequence[str],
        announced: Collection[str],
        postponed: list[str],
    ) -> TriggerEvent | None:
        succeeded = sync.status in success
        what = f"Immuta sync {sync.task_id} of connection {self.connection_key!r}"
        if not succeeded and not self.fire_on_failure:
            self.log.info("%s ended %s: not firing (fire_on_failure=False).", what, sync.status)
            return None
        if succeeded and sync.task_id in announced:
            self.log.info(
                "%s ended %s: not firing, an Airflow sync operator ran it and emits the asset "
                "event itself.",
                what,
                sync.status,
            )
            return None
        try:
            summary = await _summaries.get(self.immuta_conn_id, self.connection_key, sync.task_id)
        except Exception as exc:
            self.log.warning(
                "%s ended %s; reading its run failed (%s): trying again at the next poll.",
                what,
                sync.status,
                exc,
            )
            postponed.append(sync.task_id)
            return None
        payload = {
            **summary,
            "status": summary.get("status") or sync.status,
            "outcome": "success" if succeeded else "failure",
            "trigger": task.get("trigger"),
            "created_by": task.get("created_by"),
        }
        self.log.info("%s ended %s: firing. %s", what, sync.status, payload.get("task_run_url"))
        return TriggerEvent(payload)  # type: ignore[no-untyped-call, unused-ignore]

    # -- state -------------------------------------------------------------------------------

    def _watermark_key(self) -> str:
        which = "ended" if self.fire_on_failure else "succeeded"
        return f"{WATERMARK_KEY_PREFIX}:{self.immuta_conn_id}:{self.connection_key}:{which}"

    def _accessors(self) -> list[Any]:
        """The state accessors of the asset(s) this trigger watches (usually exactly one)."""
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return []
        try:
            return [store._single_accessor()]
        except ValueError:  # one trigger watching several assets: keep the state on each
            by_name = getattr(store, "_by_name", {})
            by_uri = getattr(store, "_by_uri", {})
            return [*by_name.values(), *by_uri.values()]

    async def _load_watermark(self) -> SyncWatermark | None:
        accessors = self._accessors()
        if not accessors:
            self.log.warning(
                "No asset state store for the Immuta sync watcher of %r: its watermark is kept "
                "in memory, so after a triggerer restart it starts afresh (syncs that ended "
                "while it was down do not fire).",
                self.connection_key,
            )
            return SyncWatermark.from_state(self._memory)
        return SyncWatermark.from_state(await accessors[0].aget(self._watermark_key()))

    async def _save_watermark(self, watermark: SyncWatermark) -> None:
        state = watermark.to_state()
        accessors = self._accessors()
        if not accessors:
            self._memory = state
        for accessor in accessors:
            await accessor.aset(self._watermark_key(), state)

    async def _announced_syncs(self) -> set[str]:
        announced: set[str] = set()
        for accessor in self._accessors():
            try:
                value = await accessor.aget(ANNOUNCED_SYNCS_KEY)
            except Exception as exc:  # a missing list must not stop the watcher
                self.log.warning("Could not read the syncs announced by operators: %s", exc)
                continue
            if isinstance(value, list):
                announced.update(str(item) for item in value)
        return announced
