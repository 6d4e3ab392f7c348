"""The emulator's state: connections, data objects, tasks and runs, and how runs move over time.

Runs are advanced lazily. Each non-terminal run has its next transition time on a heap, and
``tick()`` (called before every API request) applies the transitions that are due, in time order,
with their effects (a sync adds tables; a deletion removes things). So the state is what it would
be had a background worker run, without one, and a controllable clock makes it testable.
"""

from __future__ import annotations

import copy
import heapq
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from . import catalog
from .inventory import Inventory
from .pagination import keyset_page
from .records import (
    HEALTH_COMPONENTS,
    REDACTED,
    TERMINAL_STATUSES,
    ConnectionRecord,
    DataObjectRecord,
    RunRecord,
    TaskRecord,
    iso,
)
from .rules import ApiError

SYSTEM_PRINCIPAL = "system"
NEW_TABLES_PER_SYNC = 3
AUTH_FAILED_CODE = "CONNECTION_AUTH_FAILED"
_WRITABLE_CONNECTION_FIELDS = ("clientConfiguration", "policyConfiguration", "auditConfiguration")
_WRITABLE_OBJECT_FIELDS = {
    "name": "name",
    "remoteType": "remote_type",
    "remoteFormat": "remote_format",
    "remoteKind": "remote_kind",
}


