"""``--state-file``: the state in SQLite (stdlib ``sqlite3``), saved incrementally.

Each record is one row holding its fields as a JSON list. After every request the emulator saves
only what changed (the state's dirty sets), so a 100,000-object inventory is written once, not
per request, and a killed emulator loses at most the request in flight.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .records import ConnectionRecord, DataObjectRecord, RunRecord, TaskRecord, field_names
from .state import State

SCHEMA_VERSION = "1"
_TABLES = ("connections", "data_objects", "tasks", "runs")
_FIELDS = {
    "connections": field_names(ConnectionRecord),
    "data_objects": field_names(DataObjectRecord),
    "tasks": field_names(TaskRecord),
    "runs": field_names(RunRecord),
}


def _dump(record: Any, table: str, **more: Any) -> str:
    values = [getattr(record, name) for name in _FIELDS[table]]
    return json.dumps({"fields": values, **more}, separators=(",", ":"))


class StateFile:
    """One SQLite file holding connections, data objects, tasks and runs."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # The emulator has one event loop, but a test client may drive it from another thread.
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            for table in _TABLES:
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} "
                    "(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL)"
                )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def has_state(self) -> bool:
        """Whether the file holds a saved state (rather than being new)."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()
        if row is not None and row[0] != SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} holds emulator state version {row[0]}, this emulator reads "
                f"version {SCHEMA_VERSION}; delete the file or pick another --state-file."
            )
        return row is not None

    def load(self, state: State) -> None:
        """Fill an empty ``state`` from the file."""
        for data in self._rows("connections"):
            record = ConnectionRecord(*data["fields"])
            state.add_connection(record)
            if data.get("synced_at"):
                state.inventory.mark_synced(record.key, data["synced_at"])
            state.restore_sync_count(record.key, data.get("sync_count", 0))
        for data in self._rows("data_objects"):
            state.inventory.add(DataObjectRecord(*data["fields"]))
        for data in self._rows("tasks"):
            state.add_task(TaskRecord(*data["fields"]))
        for data in self._rows("runs"):
            state.add_run(RunRecord(*data["fields"]))
        state.clear_dirty()

    def _rows(self, table: str) -> Iterable[dict[str, Any]]:
        cursor = self._db.execute(f"SELECT data FROM {table} ORDER BY seq")  # noqa: S608
        for (data,) in cursor:
            yield json.loads(data)

    def save_all(self, state: State) -> None:
        """Replace the file's content with the whole of ``state``."""
        with self._db:
            for table in _TABLES:
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._db.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('version', ?)",
                (SCHEMA_VERSION,),
            )
            self._write(
                "connections",
                (
                    (c.key, c.seq, self._connection_data(state, c))
                    for c in state.connections.values()
                ),
            )
            self._write(
                "data_objects",
                ((o.id, o.seq, _dump(o, "data_objects")) for o in state.inventory.by_id.values()),
            )
            self._write("tasks", ((t.id, t.seq, _dump(t, "tasks")) for t in state.tasks.values()))
            self._write("runs", ((r.id, r.seq, _dump(r, "runs")) for r in state.runs.values()))
        state.clear_dirty()

    def save_changes(self, state: State) -> None:
        """Write what changed since the last save: upsert what exists, delete what is gone."""
        with self._db:
            self._sync_rows(
                "connections",
                state.dirty_connections,
                lambda key: (
                    self._connection_data(state, state.connections[key])
                    if key in state.connections
                    else None
                ),
                lambda key: state.connections[key].seq,
            )
            self._sync_rows(
                "data_objects",
                state.inventory.dirty,
                lambda oid: (
                    _dump(state.inventory.by_id[oid], "data_objects")
                    if oid in state.inventory.by_id
                    else None
                ),
                lambda oid: state.inventory.by_id[oid].seq,
            )
            self._sync_rows(
                "tasks",
                state.dirty_tasks,
                lambda tid: _dump(state.tasks[tid], "tasks") if tid in state.tasks else None,
                lambda tid: state.tasks[tid].seq,
            )
            self._sync_rows(
                "runs",
                state.dirty_runs,
                lambda rid: _dump(state.runs[rid], "runs") if rid in state.runs else None,
                lambda rid: state.runs[rid].seq,
            )
        state.clear_dirty()

    @staticmethod
    def _connection_data(state: State, record: ConnectionRecord) -> str:
        return _dump(
            record,
            "connections",
            synced_at=state.inventory.synced_at.get(record.key),
            sync_count=state.sync_count(record.key),
        )

    def _write(self, table: str, rows: Iterable[tuple[str, int, str]]) -> None:
        self._db.executemany(
            f"INSERT OR REPLACE INTO {table} (id, seq, data) VALUES (?, ?, ?)",  # noqa: S608
            rows,
        )

    def _sync_rows(
        self,
        table: str,
        ids: Iterable[str],
        data_of: Callable[[str], str | None],
        seq_of: Callable[[str], int],
    ) -> None:
        upserts: list[tuple[str, int, str]] = []
        deletes: list[tuple[str]] = []
        for item_id in ids:
            data = data_of(item_id)
            if data is None:
                deletes.append((item_id,))
            else:
                upserts.append((item_id, seq_of(item_id), data))
        if upserts:
            self._write(table, upserts)
        if deletes:
            self._db.executemany(f"DELETE FROM {table} WHERE id = ?", deletes)  # noqa: S608
