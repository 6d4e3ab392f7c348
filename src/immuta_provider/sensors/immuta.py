"""Sensors for Immuta's Connections API.

Like the operators, this module is imported at every DAG parse: the hook, the client and the
trigger are imported only when the sensor runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from immuta_provider._compat import (
    AirflowException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from immuta_provider._immuta_mixin import ImmutaMixin
from immuta_provider._task_runs import (
    FAILURE,
    SUCCESS,
    TIMEOUT,
    RunWatch,
    fetch_run,
)
from immuta_provider.links import (
    ImmutaConnectionLink,
    ImmutaTaskRunLink,
)

POLL_ERRORS_KEY = "immuta_poll_errors"
"""Key in ``task_state_store`` (Airflow 3.3+) of the failed polls in a row (reschedule mode)."""


class ImmutaTaskRunSensor(BaseSensorOperator, ImmutaMixin):
    """Wait until an Immuta task run has ended.

    Works in ``poke`` and ``reschedule`` mode, and deferred in the triggerer with
    ``deferrable=True``. The output of :class:`ImmutaDataObjectSyncOperator` (started with
    ``wait_for_completion=False``) feeds it directly, e.g.
    ``immuta_task_id="{{ ti.xcom_pull('start_sync')['immuta_task_id'] }}"``.

    What a status means comes from the Airflow connection's ``success_statuses`` /
    ``failure_statuses`` / ``active_statuses`` extras (defaults ``COMPLETED`` / ``FAILED,
    CANCELED`` / ``PENDING, RUNNING, CANCELING``). When the run ends in a success status the
    sensor succeeds and returns (as XCom) the same summary dict as the sync operator; when it ends
    in a failure status the sensor fails with Immuta's error code and message (or who cancelled
    the run). A run that has ended (its ``completedAt`` set) with a status in neither set fails
    the sensor at once, naming the extra to set; a status in no set without ``completedAt`` is
    logged once and polled on until the sensor's ``timeout``.

    In every mode a poll that fails with a transient error (a timeout, a dropped connection, 429,
    5xx, a malformed answer) is logged and retried at the next poke, as the trigger does; five in
    a row fail the sensor. In ``reschedule`` mode the count survives between pokes on Airflow 3.3+
    (the task instance's ``task_state_store``); on 2.11 each reschedule starts counting anew.

    :param connection_key: The Immuta connection the task belongs to (templated).
    :param immuta_task_id: The Immuta task whose run to wait for (templated). Not to be confused
        with ``task_id``, which is the Airflow task's own id.
    :param run_id: The run to wait for (templated); ``None`` means the task's latest run.
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    :param failure_statuses: End statuses that fail the sensor, overriding the connection's
        ``failure_statuses`` for this task; an ended run whose status the connection names but
        this list lacks then succeeds. ``None`` (the default): the connection's.
    :param deferrable: Wait in the triggerer. Defaults to ``[operators] default_deferrable``.
        ``poke_interval`` (> 0 when deferred) and ``timeout`` apply in every mode.
    """

    template_fields = ("connection_key", "immuta_task_id", "run_id")
    ui_color = "#e8e4f7"
    operator_extra_links = (ImmutaConnectionLink(), ImmutaTaskRunLink())

    def __init__(
        self,
        *,
        connection_key: str,
        immuta_task_id: str,
        run_id: str | None = None,
        immuta_conn_id: str = "immuta_default",
        failure_statuses: Sequence[str] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(failure_statuses, str):
            raise ValueError(
                "failure_statuses must be a list of statuses, e.g. ['FAILED', 'CANCELED'], "
                f"not the string {failure_statuses!r}."
            )
        if deferrable and not self.poke_interval > 0:
            # Airflow allows 0 for poke mode; deferred, it would poll Immuta in a tight loop.
            raise ValueError(
                f"poke_interval must be > 0 with deferrable=True, got {self.poke_interval!r}."
            )
        self.connection_key = connection_key
        self.immuta_task_id = immuta_task_id
        self.run_id = run_id
        self.immuta_conn_id = immuta_conn_id
        self.failure_statuses = (
            None if failure_statuses is None else tuple(str(status) for status in failure_statuses)
        )
        self.deferrable = deferrable
        self._watch: RunWatch | None = None

    def execute(self, context: Any) -> Any:
        """Poke (or reschedule) as usual; with ``deferrable``, check once and then defer."""
        self.log_connection_page()
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)
        if done:
            return done.xcom_value if isinstance(done, PokeReturnValue) else None
        from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

        now = time.time()
        self.defer(
            trigger=ImmutaTaskRunTrigger(
                immuta_conn_id=self.immuta_conn_id,
                connection_key=self.connection_key,
                immuta_task_id=self.immuta_task_id,
                run_id=self.run_id,
                poll_interval=self.poke_interval,
                deadline=now + self.timeout,
                cancel_on_kill=False,  # the sensor watches a run it does not own
                statuses=self.hook.run_statuses.to_dict(),
                failure_statuses=(
                    None if self.failure_statuses is None else list(self.failure_statuses)
                ),
                started_at=now,
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Any) -> PokeReturnValue | bool:
        """Check the run once: done (with its summary), not yet, or failed (raises)."""
        if self._watch is None:
            # Kept across pokes of one process, so only status changes are logged and transient
            # errors are counted in a row.
            self._watch = RunWatch(
                connection_key=self.connection_key,
                immuta_task_id=self.immuta_task_id,
                run_id=self.run_id,
                statuses=self.hook.run_statuses,
                failure_statuses=self.failure_statuses,
                immuta_conn_id=self.immuta_conn_id,
                logger=self.log,
                base_url=self.hook.base_url,
            )
        watch = self._watch
        store = context.get("task_state_store") if self.mode == "reschedule" else None
        if store is not None:
            watch.consecutive_errors = int(store.get(POLL_ERRORS_KEY) or 0)
        try:
            run = fetch_run(
                self.hook.get_client(), self.connection_key, self.immuta_task_id, watch.run_id
            )
        except Exception as exc:
            outcome = watch.observe_error(exc)
        else:
            outcome = watch.observe_run(run)
        if store is not None:
            if outcome is None and watch.consecutive_errors:
                store.set(POLL_ERRORS_KEY, watch.consecutive_errors)
            else:
                store.delete(POLL_ERRORS_KEY)
        if watch.run_id is not None:
            self.push_immuta_link(context, self.immuta_task_id, watch.run_id)
        if outcome is None:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._result(outcome))

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: return the run summary or fail."""
        if event.get("run_id"):
            self.push_immuta_link(context, self.immuta_task_id, event["run_id"])
        if event["status"] == TIMEOUT:
            self.log.error("%s", event["message"])
            raise AirflowSensorTimeout(event["message"])
        return self._result(event)

    def _result(self, outcome: dict[str, Any]) -> Any:
        if outcome["status"] == SUCCESS:
            self.log.info("%s", outcome["message"])
            return outcome["run"]
        self.log.error("%s", outcome["message"])
        if outcome["status"] == FAILURE:
            raise AirflowException(outcome["message"])
        raise AirflowException(f"Could not follow the Immuta run: {outcome['message']}")
