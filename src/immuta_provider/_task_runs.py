"""Waiting on an Immuta task run: the rules shared by the operator, the sensor and the trigger.

``RunWatch`` is a small state machine with no I/O: the caller fetches the run (with the sync client
and ``time.sleep`` in a worker, or the async client in the triggerer) and feeds each answer in.
The watch logs progress a person can follow in the task log (every status change, and while
nothing changes a heartbeat line at most every :data:`PROGRESS_LOG_INTERVAL` seconds, each with the
elapsed time and the run's Immuta page), keeps transient errors from failing the wait until too
many come in a row, enforces the absolute deadline, and, when the wait is over, returns one
JSON-safe *outcome* dict. The trigger yields that dict as its event payload and the operator
builds the same dict when it waits without deferring, so both paths end in the same code.

This module must stay cheap to import (the operators import it at DAG parse time): the client
is imported only inside functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from immuta_provider.client import ui
from immuta_provider.client.errors import (
    ImmutaRateLimitError,
    ImmutaResponseError,
    ImmutaServerError,
    ImmutaTransportError,
)
from immuta_provider.client.statuses import (
    ENDED_UNKNOWN,
    FAILED,
    FAILURE_EXTRA,
    GOING,
    SUCCEEDED,
    SUCCESS_EXTRA,
    UNKNOWN,
    RunStatuses,
)
from immuta_provider.client.vocabulary import TaskStatus

if TYPE_CHECKING:
    from immuta_provider.client import AsyncImmutaClient, ImmutaClient
    from immuta_provider.client.models import TaskRun

DEFAULT_MAX_CONSECUTIVE_ERRORS = 5

PROGRESS_LOG_INTERVAL = 60.0
"""Default seconds between two heartbeat lines while the run's status does not change. Airflow's
``[immuta] progress_log_interval`` option overrides it."""

# Outcome "status" values (the trigger event's status).
SUCCESS = "success"
FAILURE = "failure"
TIMEOUT = "timeout"
ERROR = "error"


def check_positive(name: str, value: float | None) -> None:
    """Reject a poll interval or timeout that is not a positive number of seconds."""
    if value is not None and not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}.")


def progress_log_interval() -> float:
    """``[immuta] progress_log_interval`` from Airflow's configuration, else the default."""
    from immuta_provider._compat import conf

    try:
        value = conf.getfloat("immuta", "progress_log_interval", fallback=PROGRESS_LOG_INTERVAL)
    except Exception:  # not a number: a log setting must never fail a sync
        return PROGRESS_LOG_INTERVAL
    return value if value > 0 else PROGRESS_LOG_INTERVAL


def status_text(status: Any) -> str:
    """A run status as a plain string (the client keeps unknown values as plain strings)."""
    return str(status)


