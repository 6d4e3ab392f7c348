"""Each Connections API endpoint, described once; both clients are driven by these descriptions.

An :class:`Endpoint` says how a call's arguments become a request (method, path template, path
parameters and their validators, query parameters, body, where the page cursor goes) and how the
answer becomes a result (response model, list envelope key), plus whether it may be retried like
an idempotent request. Everything the reference leaves open and we decided (API-NOTES [ours])
lives here or in ``models.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, Literal, TypeVar

from pydantic import TypeAdapter, create_model

from immuta_provider.client.errors import ImmutaValidationError
from immuta_provider.client.models import (
    REDACTED,
    CancelTaskRunResult,
    Connection,
    DataObject,
    ImmutaModel,
    Task,
    TaskReference,
    TaskRun,
)
from immuta_provider.client.validation import (
    validate_connection_key,
    validate_mapping,
    validate_optional_mapping,
    validate_optional_text,
    validate_optional_uuid,
    validate_uuid,
)

logger = logging.getLogger("immuta_provider.client")

M = TypeVar("M", bound=ImmutaModel)

PathValidator = Callable[[object, str], str]
QueryEncoder = Callable[[object, str], "str | None"]
BodyBuilder = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class PathParam:
    """A path placeholder: the method argument, its wire name in the template, its validator."""

    arg: str
    wire: str
    validate: PathValidator


@dataclass(frozen=True)
class QueryParam:
    """A query parameter: the method argument, its wire name, and an encoder that validates the
    value and returns the string to send (``None``: leave the parameter out)."""

    arg: str
    wire: str
    encode: QueryEncoder


@dataclass(frozen=True)
class Endpoint(Generic[M]):
    """One endpoint of the Connections API.

    Attributes:
        name: the client method that calls it (used in error messages).
        method: HTTP method.
        path: path template with ``{wireName}`` placeholders.
        model: the response model; for listing endpoints, the model of one item.
        path_params: how each placeholder is filled and validated.
        query: query parameters besides pagination.
        body: builds (and validates) the JSON body from the call's arguments.
        idempotent: may be retried on 429/502/503/504, timeouts and dropped connections;
            otherwise only on failures that prove the request was never sent.
        items_key: for listing endpoints, the envelope key holding the items.
        page_in: for listing endpoints, where ``page_size`` and the cursor go ("query" sends
            ``page[limit]`` / ``page[cursor]``, "body" sends ``{"page": {"limit", "cursor"}}``).
        authenticated: sent with the ``Authorization`` header (all but the API key exchange).
    """

    name: str
    method: str
    path: str
    model: type[M]
    path_params: tuple[PathParam, ...] = ()
    query: tuple[QueryParam, ...] = ()
    body: BodyBuilder | None = None
    idempotent: bool = False
    items_key: str | None = None
    page_in: Literal["query", "body"] | None = None
    authenticated: bool = True

    @cached_property
    def items_adapter(self) -> TypeAdapter[list[M]]:
        """Validator for the item list of a listing endpoint (built on first use)."""
        # mypy cannot take a runtime class as a type argument; the adapter is typed by M.
        return TypeAdapter(list[self.model])  # type: ignore[name-defined]

    @cached_property
    def page_adapter(self) -> TypeAdapter[Any]:
        """Validator of a whole list response body, straight from its JSON bytes (first use).

        Parsing and validating in one pass in pydantic-core skips building the intermediate
        Python dicts of ``json.loads``: 9.3 -> 6.4 us of client CPU per data object.
        """
        envelope = create_model(
            f"{self.name}_page",
            **{  # type: ignore[call-overload]
                str(self.items_key): (list[self.model], ...),  # type: ignore[name-defined]
                "page": (Any, None),
                "nextCursor": (Any, None),
            },
        )
        return TypeAdapter(envelope)


# --- parameters -------------------------------------------------------------------------------

CONNECTION_KEY = PathParam("connection_key", "connectionKey", validate_connection_key)
DATA_OBJECT_ID = PathParam("data_object_id", "id", validate_uuid)
TASK_ID = PathParam("task_id", "taskId", validate_uuid)
RUN_ID = PathParam("run_id", "runId", validate_uuid)


def _encode_flag(value: object, name: str) -> str | None:
    if not isinstance(value, bool):
        raise ImmutaValidationError(f"{name} {value!r} must be True or False")
    # Only a dry run is sent; False is Immuta's default.
    return "true" if value else None


# --- bodies -----------------------------------------------------------------------------------


def redacted_paths(value: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every ``"[REDACTED]"`` value inside a JSON-like structure."""
    if isinstance(value, str):
        return [prefix or "<body>"] if value == REDACTED else []
    if isinstance(value, Mapping):
        found: list[str] = []
        for key, item in value.items():
            found += redacted_paths(item, f"{prefix}.{key}" if prefix else str(key))
        return found
    if isinstance(value, list | tuple):
        found = []
        for index, item in enumerate(value):
            found += redacted_paths(item, f"{prefix}[{index}]")
        return found
    return []


