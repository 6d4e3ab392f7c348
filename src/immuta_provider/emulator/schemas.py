"""Pydantic models of the wire format, for the OpenAPI schema and for request bodies.

Responses are built as plain dicts and serialized directly (validating every response would cost
more than the rest of a request); these models document them so that ``/openapi.json`` can be
checked against what the emulator actually sends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .rules import CONNECTION_KEY_PATTERN, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, UUID_PATTERN

ConnectionState = Literal["ACTIVE", "INACTIVE", "UNHEALTHY"]
RunStatus = Literal["PENDING", "RUNNING", "CANCELING", "COMPLETED", "FAILED", "CANCELED"]
TaskType = Literal["DATA_OBJECT_SYNC", "CONNECTION_DELETE", "DATA_OBJECT_DELETE"]
TaskTrigger = Literal["MANUAL", "SCHEDULED", "SYSTEM"]
HealthStatus = Literal["HEALTHY", "UNHEALTHY", "UNKNOWN"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Wire):
    """Every non-2xx JSON answer."""

    statusCode: int
    error: str
    message: str


class PageInfo(_Wire):
    """Where the next page starts; null on the last page."""

    nextCursor: str | None


class ComponentHealth(_Wire):
    """The last validation result of one connection component."""

    status: HealthStatus
    message: str | None
    checkedAt: datetime


class ConnectionHealth(_Wire):
    """Health per component."""

    client: ComponentHealth
    policy: ComponentHealth
    audit: ComponentHealth


class Connection(_Wire):
    """A connection; every secret in ``clientConfiguration`` is returned as ``[REDACTED]``."""

    connectionKey: str = Field(pattern=CONNECTION_KEY_PATTERN)
    technology: str = Field(min_length=1)
    state: ConnectionState
    clientConfiguration: dict[str, Any]
    policyConfiguration: dict[str, Any]
    auditConfiguration: dict[str, Any]
    health: ConnectionHealth
    createdBy: str
    createdAt: datetime
    updatedBy: str
    updatedAt: datetime


class ConnectionList(_Wire):
    """A page of connections."""

    connections: list[Connection]
    page: PageInfo


class DataObject(_Wire):
    """A data object: a database, schema, table or view of a connection."""

    id: str = Field(pattern=UUID_PATTERN)
    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    normalizedType: str = Field(min_length=1)
    technology: str = Field(min_length=1)
    remoteId: str = Field(min_length=1)
    remoteType: str | None = None
    remoteFormat: str | None = None
    remoteKind: str | None = None
    remoteCreatedAt: datetime | None = None
    remoteUpdatedAt: datetime | None = None
    lastSyncedAt: datetime
    connectionKey: str = Field(min_length=1)
    parentId: str | None
    createdBy: str
    createdAt: datetime
    updatedBy: str
    updatedAt: datetime


class DataObjectList(_Wire):
    """A page of data objects (search results or children)."""

    dataObjects: list[DataObject]
    page: PageInfo


class Task(BaseModel):
    """A task; fields given when it was created are passed through."""

    model_config = ConfigDict(extra="allow")

    taskId: str = Field(pattern=UUID_PATTERN)
    type: TaskType
    status: RunStatus
    trigger: TaskTrigger
    createdBy: str = Field(min_length=1)
    createdAt: datetime
    parentId: str | None = Field(default=None, pattern=UUID_PATTERN)


class TaskList(_Wire):
    """A page of tasks, newest first."""

    tasks: list[Task]
    page: PageInfo


class TaskRunError(_Wire):
    """Why a run FAILED."""

    code: str
    message: str


class TaskRun(_Wire):
    """One run of a task."""

    runId: str = Field(pattern=UUID_PATTERN)
    taskId: str = Field(pattern=UUID_PATTERN)
    status: RunStatus
    createdAt: datetime
    updatedAt: datetime
    startedAt: datetime | None = None
    completedAt: datetime | None = None
    canceledBy: str | None = Field(default=None, min_length=1)
    error: TaskRunError | None = None


class TaskRunList(_Wire):
    """A page of a task's runs, oldest first."""

    runs: list[TaskRun]
    page: PageInfo


class TaskReference(_Wire):
    """The task started by an asynchronous deletion."""

    taskId: str = Field(pattern=UUID_PATTERN)


class CancelTaskRunResult(_Wire):
    """The answer to a cancel request (the run is CANCELING, not yet CANCELED)."""

    runId: str = Field(pattern=UUID_PATTERN)
    message: str


class ComponentConfiguration(BaseModel):
    """Policy or audit configuration; other keys are technology specific."""

    model_config = ConfigDict(extra="allow")

    enabled: bool = False


class CreateConnectionRequest(_Wire):
    """The body of POST /api/connections."""

    connectionKey: str = Field(min_length=1, pattern=CONNECTION_KEY_PATTERN)
    technology: str = Field(min_length=1)
    clientConfiguration: dict[str, Any]
    policyConfiguration: ComponentConfiguration | None = None
    auditConfiguration: ComponentConfiguration | None = None


class UpdateConnectionRequest(_Wire):
    """The body of PATCH /api/connections/{connectionKey}: any of the configurations."""

    clientConfiguration: dict[str, Any] | None = None
    policyConfiguration: ComponentConfiguration | None = None
    auditConfiguration: ComponentConfiguration | None = None


class CreateTaskRequest(BaseModel):
    """The body of POST .../tasks; other fields are kept on the task."""

    model_config = ConfigDict(extra="allow")

    type: Literal["DATA_OBJECT_SYNC"]


class UpdateDataObjectRequest(_Wire):
    """The body of PATCH .../dataObjects/{id}."""

    name: str | None = Field(default=None, min_length=1)
    remoteType: str | None = None
    remoteFormat: str | None = None
    remoteKind: str | None = None


class SearchPage(_Wire):
    """Paging of a search."""

    limit: int = Field(default=PAGE_LIMIT_DEFAULT, ge=1, le=PAGE_LIMIT_MAX)
    cursor: str | None = None


class SearchRequest(_Wire):
    """The body of POST /api/connections/dataObjects/_search."""

    connectionKey: str = Field(min_length=1, pattern=CONNECTION_KEY_PATTERN)
    attributes: dict[str, str | None] = Field(default_factory=dict)
    page: SearchPage = Field(default_factory=SearchPage)
