"""Pydantic v2 models of the Connections API resources (see API-NOTES.md).

Wire names are camelCase (aliases); attributes are snake_case. The models are tolerant on
purpose, because the API will grow:

* unknown fields are kept (``extra="allow"``) and dumped back by ``model_dump(by_alias=True)``;
* an enum-typed field accepts any string: a known value becomes the enum member, an unknown one
  stays a plain ``str`` (both compare equal to the raw string);
* only the fields that identify a resource (and a task's or run's status) are required;
  everything else may be missing.

Secrets come back from Immuta as ``"[REDACTED]"`` (:data:`REDACTED`). The models keep that
placeholder as it is; sending it back is meaningless (it is not the secret), which is why
``update_connection`` leaves such values out and ``create_connection`` refuses them.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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


TERMINAL_STATUSES: frozenset[str] = frozenset(
    {TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.CANCELED.value}
)
"""Statuses after which a task or run never changes again."""


def is_terminal_status(status: str | None) -> bool:
    """Whether a task/run status is final (COMPLETED, FAILED or CANCELED).

    An unknown status is treated as not terminal: callers keep polling until their own deadline.
    """
    return status is not None and str.__str__(status) in TERMINAL_STATUSES


# A known value validates to the enum member; anything else stays the original string.
# left_to_right is needed because "smart" union mode would prefer the exact `str` match.
ConnectionStateField: TypeAlias = Annotated[
    ConnectionState | str, Field(union_mode="left_to_right")
]
HealthStatusField: TypeAlias = Annotated[HealthStatus | str, Field(union_mode="left_to_right")]
TaskStatusField: TypeAlias = Annotated[TaskStatus | str, Field(union_mode="left_to_right")]
TaskTypeField: TypeAlias = Annotated[TaskType | str, Field(union_mode="left_to_right")]
TaskTriggerField: TypeAlias = Annotated[TaskTrigger | str, Field(union_mode="left_to_right")]


class ImmutaModel(BaseModel):
    """Base of all resource models: camelCase aliases, unknown fields kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
    )


class ComponentHealth(ImmutaModel):
    """Health of one connection component as persisted by ``_validate``."""

    status: HealthStatusField
    message: str | None = None
    checked_at: datetime | None = None


class ConnectionHealth(ImmutaModel):
    """Health of the client, policy and audit components of a connection."""

    client: ComponentHealth | None = None
    policy: ComponentHealth | None = None
    audit: ComponentHealth | None = None


class Connection(ImmutaModel):
    """A connection to a data platform. Secrets in the configurations read ``"[REDACTED]"``."""

    connection_key: str
    technology: str | None = None
    state: ConnectionStateField | None = None
    client_configuration: dict[str, Any] | None = None
    policy_configuration: dict[str, Any] | None = None
    audit_configuration: dict[str, Any] | None = None
    health: ConnectionHealth | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


class DataObject(ImmutaModel):
    """A database, schema, table... registered under a connection."""

    id: str
    connection_key: str
    name: str | None = None
    type: str | None = None
    normalized_type: str | None = None
    technology: str | None = None
    remote_id: str | None = None
    remote_type: str | None = None
    remote_format: str | None = None
    remote_kind: str | None = None
    remote_created_at: datetime | None = None
    remote_updated_at: datetime | None = None
    last_synced_at: datetime | None = None
    parent_id: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


class Task(ImmutaModel):
    """A unit of asynchronous work (a sync, a deletion); it has one or more runs."""

    task_id: str
    type: TaskTypeField
    status: TaskStatusField
    trigger: TaskTriggerField | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    parent_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the task's status is final."""
        return is_terminal_status(self.status)


class TaskRunError(ImmutaModel):
    """Why a task run failed."""

    code: str | None = None
    message: str | None = None


class TaskRun(ImmutaModel):
    """One execution of a task."""

    run_id: str
    status: TaskStatusField
    task_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    canceled_by: str | None = None
    error: TaskRunError | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the run's status is final (it will not change any more)."""
        return is_terminal_status(self.status)


class TaskReference(ImmutaModel):
    """The answer to a deletion: the id of the task that carries it out."""

    task_id: str


class CancelTaskRunResult(ImmutaModel):
    """The answer to a cancel request (the run goes CANCELING, then CANCELED)."""

    run_id: str
    message: str
