"""Operators for Immuta task runs: cancel one.

(Waiting for a run is :class:`~immuta_provider.sensors.immuta.ImmutaTaskRunSensor`.) Imported at
every DAG parse: the hook and the client are imported when a task runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from immuta_provider._compat import AirflowException, conf
from immuta_provider._task_runs import fetch_run, run_summary, status_text
from immuta_provider.client.errors import ImmutaConflictError
from immuta_provider.client.statuses import ENDED_UNKNOWN
from immuta_provider.links import ImmutaConnectionLink, ImmutaTaskRunLink
from immuta_provider.operators._base import ImmutaTaskRunWaitingOperator

if TYPE_CHECKING:
    from immuta_provider.client.models import TaskRun


class ImmutaCancelTaskRunOperator(ImmutaTaskRunWaitingOperator):
    """Ask Immuta to cancel a task run (a sync or a deletion), and optionally wait until it stops.

    Cancelling is a request: the run goes ``CANCELING``, then ``CANCELED``. A run that has already
    ended (``COMPLETED``, ``FAILED`` or ``CANCELED``) is a success with a log line saying so, also
    when it ends between the operator's check and its request. With
    ``wait_for_cancellation=True`` the operator waits until the run has stopped, in a worker or
    deferred to the triggerer, with the same ``poll_interval`` / ``timeout`` semantics as the sync
    operator; a run that completes anyway before the cancellation takes effect is logged as a
    warning, not a failure (it has stopped either way).

    Returns (as XCom) the run summary (``connection_key``, ``immuta_task_id``, ``run_id``,
    ``status``, timestamps, ``duration_seconds``): its status is ``CANCELING`` right after the
    request, or the end status when the run had ended or when the operator waited.

    :param connection_key: The Immuta connection the task belongs to (templated).
    :param immuta_task_id: The Immuta task whose run to cancel (templated), e.g.
        ``"{{ ti.xcom_pull('start_sync')['immuta_task_id'] }}"``. Not the Airflow ``task_id``.
    :param run_id: The run to cancel (templated); ``None`` cancels the task's latest run.
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    :param wait_for_cancellation: Wait until the run has stopped.
    :param deferrable: Wait in the triggerer instead of a worker slot. Defaults to
        ``[operators] default_deferrable``.
    :param poll_interval: Seconds between two status checks while waiting.
    :param timeout: Seconds to wait for the run to stop before failing, or ``None`` to wait as
        long as it takes.
    """

    template_fields = ("connection_key", "immuta_task_id", "run_id")
    operator_extra_links = (ImmutaConnectionLink(), ImmutaTaskRunLink())
    # Whatever status the run ends in, it has stopped, which is what was asked for.
    run_failure_statuses: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        connection_key: str,
        immuta_task_id: str,
        run_id: str | None = None,
        immuta_conn_id: str = "immuta_default",
        wait_for_cancellation: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_waiting_options(
            wait_for_completion=wait_for_cancellation,
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            # Killing this task must not cancel anything more than it already asked for.
            cancel_on_kill=False,
        )
        self.connection_key = connection_key
        self.immuta_task_id = immuta_task_id
        self.run_id = run_id
        self.immuta_conn_id = immuta_conn_id
        self.wait_for_cancellation = wait_for_cancellation

    def execute(self, context: Any) -> dict[str, Any]:
        """Cancel the run unless it has ended; wait for it to stop if asked to."""

        client = self.hook.get_client()
        self.push_immuta_link(context, self.immuta_task_id)
        run_id = self.run_id or None
        run = fetch_run(client, self.connection_key, self.immuta_task_id, run_id)
        if run is None:
            self.log.info(
                "Immuta task %s of connection %r has no run yet; nothing to cancel.",
                self.immuta_task_id,
                self.connection_key,
            )
            return {
                "connection_key": self.connection_key,
                "immuta_task_id": self.immuta_task_id,
                "run_id": None,
                "status": None,
            }
        self._immuta_task_id, self._run_id = self.immuta_task_id, run.run_id
        self._push_link(context)
        if self.hook.run_statuses.run_has_ended(run):
            self.log.info(
                "Immuta task run %s has already ended %s; nothing to cancel.",
                run.run_id,
                status_text(run.status),
            )
            return self._summary_of_ended(run)
        try:
            answer = client.cancel_task_run(self.connection_key, self.immuta_task_id, run.run_id)
        except ImmutaConflictError as exc:
            what, current, message = self._after_cancel_conflict(
                client, self.immuta_task_id, run.run_id, exc
            )
            if current is None or what == "refused":
                raise AirflowException(message) from exc
            self.log.info("%s", message)
            if what == "ended":
                return self._summary_of_ended(current)
            if not self.wait_for_completion:
                return run_summary(self.connection_key, self.immuta_task_id, current)
            return self._wait_or_defer(client, self.immuta_task_id, current)
        self.log.info(
            "Asked Immuta to cancel task run %s (was %s): %s %s",
            run.run_id,
            status_text(run.status),
            answer.message,
            self._run_url(),
        )
        run = client.get_task_run(self.connection_key, self.immuta_task_id, run.run_id)
        if not self.wait_for_completion:
            return run_summary(self.connection_key, self.immuta_task_id, run)
        return self._wait_or_defer(client, self.immuta_task_id, run)

    def _summary_of_ended(self, run: TaskRun) -> dict[str, Any]:
        """The summary of a run that had ended before the cancellation; a run that ended with a
        status the connection does not name fails the task, as it does when waited for."""
        statuses = self.hook.run_statuses
        status = status_text(run.status)
        if statuses.classify(run.status, run.completed_at) == ENDED_UNKNOWN:
            raise AirflowException(
                f"Immuta task run {run.run_id} has ended with the status {status!r}, which the "
                "provider knows neither as a success nor as a failure. "
                + statuses.unknown_end_advice(status, self.immuta_conn_id)
            )
        return run_summary(self.connection_key, self.immuta_task_id, run)

    def _finish(self, outcome: dict[str, Any]) -> dict[str, Any]:
        summary = super()._finish(outcome)
        # A tenant may spell it CANCELLED, ABORTED_BY_USER...: anything with CANCEL in it counts.
        if "CANCEL" not in str(summary.get("status") or "").upper():
            self.log.warning(
                "Immuta task run %s ended %s rather than CANCELED: it finished before the "
                "cancellation took effect.",
                summary.get("run_id"),
                summary.get("status"),
            )
        return summary

    def _cancel_after_timeout(self) -> str:
        return (
            " Immuta accepted the cancellation, but the run had not stopped by the deadline; it "
            "may still stop later."
        )
