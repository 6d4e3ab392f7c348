"""Operators for Immuta's Connections API.

DAG files import this module at every parse, so it imports only Airflow's authoring classes and
our own light modules; the hook, the HTTP client and the trigger are imported when a task runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from immuta_provider._compat import conf, ensure_asset_alias
from immuta_provider._task_runs import (
    fetch_run,
    latest_run,
    run_summary,
    status_text,
)
from immuta_provider.assets import DEFAULT_ASSET_ALIAS, immuta_sync_alias
from immuta_provider.client.errors import ImmutaError, ImmutaNotFoundError, reworded
from immuta_provider.client.vocabulary import TaskType
from immuta_provider.links import ImmutaConnectionLink, ImmutaTaskRunLink
from immuta_provider.operators._base import ImmutaTaskRunWaitingOperator

if TYPE_CHECKING:
    from immuta_provider.client import ImmutaClient
    from immuta_provider.client.models import Task, TaskRun

LOST_CREATE_CLOCK_SKEW = 60.0
"""Seconds before the create-task request that a sync found after its answer was lost may have
been created at (the worker's clock and Immuta's need not agree)."""

EARLIER_TRY_KEY = "immuta_sync_run"
"""Key in Airflow's ``task_state_store`` (3.3+) of the run this task instance started."""


