"""The watermark rules of the sync watcher (pure: no Airflow, no I/O)."""

from __future__ import annotations

from immuta_provider._sync_watermark import (
    MAX_HANDLED,
    ObservedSync,
    SyncWatermark,
    first_look,
)

ENDED = ("COMPLETED", "FAILED", "CANCELED")


def at(minute: int) -> str:
    return f"2026-11-30T10:{minute:02d}:00+00:00"


def sync(task_id: str, status: str, minute: int | None) -> ObservedSync:
    return ObservedSync(task_id, status, None if minute is None else at(minute))


def ids(syncs: list[ObservedSync]) -> list[str]:
    return [s.task_id for s in syncs]


def test_first_look_handles_history_and_waits_for_running_syncs() -> None:
    seen = [sync("old", "COMPLETED", 1), sync("running", "RUNNING", 2), sync("done", "FAILED", 3)]
    watermark = first_look(seen, ENDED)
    assert watermark.new_ended(seen, ENDED) == []
    assert watermark.horizon == at(2)  # the running one may still end and must fire then
    later = [
        sync("old", "COMPLETED", 1),
        sync("running", "COMPLETED", 2),
        sync("done", "FAILED", 3),
    ]
    assert ids(watermark.new_ended(later, ENDED)) == ["running"]


def test_a_sync_fires_once_and_the_handled_set_is_pruned() -> None:
    watermark = first_look([sync("a", "COMPLETED", 1)], ENDED)
    seen = [sync("a", "COMPLETED", 1), sync("b", "COMPLETED", 2), sync("c", "RUNNING", 3)]
    assert ids(watermark.new_ended(seen, ENDED)) == ["b"]
    watermark = watermark.advance(seen, ENDED, handled_now=["b"])
    assert watermark.new_ended(seen, ENDED) == []
    assert watermark.horizon == at(3) and watermark.handled == {}  # a and b are behind it
    seen[2] = sync("c", "COMPLETED", 3)
    assert ids(watermark.new_ended(seen, ENDED)) == ["c"]
    watermark = watermark.advance(seen, ENDED, handled_now=["c"])
    assert watermark.new_ended(seen, ENDED) == [] and watermark.handled == {"c": at(3)}


def test_syncs_that_ended_between_two_looks_fire_oldest_first() -> None:
    watermark = first_look([sync("a", "COMPLETED", 1)], ENDED)
    seen = [sync("d", "COMPLETED", 9), sync("c", "CANCELED", 5), sync("a", "COMPLETED", 1)]
    assert ids(watermark.new_ended(seen, ENDED)) == ["c", "d"]


def test_a_postponed_sync_stays_due_and_holds_the_horizon() -> None:
    watermark = first_look([sync("a", "COMPLETED", 1)], ENDED)
    seen = [sync("b", "COMPLETED", 2), sync("c", "COMPLETED", 3)]
    watermark = watermark.advance(seen, ENDED, handled_now=["c"], postponed=["b"])
    assert watermark.horizon == at(2)
    assert ids(watermark.new_ended(seen, ENDED)) == ["b"]


def test_a_sync_missing_from_one_listing_does_not_fire_again_later() -> None:
    watermark = first_look([sync("a", "COMPLETED", 1), sync("b", "RUNNING", 2)], ENDED)
    both = [sync("a", "COMPLETED", 1), sync("b", "COMPLETED", 2), sync("c", "RUNNING", 4)]
    watermark = watermark.advance(both, ENDED, handled_now=["b"])
    watermark = watermark.advance([sync("c", "RUNNING", 4)], ENDED, handled_now=[])
    assert watermark.new_ended(both, ENDED) == []


def test_state_round_trip_and_unreadable_state() -> None:
    watermark = first_look([sync("a", "COMPLETED", 1), sync("b", "RUNNING", 2)], ENDED)
    assert SyncWatermark.from_state(watermark.to_state()) == watermark
    for junk in (None, "x", {"version": 99}, {"version": 1, "handled": "no"}):
        assert SyncWatermark.from_state(junk) is None


def test_without_creation_times_the_handled_set_decides_and_stays_bounded() -> None:
    watermark = first_look([sync("a", "COMPLETED", None)], ENDED)
    seen = [sync("a", "COMPLETED", None), sync("b", "COMPLETED", None)]
    assert ids(watermark.new_ended(seen, ENDED)) == ["b"]
    many = [sync(f"t{i}", "COMPLETED", None) for i in range(MAX_HANDLED + 10)]
    watermark = watermark.advance(many, ENDED, handled_now=[s.task_id for s in many])
    assert len(watermark.handled) == MAX_HANDLED
    assert "t0" not in watermark.handled and f"t{MAX_HANDLED + 9}" in watermark.handled