def _without_redacted(value: Mapping[str, Any]) -> dict[str, Any]:
    # Mapping entries are dropped; a placeholder inside a list cannot be dropped without
    # shifting the list, so _connection_changes_body refuses those before we get here.
    result: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, str) and item == REDACTED:
            continue
        result[key] = _without_redacted(item) if isinstance(item, Mapping) else item
    return result


def _connection_changes_body(args: Mapping[str, Any]) -> dict[str, Any]:
    changes = validate_mapping(args["changes"], "changes")
    dropped = redacted_paths(changes)
    if not dropped:
        return dict(changes)
    in_lists = [path for path in dropped if path.endswith("]")]
    if in_lists:
        raise ImmutaValidationError(
            f"changes has {REDACTED!r} inside a list at {', '.join(in_lists)}; it is the "
            "placeholder Immuta returns instead of a secret, not the secret. Send the real value"
        )
    # Sending the placeholder back would overwrite the stored secret with the literal text;
    # leaving it out keeps the secret Immuta has.
    logger.warning(
        "update_connection: not sending %d value(s) equal to %r (%s): that is the placeholder "
        "Immuta returns instead of a secret; to change a secret, send its real value",
        len(dropped),
        REDACTED,
        ", ".join(dropped),
    )
    return _without_redacted(changes)


def _create_connection_body(args: Mapping[str, Any]) -> dict[str, Any]:
    body = validate_mapping(args["body"], "body")
    if "connectionKey" not in body:
        raise ImmutaValidationError(
            "body must contain 'connectionKey' (the wire name) with the new connection's key"
        )
    validate_connection_key(body["connectionKey"], "body['connectionKey']")
    redacted = redacted_paths(body)
    if redacted:
        raise ImmutaValidationError(
            f"body has {REDACTED!r} at {', '.join(redacted)}; that is the placeholder Immuta "
            "returns instead of a secret. A new connection needs the real secret"
        )
    return dict(body)


def _search_body(args: Mapping[str, Any]) -> dict[str, Any]:
    connection_key = validate_connection_key(args["connection_key"])
    attributes = validate_optional_mapping(args["attributes"], "attributes")
    return {"connectionKey": connection_key, "attributes": dict(attributes or {})}


def _data_object_changes_body(args: Mapping[str, Any]) -> dict[str, Any]:
    return dict(validate_mapping(args["changes"], "changes"))


def _create_task_body(args: Mapping[str, Any]) -> dict[str, Any]:
    task_type = validate_optional_text(args["type"], "type")
    if task_type is None:
        raise ImmutaValidationError("type None must be a task type such as 'DATA_OBJECT_SYNC'")
    extra = validate_optional_mapping(args["extra_body"], "extra_body") or {}
    if "type" in extra:
        raise ImmutaValidationError(
            "extra_body must not contain 'type'; pass the task type as the type argument"
        )
    return {"type": task_type, **extra}


# --- the 19 endpoints -------------------------------------------------------------------------

_CONNECTION = "/api/connections/{connectionKey}"
_DATA_OBJECT = _CONNECTION + "/dataObjects/{id}"
_TASKS = _CONNECTION + "/tasks"
_RUN = _TASKS + "/{taskId}/runs/{runId}"

