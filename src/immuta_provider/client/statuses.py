"""Which run statuses mean success, failure and "still going", per tenant.

Immuta does not publish its run status values (API-NOTES.md, *Meeting a real tenant*): the
defaults in :mod:`~immuta_provider.client.vocabulary` are our reading, and an Airflow connection
can replace each set with the extras ``success_statuses``, ``failure_statuses`` and
``active_statuses``. Whatever the names, a run whose ``completedAt`` is set has ended; an ended run
whose status is in neither the success nor the failure set is reported as such (never taken for
a success, never waited on forever).

No third-party imports: the operators, the sensor and the trigger use this at DAG parse time and
carry :meth:`RunStatuses.to_dict` in the trigger's JSON-safe kwargs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from immuta_provider.client.vocabulary import (
    ACTIVE_STATUSES,
    FAILURE_STATUSES,
    SUCCESS_STATUSES,
    TaskStatus,
)

SUCCESS_EXTRA = "success_statuses"
FAILURE_EXTRA = "failure_statuses"
ACTIVE_EXTRA = "active_statuses"
STATUS_EXTRAS: tuple[str, ...] = (SUCCESS_EXTRA, FAILURE_EXTRA, ACTIVE_EXTRA)
"""The Airflow connection extras that name a tenant's run statuses."""

# What classify() answers.
SUCCEEDED = "succeeded"
FAILED = "failed"
ENDED_UNKNOWN = "ended_unknown"
"""The run has ended (``completedAt`` is set) with a status in neither the success nor the
failure set."""
GOING = "going"
UNKNOWN = "unknown"
"""A status in no set and no ``completedAt``: maybe still going, maybe not; poll on."""


class InvalidRunStatuses(ValueError):
    """A status extra that cannot be read; the message names the extra and what to write."""


def parse_status_list(name: str, value: Any) -> tuple[str, ...] | None:
    """The statuses an extra names: a JSON list (as JSON or already decoded), or a
    comma-separated string. ``None`` (or blank) means "not set: use the default".

    :raises InvalidRunStatuses: for anything else, a blank or non-string entry, or an empty list.
    """
    if value is None:
        return None
    items: Any = value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise InvalidRunStatuses(
                    f"extra {name!r} starts like a JSON list but is not valid JSON ({exc}); "
                    'write e.g. ["COMPLETED"] or COMPLETED, SUCCEEDED.'
                ) from None
        else:
            items = text.split(",")
    if not isinstance(items, list | tuple):
        raise InvalidRunStatuses(
            f"extra {name!r} must be a list of run statuses (a JSON list or a comma-separated "
            f"string), got {type(value).__name__} {value!r}."
        )
    statuses: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidRunStatuses(
                f"extra {name!r} has the entry {item!r}: every entry must be a status name "
                "such as COMPLETED."
            )
        status = item.strip()
        if status not in statuses:
            statuses.append(status)
    if not statuses:
        raise InvalidRunStatuses(
            f"extra {name!r} is an empty list: name at least one status, or remove the extra to "
            "use the default."
        )
    return tuple(statuses)


def _is_cancel_status(status: str) -> bool:
    return "CANCEL" in status.upper()