class ImmutaDataObjectSyncOperator(ImmutaTaskRunWaitingOperator):
    """Sync the data objects of an Immuta connection, and by default wait for the sync to finish.

    The operator creates a ``DATA_OBJECT_SYNC`` task on the connection and follows its run. With
    ``reuse_running_sync`` it first looks for a sync of that connection that is already pending or
    running (started by an earlier try of this task, or outside Airflow) and follows that one
    instead of starting a duplicate. On Airflow 3.3+ it also remembers its run in the task
    instance's ``task_state_store``, so a retry after a worker crash picks that run up again even
    if it has completed meanwhile (returning its result without syncing again); a task instance
    that succeeded forgets it, so clearing it starts a new sync.

    When the run completes the operator returns (as XCom) a dict with ``connection_key``,
    ``immuta_task_id``, ``run_id``, ``status``, ``created_at``, ``started_at``, ``completed_at``
    (ISO 8601) and ``duration_seconds``; the same names the :class:`ImmutaTaskRunSensor` takes.
    A ``FAILED`` run fails the task with Immuta's error code and message; a ``CANCELED`` run fails
    it saying who cancelled it.

    After a completed sync (``wait_for_completion=True``) the operator emits an Airflow asset event
    (a dataset event on Airflow 2.11) for the connection, through the asset alias ``asset_alias``
    it declares as an outlet, so that DAGs scheduled on
    :func:`~immuta_provider.assets.immuta_connection_asset` run on the fresh inventory. The event's
    extra holds the run summary, the run's Immuta page and the number of data objects after the
    sync (counted up to :data:`~immuta_provider.assets.MAX_COUNTED_DATA_OBJECTS`).

    :param connection_key: The Immuta connection to sync (templated).
    :param immuta_conn_id: The Airflow connection of type ``immuta``.
    :param wait_for_completion: Wait for the run to end. If ``False``, return as soon as the run is
        started (the XCom then holds its current status).
    :param deferrable: Wait in the triggerer instead of a worker slot. Defaults to
        ``[operators] default_deferrable``.
    :param poll_interval: Seconds between two status checks.
    :param timeout: Seconds to wait for the run before failing, or ``None`` to wait as long as it
        takes. This becomes an absolute deadline when the task starts, so a triggerer restart
        does not reset it. At the deadline the run is cancelled in Immuta (with
        ``cancel_on_kill``) and the task fails.
    :param reuse_running_sync: Attach to a pending or running sync of the connection instead of
        starting a second one.
    :param cancel_on_kill: Cancel the run in Immuta when the task is marked failed, cleared, or
        times out. A triggerer restart never cancels it. On Airflow 2.11, which never tells a
        trigger that its task was killed, a task killed while deferred leaves the run going; the
        ``timeout`` deadline still cancels it.
    :param extra_body: Extra fields for the create-task request body (templated).
    :param emit_asset: Emit the connection's asset event after a completed sync.
    :param asset_alias: Name of the asset alias the event is emitted through (and that the task
        declares in its outlets).
    """

    template_fields = ("connection_key", "extra_body")
    template_fields_renderers = {"extra_body": "json"}
    ui_color = "#e8e4f7"
    operator_extra_links = (ImmutaConnectionLink(), ImmutaTaskRunLink())

    def __init__(
        self,
        *,
        connection_key: str,
        immuta_conn_id: str = "immuta_default",
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10,
        timeout: float | None = None,
        reuse_running_sync: bool = True,
        cancel_on_kill: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        emit_asset: bool = True,
        asset_alias: str = DEFAULT_ASSET_ALIAS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.emit_asset = emit_asset and wait_for_completion
        self.asset_alias = asset_alias
        if self.emit_asset:
            # The key is templated (and often mapped), so the asset is only known at run time:
            # the task declares the alias and adds the connection's asset to it when it succeeds.
            self.outlets = [*self.outlets, immuta_sync_alias(asset_alias)]
        self._set_waiting_options(
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            cancel_on_kill=cancel_on_kill,
        )
        self.connection_key = connection_key
        self.immuta_conn_id = immuta_conn_id
        self.reuse_running_sync = reuse_running_sync
        self.extra_body = extra_body

    def execute(self, context: Any) -> dict[str, Any]:
        """Start (or attach to) the sync, then wait for it as configured."""
        hook = self.hook
        client = hook.get_client()
        self.log_connection_page()
        store = context.get("task_state_store")  # Airflow 3.3+
        immuta_task_id, run = self._start_or_attach(client, store)
        self._immuta_task_id = immuta_task_id
        self._run_id = run.run_id if run is not None else None
        if store is not None and self.wait_for_completion:
            # At once, before anything else talks to Airflow or Immuta: a retry after a crash
            # finds the run here (the later the write, the wider the window for a second sync).
            store.set(
                EARLIER_TRY_KEY,
                {
                    "connection_key": self.connection_key,
                    "immuta_task_id": immuta_task_id,
                    "run_id": self._run_id,
                },
            )
        self._push_link(context)
        if run is not None:
            self.log.info(
                "Immuta task run: %s",
                hook.task_run_url(self.connection_key, immuta_task_id, run.run_id),
            )
        if not self.wait_for_completion:
            self._finished = True
            if run is None:
                return {"connection_key": self.connection_key, "immuta_task_id": immuta_task_id}
            return run_summary(self.connection_key, immuta_task_id, run)

        if self.emit_asset:
            self._announce(immuta_task_id)
        result = self._wait_or_defer(client, immuta_task_id, run)
        self._forget_run(context)
        self._emit_asset_event(context, result)
        return result

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: return the run summary or fail the task."""
        result = super().execute_complete(context, event)
        self._forget_run(context)
        self._emit_asset_event(context, result)
        return result

    def _emit_asset_event(self, context: Any, summary: dict[str, Any]) -> None:
        """Add the connection's asset event (with the data object count) to the task's alias."""
        if not self.emit_asset:
            return
        outlet_events = context.get("outlet_events")
        if outlet_events is None:  # run outside a real task (a unit test calling execute())
            self.log.warning("No outlet_events in the context; no asset event emitted.")
            return
        from immuta_provider.assets import (
            count_data_objects,
            immuta_connection_asset,
            sync_event_extra,
        )

        hook = self.hook
        count: int | None = None
        exact = False
        try:
            count, exact = count_data_objects(hook.get_client(), self.connection_key)
        except ImmutaError as exc:
            # The sync itself succeeded: a failed count must not fail the task or hide the event.
            self.log.warning("Could not count the data objects of %r: %s", self.connection_key, exc)
        asset = immuta_connection_asset(hook.base_url, self.connection_key)
        extra = sync_event_extra(
            summary,
            task_run_url=hook.task_run_url(
                self.connection_key, summary["immuta_task_id"], summary["run_id"]
            ),
            data_object_count=count,
            data_object_count_exact=exact,
        )
        if getattr(context.get("ti"), "map_index", -1) >= 0:
            # Parsing saw no outlets of a mapped task: 2.11 may have no row for its alias yet.
            ensure_asset_alias(self.asset_alias)
        outlet_events[immuta_sync_alias(self.asset_alias)].add(asset, extra=extra)
        self.log.info(
            "Asset event for %s (through alias %r): %s data objects.",
            asset.uri,
            self.asset_alias,
            "unknown" if count is None else f"{count}" if exact else f"at least {count}",
        )

    def _announce(self, immuta_task_id: str) -> None:
        """Tell sync watchers of the connection's asset that this task emits the sync's event.

        Before waiting, because a watcher may see the sync end before this task does; a watcher
        then skips the sync, and a DAG scheduled on the asset runs once for it, not twice.
        """
        from immuta_provider.assets import announce_operator_sync, connection_asset_uri

        uri = connection_asset_uri(self.hook.base_url, self.connection_key)
        why_not = announce_operator_sync(uri, immuta_task_id)
        if why_not is None:
            self.log.info(
                "Announced Immuta task %s to the sync watchers of %s.", immuta_task_id, uri
            )
        else:
            self.log.debug("Sync watchers of %s not told about this sync: %s", uri, why_not)

    def _forget_run(self, context: Any) -> None:
        """The task instance succeeded: a later clear must start a new sync, not resume this one."""
        store = context.get("task_state_store")
        if store is not None:
            store.delete(EARLIER_TRY_KEY)

    def _start_or_attach(self, client: ImmutaClient, store: Any) -> tuple[str, TaskRun | None]:
        """The Immuta task id and run to follow: an earlier try's, a running sync, or a new one."""
        if self.reuse_running_sync:
            earlier = self._run_of_an_earlier_try(client, store)
            if earlier is not None:
                return earlier
            found = self._find_running_sync(client)
            if found is not None:
                task, run = found
                self.log.info(
                    "Attaching to the sync already %s on connection %r (Immuta task %s, run %s) "
                    "instead of starting another one (reuse_running_sync=True).",
                    status_text(run.status),
                    self.connection_key,
                    task.task_id,
                    run.run_id,
                )
                return task.task_id, run
        sent_at = time.time()
        try:
            task = client.create_task(
                self.connection_key, TaskType.DATA_OBJECT_SYNC, extra_body=self.extra_body
            )
        except ImmutaError as exc:
            if not _answer_may_be_lost(exc):
                raise
            return self._follow_sync_of_a_lost_answer(client, sent_at, exc)
        first_run = latest_run(client.list_task_runs(self.connection_key, task.task_id))
        self.log.info(
            "Started a data object sync of connection %r: Immuta task %s, run %s.",
            self.connection_key,
            task.task_id,
            first_run.run_id if first_run is not None else "(not created yet)",
        )
        return task.task_id, first_run

    def _follow_sync_of_a_lost_answer(
        self, client: ImmutaClient, sent_at: float, exc: ImmutaError
    ) -> tuple[str, TaskRun | None]:
        """The create-task request was sent but its answer was lost (a read timeout, a dropped
        connection, a malformed body, a 5xx from a proxy): Immuta may have started the sync.
        Follow the sync of this connection created since just before the request, still going or
        completed, rather than fail this try and leave the sync to a retry a DAG may not have.

        :raises ImmutaError: the create's error (same class), reworded, when there is no such sync
            (the create did not take effect) or the search for it failed.
        """
        statuses = self.hook.run_statuses
        since = sent_at - LOST_CREATE_CLOCK_SKEW
        self.log.warning(
            "The answer to the request creating a sync of connection %r was lost (%s); looking "
            "for the sync it may have started.",
            self.connection_key,
            exc,
        )
        found: tuple[Task, TaskRun | None] | None = None
        try:
            for task in client.list_tasks(self.connection_key, type=TaskType.DATA_OBJECT_SYNC):
                if task.parent_id is not None or task.created_at is None:
                    continue  # a per-database sub-task, or a task we cannot place in time
                created = task.created_at.timestamp()
                if created < since or (found is not None and created <= _created(found[0])):
                    continue
                run = latest_run(client.list_task_runs(self.connection_key, task.task_id))
                status = status_text(run.status) if run is not None else None
                if run is None or status in statuses.success or status in statuses.attachable:
                    found = (task, run)
        except ImmutaError as search_error:
            # The create's own error class, so that what catches (or retries on) it still does.
            raise reworded(
                exc,
                f"Creating a sync of Immuta connection {self.connection_key!r} got no usable "
                f"answer ({exc}), and looking for the sync it may have started failed too "
                f"({search_error}). Check the connection's tasks in Immuta before retrying: "
                f"{self.hook.connection_url(self.connection_key)}",
            ) from exc
        if found is None:
            raise reworded(
                exc,
                f"Creating a sync of Immuta connection {self.connection_key!r} got no usable "
                f"answer ({exc}), and Immuta shows no sync of the connection created since then "
                "that is still going or completed: the request did not take effect, or Immuta is "
                "still working on it. Retry the task: with reuse_running_sync=True (the default) "
                "a retry attaches to the sync if one started, rather than start another.",
            ) from exc
        task, run = found
        self.log.info(
            "Following the sync Immuta started for the request whose answer was lost: Immuta "
            "task %s, run %s (%s).",
            task.task_id,
            run.run_id if run is not None else "(not created yet)",
            status_text(run.status) if run is not None else "no run yet",
        )
        return task.task_id, run

    def _run_of_an_earlier_try(
        self, client: ImmutaClient, store: Any
    ) -> tuple[str, TaskRun] | None:
        """The run an earlier try of this task instance started, if it is going or completed.

        A completed one is returned too: its result is this try's result (the earlier try died
        after Immuta finished). A failed or cancelled one is not: the retry syncs again.
        """
        saved = store.get(EARLIER_TRY_KEY) if store is not None else None
        if not isinstance(saved, dict) or saved.get("connection_key") != self.connection_key:
            return None

        immuta_task_id = str(saved["immuta_task_id"])
        try:
            run = fetch_run(client, self.connection_key, immuta_task_id, saved.get("run_id"))
        except ImmutaNotFoundError:
            return None
        if run is None:
            return None
        status = status_text(run.status)
        statuses = self.hook.run_statuses
        completed = status in statuses.success
        if not completed and status not in statuses.attachable:
            return None
        self.log.info(
            "An earlier try of this task started Immuta task %s run %s, which is %s: %s",
            immuta_task_id,
            run.run_id,
            status,
            "returning its result without syncing again."
            if completed
            else "following it instead of starting another sync.",
        )
        return immuta_task_id, run

    def _find_running_sync(self, client: ImmutaClient) -> tuple[Task, TaskRun] | None:
        # The connection's still-going names, but not a run being cancelled: it will not sync.
        attachable = self.hook.run_statuses.attachable
        for status in attachable:
            for task in client.list_tasks(
                self.connection_key, type=TaskType.DATA_OBJECT_SYNC, status=status
            ):
                if task.parent_id is not None:
                    # A sub-task of a sync (Immuta splits a sync per database), not a sync itself.
                    continue
                run = latest_run(client.list_task_runs(self.connection_key, task.task_id))
                if run is not None and status_text(run.status) in attachable:
                    return task, run
        return None


def _created(task: Task) -> float:
    return task.created_at.timestamp() if task.created_at is not None else float("-inf")


def _answer_may_be_lost(exc: ImmutaError) -> bool:
    """Whether a failed create may have reached Immuta and taken effect: no answer after the
    request left (not a connect failure), a 2xx body we could not read, or a 5xx (a proxy may
    have given up on an Immuta that carried on)."""
    from immuta_provider.client.errors import (
        ImmutaResponseError,
        ImmutaServerError,
        ImmutaTransportError,
    )
    from immuta_provider.client.retries import NEVER_SENT_ERRORS

    if isinstance(exc, ImmutaResponseError | ImmutaServerError):
        return True
    return isinstance(exc, ImmutaTransportError) and not isinstance(
        exc.__cause__, NEVER_SENT_ERRORS
    )
