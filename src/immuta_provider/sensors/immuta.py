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
from immuta_provider.client.vocabulary import FAILURE_STATUSES
from immuta_provider.links import (
    ImmutaConnectionLink,
    ImmutaTaskRunLink,
)


class ImmutaTaskRunSensor(ImmutaMixin, BaseSensorOperator):
    """Wait until an Immuta task run has ended.

    Works in ``poke`` and ``reschedule`` mode, and deferred in the triggerer with
    ``deferrable=True``. The output of :class:`ImmutaDataObjectSyncOperator` (started with
    ``wait_for_completion=False``) feeds it directly, e.g.
    ``immuta_task_id="{{ ti.xcom_pull('start_sync')['immuta_task_id'] }}"``.

    When the run ends in a status not listed in ``failure_statuses`` the sensor succeeds and
    returns (as XCom) the same summary dict as the sync operator; when it ends in one of them the
    sensor fails with Immuta's error code and message (or who cancelled the run). Statuses the
    sensor does not know are logged and waited on until the sensor's ``timeout``.

    :param connection_key: The Immuta connection the task belongs to (templated).
    :param immuta_task_id: The Immuta task whose run to wait for (templated). Not to be confused
        with ``task_id``, which is the Airflow task's own id.
    :param run_id: The run to wait for (templated); ``None`` means the task's latest run.
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    :param failure_statuses: End statuses that fail the sensor. Other end statuses (by default
        only ``COMPLETED``) make it succeed.
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
        failure_statuses: Sequence[str] = FAILURE_STATUSES,
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
        self.failure_statuses = tuple(str(status) for status in failure_statuses)
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
                failure_statuses=self.failure_statuses,
                started_at=now,
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Any) -> PokeReturnValue | bool:
        """Check the run once: done (with its summary), not yet, or failed (raises)."""
        if self._watch is None:
            # Kept across pokes of one process, so only status changes are logged.
            self._watch = RunWatch(
                connection_key=self.connection_key,
                immuta_task_id=self.immuta_task_id,
                run_id=self.run_id,
                failure_statuses=self.failure_statuses,
                logger=self.log,
                base_url=self.hook.base_url,
            )
        watch = self._watch
        run = fetch_run(
            self.hook.get_client(), self.connection_key, self.immuta_task_id, watch.run_id
        )
        outcome = watch.observe_run(run)
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
