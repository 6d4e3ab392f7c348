"""The emulator's stored records and how they are read.

Connections, tasks and runs (data objects live in the ``Inventory``), the indexes that order every
listing, creation sequence numbers, and what changed since the last save. The reads are here too:
lookups with their 404s, the keyset-paged listings and a task's wire form. How runs move over time
is in ``scheduler.py``; the rules that change connections and data objects are in ``resources.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from .inventory import Inventory
from .pagination import keyset_page
from .records import ConnectionRecord, RunRecord, TaskRecord, iso
from .rules import ApiError


class Store:
    """The records of one emulator, their indexes and their dirty marks."""

    def __init__(self) -> None:
        self.connections: dict[str, ConnectionRecord] = {}
        self.inventory = Inventory()
        self.tasks: dict[str, TaskRecord] = {}
        self.runs: dict[str, RunRecord] = {}
        self.dirty_connections: set[str] = set()
        self.dirty_tasks: set[str] = set()
        self.dirty_runs: set[str] = set()
        self._seq = 0
        self._connection_seqs: list[int] = []
        self._connection_by_seq: dict[int, ConnectionRecord] = {}
        self._task_seqs: dict[str, list[int]] = {}
        self._task_by_seq: dict[int, TaskRecord] = {}
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
        """Store a run."""
        self._seq = max(self._seq, run.seq)
        self.runs[run.id] = run
        self.dirty_runs.add(run.id)

    def restore_sync_count(self, connection_key: str, count: int) -> None:
        """Set how many syncs a connection has completed (names of discovered tables use it)."""
        self._sync_counts[connection_key] = count

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

    # -------------------------------------------------------------------- reads

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
