"""The words of the Immuta Connections API, in one place: statuses, task types and triggers,
connection states, component health, and the placeholder Immuta returns for secrets.

No third-party imports: operators, sensors and triggers import this at DAG parse time, and the
emulator serves the same words. Values the reference does not publish are our reading
(API-NOTES.md, [ours]); a real tenant may use other status names, which is why the *sets* below
are only defaults that an Airflow connection can override.
"""

from __future__ import annotations

from enum import Enum

REDACTED = "[REDACTED]"
"""What Immuta returns in place of every secret."""


class _StrEnum(str, Enum):
    """A str enum whose ``str()`` is its value on every Python version (3.10 has no StrEnum)."""

    def __str__(self) -> str:
        return str(self.value)


class ConnectionState(_StrEnum):
    """State of a connection; state rules decide which operations Immuta allows."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    UNHEALTHY = "UNHEALTHY"


class HealthStatus(_StrEnum):
    """Health of one component (client, policy, audit) of a connection."""

    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    UNKNOWN = "UNKNOWN"


class TaskStatus(_StrEnum):
    """Status of a task or a task run."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    CANCELING = "CANCELING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class TaskType(_StrEnum):
    """What a task does."""

    DATA_OBJECT_SYNC = "DATA_OBJECT_SYNC"
    CONNECTION_DELETE = "CONNECTION_DELETE"
    DATA_OBJECT_DELETE = "DATA_OBJECT_DELETE"


class TaskTrigger(_StrEnum):
    """What started a task."""

    MANUAL = "MANUAL"
    SCHEDULED = "SCHEDULED"
    SYSTEM = "SYSTEM"


CONNECTION_COMPONENTS: tuple[str, ...] = ("client", "policy", "audit")
"""The parts of a connection that ``_validate`` checks, in the order they are reported."""

ACTIVATED_STATES: tuple[str, ...] = (ConnectionState.ACTIVE.value, ConnectionState.UNHEALTHY.value)
"""States of a connection that is switched on (UNHEALTHY: on, but failing validation)."""

SUCCESS_STATUSES: tuple[str, ...] = (TaskStatus.COMPLETED.value,)
"""Default statuses of a run that ended well."""

FAILURE_STATUSES: tuple[str, ...] = (TaskStatus.FAILED.value, TaskStatus.CANCELED.value)
"""Default statuses of a run that ended badly (a cancelled run did not do its work)."""

ACTIVE_STATUSES: tuple[str, ...] = (
    TaskStatus.PENDING.value,
    TaskStatus.RUNNING.value,
    TaskStatus.CANCELING.value,
)
"""Default statuses of a run that has not ended yet."""

ATTACHABLE_STATUSES: tuple[str, ...] = (TaskStatus.PENDING.value, TaskStatus.RUNNING.value)
"""Statuses of a run that is still going and that a new sync may attach to (not one being
cancelled: it will not do the work)."""

TERMINAL_STATUSES: frozenset[str] = frozenset(SUCCESS_STATUSES + FAILURE_STATUSES)
"""Statuses after which a task or run never changes again."""

KNOWN_STATUSES: tuple[str, ...] = tuple(status.value for status in TaskStatus)
"""Every run status the provider knows by default, in lifecycle order."""


def is_terminal_status(status: str | None) -> bool:
    """Whether a task/run status is final (COMPLETED, FAILED or CANCELED).

    An unknown status is treated as not terminal: callers keep polling until their own deadline.
    """
    return status is not None and str.__str__(status) in TERMINAL_STATUSES


AUTH_METHODS: tuple[str, ...] = ("auto", "exchange", "bearer-key", "raw-key")
"""How a client uses its API key (``client/auth.py``; the first is the default): ``auto``
exchanges it for a token, or sends it as a bearer token where the tenant has no exchange;
``exchange``; ``bearer-key`` (``Authorization: Bearer <API key>``); ``raw-key``
(``Authorization: <API key>``)."""

TOKEN_EXCHANGE_PATH = "/bim/apikey/authenticate"  # noqa: S105 - a path, not a secret
"""Where Immuta exchanges an API key for a bearer token [Immuta's API docs]."""
