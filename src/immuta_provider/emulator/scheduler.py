"""The run scheduler: how tasks and runs start, move over time, fan out and get cancelled.

Runs are advanced lazily. Each non-terminal run has its next transition time on a heap, and
``tick()`` (called before every API request) applies the transitions that are due, in time order,
with their effects (a sync adds tables; a deletion removes things). So the state is what it would
be had a background worker run, without one, and a controllable clock makes it testable.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import catalog
from .records import (
    TERMINAL_STATUSES,
    ConnectionRecord,
    DataObjectRecord,
    RunRecord,
    TaskRecord,
)
from .rules import ApiError
from .store import Store

SYSTEM_PRINCIPAL = "system"
NEW_TABLES_PER_SYNC = 3
AUTH_FAILED_CODE = "CONNECTION_AUTH_FAILED"


@dataclass
class Behaviour:
    """How later runs of one connection behave (set through the admin API)."""

    sync_duration: float | None = None
    fail: dict[str, str] | None = None
    stuck: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The behaviour as the admin API shows it."""
        return {"sync_duration": self.sync_duration, "fail": self.fail, "stuck": self.stuck}


class RunScheduler(Store):
    """The records plus the clock, the per-connection behaviours and the heap of due transitions."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sync_duration: float,
        behaviours: dict[str, Behaviour] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.sync_duration = sync_duration
        self.behaviours: dict[str, Behaviour] = behaviours if behaviours is not None else {}
        # Fresh entropy by default: ids created at run time must not repeat those of a state
        # loaded from a file. Tests may pass a seeded generator.
        self.rng = rng or random.SystemRandom()
        self.tasks_created: Counter[str] = Counter()
        self.child_tasks_created: Counter[str] = Counter()
        self._events: list[tuple[float, int, str]] = []

    def add_run(self, run: RunRecord) -> None:
        """Store a run and schedule its next transition."""
        super().add_run(run)
        self._schedule(run)

    def behaviour(self, connection_key: str) -> Behaviour:
        """The behaviour for a connection's next runs (the default one if none was set)."""
        return self.behaviours.get(connection_key) or Behaviour()

    # ------------------------------------------------------------- time and runs

    def tick(self) -> None:
        """Apply every run transition that is due by now, in time order."""
        now = self.clock()
        events = self._events
        while events and events[0][0] <= now:
            _, _, run_id = heapq.heappop(events)
            run = self.runs.get(run_id)
            if run is not None:
                self._advance(run, now)

    def _next_event(self, run: RunRecord) -> float | None:
        if run.status in TERMINAL_STATUSES:
            return None
        if run.cancel_done_at is not None:
            return run.cancel_done_at
        if run.status == "PENDING":
            return run.start_at
        return run.end_at

    def _schedule(self, run: RunRecord) -> None:
        when = self._next_event(run)
        if when is not None:
            heapq.heappush(self._events, (when, run.seq, run.id))

    def _advance(self, run: RunRecord, now: float) -> None:
        """Move ``run`` to where its schedule says it is at ``now``; idempotent."""
        if run.status in TERMINAL_STATUSES:
            return
        if run.cancel_done_at is not None:
            if now >= run.cancel_done_at:
                self._finish(run, "CANCELED", run.cancel_done_at)
        elif run.end_at is not None and now >= run.end_at:
            if run.started_at is None:
                run.started_at = run.start_at
            self._finish(run, run.outcome, run.end_at)
        elif now >= run.start_at and run.status == "PENDING":
            run.status = "RUNNING"
            run.started_at = run.start_at
            run.updated_at = run.start_at
            self.dirty_runs.add(run.id)
        self._schedule(run)

    def _finish(self, run: RunRecord, status: str, at: float) -> None:
        run.status = status
        run.completed_at = at
        run.updated_at = at
        self.dirty_runs.add(run.id)
        task = self.tasks.get(run.task_id)
        if task is None or status != "COMPLETED":
            return
        if task.type == "DATA_OBJECT_SYNC" and task.parent_id is None:
            self._apply_sync(task.connection_key, at)
        elif task.type == "DATA_OBJECT_DELETE" and task.target_id is not None:
            self.inventory.remove_subtree(task.target_id)
        elif task.type == "CONNECTION_DELETE":
            self._remove_connection(task.connection_key, keep_task=task.id)

    def _apply_sync(self, connection_key: str, at: float) -> None:
        """A completed sync touches every object and discovers a few new tables."""
        connection = self.connections.get(connection_key)
        if connection is None:
            return
        self.inventory.mark_synced(connection_key, at)
        self.dirty_connections.add(connection_key)  # the sync time is saved with the connection
        self._sync_counts[connection_key] += 1
        count = self._sync_counts[connection_key]
        schema = self.inventory.last_of_type(connection_key, "schema")
        if schema is None:
            database = self.inventory.last_of_type(connection_key, "database")
            if database is None:
                database = self.add_object(connection, None, "discovered", "database", at)
            schema = self.add_object(connection, database, "public", "schema", at)
        for index in range(NEW_TABLES_PER_SYNC):
            name = f"{catalog.ENTITIES[(count + index) % len(catalog.ENTITIES)]}_sync_{count:04d}"
            self.add_object(connection, schema, name, "table", at)

    def add_object(
        self,
        connection: ConnectionRecord,
        parent: DataObjectRecord | None,
        name: str,
        kind: str,
        at: float,
        rng: random.Random | None = None,
    ) -> DataObjectRecord:
        """Create a data object (found by the system) under ``parent``; the seed passes its own
        seeded ``rng`` for stable ids."""
        record = catalog.make_object(
            self.next_seq(),
            rng or self.rng,
            connection_key=connection.key,
            technology=connection.technology,
            parent=parent,
            name=name,
            kind=kind,
            now=at,
            created_by=SYSTEM_PRINCIPAL,
        )
        self.inventory.add(record)
        return record

    def _new_task(
        self,
        connection_key: str,
        task_type: str,
        *,
        principal: str,
        trigger: str = "MANUAL",
        parent_id: str | None = None,
        target_id: str | None = None,
        extra: dict[str, Any] | None = None,
        template: RunRecord | None = None,
    ) -> tuple[TaskRecord, RunRecord]:
        """A task with its first run. ``template`` gives a child the schedule of its parent."""
        now = self.clock()
        task = TaskRecord(
            seq=self.next_seq(),
            id=catalog.random_uuid(self.rng),
            connection_key=connection_key,
            type=task_type,
            trigger=trigger,
            created_by=principal,
            created_at=now,
            parent_id=parent_id,
            target_id=target_id,
            extra=extra or {},
            run_ids=[],
        )
        if template is not None:
            run = replace(template, seq=self.next_seq(), id=catalog.random_uuid(self.rng))
            run.error = dict(template.error) if template.error is not None else None
        else:
            run = self._new_run(task, now)
        run.task_id = task.id
        task.run_ids.append(run.id)
        self.add_task(task)
        self.add_run(run)
        if trigger == "MANUAL":
            self.tasks_created[connection_key] += 1
        else:
            self.child_tasks_created[connection_key] += 1
        return task, run

    def _new_run(self, task: TaskRecord, now: float) -> RunRecord:
        behaviour = self.behaviour(task.connection_key)
        duration = behaviour.sync_duration
        if duration is None:
            duration = self.sync_duration
        fail = behaviour.fail
        connection = self.connections.get(task.connection_key)
        if (
            fail is None
            and task.type == "DATA_OBJECT_SYNC"
            and connection is not None
            and connection.credentials_rejected()
        ):
            fail = auth_failure(connection)
        return RunRecord(
            seq=self.next_seq(),
            id=catalog.random_uuid(self.rng),
            task_id=task.id,
            connection_key=task.connection_key,
            created_at=now,
            start_at=now + min(0.1 * duration, 1.0),
            end_at=None if behaviour.stuck else now + duration,
            outcome="FAILED" if fail is not None else "COMPLETED",
            error=dict(fail) if fail is not None else None,
            cancel_delay=min(0.25 * duration, 2.0),
            updated_at=now,
        )

    def start_sync(
        self, connection_key: str, *, principal: str, extra: dict[str, Any]
    ) -> TaskRecord:
        """Start a DATA_OBJECT_SYNC task, fanning out one child task per database."""
        task, run = self._new_task(
            connection_key, "DATA_OBJECT_SYNC", principal=principal, extra=extra
        )
        for database in self.inventory.of_type(connection_key, "database"):
            self._new_task(
                connection_key,
                "DATA_OBJECT_SYNC",
                principal=SYSTEM_PRINCIPAL,
                trigger="SYSTEM",
                parent_id=task.id,
                extra={"dataObjectId": database.id},
                template=run,
            )
        self.tick()  # a zero-duration sync is complete at once
        return task

    def cancel_run(
        self, connection_key: str, task_id: str, run_id: str, principal: str
    ) -> dict[str, str]:
        """Request cancellation: CANCELING now, CANCELED shortly after; 409 if terminal.

        Child tasks of the run's task are cancelled with it.
        """
        run = self.get_run(connection_key, task_id, run_id)
        if run.status in TERMINAL_STATUSES:
            raise ApiError(
                409,
                f"Unable to cancel task run. Task run is already {run.status}; only PENDING or "
                "RUNNING runs can be cancelled.",
            )
        if run.status == "CANCELING":
            return {"runId": run.id, "message": "Cancellation of the task run already requested."}
        self._request_cancel(run, principal)
        for seq in self._task_seqs.get(connection_key, ()):
            child = self._task_by_seq[seq]
            if child.parent_id == task_id:
                child_run = self.runs[child.run_ids[-1]]
                if child_run.status not in TERMINAL_STATUSES and child_run.status != "CANCELING":
                    self._request_cancel(child_run, principal)
        return {"runId": run.id, "message": "Cancellation of the task run requested."}

    def _request_cancel(self, run: RunRecord, principal: str) -> None:
        now = self.clock()
        run.status = "CANCELING"
        run.canceled_by = principal
        run.cancel_done_at = now + run.cancel_delay
        run.updated_at = now
        self.dirty_runs.add(run.id)
        self._schedule(run)


def auth_failure(connection: ConnectionRecord) -> dict[str, str]:
    """The error of a sync whose credentials the platform rejects."""
    return {
        "code": AUTH_FAILED_CODE,
        "message": (
            f"{connection.technology} rejected the credentials of connection "
            f"'{connection.key}': incorrect username or password."
        ),
    }