@dataclass(frozen=True)
class RunStatuses:
    """A tenant's run status names: the ones that mean success, failure and still going.

    :param success: Statuses of a run that ended well (default ``COMPLETED``).
    :param failure: Statuses of a run that ended badly (default ``FAILED``, ``CANCELED``).
    :param active: Statuses of a run that has not ended (default ``PENDING``, ``RUNNING``,
        ``CANCELING``).
    """

    success: tuple[str, ...] = SUCCESS_STATUSES
    failure: tuple[str, ...] = FAILURE_STATUSES
    active: tuple[str, ...] = ACTIVE_STATUSES

    @classmethod
    def create(
        cls,
        success: Iterable[str] | None = None,
        failure: Iterable[str] | None = None,
        active: Iterable[str] | None = None,
    ) -> RunStatuses:
        """Build from lists (``None``: the default); a status may be in one set only.

        :raises InvalidRunStatuses: naming the status and both extras that list it.
        """
        sets = {
            SUCCESS_EXTRA: tuple(success) if success is not None else SUCCESS_STATUSES,
            FAILURE_EXTRA: tuple(failure) if failure is not None else FAILURE_STATUSES,
            ACTIVE_EXTRA: tuple(active) if active is not None else ACTIVE_STATUSES,
        }
        given = {SUCCESS_EXTRA: success, FAILURE_EXTRA: failure, ACTIVE_EXTRA: active}

        def named(extra: str) -> str:
            return f"{extra!r}" + (" (its default)" if given[extra] is None else "")

        seen: dict[str, str] = {}
        for extra, statuses in sets.items():
            for status in statuses:
                if status in seen:
                    raise InvalidRunStatuses(
                        f"run status {status!r} is in both {named(seen[status])} and "
                        f"{named(extra)}: a status can mean only one thing. Remove it from one "
                        "of them (to take it out of a default, set that extra too)."
                    )
                seen[status] = extra
        return cls(sets[SUCCESS_EXTRA], sets[FAILURE_EXTRA], sets[ACTIVE_EXTRA])

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any]) -> RunStatuses:
        """Read the three extras (each a JSON list or a comma-separated string; unset: default).

        :raises InvalidRunStatuses: naming the extra and what is wrong with it.
        """
        return cls.create(
            success=parse_status_list(SUCCESS_EXTRA, extras.get(SUCCESS_EXTRA)),
            failure=parse_status_list(FAILURE_EXTRA, extras.get(FAILURE_EXTRA)),
            active=parse_status_list(ACTIVE_EXTRA, extras.get(ACTIVE_EXTRA)),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RunStatuses:
        """Rebuild from :meth:`to_dict` (``None``: the defaults)."""
        if not data:
            return cls()
        return cls.create(data.get("success"), data.get("failure"), data.get("active"))

    def to_dict(self) -> dict[str, list[str]]:
        """JSON-safe form (a trigger's kwargs)."""
        return {
            "success": list(self.success),
            "failure": list(self.failure),
            "active": list(self.active),
        }

    @property
    def is_default(self) -> bool:
        """Whether these are the built-in sets."""
        return self == RunStatuses()

    @property
    def attachable(self) -> tuple[str, ...]:
        """Active statuses a new sync may attach to: all but a run being cancelled (it will not
        do the work). A status counts as "being cancelled" when its name contains ``CANCEL``
        (``CANCELING``, ``CANCELLING``, ``CANCEL_REQUESTED``...)."""
        return tuple(status for status in self.active if not _is_cancel_status(status))

    @property
    def known(self) -> tuple[str, ...]:
        """Every status these sets name."""
        return self.active + self.success + self.failure

    def has_ended(self, status: Any, completed_at: Any = None) -> bool:
        """A run has ended when its status is in the success or failure set, or its
        ``completedAt`` is set (whatever its status is called)."""
        text = _text(status)
        return completed_at is not None or text in self.success or text in self.failure

    def classify(self, status: Any, completed_at: Any = None) -> str:
        """:data:`SUCCEEDED`, :data:`FAILED`, :data:`ENDED_UNKNOWN`, :data:`GOING` or
        :data:`UNKNOWN` for a run's status and ``completedAt``."""
        text = _text(status)
        if text in self.success:
            return SUCCEEDED
        if text in self.failure:
            return FAILED
        if completed_at is not None:
            return ENDED_UNKNOWN
        if text in self.active:
            return GOING
        return UNKNOWN

    def run_has_ended(self, run: Any) -> bool:
        """:meth:`has_ended` for a ``TaskRun``."""
        return self.has_ended(run.status, run.completed_at)

    def unknown_end_advice(self, status: str, immuta_conn_id: str | None) -> str:
        """What to set when a run ended with a status in neither set."""
        where = f"Airflow connection {immuta_conn_id!r}" if immuta_conn_id else "the connection"
        return (
            f"Status {status!r} is in neither {SUCCESS_EXTRA} ({', '.join(self.success)}) nor "
            f"{FAILURE_EXTRA} ({', '.join(self.failure)}). If {status} means success, add it to "
            f'the extra {SUCCESS_EXTRA} of {where}, e.g. "{SUCCESS_EXTRA}": '
            f"{json.dumps([*self.success, status])}; if it means failure, add it to "
            f"{FAILURE_EXTRA}."
        )


def _text(status: Any) -> str:
    # Unknown values come back from the client as plain strings, known ones as TaskStatus.
    return str(status.value) if isinstance(status, TaskStatus) else str(status)
