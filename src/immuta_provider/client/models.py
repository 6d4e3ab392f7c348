"""Pydantic v2 models of the Connections API resources (see API-NOTES.md).

Wire names are camelCase (aliases); attributes are snake_case. The models are tolerant on
purpose, because the API will grow:

* unknown fields are kept (``extra="allow"``) and dumped back by ``model_dump(by_alias=True)``;
* an enum-typed field accepts any string: a known value becomes the enum member, an unknown one
  stays a plain ``str`` (both compare equal to the raw string);
* only the fields that identify a resource (and a task's or run's status) are required;
  everything else may be missing.

Secrets come back from Immuta as ``"[REDACTED]"`` (``REDACTED``, from
:mod:`~immuta_provider.client.vocabulary`, where every word of the API lives). The models keep that
placeholder as it is; sending it back is meaningless (it is not the secret), which is why
``update_connection`` leaves such values out and ``create_connection`` refuses them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from immuta_provider.client.vocabulary import (
    REDACTED,
    TERMINAL_STATUSES,
    ConnectionState,
    HealthStatus,
    TaskStatus,
    TaskTrigger,
    TaskType,
    is_terminal_status,
)

__all__ = [  # the vocabulary is re-exported: models is where users met it first
    "REDACTED",
    "TERMINAL_STATUSES",
    "CancelTaskRunResult",
    "ComponentHealth",
    "Connection",
    "ConnectionHealth",
    "ConnectionState",
    "DataObject",
    "HealthStatus",
    "ImmutaModel",
    "Task",
    "TaskReference",
    "TaskRun",
    "TaskRunError",
    "TaskStatus",
    "TaskTrigger",
    "TaskType",
    "is_terminal_status",
]

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