def format_elapsed(seconds: float) -> str:
    """``4.2s``, ``3m 07s``, ``2h 05m``: short enough for a log line."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def latest_run(runs: Iterable[TaskRun]) -> TaskRun | None:
    """The most recently created run of a task (the API does not promise an order)."""
    latest: TaskRun | None = None
    for run in runs:
        if latest is None or _created_key(run) > _created_key(latest):
            latest = run
    return latest


def _created_key(run: TaskRun) -> float:
    stamp = run.created_at or run.started_at
    return stamp.timestamp() if stamp is not None else float("-inf")


def fetch_run(
    client: ImmutaClient, connection_key: str, immuta_task_id: str, run_id: str | None
) -> TaskRun | None:
    """The run ``run_id`` of a task, or its latest run when ``run_id`` is ``None`` (maybe none)."""
    if run_id is not None:
        return client.get_task_run(connection_key, immuta_task_id, run_id)
    return latest_run(client.list_task_runs(connection_key, immuta_task_id))


async def afetch_run(
    client: AsyncImmutaClient, connection_key: str, immuta_task_id: str, run_id: str | None
) -> TaskRun | None:
    """:func:`fetch_run` for the async client."""
    if run_id is not None:
        return await client.get_task_run(connection_key, immuta_task_id, run_id)
    return latest_run([run async for run in client.list_task_runs(connection_key, immuta_task_id)])


def run_summary(connection_key: str, immuta_task_id: str, run: TaskRun) -> dict[str, Any]:
    """The JSON-safe description of a run that the operator and the sensor return as XCom."""
    duration = None
    if run.started_at is not None and run.completed_at is not None:
        duration = round((run.completed_at - run.started_at).total_seconds(), 3)
    return {
        "connection_key": connection_key,
        "immuta_task_id": run.task_id or immuta_task_id,
        "run_id": run.run_id,
        "status": status_text(run.status),
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
        "duration_seconds": duration,
    }


def is_transient(exc: BaseException) -> bool:
    """Whether an error may go away by itself (worth polling again rather than failing)."""

    return isinstance(
        exc, ImmutaTransportError | ImmutaRateLimitError | ImmutaServerError | ImmutaResponseError
    )


def classify_run(
    run: TaskRun, statuses: RunStatuses, failure_statuses: Sequence[str] | None = None
) -> str:
    """``SUCCEEDED``, ``FAILED``, ``ENDED_UNKNOWN``, ``GOING`` or ``UNKNOWN`` (from
    ``client/statuses.py``) for a run, given the connection's status names and an optional
    per-task override of the failure set (an ended run whose status the connection knows but the
    override does not list is a success, as it always was for the sensor's argument)."""
    kind = statuses.classify(run.status, run.completed_at)
    if failure_statuses is None:
        return kind
    if status_text(run.status) in failure_statuses:
        return FAILED
    return SUCCEEDED if kind in (SUCCEEDED, FAILED) else kind


def run_has_ended(
    run: TaskRun | None, statuses: RunStatuses, failure_statuses: Sequence[str] | None = None
) -> bool:
    """Whether a run has ended: its status is in the success or failure set (or the override),
    or its ``completedAt`` is set."""
    return run is not None and classify_run(run, statuses, failure_statuses) not in (GOING, UNKNOWN)


class RunWatch:
    """Follow one task run to its end, a deadline or too many errors.

    :param connection_key: The Immuta connection the task belongs to.
    :param immuta_task_id: The Immuta task.
    :param run_id: The run to watch; ``None`` watches the task's latest run (set once seen).
    :param statuses: The tenant's run status names (the Airflow connection's
        ``success_statuses`` / ``failure_statuses`` / ``active_statuses``); defaults when ``None``.
        A run has ended when its status is in the success or failure set or its ``completedAt``
        is set; an ended run with a status in neither set is a failure that says which extra to
        set; a status in no set without ``completedAt`` is logged once and polled on.
    :param failure_statuses: Overrides the failure set for this wait (the sensor's argument): an
        ended run with one of these statuses fails, one with any other status the connection
        knows (success or failure set) succeeds. ``None``: use ``statuses``.
    :param immuta_conn_id: The Airflow connection, named in the advice for an unknown end status.
    :param deadline: Absolute wall-clock deadline (epoch seconds), or ``None`` to wait forever.
    :param started_at: When the wait began (epoch seconds), for the elapsed times in the log.
    :param last_status: The last status already logged (so a resumed wait does not log it again).
    :param max_consecutive_errors: Transient errors in a row that end the wait with an error.
    :param logger: Where status changes go.
    :param base_url: The Immuta URL, for the links in the progress lines (settable later).
    :param progress_interval: Seconds between heartbeat lines while nothing changes; defaults to
        :func:`progress_log_interval`.
    :param clock: The wall clock (epoch seconds); tests pass their own.
    """

    def __init__(
        self,
        *,
        connection_key: str,
        immuta_task_id: str,
        run_id: str | None,
        statuses: RunStatuses | None = None,
        failure_statuses: Sequence[str] | None = None,
        immuta_conn_id: str | None = None,
        deadline: float | None = None,
        started_at: float | None = None,
        last_status: str | None = None,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        logger: logging.Logger | Any,
        base_url: str | None = None,
        progress_interval: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock or time.time
        self.connection_key = connection_key
        self.immuta_task_id = immuta_task_id
        self.run_id = run_id
        self.statuses = statuses or RunStatuses()
        self.failure_statuses = None if failure_statuses is None else tuple(failure_statuses)
        self.immuta_conn_id = immuta_conn_id
        self._warned_unknown: set[str] = set()
        self.deadline = deadline
        self.started_at = self._clock() if started_at is None else started_at
        self.last_status = last_status
        self.max_consecutive_errors = max_consecutive_errors
        self.consecutive_errors = 0
        self.last_run: TaskRun | None = None
        self._log = logger
        self._waiting_for_run_logged = False
        self.base_url = base_url
        self.progress_interval = (
            progress_log_interval() if progress_interval is None else progress_interval
        )
        self._last_line_at = self._clock()

    @property
    def elapsed(self) -> float:
        """Seconds since the wait began."""
        return self._clock() - self.started_at

    def _describe(self) -> str:
        run = self.run_id or "(latest run)"
        return f"Immuta task {self.immuta_task_id} run {run} of connection {self.connection_key!r}"

    def link(self) -> str:
        """The run's Immuta page (the connection's until the run is known), or ``""``."""
        if not self.base_url:
            return ""

        if self.run_id is None:
            return ui.connection_url(self.base_url, self.connection_key)
        return ui.task_run_url(self.base_url, self.connection_key, self.immuta_task_id, self.run_id)

    def _progress(self, message: str, *args: Any) -> None:
        """Log one progress line, with the Immuta link, and restart the heartbeat interval."""
        link = self.link()
        if link:
            message += " - %s"
            args = (*args, link)
        self._log.info(message, *args)
        self._last_line_at = self._clock()

    def _heartbeat_due(self) -> bool:
        return self._clock() - self._last_line_at >= self.progress_interval

    def _outcome(self, status: str, message: str, run: TaskRun | None) -> dict[str, Any]:
        error = run.error if run is not None else None
        return {
            "status": status,
            "message": message,
            "connection_key": self.connection_key,
            "immuta_task_id": self.immuta_task_id,
            "run_id": self.run_id,
            "run_status": self.last_status,
            "run": (
                run_summary(self.connection_key, self.immuta_task_id, run)
                if run is not None
                else None
            ),
            "error_code": error.code if error is not None else None,
            "error_message": error.message if error is not None else None,
            "canceled_by": run.canceled_by if run is not None else None,
            "elapsed_seconds": round(self.elapsed, 3),
        }

    def error_outcome(self, message: str) -> dict[str, Any]:
        """An ``error`` outcome for a failure outside the polling itself (e.g. a bad connection)."""
        return self._outcome(ERROR, message, self.last_run)

    def observe_run(self, run: TaskRun | None) -> dict[str, Any] | None:
        """Take in a freshly fetched run (``None``: the task has no run yet).

        :return: The outcome if the run has ended, else ``None`` (keep waiting).
        """
        self.consecutive_errors = 0
        if run is None:
            if not self._waiting_for_run_logged or self._heartbeat_due():
                self._progress(
                    "%s: no run yet after %s, waiting for Immuta to start one.",
                    self._describe(),
                    format_elapsed(self.elapsed),
                )
                self._waiting_for_run_logged = True
            return None
        if self.run_id is None:
            self.run_id = run.run_id
        self.last_run = run
        status = status_text(run.status)
        kind = self.classify(run)
        going = kind in (GOING, UNKNOWN)
        if status != self.last_status:
            previous = self.last_status or "(start)"
            self._progress(
                "%s: %s -> %s after %s",
                self._describe(),
                previous,
                status,
                format_elapsed(self.elapsed),
            )
            self.last_status = status
        elif going and self._heartbeat_due():
            self._progress(
                "%s: still %s after %s", self._describe(), status, format_elapsed(self.elapsed)
            )
        if kind == UNKNOWN and status not in self._warned_unknown:
            self._warned_unknown.add(status)
            self._log.warning(
                "%s reports the unknown status %r: it is in none of %s (%s), %s (%s) and "
                "active_statuses (%s) of %s, and the run has no completedAt, so it is treated as "
                "still going and polled on. If %s means the run has ended, add it to %s or %s; "
                "if it means still going, add it to active_statuses to silence this warning.",
                self._describe(),
                status,
                SUCCESS_EXTRA,
                ", ".join(self.statuses.success),
                FAILURE_EXTRA,
                ", ".join(self.statuses.failure),
                ", ".join(self.statuses.active),
                f"Airflow connection {self.immuta_conn_id!r}"
                if self.immuta_conn_id
                else "the Airflow connection",
                status,
                SUCCESS_EXTRA,
                FAILURE_EXTRA,
            )
        if going:
            return None
        elapsed = format_elapsed(self.elapsed)
        if kind == FAILED:
            return self._outcome(FAILURE, self._failure_message(run, elapsed), run)
        if kind == ENDED_UNKNOWN:
            completed = run.completed_at.isoformat() if run.completed_at is not None else None
            return self._outcome(
                FAILURE,
                f"{self._describe()} ended with the status {status!r} after {elapsed} (Immuta "
                f"set its completedAt to {completed}), which the provider knows neither as a "
                "success nor as a failure, so this task fails rather than guess. "
                + self.statuses.unknown_end_advice(status, self.immuta_conn_id),
                run,
            )
        return self._outcome(SUCCESS, f"{self._describe()} ended {status} after {elapsed}.", run)

    def has_ended(self, run: TaskRun) -> bool:
        """Whether the run has ended (a success, a failure, or an end status nobody named)."""
        return self.classify(run) not in (GOING, UNKNOWN)

    def classify(self, run: TaskRun) -> str:
        """What the run's status and ``completedAt`` mean for this wait (:func:`classify_run`)."""
        return classify_run(run, self.statuses, self.failure_statuses)

    def _failure_message(self, run: TaskRun, elapsed: str) -> str:
        status = status_text(run.status)
        message = f"{self._describe()} ended {status} after {elapsed}"
        if run.error is not None and (run.error.code or run.error.message):
            message += f": [{run.error.code or 'no code'}] {run.error.message or ''}".rstrip()
        elif status == TaskStatus.CANCELED or run.canceled_by:
            who = run.canceled_by or "unknown (not reported by Immuta)"
            message += f": canceled by {who}"
        return message if message.endswith(".") else message + "."

    def observe_error(self, exc: BaseException) -> dict[str, Any] | None:
        """Take in a failed fetch. Transient errors are tolerated up to the configured count.

        :return: The error outcome if the wait must end, else ``None`` (poll again).
        """
        if not is_transient(exc):
            return self._outcome(ERROR, f"{self._describe()}: {exc}", self.last_run)
        self.consecutive_errors += 1
        if self.consecutive_errors >= self.max_consecutive_errors:
            return self._outcome(
                ERROR,
                f"{self._describe()}: giving up after {self.consecutive_errors} failed polls in a "
                f"row; last error: {exc}",
                self.last_run,
            )
        self._log.warning(
            "%s: poll failed (%d of %d in a row allowed), polling again: %s",
            self._describe(),
            self.consecutive_errors,
            self.max_consecutive_errors,
            exc,
        )
        return None

    def check_deadline(self) -> dict[str, Any] | None:
        """The timeout outcome if the deadline has passed, else ``None``."""
        if self.deadline is None or self._clock() < self.deadline:
            return None
        return self._outcome(
            TIMEOUT,
            f"{self._describe()} did not finish before the deadline ({format_elapsed(self.elapsed)}"
            f" waited, last status {self.last_status or 'unknown'}).",
            self.last_run,
        )

    def next_sleep(self, poll_interval: float) -> float:
        """How long to sleep before the next poll: the interval, cut short by the deadline."""
        if self.deadline is None:
            return poll_interval
        return max(0.0, min(poll_interval, self.deadline - self._clock()))
