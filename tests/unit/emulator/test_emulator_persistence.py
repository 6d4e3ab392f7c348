"""--state-file: the state survives a restart (SQLite), incremental saves, reset, versioning."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.emulator.core import Emulator, EmulatorConfig

from .conftest import Api, FakeClock

KEY = "snowflake-prod"


def snapshot(emulator: Emulator) -> dict[str, Any]:
    """Everything the API can show, as wire dicts."""
    state = emulator.state
    return {
        "connections": {k: c.to_wire() for k, c in state.connections.items()},
        "objects": {i: state.inventory.wire(o) for i, o in state.inventory.by_id.items()},
        "tasks": {i: state.task_wire(t) for i, t in state.tasks.items()},
        "runs": {i: r.to_wire() for i, r in state.runs.items()},
    }


def test_state_round_trips_through_a_restart(
    tmp_path: Path, make_api: Any, clock: FakeClock
) -> None:
    path = tmp_path / "state.db"
    api: Api = make_api(state_file=path)
    api.ok(
        "POST",
        "/api/connections",
        json={
            "connectionKey": "kept",
            "technology": "Trino",
            "clientConfiguration": {"password": "p"},
        },
    )
    _, done_run = api.start_sync()
    clock.advance(10)  # the first sync completes: new tables, lastSyncedAt moved
    table = api.search(KEY, type="table")[0]
    api.ok("PATCH", f"/api/connections/{KEY}/dataObjects/{table['id']}", json={"name": "RENAMED"})
    database = api.search("databricks-analytics", type="database")[0]
    api.ok(
        "DELETE", f"/api/connections/databricks-analytics/dataObjects/{database['id']}", status=202
    )
    clock.advance(10)
    _, running_run = api.start_sync()
    clock.advance(3)
    api.ok("GET", "/api/connections")
    before = snapshot(api.emulator)
    assert before["runs"][running_run]["status"] == "RUNNING"
    assert before["runs"][done_run]["status"] == "COMPLETED"
    api.emulator.close()

    restarted = Emulator(EmulatorConfig(state_file=path, sync_duration=10.0), clock=clock)
    assert snapshot(restarted) == before
    assert restarted.state.connections["kept"].client_configuration == {"password": "p"}
    # Time keeps working on the restored runs: the running sync finishes and has its effects.
    count = restarted.state.inventory.count(KEY)
    clock.advance(7)
    restarted.state.tick()
    assert restarted.state.runs[running_run].status == "COMPLETED"
    assert restarted.state.inventory.count(KEY) == count + 3
    assert restarted.state.sync_count(KEY) == 2
    # New ids do not collide with restored ones.
    task = restarted.state.create_task(KEY, {"type": "DATA_OBJECT_SYNC"}, "api-key-1")
    assert task.id not in before["tasks"]
    assert all(run_id not in before["runs"] for run_id in task.run_ids)
    restarted.close()


def test_saves_are_incremental_and_deletions_are_saved(
    tmp_path: Path, make_api: Any, clock: FakeClock
) -> None:
    path = tmp_path / "state.db"
    api: Api = make_api(state_file=path)
    db = sqlite3.connect(path)
    objects = db.execute("SELECT COUNT(*) FROM data_objects").fetchone()[0]
    assert objects == len(api.emulator.state.inventory)
    task_id = api.ok("DELETE", "/api/connections/trino-archive", status=202)["taskId"]
    assert db.execute("SELECT COUNT(*) FROM tasks WHERE id = ?", (task_id,)).fetchone()[0] == 1
    clock.advance(10)
    api.ok("GET", "/api/connections")
    assert (
        db.execute("SELECT COUNT(*) FROM connections WHERE id = 'trino-archive'").fetchone()[0] == 0
    )
    assert db.execute("SELECT COUNT(*) FROM data_objects").fetchone()[0] == objects - 23
    assert db.execute("SELECT COUNT(*) FROM tasks WHERE id = ?", (task_id,)).fetchone()[0] == 1
    db.close()


def test_reset_rewrites_the_file_with_the_seed(
    tmp_path: Path, make_api: Any, clock: FakeClock
) -> None:
    path = tmp_path / "state.db"
    api: Api = make_api(state_file=path)
    seeded = snapshot(api.emulator)
    api.ok("POST", "/api/connections/trino-archive/_activate")
    api.client.post("/_emulator/reset")
    api.emulator.close()
    restarted = Emulator(EmulatorConfig(state_file=path), clock=clock)
    assert snapshot(restarted)["connections"]["trino-archive"]["state"] == "INACTIVE"
    assert snapshot(restarted)["objects"].keys() == seeded["objects"].keys()
    restarted.close()


def test_a_saved_state_wins_over_the_seed_flags(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.db"
    Emulator(EmulatorConfig(state_file=path, seed="none"), clock=clock).close()
    again = Emulator(EmulatorConfig(state_file=path, seed="demo"), clock=clock)
    assert again.state.connections == {}
    again.close()


def test_a_file_from_another_version_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.db"
    Emulator(EmulatorConfig(state_file=path), clock=clock).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '0' WHERE name = 'version'")
    with pytest.raises(RuntimeError, match="version 0"):
        Emulator(EmulatorConfig(state_file=path), clock=clock)


def test_without_a_state_file_changes_are_not_accumulated(api: Api, clock: FakeClock) -> None:
    assert not api.emulator.state.dirty  # the seed is not kept as "changed"
    api.start_sync()
    clock.advance(10)
    api.ok("GET", "/api/connections")
    assert not api.emulator.state.dirty
