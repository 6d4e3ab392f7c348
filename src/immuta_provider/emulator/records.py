"""The emulator's records and how each is rendered on the wire.

Records are slotted dataclasses with epoch-second timestamps: a 100,000-object inventory stays small
in memory, and only the items of one page are turned into JSON dicts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

REDACTED = "[REDACTED]"
# Key fragments that mark a configuration value as a secret (compared in lower case).
_SECRET_MARKERS = (
    "password",
    "secret",
    "token",
    "privatekey",
    "apikey",
    "passphrase",
    "credential",
)

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED"})
RUN_STATUSES = ("PENDING", "RUNNING", "CANCELING", "COMPLETED", "FAILED", "CANCELED")
TASK_TYPES = ("DATA_OBJECT_SYNC", "CONNECTION_DELETE", "DATA_OBJECT_DELETE")
TASK_TRIGGERS = ("MANUAL", "SCHEDULED", "SYSTEM")
CONNECTION_STATES = ("ACTIVE", "INACTIVE", "UNHEALTHY")
HEALTH_COMPONENTS = ("client", "policy", "audit")


def iso(timestamp: float) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. ``2026-11-25T08:54:20.123Z``."""
    whole = int(timestamp)
    millis = int((timestamp - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def is_secret_key(name: str) -> bool:
    """Whether a configuration key holds a secret that must never be returned."""
    lowered = name.lower().replace("_", "").replace("-", "")
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with every secret value (at any depth) replaced by ``[REDACTED]``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if is_secret_key(key):
            out[key] = REDACTED
        elif isinstance(value, dict):
            out[key] = redact(value)
        else:
            out[key] = value
    return out


def secret_values(config: dict[str, Any]) -> list[object]:
    """Every secret value in ``config``, at any depth."""
    found: list[object] = []
    for key, value in config.items():
        if is_secret_key(key):
            found.append(value)
        elif isinstance(value, dict):
            found.extend(secret_values(value))
    return found


@dataclass(slots=True)
class ConnectionRecord:
    """A connection; ``client_configuration`` holds the real secrets, redacted on output."""

    seq: int
    key: str
    technology: str
    state: str
    client_configuration: dict[str, Any]
    policy_configuration: dict[str, Any]
    audit_configuration: dict[str, Any]
    health: dict[str, dict[str, Any]]
    created_by: str
    created_at: float
    updated_by: str
    updated_at: float

    def credentials_rejected(self) -> bool:
        """Whether the remote platform would refuse these credentials.

        The emulator's convention: a secret value starting with ``invalid`` is a bad one.
        """
        return any(
            isinstance(value, str) and value.startswith("invalid")
            for value in secret_values(self.client_configuration)
        )

    def to_wire(self) -> dict[str, Any]:
        """The connection as the API returns it (secrets redacted)."""
        return {
            "connectionKey": self.key,
            "technology": self.technology,
            "state": self.state,
            "clientConfiguration": redact(self.client_configuration),
            "policyConfiguration": dict(self.policy_configuration),
            "auditConfiguration": dict(self.audit_configuration),
            "health": {
                name: {
                    "status": component["status"],
                    "message": component.get("message"),
                    "checkedAt": iso(component["checkedAt"]),
                }
                for name, component in self.health.items()
            },
            "createdBy": self.created_by,
            "createdAt": iso(self.created_at),
            "updatedBy": self.updated_by,
            "updatedAt": iso(self.updated_at),
        }


@dataclass(slots=True)
class DataObjectRecord:
    """A data object (database, schema, table, ...) of one connection."""

    seq: int
    id: str
    connection_key: str
    parent_id: str | None
    name: str
    type: str
    normalized_type: str
    technology: str
    remote_id: str
    remote_type: str | None
    remote_format: str | None
    remote_kind: str | None
    remote_created_at: float | None
    remote_updated_at: float | None
    last_synced_at: float
    created_by: str
    created_at: float
    updated_by: str
    updated_at: float

    def to_wire(self, synced_floor: float = 0.0) -> dict[str, Any]:
        """The data object as the API returns it; absent optional fields are omitted.

        ``synced_floor`` is the end of the connection's latest sync: a sync touches every object,
        and recording it once per connection keeps a sync O(1) for huge inventories.
        """
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "normalizedType": self.normalized_type,
            "technology": self.technology,
            "remoteId": self.remote_id,
            "lastSyncedAt": iso(max(self.last_synced_at, synced_floor)),
            "connectionKey": self.connection_key,
            "parentId": self.parent_id,
            "createdBy": self.created_by,
            "createdAt": iso(self.created_at),
            "updatedBy": self.updated_by,
            "updatedAt": iso(self.updated_at),
        }
        if self.remote_type is not None:
            body["remoteType"] = self.remote_type
        if self.remote_format is not None:
            body["remoteFormat"] = self.remote_format
        if self.remote_kind is not None:
            body["remoteKind"] = self.remote_kind
        if self.remote_created_at is not None:
            body["remoteCreatedAt"] = iso(self.remote_created_at)
        if self.remote_updated_at is not None:
            body["remoteUpdatedAt"] = iso(self.remote_updated_at)
        return body


# Data object fields a search may match on, and the record attribute holding each.
SEARCHABLE_ATTRIBUTES: dict[str, str] = {
    "id": "id",
    "name": "name",
    "type": "type",
    "normalizedType": "normalized_type",
    "technology": "technology",
    "remoteId": "remote_id",
    "remoteType": "remote_type",
    "remoteFormat": "remote_format",
    "remoteKind": "remote_kind",
    "parentId": "parent_id",
    "connectionKey": "connection_key",
    "createdBy": "created_by",
    "updatedBy": "updated_by",
}


@dataclass(slots=True)
class TaskRecord:
    """A task; its status is the status of its latest run."""

    seq: int
    id: str
    connection_key: str
    type: str
    trigger: str
    created_by: str
    created_at: float
    parent_id: str | None
    target_id: str | None  # the data object a DATA_OBJECT_DELETE removes
    extra: dict[str, Any]
    run_ids: list[str]


@dataclass(slots=True)
class RunRecord:
    """One run of a task. Its schedule is fixed at creation; ``status`` is advanced lazily.

    ``end_at`` None means the run is stuck: it stays RUNNING until cancelled.
    """

    seq: int
    id: str
    task_id: str
    connection_key: str
    created_at: float
    start_at: float
    end_at: float | None
    outcome: str  # COMPLETED or FAILED, reached at end_at
    error: dict[str, str] | None
    cancel_delay: float
    status: str = "PENDING"
    updated_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    cancel_done_at: float | None = None
    canceled_by: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The task run as the API returns it; absent optional fields are omitted."""
        body: dict[str, Any] = {
            "runId": self.id,
            "taskId": self.task_id,
            "status": self.status,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at or self.created_at),
        }
        if self.started_at is not None:
            body["startedAt"] = iso(self.started_at)
        if self.completed_at is not None:
            body["completedAt"] = iso(self.completed_at)
        if self.canceled_by is not None:
            body["canceledBy"] = self.canceled_by
        if self.status == "FAILED" and self.error is not None:
            body["error"] = dict(self.error)
        return body


def field_names(record_type: type[Any]) -> tuple[str, ...]:
    """The dataclass field names of a record type, in declaration order (used to persist)."""
    return tuple(f.name for f in fields(record_type))
