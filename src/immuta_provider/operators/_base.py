"""What the Immuta operators share: the hook, the Immuta UI link, and waiting for a task run.

:class:`ImmutaBaseOperator` gives an operator its hook (built when the task runs) and the XCom the
extra links read. :class:`ImmutaTaskRunWaitingOperator` adds the waiting machinery of operators
that start an Immuta task (a sync, a deletion) and follow its run to the end: in the worker with
:class:`~immuta_provider._task_runs.RunWatch`, or deferred to the triggerer with
:class:`~immuta_provider.triggers.immuta.ImmutaTaskRunTrigger`, with one absolute deadline, the
same outcome dict on both paths, and the run cancelled when the task is killed
(``cancel_on_kill``).

Imported at DAG parse time: no client, hook or trigger import at module level.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from immuta_provider._compat import AirflowException, BaseOperator
from immuta_provider._immuta_mixin import ImmutaMixin
from immuta_provider._task_runs import (
    FAILURE,
    SUCCESS,
    TIMEOUT,
    RunWatch,
    check_positive,
    fetch_run,
    run_has_ended,
    run_summary,
    status_text,
)
from immuta_provider.client.errors import ImmutaConflictError, ImmutaError

__all__ = ["ImmutaBaseOperator", "ImmutaTaskRunWaitingOperator", "check_positive"]

if TYPE_CHECKING:
    from immuta_provider.client import ImmutaClient
    from immuta_provider.client.models import TaskRun


class ImmutaBaseOperator(BaseOperator, ImmutaMixin):
    """Base of the Immuta operators: the hook of ``immuta_conn_id`` and the Immuta UI links
    (:class:`~immuta_provider._immuta_mixin.ImmutaMixin`).

    Subclasses set ``immuta_conn_id`` and ``connection_key`` in their ``__init__``.
    """

    ui_color = "#e8e4f7"


class ImmutaTaskRunWaitingOperator(ImmutaBaseOperator):
    """Base of operators that start an Immuta task and wait for its run to end.

    Subclasses set ``poll_interval``, ``timeout``, ``deferrable`` and ``cancel_on_kill`` in their
    ``__init__``, start the task in ``execute`` and hand its first run (or ``None`` if Immuta has
    not created one yet) to :meth:`_wait` or :meth:`_defer`; :meth:`_wait_or_defer` picks one.
    The Airflow connection's ``success_statuses`` / ``failure_statuses`` / ``active_statuses``
    say what a run's status means; a run that ends in a failure status fails the Airflow task, one
    that ends in a success status returns its summary as the task's XCom, and one that ends (its
    ``completedAt`` set) with a status in neither set fails the task naming the extra to set.
    """

    run_failure_statuses: tuple[str, ...] | None = None
    """Overrides the connection's failure statuses for this operator (``None``: use them)."""

    poll_interval: float
    timeout: float | None
    deferrable: bool
    cancel_on_kill: bool
    wait_for_completion: bool
    # What on_kill() needs while execute() is blocked polling.
    _immuta_task_id: str | None = None
    _run_id: str | None = None
    _finished: bool = False

    def _set_waiting_options(
        self,
        *,
        wait_for_completion: bool,
        deferrable: bool,
        poll_interval: float,
        timeout: float | None,
        cancel_on_kill: bool,
    ) -> None:
        """Check and keep the options every run-waiting operator takes (called from __init__)."""
        check_positive("poll_interval", poll_interval)
        check_positive("timeout", timeout)
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.cancel_on_kill = cancel_on_kill

    def _push_link(self, context: Any) -> None:
        """The links to the run this operator follows (the connection's until it is known)."""
        self.push_immuta_link(context, self._immuta_task_id, self._run_id)

    def _follow_started_task(
        self, context: Any, client: ImmutaClient, immuta_task_id: str
    ) -> dict[str, Any]:
        """Find the run of a task this operator just started, link it, and (with
        ``wait_for_completion``) wait for it; otherwise return what is known now."""
        run = fetch_run(client, self.connection_key, immuta_task_id, None)
        self._immuta_task_id = immuta_task_id
        self._run_id = run.run_id if run is not None else None
        self._push_link(context)
        if not self.wait_for_completion:
            self._finished = True
            if run is None:
                return {"connection_key": self.connection_key, "immuta_task_id": immuta_task_id}
            return run_summary(self.connection_key, immuta_task_id, run)
        return self._wait_or_defer(client, immuta_task_id, run)

    def _wait_or_defer(
        self, client: ImmutaClient, immuta_task_id: str, run: TaskRun | None
    ) -> dict[str, Any]:
        """Wait for the run (deferred to the triggerer with ``deferrable``) and return its summary.

        The timeout becomes an absolute deadline here, so a triggerer restart does not reset it.
        """
        self._immuta_task_id = immuta_task_id
        self._run_id = run.run_id if run is not None else None
        started_at = time.time()
        deadline = started_at + self.timeout if self.timeout is not None else None
        if self.deferrable and not run_has_ended(
            run, self.hook.run_statuses, self.run_failure_statuses
        ):
            self._defer(immuta_task_id, run, deadline, started_at)
        return self._wait(client, immuta_task_id, run, deadline, started_at)

    def _defer(
        self, immuta_task_id: str, run: TaskRun | None, deadline: float | None, started_at: float
    ) -> None:
        from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

        self.defer(
            trigger=ImmutaTaskRunTrigger(
                immuta_conn_id=self.immuta_conn_id,
                connection_key=self.connection_key,
                immuta_task_id=immuta_task_id,
                run_id=run.run_id if run is not None else None,
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_kill=self.cancel_on_kill,
                statuses=self.hook.run_statuses.to_dict(),
                failure_statuses=(
                    None if self.run_failure_statuses is None else list(self.run_failure_statuses)
                ),
                last_status=status_text(run.status) if run is not None else None,
                started_at=started_at,
            ),
            method_name="execute_complete",
        )

    def _wait(
        self,
        client: ImmutaClient,
        immuta_task_id: str,
        run: TaskRun | None,
        deadline: float | None,
        started_at: float,
    ) -> dict[str, Any]:
        watch = RunWatch(
            connection_key=self.connection_key,
            immuta_task_id=immuta_task_id,
            run_id=self._run_id,
            statuses=self.hook.run_statuses,
            failure_statuses=self.run_failure_statuses,
            immuta_conn_id=self.immuta_conn_id,
            deadline=deadline,
            started_at=started_at,
            logger=self.log,
            base_url=self.hook.base_url,
        )
        outcome = watch.observe_run(run) if run is not None else None
        while outcome is None:
            outcome = watch.check_deadline()
            if outcome is not None:
                break
            time.sleep(watch.next_sleep(self.poll_interval))
            try:
                current = fetch_run(client, self.connection_key, immuta_task_id, watch.run_id)
            except Exception as exc:
                outcome = watch.observe_error(exc)
            else:
                outcome = watch.observe_run(current)
            self._run_id = watch.run_id
        return self._finish(outcome)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: return the run summary or fail the task."""
        self._immuta_task_id = event.get("immuta_task_id")
        self._run_id = event.get("run_id")
        if self._run_id is not None:
            # The run may have been unknown when the task deferred; make the link complete.
            self._push_link(context)
        return self._finish(event)

    def _finish(self, outcome: dict[str, Any]) -> dict[str, Any]:
        """Turn an outcome (from the trigger or from waiting here) into a result or a failure."""
        self._finished = True
        status = outcome["status"]
        message = outcome["message"]
        if status == SUCCESS:
            self.log.info("%s", message)
            summary: dict[str, Any] = outcome["run"]
            return summary
        if status == FAILURE:
            self.log.error("%s", message)
            raise AirflowException(message)
        if status == TIMEOUT:
            message += self._cancel_after_timeout()
            self.log.error("%s", message)
            raise AirflowException(message)
        self.log.error("%s", message)
        raise AirflowException(
            f"{message} The Immuta run may still be going"
            + (f": {self._run_url()}" if self._run_id else ".")
        )

    def _run_url(self) -> str:
        assert self._immuta_task_id is not None and self._run_id is not None
        return self.hook.task_run_url(self.connection_key, self._immuta_task_id, self._run_id)

    def _cancel_after_timeout(self) -> str:
        """What happened to the run after the deadline passed (appended to the error)."""
        if not self.cancel_on_kill:
            return " The run was left going in Immuta (cancel_on_kill=False)."
        if self._run_id is None:
            return " Immuta had not started a run yet; nothing to cancel."
        with self.hook.new_client() as client:
            return " " + self._cancel_run(client)

    def _cancel_run(self, client: ImmutaClient) -> str:
        """Ask Immuta to cancel the run; return what happened, for the log or the error."""
        assert self._immuta_task_id is not None and self._run_id is not None
        try:
            client.cancel_task_run(self.connection_key, self._immuta_task_id, self._run_id)
        except ImmutaConflictError as exc:
            return self._after_cancel_conflict(client, self._immuta_task_id, self._run_id, exc)[2]
        except ImmutaError as exc:
            # No answer: the request may still have reached Immuta. Say what the run is now.
            return f"Cancelling the run in Immuta failed: {exc}" + self._run_now(
                client, self._immuta_task_id, self._run_id
            )
        return f"Asked Immuta to cancel the run: {self._run_url()}"

    def _run_now(self, client: ImmutaClient, immuta_task_id: str, run_id: str) -> str:
        try:
            run = client.get_task_run(self.connection_key, immuta_task_id, run_id)
        except ImmutaError as exc:
            return f" (and the run could not be read again: {exc})"
        return f" The run is now {status_text(run.status)}: {self._run_url()}"

    def _after_cancel_conflict(
        self, client: ImmutaClient, immuta_task_id: str, run_id: str, exc: ImmutaConflictError
    ) -> tuple[str, TaskRun | None, str]:
        """Re-read a run whose cancellation Immuta answered with 409, and say why.

        A 409 after a retry usually means the first request reached Immuta and only its answer
        was lost (a timeout, a dropped connection): the run is being cancelled, or is cancelled,
        by this very request. Returns ``(what, run, message)`` where ``what`` is ``"cancelling"``
        (the cancellation is under way or done), ``"ended"`` (the run ended on its own first),
        ``"refused"`` (still going, Immuta refuses) or ``"unread"`` (the run could not be read).
        """
        try:
            run = client.get_task_run(self.connection_key, immuta_task_id, run_id)
        except ImmutaError as read_error:
            return (
                "unread",
                None,
                f"Immuta answered the cancellation with 409 ({exc}) and the run could not be "
                f"read again to see why: {read_error}",
            )
        status = status_text(run.status)
        url = self.hook.task_run_url(self.connection_key, immuta_task_id, run_id)
        cancelled = "CANCEL" in status.upper() or bool(run.canceled_by)
        ended = self.hook.run_statuses.run_has_ended(run)
        lost = exc.attempts > 1
        if cancelled:
            how = (
                "the first request reached Immuta but its answer was lost, so the retry got "
                f"409 ({exc.message})"
                if lost
                else f"it had already been asked to (409: {exc.message})"
            )
            state = "cancelled" if ended else "being cancelled"
            return "cancelling", run, f"The run is {state} (status {status}): {how}. {url}"
        if ended:
            return (
                "ended",
                run,
                f"The run was not cancelled, it had already ended {status} (409: {exc.message}). "
                f"{url}",
            )
        return (
            "refused",
            run,
            f"Immuta refused to cancel task run {run_id} (status {status}): {exc}",
        )

    def on_kill(self) -> None:
        """Cancel the run in Immuta when the task is killed while waiting in a worker.

        Runs in a signal handler, possibly while ``execute`` is inside an HTTP call, so it uses a
        fresh client rather than the one ``execute`` may be holding.
        """
        if not self.cancel_on_kill or self._finished or self._run_id is None:
            return
        self.log.info(
            "The Airflow task was killed; cancelling Immuta task %s run %s.",
            self._immuta_task_id,
            self._run_id,
        )
        with self.hook.new_client() as client:
            self.log.info("%s", self._cancel_run(client))
