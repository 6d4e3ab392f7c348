"""``ImmutaTaskRunTrigger``: wait for an Immuta task run in the triggerer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from immuta_provider._compat import BaseTrigger, TriggerEvent
from immuta_provider._task_runs import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    RunWatch,
    afetch_run,
    check_positive,
)
from immuta_provider.client.errors import ImmutaConflictError
from immuta_provider.client.statuses import RunStatuses
from immuta_provider.triggers._off_loop_log import OffLoopLog

if TYPE_CHECKING:
    from immuta_provider.hooks.immuta import ImmutaHook

HEARTBEATS_PER_SECOND = 5.0
"""At most this many "still RUNNING" lines per second from all the waits of one triggerer.

Every line of a trigger is a message to the triggerer's supervisor and a write to a task log;
10,000 waits with a line a minute each kept the supervisor's log socket full (docs/scaling.md).
"""


class _LiveWaits:
    """How many ImmutaTaskRunTrigger waits this process runs now (one event loop per process)."""

    count = 0


def heartbeat_interval(configured: float, live_waits: int) -> float:
    """Seconds between heartbeat lines: ``configured``, spaced out when many waits share a
    triggerer so that they write at most :data:`HEARTBEATS_PER_SECOND` lines a second together."""
    return max(configured, live_waits / HEARTBEATS_PER_SECOND)


class ImmutaTaskRunTrigger(BaseTrigger):
    """Poll an Immuta task run until it ends, its deadline passes or Immuta stays unreachable.

    All triggers of a triggerer process that use the same Airflow connection share one HTTP
    client (one connection pool). Transient errors (429, 5xx, timeouts, dropped connections) are
    retried by the client, and after that the trigger keeps polling until
    ``max_consecutive_errors`` polls in a row have failed or the deadline passes.

    The trigger yields exactly one event whose payload has ``status`` ``success``, ``failure``,
    ``timeout`` or ``error``, a ``message``, the run's summary (``run``), and on failure Immuta's
    ``error_code`` / ``error_message`` or ``canceled_by``.

    A triggerer restart or a move to another triggerer never cancels the remote run; only a user
    action on the task (mark failed, clear, mark success) does, through :meth:`on_kill`, and only
    with ``cancel_on_kill``. Airflow 2.11 has no trigger ``on_kill`` (it cancels the trigger the
    same way for a user action as for a restart), so there the run survives a user action too;
    the deadline works on both.

    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    :param connection_key: The Immuta connection the task belongs to.
    :param immuta_task_id: The Immuta task.
    :param run_id: The run to wait for; ``None`` waits for the task's latest run.
    :param poll_interval: Seconds between polls; must be > 0.
    :param deadline: Absolute wall-clock deadline in epoch seconds (``time.time()`` based, so it
        survives a move to another triggerer host), or ``None`` for no deadline.
    :param cancel_on_kill: Cancel the run in Immuta when a user kills the deferred task.
    :param statuses: The run status names of the Airflow connection (``RunStatuses.to_dict()``:
        ``{"success": [...], "failure": [...], "active": [...]}``), read by the task before it
        deferred so the triggerer need not re-derive them; ``None``: the defaults.
    :param failure_statuses: Overrides the failure set for this wait (the sensor's argument); an
        ended run with a status the connection knows but this list lacks succeeds. ``None``: use
        ``statuses``.
    :param last_status: The last status already logged.
    :param started_at: When the wait began (epoch seconds), for elapsed times in the log.
    :param max_consecutive_errors: Failed polls in a row that end the wait with an ``error`` event.
    """

    def __init__(
        self,
        immuta_conn_id: str,
        connection_key: str,
        immuta_task_id: str,
        run_id: str | None = None,
        poll_interval: float = 10.0,
        deadline: float | None = None,
        cancel_on_kill: bool = False,
        failure_statuses: Sequence[str] | None = None,
        last_status: str | None = None,
        started_at: float | None = None,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        statuses: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
        # 0 would poll Immuta in a tight loop and starve the triggerer's other triggers.
        check_positive("poll_interval", poll_interval)
        self.immuta_conn_id = immuta_conn_id
        self.connection_key = connection_key
        self.immuta_task_id = immuta_task_id
        self.run_id = run_id
        self.poll_interval = float(poll_interval)
        self.deadline = None if deadline is None else float(deadline)
        self.cancel_on_kill = bool(cancel_on_kill)
        self.failure_statuses = (
            None if failure_statuses is None else [str(status) for status in failure_statuses]
        )
        # Validated here, so a bad dict fails the task when it defers, not later in the triggerer.
        self.statuses = RunStatuses.from_dict(statuses).to_dict()
        self.last_status = last_status
        self.started_at = started_at
        self.max_consecutive_errors = int(max_consecutive_errors)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and JSON-safe keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "immuta_conn_id": self.immuta_conn_id,
                "connection_key": self.connection_key,
                "immuta_task_id": self.immuta_task_id,
                "run_id": self.run_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
                "failure_statuses": (
                    None if self.failure_statuses is None else list(self.failure_statuses)
                ),
                "last_status": self.last_status,
                "started_at": self.started_at,
                "max_consecutive_errors": self.max_consecutive_errors,
                "statuses": self.statuses,
            },
        )

    def _hook(self) -> ImmutaHook:
        from immuta_provider.hooks.immuta import ImmutaHook

        return ImmutaHook(immuta_conn_id=self.immuta_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the run ends; yield one event."""
        log = OffLoopLog(self.log)
        watch = RunWatch(
            connection_key=self.connection_key,
            immuta_task_id=self.immuta_task_id,
            run_id=self.run_id,
            statuses=RunStatuses.from_dict(self.statuses),
            failure_statuses=self.failure_statuses,
            immuta_conn_id=self.immuta_conn_id,
            deadline=self.deadline,
            started_at=self.started_at,
            last_status=self.last_status,
            max_consecutive_errors=self.max_consecutive_errors,
            logger=log,
        )
        configured_interval = watch.progress_interval
        _LiveWaits.count += 1
        try:
            async with self._hook().shared_async_client() as client:
                watch.base_url = client.base_url  # for the Immuta links in the progress lines
                while True:
                    watch.progress_interval = heartbeat_interval(
                        configured_interval, _LiveWaits.count
                    )
                    try:
                        run = await afetch_run(
                            client, self.connection_key, self.immuta_task_id, watch.run_id
                        )
                    except Exception as exc:
                        outcome = watch.observe_error(exc)
                    else:
                        outcome = watch.observe_run(run)
                    # on_kill() runs on this instance after run() is cancelled: keep what it needs.
                    self.run_id, self.last_status = watch.run_id, watch.last_status
                    outcome = outcome or watch.check_deadline()
                    await log.flush()
                    if outcome is not None:
                        break
                    await asyncio.sleep(watch.next_sleep(self.poll_interval))
        except Exception as exc:  # the connection could not be read or the client not built
            outcome = watch.error_outcome(
                f"Could not poll Immuta with Airflow connection {self.immuta_conn_id!r}: {exc}"
            )
        finally:
            _LiveWaits.count -= 1
        # asyncio.CancelledError (a triggerer restart, or a user action) is deliberately not
        # caught: the remote run must survive restarts; on_kill() handles user actions.
        yield TriggerEvent(outcome)  # type: ignore[no-untyped-call, unused-ignore]

    async def on_kill(self) -> None:
        """Cancel the run in Immuta after a user killed the deferred task (``cancel_on_kill``).

        Airflow calls this only for user actions (mark failed, clear, mark success), never when the
        triggerer restarts or hands the trigger to another triggerer.
        """
        if not self.cancel_on_kill:
            return
        if self.run_id is None:
            self.log.warning(
                "The Airflow task was killed before Immuta task %s had a run; nothing to cancel.",
                self.immuta_task_id,
            )
            return

        async with self._hook().shared_async_client() as client:
            try:
                await client.cancel_task_run(self.connection_key, self.immuta_task_id, self.run_id)
            except ImmutaConflictError as exc:
                self.log.info("Immuta task run %s was not cancelled: %s", self.run_id, exc)
                return
        self.log.info(
            "The Airflow task was killed: asked Immuta to cancel task %s run %s of connection %r.",
            self.immuta_task_id,
            self.run_id,
            self.connection_key,
        )
