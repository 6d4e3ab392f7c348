"""The resource rules: what the API may change about connections and data objects, and when.

Each write checks the state rules of the reference (an update needs an ACTIVE or UNHEALTHY
connection, a deletion an INACTIVE one, one deletion at a time: otherwise a 409) and the writable
fields (otherwise a 400), then changes the records; deletions and syncs start tasks through the
run scheduler.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .records import (
    HEALTH_COMPONENTS,
    REDACTED,
    TERMINAL_STATUSES,
    ConnectionRecord,
    TaskRecord,
)
from .rules import ApiError
from .scheduler import RunScheduler

_WRITABLE_CONNECTION_FIELDS = ("clientConfiguration", "policyConfiguration", "auditConfiguration")
_WRITABLE_OBJECT_FIELDS = {
    "name": "name",
    "remoteType": "remote_type",
    "remoteFormat": "remote_format",
    "remoteKind": "remote_kind",
}


class ResourceRules(RunScheduler):
    """The writes of the connections, data objects and tasks endpoints."""

    # -------------------------------------------------------------- connections

    def create_connection(self, body: Mapping[str, Any], principal: str) -> ConnectionRecord:
        """Create an ACTIVE connection from a validated create body; 409 if the key exists."""
        key = body["connectionKey"]
        if key in self.connections:
            raise ApiError(
                409,
                f"Unable to create connection. A connection with key '{key}' already exists.",
            )
        now = self.clock()
        record = ConnectionRecord(
            seq=self.next_seq(),
            key=key,
            technology=body["technology"],
            state="ACTIVE",
            client_configuration=copy.deepcopy(dict(body["clientConfiguration"])),
            policy_configuration=dict(body.get("policyConfiguration") or {"enabled": False}),
            audit_configuration=dict(body.get("auditConfiguration") or {"enabled": False}),
            health={
                name: {"status": "UNKNOWN", "message": "Not validated yet.", "checkedAt": now}
                for name in HEALTH_COMPONENTS
            },
            created_by=principal,
            created_at=now,
            updated_by=principal,
            updated_at=now,
        )
        # A previous connection of the same key may have left its deletion task behind.
        self._drop_tasks(key, keep_task=None)
        self.add_connection(record)
        return record

    def update_connection(
        self, connection_key: str, changes: Mapping[str, Any], *, dry_run: bool, principal: str
    ) -> ConnectionRecord:
        """Apply a partial update (or only check it, with ``dry_run``)."""
        current = self.get_connection(connection_key)
        if current.state not in ("ACTIVE", "UNHEALTHY"):
            raise ApiError(
                409,
                "Unable to update connection. Connection state must be ACTIVE or UNHEALTHY to "
                "be updated.",
            )
        for name, value in changes.items():
            if name not in _WRITABLE_CONNECTION_FIELDS:
                raise ApiError(400, f"Field {name!r} of a connection cannot be changed.")
            if not isinstance(value, dict):
                raise ApiError(400, f"Field {name!r} must be an object.")
        record = current if not dry_run else _clone_connection(current)
        if "clientConfiguration" in changes:
            _merge(record.client_configuration, changes["clientConfiguration"])
        if "policyConfiguration" in changes:
            _merge(record.policy_configuration, changes["policyConfiguration"])
        if "auditConfiguration" in changes:
            _merge(record.audit_configuration, changes["auditConfiguration"])
        record.updated_by = principal
        record.updated_at = self.clock()
        if "clientConfiguration" in changes:
            # New credentials are checked at once, as Immuta re-validates an edited connection.
            self._validate(record, components=("client",))
        if not dry_run:
            self.dirty_connections.add(record.key)
        return record

    def activate(self, connection_key: str, principal: str) -> ConnectionRecord:
        """INACTIVE -> ACTIVE; 409 otherwise or while the connection is being deleted."""
        record = self.get_connection(connection_key)
        if record.state != "INACTIVE":
            raise ApiError(
                409,
                "Unable to activate connection. Connection state must be INACTIVE to be activated.",
            )
        if self._deletion_in_progress(connection_key, "CONNECTION_DELETE", None):
            raise ApiError(409, "Unable to activate connection. The connection is being deleted.")
        return self._set_state(record, "ACTIVE", principal)

    def deactivate(self, connection_key: str, principal: str) -> ConnectionRecord:
        """ACTIVE or UNHEALTHY -> INACTIVE; 409 otherwise."""
        record = self.get_connection(connection_key)
        if record.state not in ("ACTIVE", "UNHEALTHY"):
            raise ApiError(
                409,
                "Unable to deactivate connection. Connection state must be ACTIVE or UNHEALTHY "
                "to be deactivated.",
            )
        return self._set_state(record, "INACTIVE", principal)

    def _set_state(self, record: ConnectionRecord, state: str, principal: str) -> ConnectionRecord:
        record.state = state
        record.updated_by = principal
        record.updated_at = self.clock()
        self.dirty_connections.add(record.key)
        return record

    def validate(self, connection_key: str) -> ConnectionRecord:
        """Check each enabled component and persist its health; a failure makes it UNHEALTHY."""
        record = self.get_connection(connection_key)
        self._validate(record, components=HEALTH_COMPONENTS)
        self.dirty_connections.add(record.key)
        return record

    def _validate(self, record: ConnectionRecord, *, components: tuple[str, ...]) -> None:
        now = self.clock()
        enabled = {
            "client": True,
            "policy": bool(record.policy_configuration.get("enabled")),
            "audit": bool(record.audit_configuration.get("enabled")),
        }
        rejected = record.credentials_rejected()
        for name in components:
            if not enabled[name]:
                continue
            if rejected:
                health = {
                    "status": "UNHEALTHY",
                    "message": (
                        f"{record.technology} rejected the credentials: incorrect username or "
                        "password."
                    ),
                    "checkedAt": now,
                }
            else:
                health = {"status": "HEALTHY", "message": None, "checkedAt": now}
            record.health[name] = health
        failed = any(h["status"] == "UNHEALTHY" for h in record.health.values())
        if failed and record.state == "ACTIVE":
            record.state = "UNHEALTHY"
        elif not failed and record.state == "UNHEALTHY":
            record.state = "ACTIVE"

    def delete_connection(self, connection_key: str, principal: str) -> TaskRecord:
        """Start a CONNECTION_DELETE task; the connection must be INACTIVE."""
        record = self.get_connection(connection_key)
        if record.state != "INACTIVE":
            raise ApiError(
                409,
                "Unable to delete connection. Connection state must be INACTIVE to be deleted.",
            )
        if self._deletion_in_progress(connection_key, "CONNECTION_DELETE", None):
            raise ApiError(
                409, "Unable to delete connection. A deletion of this connection is in progress."
            )
        task, _ = self._new_task(connection_key, "CONNECTION_DELETE", principal=principal)
        return task

    def _deletion_in_progress(
        self, connection_key: str, task_type: str, target: str | None
    ) -> bool:
        for seq in self._task_seqs.get(connection_key, ()):
            task = self._task_by_seq[seq]
            if (
                task.type == task_type
                and task.target_id == target
                and self.task_status(task) not in TERMINAL_STATUSES
            ):
                return True
        return False

    # ------------------------------------------------------------- data objects

    def update_data_object(
        self, connection_key: str, object_id: str, changes: Mapping[str, Any], principal: str
    ) -> dict[str, Any]:
        """Apply a partial update to a data object and return the whole object."""
        self.get_connection(connection_key)
        record = self.inventory.get(connection_key, object_id)
        for name, value in changes.items():
            if name not in _WRITABLE_OBJECT_FIELDS:
                raise ApiError(400, f"Field {name!r} of a data object cannot be changed.")
            if name == "name" and (not isinstance(value, str) or not value):
                raise ApiError(400, "Field 'name' must be a non-empty string.")
            if value is not None and not isinstance(value, str):
                raise ApiError(400, f"Field {name!r} must be a string or null.")
        for name, value in changes.items():
            setattr(record, _WRITABLE_OBJECT_FIELDS[name], value)
        record.updated_by = principal
        record.updated_at = self.clock()
        self.inventory.dirty.add(record.id)
        return self.inventory.wire(record)

    def delete_data_object(self, connection_key: str, object_id: str, principal: str) -> TaskRecord:
        """Start a DATA_OBJECT_DELETE task for an object and its descendants."""
        self.get_connection(connection_key)
        self.inventory.get(connection_key, object_id)
        if self._deletion_in_progress(connection_key, "DATA_OBJECT_DELETE", object_id):
            raise ApiError(
                409,
                f"Unable to delete data object. A deletion of data object '{object_id}' is in "
                "progress.",
            )
        task, _ = self._new_task(
            connection_key,
            "DATA_OBJECT_DELETE",
            principal=principal,
            target_id=object_id,
            extra={"dataObjectId": object_id},
        )
        return task

    # -------------------------------------------------------------------- tasks

    # -------------------------------------------------------------------- tasks

    def create_task(
        self, connection_key: str, body: Mapping[str, Any], principal: str
    ) -> TaskRecord:
        """Start a DATA_OBJECT_SYNC task (fanning out one child task per database)."""
        task_type = body.get("type")
        if task_type != "DATA_OBJECT_SYNC":
            raise ApiError(
                400,
                f"Invalid task type {task_type!r}: only DATA_OBJECT_SYNC tasks can be created.",
            )
        connection = self.get_connection(connection_key)
        if connection.state not in ("ACTIVE", "UNHEALTHY"):
            raise ApiError(
                409,
                "Unable to create task. Connection state must be ACTIVE or UNHEALTHY to run a "
                "task.",
            )
        extra = {name: value for name, value in body.items() if name != "type"}
        return self.start_sync(connection_key, principal=principal, extra=extra)


def _merge(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Shallow merge; null removes a key, and a ``[REDACTED]`` echo keeps the stored secret."""
    for name, value in changes.items():
        if value is None:
            target.pop(name, None)
        elif value != REDACTED:
            target[name] = copy.deepcopy(value)


def _clone_connection(record: ConnectionRecord) -> ConnectionRecord:
    return replace(
        record,
        client_configuration=copy.deepcopy(record.client_configuration),
        policy_configuration=dict(record.policy_configuration),
        audit_configuration=dict(record.audit_configuration),
        health=copy.deepcopy(record.health),
    )