GET_CONNECTION = Endpoint(
    "get_connection", "GET", _CONNECTION, Connection, (CONNECTION_KEY,), idempotent=True
)
DELETE_CONNECTION = Endpoint(
    "delete_connection", "DELETE", _CONNECTION, TaskReference, (CONNECTION_KEY,)
)
UPDATE_CONNECTION = Endpoint(
    "update_connection",
    "PATCH",
    _CONNECTION,
    Connection,
    (CONNECTION_KEY,),
    query=(QueryParam("dry_run", "dryRun", _encode_flag),),
    body=_connection_changes_body,
)
ACTIVATE_CONNECTION = Endpoint(
    "activate_connection", "POST", _CONNECTION + "/_activate", Connection, (CONNECTION_KEY,)
)
DEACTIVATE_CONNECTION = Endpoint(
    "deactivate_connection", "POST", _CONNECTION + "/_deactivate", Connection, (CONNECTION_KEY,)
)
VALIDATE_CONNECTION = Endpoint(
    "validate_connection",
    "POST",
    _CONNECTION + "/_validate",
    Connection,
    (CONNECTION_KEY,),
    idempotent=True,
)
LIST_CONNECTIONS = Endpoint(
    "list_connections",
    "GET",
    "/api/connections",
    Connection,
    idempotent=True,
    items_key="connections",
    page_in="query",
)
CREATE_CONNECTION = Endpoint(
    "create_connection", "POST", "/api/connections", Connection, body=_create_connection_body
)
SEARCH_DATA_OBJECTS = Endpoint(
    "search_data_objects",
    "POST",
    "/api/connections/dataObjects/_search",
    DataObject,
    body=_search_body,
    idempotent=True,
    items_key="dataObjects",
    page_in="body",
)
GET_DATA_OBJECT = Endpoint(
    "get_data_object",
    "GET",
    _DATA_OBJECT,
    DataObject,
    (CONNECTION_KEY, DATA_OBJECT_ID),
    idempotent=True,
)
DELETE_DATA_OBJECT = Endpoint(
    "delete_data_object", "DELETE", _DATA_OBJECT, TaskReference, (CONNECTION_KEY, DATA_OBJECT_ID)
)
UPDATE_DATA_OBJECT = Endpoint(
    "update_data_object",
    "PATCH",
    _DATA_OBJECT,
    DataObject,
    (CONNECTION_KEY, DATA_OBJECT_ID),
    body=_data_object_changes_body,
)
LIST_DATA_OBJECT_CHILDREN = Endpoint(
    "list_data_object_children",
    "GET",
    _DATA_OBJECT + "/children",
    DataObject,
    (CONNECTION_KEY, DATA_OBJECT_ID),
    idempotent=True,
    items_key="dataObjects",
    page_in="query",
)
LIST_TASKS = Endpoint(
    "list_tasks",
    "GET",
    _TASKS,
    Task,
    (CONNECTION_KEY,),
    query=(
        QueryParam("type", "filter[type]", validate_optional_text),
        QueryParam("status", "filter[status]", validate_optional_text),
        QueryParam("trigger", "filter[trigger]", validate_optional_text),
        QueryParam("created_by", "filter[createdBy]", validate_optional_text),
        QueryParam("parent_id", "filter[parentId]", validate_optional_uuid),
    ),
    idempotent=True,
    items_key="tasks",
    page_in="query",
)
CREATE_TASK = Endpoint(
    "create_task", "POST", _TASKS, Task, (CONNECTION_KEY,), body=_create_task_body
)
GET_TASK = Endpoint(
    "get_task", "GET", _TASKS + "/{taskId}", Task, (CONNECTION_KEY, TASK_ID), idempotent=True
)
LIST_TASK_RUNS = Endpoint(
    "list_task_runs",
    "GET",
    _TASKS + "/{taskId}/runs",
    TaskRun,
    (CONNECTION_KEY, TASK_ID),
    query=(QueryParam("status", "filter[status]", validate_optional_text),),
    idempotent=True,
    items_key="runs",
    page_in="query",
)
GET_TASK_RUN = Endpoint(
    "get_task_run", "GET", _RUN, TaskRun, (CONNECTION_KEY, TASK_ID, RUN_ID), idempotent=True
)
CANCEL_TASK_RUN = Endpoint(
    "cancel_task_run",
    "POST",
    _RUN + "/_cancel",
    CancelTaskRunResult,
    (CONNECTION_KEY, TASK_ID, RUN_ID),
    idempotent=True,
)

ENDPOINTS: tuple[Endpoint[Any], ...] = (
    GET_CONNECTION,
    DELETE_CONNECTION,
    UPDATE_CONNECTION,
    ACTIVATE_CONNECTION,
    DEACTIVATE_CONNECTION,
    VALIDATE_CONNECTION,
    LIST_CONNECTIONS,
    CREATE_CONNECTION,
    SEARCH_DATA_OBJECTS,
    GET_DATA_OBJECT,
    DELETE_DATA_OBJECT,
    UPDATE_DATA_OBJECT,
    LIST_DATA_OBJECT_CHILDREN,
    LIST_TASKS,
    CREATE_TASK,
    GET_TASK,
    LIST_TASK_RUNS,
    GET_TASK_RUN,
    CANCEL_TASK_RUN,
)
"""All endpoints, in the order of the reference table in docs/architecture.md."""
