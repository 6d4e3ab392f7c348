"""Which completed syncs a watcher has already handled: the rules of the watermark (no I/O).

The sync watcher (:class:`~immuta_provider.triggers.sync_completed.ImmutaSyncCompletedTrigger`)
sees, at each poll, the newest top-level ``DATA_OBJECT_SYNC`` tasks of a connection with their
status and creation time. It must fire once for each sync that *ends* after the watcher first
started, even a sync that ended while no triggerer ran, and never twice. Immuta's task list has no
completion time and no "changed since" filter, so the watermark keeps two things:

* ``horizon``: a creation time (Immuta's clock) before which every sync is settled: handled, or
  ended before the watcher first looked. It is the creation time of the oldest sync still going at
  the last poll (it may still end, and must then fire), else of the newest sync seen. It only
  moves forward.
* ``handled``: the syncs created at or after the horizon that already ended and were handled
  (fired, skipped or part of the first look), with their creation times, so the set is pruned as
  the horizon moves.

An ended sync fires when it was created at or after the horizon and is not in ``handled``. The
first look (no watermark stored yet) handles every ended sync without firing: no flood of history.

The watermark is a small JSON-safe dict, stored in Airflow's asset state store by the trigger.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

WATERMARK_VERSION = 1
MAX_HANDLED = 2000
"""The handled set never grows past this (only syncs without a creation time could make it)."""


def _parse(stamp: Any) -> datetime | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class ObservedSync:
    """A top-level sync task as one poll saw it."""

    task_id: str
    status: str
    created_at: str | None = None

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> ObservedSync:
        """From the shared stream's JSON form: ``{"task_id", "status", "created_at"}``."""
        return cls(
            task_id=str(item["task_id"]),
            status=str(item["status"]),
            created_at=item.get("created_at"),
        )

    @property
    def created(self) -> datetime | None:
        """The creation time, or ``None`` when Immuta did not give a readable one."""
        return _parse(self.created_at)


@dataclass
class SyncWatermark:
    """What one watcher has handled. See the module docstring for the rules."""

    horizon: str | None = None
    handled: dict[str, str | None] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        """The JSON-safe form stored in the asset state store."""
        return {"version": WATERMARK_VERSION, "horizon": self.horizon, "handled": self.handled}

    @classmethod
    def from_state(cls, value: Any) -> SyncWatermark | None:
        """The stored watermark, or ``None`` when there is none (or it is unreadable)."""
        if not isinstance(value, Mapping) or value.get("version") != WATERMARK_VERSION:
            return None
        handled = value.get("handled")
        if not isinstance(handled, Mapping):
            return None
        horizon = value.get("horizon")
        return cls(
            horizon=horizon if isinstance(horizon, str) else None,
            handled={str(k): (v if isinstance(v, str) else None) for k, v in handled.items()},
        )

    def _at_or_after_horizon(self, sync: ObservedSync) -> bool:
        horizon, created = _parse(self.horizon), sync.created
        # Without both times there is nothing to compare: the handled set decides.
        return horizon is None or created is None or created >= horizon

    def new_ended(
        self, syncs: Iterable[ObservedSync], ended: Collection[str]
    ) -> list[ObservedSync]:
        """The syncs of a poll that ended (status in ``ended``) and this watcher has not handled.

        Oldest first, so that events fire in the order the syncs were started.
        """
        fresh = [
            sync
            for sync in syncs
            if sync.status in ended
            and sync.task_id not in self.handled
            and self._at_or_after_horizon(sync)
        ]
        return sorted(fresh, key=lambda sync: sync.created_at or "")

    def advance(
        self,
        syncs: Iterable[ObservedSync],
        ended: Collection[str],
        *,
        handled_now: Iterable[str],
        postponed: Iterable[str] = (),
    ) -> SyncWatermark:
        """The watermark after a poll.

        :param syncs: Every top-level sync the poll saw.
        :param ended: The statuses of a sync that has ended (success and failure).
        :param handled_now: Ended syncs handled at this poll (fired, skipped, first look).
        :param postponed: Ended syncs not handled yet (their run could not be read): they keep
            the horizon from passing them, like syncs still going.
        """
        syncs = list(syncs)
        done = set(handled_now)
        waiting = set(postponed)
        open_times = [
            s.created
            for s in syncs
            if (s.status not in ended or s.task_id in waiting) and s.created is not None
        ]
        all_times = [s.created for s in syncs if s.created is not None]
        candidate = min(open_times) if open_times else max(all_times) if all_times else None
        current = _parse(self.horizon)
        if candidate is None or (current is not None and candidate < current):
            new_horizon = current
        else:
            new_horizon = candidate
        handled = dict(self.handled)
        for sync in syncs:
            if sync.task_id in done:
                handled[sync.task_id] = sync.created_at
        if new_horizon is not None:
            handled = {
                task_id: created
                for task_id, created in handled.items()
                if (stamp := _parse(created)) is None or stamp >= new_horizon
            }
        if len(handled) > MAX_HANDLED:  # the oldest entries were inserted first
            handled = dict(list(handled.items())[-MAX_HANDLED:])
        return SyncWatermark(
            horizon=new_horizon.isoformat() if new_horizon is not None else None,
            handled=handled,
        )


def first_look(syncs: Iterable[ObservedSync], ended: Collection[str]) -> SyncWatermark:
    """The watermark of a watcher's first poll: every sync already ended counts as handled."""
    syncs = list(syncs)
    return SyncWatermark().advance(
        syncs, ended, handled_now=[s.task_id for s in syncs if s.status in ended]
    )