@dataclass
class Behaviour:
    """How later runs of one connection behave (set through the admin API)."""

    sync_duration: float | None = None
    fail: dict[str, str] | None = None
    stuck: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The behaviour as the admin API shows it."""
        return {"sync_duration": self.sync_duration, "fail": self.fail, "stuck": self.stuck}


class State:
    """All API-visible state of one emulator, plus the counters tests assert on."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sync_duration: float,
        behaviours: dict[str, Behaviour] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.sync_duration = sync_duration
        self.behaviours: dict[str, Behaviour] = behaviours if behaviours is not None else {}
        # Fresh entropy by default: ids created at run time must not repeat those of a state
        # loaded from a file. Tests may pass a seeded generator.
        self.rng = rng or random.SystemRandom()
        self.connections: dict[str, ConnectionRecord] = {}
        self.inventory = Inventory()
        self.tasks: dict[str, TaskRecord] = {}
        self.runs: dict[str, RunRecord] = {}
        self.tasks_created: Counter[str] = Counter()
        self.child_tasks_created: Counter[str] = Counter()
        self.dirty_connections: set[str] = set()
        self.dirty_tasks: set[str] = set()
        self.dirty_runs: set[str] = set()
        self._seq = 0
        self._connection_seqs: list[int] = []
        self._connection_by_seq: dict[int, ConnectionRecord] = {}
        self._task_seqs: dict[str, list[int]] = {}
        self._task_by_seq: dict[int, TaskRecord] = {}
        self._events: list[tuple[float, int, str]] = []
        self._sync_counts: Counter[str] = Counter()

    # ----------------------------------------------------------------- plumbing

    def next_seq(self) -> int:
        """A new creation sequence number (orders every listing)."""
        self._seq += 1
        return self._seq

    @property
    def dirty(self) -> bool:
        """Whether anything changed since the last save."""
        return bool(
            self.dirty_connections or self.dirty_tasks or self.dirty_runs or self.inventory.dirty
        )

    def clear_dirty(self) -> None:
        """Forget what changed (after a save)."""
        self.dirty_connections.clear()
        self.dirty_tasks.clear()
        self.dirty_runs.clear()
        self.inventory.dirty.clear()

    def add_connection(self, record: ConnectionRecord) -> None:
        """Store a connection (seeding, loading and creating all go through here)."""
        self._seq = max(self._seq, record.seq)
        self.connections[record.key] = record
        self._connection_seqs.append(record.seq)
        self._connection_by_seq[record.seq] = record
        self.dirty_connections.add(record.key)

    def add_task(self, task: TaskRecord) -> None:
        """Store a task (its runs are added with ``add_run``)."""
        self._seq = max(self._seq, task.seq)
        self.tasks[task.id] = task
        self._task_seqs.setdefault(task.connection_key, []).append(task.seq)
        self._task_by_seq[task.seq] = task
        self.dirty_tasks.add(task.id)

    def add_run(self, run: RunRecord) -> None:
        """Store a run and schedule its next transition."""
        self._seq = max(self._seq, run.seq)
        self.runs[run.id] = run
        self.dirty_runs.add(run.id)
        self._schedule(run)

    def restore_sync_count(self, connection_key: str, count: int) -> None:
        """Set how many syncs a connection has completed (names of discovered tables use it)."""
        self._sync_counts[connection_key] = count

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

    def sync_count(self, connection_key: str) -> int:
        """How many syncs of a connection have completed."""
        return self._sync_counts[connection_key]

    def _remove_connection(self, connection_key: str, *, keep_task: str) -> None:
        """Remove a connection, its objects and its tasks, except the deletion task itself
        (kept so that whoever started the deletion can watch it complete)."""
        connection = self.connections.pop(connection_key, None)
        if connection is not None:
            del self._connection_by_seq[connection.seq]
            self._connection_seqs.remove(connection.seq)
            self.dirty_connections.add(connection_key)
        self.inventory.remove_connection(connection_key)
        self._sync_counts.pop(connection_key, None)
        self._drop_tasks(connection_key, keep_task=keep_task)

    def _drop_tasks(self, connection_key: str, *, keep_task: str | None) -> None:
        kept: list[int] = []
        for seq in self._task_seqs.get(connection_key, []):
            task = self._task_by_seq[seq]
            if task.id == keep_task:
                kept.append(seq)
                continue
            del self._task_by_seq[seq]
            del self.tasks[task.id]
            self.dirty_tasks.add(task.id)
            for run_id in task.run_ids:
                self.runs.pop(run_id, None)
                self.dirty_runs.add(run_id)
        self._task_seqs[connection_key] = kept

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

    # -------------------------------------------------------------- connections

    def get_connection(self, connection_key: str) -> ConnectionRecord:
        """A connection, or a 404."""
        connection = self.connections.get(connection_key)
        if connection is None:
            raise ApiError(404, f"Connection '{connection_key}' not found.")
        return connection

    def list_connections(
        self, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of connections, oldest first."""
        records, next_cursor = keyset_page(
            self._connection_seqs, self._connection_by_seq.get, cursor=cursor, limit=limit
        )
        return [r.to_wire() for r in records], next_cursor

    def create_connection(self, body: Mapping[str, Any], principal: str) -> ConnectionRecord:
        """Create an ACTIVE connection from a validated create body; 409 if the key exists."""
        key = body["connectionKey"]
        if key in self.connections:
            raise ApiError(
                409,
                f"Unable to create connection. A connection with key '{key}' already exists.",
            )
        now = self.clock()
        record = ConnectionRecord(
            seq=self.next_seq(),
            key=key,
            technology=body["technology"],
            state="ACTIVE",
            client_configuration=copy.deepcopy(dict(body["clientConfiguration"])),
            policy_configuration=dict(body.get("policyConfiguration") or {"enabled": False}),
            audit_configuration=dict(body.get("auditConfiguration") or {"enabled": False}),
            health={
                name: {"status": "UNKNOWN", "message": "Not validated yet.", "checkedAt": now}
                for name in HEALTH_COMPONENTS
            },
            created_by=principal,
            created_at=now,
            updated_by=principal,
            updated_at=now,
        )
        # A previous connection of the same key may have left its deletion task behind.
        self._drop_tasks(key, keep_task=None)
        self.add_connection(record)
        return record

    def update_connection(
        self, connection_key: str, changes: Mapping[str, Any], *, dry_run: bool, principal: str
    ) -> ConnectionRecord:
        """Apply a partial update (or only check it, with ``dry_run``)."""
        current = self.get_connection(connection_key)
        if current.state not in ("ACTIVE", "UNHEALTHY"):
            raise ApiError(
                409,
                "Unable to update connection. Connection state must be ACTIVE or UNHEALTHY to "
                "be updated.",
            )
        for name, value in changes.items():
            if name not in _WRITABLE_CONNECTION_FIELDS:
                raise ApiError(400, f"Field {name!r} of a connection cannot be changed.")
            if not isinstance(value, dict):
                raise ApiError(400, f"Field {name!r} must be an object.")
        record = current if not dry_run else _clone_connection(current)
        if "clientConfiguration" in changes:
            _merge(record.client_configuration, changes["clientConfiguration"])
        if "policyConfiguration" in changes:
            _merge(record.policy_configuration, changes["policyConfiguration"])
        if "auditConfiguration" in changes:
            _merge(record.audit_configuration, changes["auditConfiguration"])
        record.updated_by = principal
        record.updated_at = self.clock()
        if "clientConfiguration" in changes:
            # New credentials are checked at once, as Immuta re-validates an edited connection.
            self._validate(record, components=("client",))
        if not dry_run:
            self.dirty_connections.add(record.key)
        return record

    def activate(self, connection_key: str, principal: str) -> ConnectionRecord:
        """INACTIVE -> ACTIVE; 409 otherwise or while the connection is being deleted."""
        record = self.get_connection(connection_key)
        if record.state != "INACTIVE":
            raise ApiError(
                409,
                "Unable to activate connection. Connection state must be INACTIVE to be activated.",
            )
        if self._deletion_in_progress(connection_key, "CONNECTION_DELETE", None):
            raise ApiError(409, "Unable to activate connection. The connection is being deleted.")
        return self._set_state(record, "ACTIVE", principal)

    def deactivate(self, connection_key: str, principal: str) -> ConnectionRecord:
        """ACTIVE or UNHEALTHY -> INACTIVE; 409 otherwise."""
        record = self.get_connection(connection_key)
        if record.state not in ("ACTIVE", "UNHEALTHY"):
            raise ApiError(
                409,
                "Unable to deactivate connection. Connection state must be ACTIVE or UNHEALTHY "
                "to be deactivated.",
            )
        return self._set_state(record, "INACTIVE", principal)

    def _set_state(self, record: ConnectionRecord, state: str, principal: str) -> ConnectionRecord:
        record.state = state
        record.updated_by = principal
        record.updated_at = self.clock()
        self.dirty_connections.add(record.key)
        return record

    def validate(self, connection_key: str) -> ConnectionRecord:
        """Check each enabled component and persist its health; a failure makes it UNHEALTHY."""
        record = self.get_connection(connection_key)
        self._validate(record, components=HEALTH_COMPONENTS)
        self.dirty_connections.add(record.key)
        return record

    def _validate(self, record: ConnectionRecord, *, components: tuple[str, ...]) -> None:
        now = self.clock()
        enabled = {
            "client": True,
            "policy": bool(record.policy_configuration.get("enabled")),
            "audit": bool(record.audit_configuration.get("enabled")),
        }
        rejected = record.credentials_rejected()
        for name in components:
            if not enabled[name]:
                continue
            if rejected:
                health = {
                    "status": "UNHEALTHY",
                    "message": (
                        f"{record.technology} rejected the credentials: incorrect username or "
                        "password."
                    ),
                    "checkedAt": now,
                }
            else:
                health = {"status": "HEALTHY", "message": None, "checkedAt": now}
            record.health[name] = health
        failed = any(h["status"] == "UNHEALTHY" for h in record.health.values())
        if failed and record.state == "ACTIVE":
            record.state = "UNHEALTHY"
        elif not failed and record.state == "UNHEALTHY":
            record.state = "ACTIVE"

    def delete_connection(self, connection_key: str, principal: str) -> TaskRecord:
        """Start a CONNECTION_DELETE task; the connection must be INACTIVE."""
        record = self.get_connection(connection_key)
        if record.state != "INACTIVE":
            raise ApiError(
                409,
                "Unable to delete connection. Connection state must be INACTIVE to be deleted.",
            )
        if self._deletion_in_progress(connection_key, "CONNECTION_DELETE", None):
            raise ApiError(
                409, "Unable to delete connection. A deletion of this connection is in progress."
            )
        task, _ = self._new_task(connection_key, "CONNECTION_DELETE", principal=principal)
        return task

    def _deletion_in_progress(
        self, connection_key: str, task_type: str, target: str | None
    ) -> bool:
        for seq in self._task_seqs.get(connection_key, ()):
            task = self._task_by_seq[seq]
            if (
                task.type == task_type
                and task.target_id == target
                and self.task_status(task) not in TERMINAL_STATUSES
            ):
                return True
        return False

    # ------------------------------------------------------------- data objects

    def update_data_object(
        self, connection_key: str, object_id: str, changes: Mapping[str, Any], principal: str
    ) -> dict[str, Any]:
        """Apply a partial update to a data object and return the whole object."""
        self.get_connection(connection_key)
        record = self.inventory.get(connection_key, object_id)
        for name, value in changes.items():
            if name not in _WRITABLE_OBJECT_FIELDS:
                raise ApiError(400, f"Field {name!r} of a data object cannot be changed.")
            if name == "name" and (not isinstance(value, str) or not value):
                raise ApiError(400, "Field 'name' must be a non-empty string.")
            if value is not None and not isinstance(value, str):
                raise ApiError(400, f"Field {name!r} must be a string or null.")
        for name, value in changes.items():
            setattr(record, _WRITABLE_OBJECT_FIELDS[name], value)
        record.updated_by = principal
        record.updated_at = self.clock()
        self.inventory.dirty.add(record.id)
        return self.inventory.wire(record)

    def delete_data_object(self, connection_key: str, object_id: str, principal: str) -> TaskRecord:
        """Start a DATA_OBJECT_DELETE task for an object and its descendants."""
        self.get_connection(connection_key)
        self.inventory.get(connection_key, object_id)
        if self._deletion_in_progress(connection_key, "DATA_OBJECT_DELETE", object_id):
            raise ApiError(
                409,
                f"Unable to delete data object. A deletion of data object '{object_id}' is in "
                "progress.",
            )
        task, _ = self._new_task(
            connection_key,
            "DATA_OBJECT_DELETE",
            principal=principal,
            target_id=object_id,
            extra={"dataObjectId": object_id},
        )
        return task

    # -------------------------------------------------------------------- tasks

    def task_status(self, task: TaskRecord) -> str:
        """A task's status: that of its latest run."""
        return self.runs[task.run_ids[-1]].status

    def task_wire(self, task: TaskRecord) -> dict[str, Any]:
        """A task as the API returns it (extra create fields passed through)."""
        body = dict(task.extra)
        body.update(
            {
                "taskId": task.id,
                "type": task.type,
                "status": self.task_status(task),
                "trigger": task.trigger,
                "createdBy": task.created_by,
                "createdAt": iso(task.created_at),
            }
        )
        if task.parent_id is not None:
            body["parentId"] = task.parent_id
        return body

    def _check_tasks_visible(self, connection_key: str) -> None:
        if connection_key not in self.connections and not self._task_seqs.get(connection_key):
            raise ApiError(404, f"Connection '{connection_key}' not found.")

    def get_task(self, connection_key: str, task_id: str) -> TaskRecord:
        """A task of a connection, or a 404 (a deleted connection keeps its deletion task)."""
        task = self.tasks.get(task_id)
        if task is None or task.connection_key != connection_key:
            self._check_tasks_visible(connection_key)
            raise ApiError(404, f"Task '{task_id}' not found in connection '{connection_key}'.")
        return task

    def list_tasks(
        self,
        connection_key: str,
        *,
        filters: Mapping[str, str | None],
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a connection's tasks, newest first, filtered on type/status/trigger/
        createdBy/parentId."""
        self._check_tasks_visible(connection_key)
        wanted = {name: value for name, value in filters.items() if value is not None}

        def keep(task: TaskRecord) -> bool:
            for name, value in wanted.items():
                if name == "type" and task.type != value:
                    return False
                if name == "status" and self.task_status(task) != value:
                    return False
                if name == "trigger" and task.trigger != value:
                    return False
                if name == "createdBy" and task.created_by != value:
                    return False
                if name == "parentId" and task.parent_id != value:
                    return False
            return True

        tasks, next_cursor = keyset_page(
            self._task_seqs.get(connection_key, []),
            self._task_by_seq.get,
            cursor=cursor,
            limit=limit,
            keep=keep,
            descending=True,
        )
        return [self.task_wire(t) for t in tasks], next_cursor

    def create_task(
        self, connection_key: str, body: Mapping[str, Any], principal: str
    ) -> TaskRecord:
        """Start a DATA_OBJECT_SYNC task (fanning out one child task per database)."""
        task_type = body.get("type")
        if task_type != "DATA_OBJECT_SYNC":
            raise ApiError(
                400,
                f"Invalid task type {task_type!r}: only DATA_OBJECT_SYNC tasks can be created.",
            )
        connection = self.get_connection(connection_key)
        if connection.state not in ("ACTIVE", "UNHEALTHY"):
            raise ApiError(
                409,
                "Unable to create task. Connection state must be ACTIVE or UNHEALTHY to run a "
                "task.",
            )
        extra = {name: value for name, value in body.items() if name != "type"}
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

    def get_run(self, connection_key: str, task_id: str, run_id: str) -> RunRecord:
        """A run of a task, or a 404."""
        task = self.get_task(connection_key, task_id)
        run = self.runs.get(run_id)
        if run is None or run.task_id != task.id:
            raise ApiError(404, f"Task run '{run_id}' not found for task '{task_id}'.")
        return run

    def list_runs(
        self,
        connection_key: str,
        task_id: str,
        *,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a task's runs, oldest first."""
        task = self.get_task(connection_key, task_id)
        by_seq = {self.runs[run_id].seq: self.runs[run_id] for run_id in task.run_ids}
        runs, next_cursor = keyset_page(
            sorted(by_seq),
            by_seq.get,
            cursor=cursor,
            limit=limit,
            keep=(lambda run: run.status == status) if status is not None else None,
        )
        return [r.to_wire() for r in runs], next_cursor

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


def _merge(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Shallow merge; null removes a key, and a ``[REDACTED]`` echo keeps the stored secret."""
    for name, value in changes.items():
        if value is None:
            target.pop(name, None)
        elif value != REDACTED:
            target[name] = copy.deepcopy(value)


def _clone_connection(record: ConnectionRecord) -> ConnectionRecord:
    return replace(
        record,
        client_configuration=copy.deepcopy(record.client_configuration),
        policy_configuration=dict(record.policy_configuration),
        audit_configuration=dict(record.audit_configuration),
        health=copy.deepcopy(record.health),
    )
