"""The 19 endpoints of the Connections API (``/api/...``).

Handlers are thin: check the identifiers, call ``State``, and serialize the resulting dicts
straight to JSON. ``response_model`` only documents the answer (returning a ``Response`` skips
FastAPI's validation, which would otherwise dominate the cost of a cheap GET).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from . import schemas
from .core import Emulator
from .middleware import PRINCIPAL_SCOPE_KEY
from .rules import (
    CONNECTION_KEY_PATTERN,
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    UUID_PATTERN,
    check_connection_key,
)
from .scheduler import SYSTEM_PRINCIPAL

ERROR_STATUSES = (400, 401, 403, 404, 409, 429, 500, 502, 503, 504)

ConnectionKey = Annotated[
    str,
    Path(
        min_length=1,
        pattern=CONNECTION_KEY_PATTERN,
        description="A unique name for the connection: letters, numbers, hyphens and "
        "underscores, and not a reserved name.",
        examples=["my-connection"],
    ),
]
DataObjectId = Annotated[
    str, Path(alias="id", pattern=UUID_PATTERN, description="The data object's UUID.")
]
TaskId = Annotated[str, Path(pattern=UUID_PATTERN, description="The task ID.")]
RunId = Annotated[str, Path(pattern=UUID_PATTERN, description="The run ID.")]
PageLimit = Annotated[
    int,
    Query(
        alias="page[limit]",
        ge=1,
        le=PAGE_LIMIT_MAX,
        description="Maximum number of items to return.",
    ),
]
# A plain string: the dialect (dialect.py) says which names exist and what an unknown one does.
StatusFilter = Annotated[
    str | None,
    Query(
        alias="filter[status]",
        description="Only tasks or runs with this status (PENDING, RUNNING, CANCELING, "
        "COMPLETED, FAILED or CANCELED; another name under a dialect).",
    ),
]
PageCursor = Annotated[
    str | None, Query(alias="page[cursor]", description="The cursor to start from.")
]


def _json(payload: Any, status_code: int = 200) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")).encode(),
        status_code=status_code,
        media_type="application/json",
    )


def _page(
    emulator: Emulator, key: str, items: list[dict[str, Any]], next_cursor: str | None
) -> Response:
    dialect = emulator.config.dialect
    if key in ("tasks", "runs"):
        items = [dialect.item(item) for item in items]
    return _json(dialect.page(key, items, next_cursor))


def _principal(request: Request) -> str:
    principal: str = request.scope.get(PRINCIPAL_SCOPE_KEY, SYSTEM_PRINCIPAL)
    return principal


def api_router(emulator: Emulator) -> APIRouter:
    """The ``/api`` routes, bound to one emulator (its state is read at each request)."""
    router = APIRouter(
        prefix="/api",
        responses={
            status: {"model": schemas.ErrorBody, "description": "Error"}
            for status in ERROR_STATUSES
        },
    )

    # Registered before /connections/{connectionKey}/... so "dataObjects" is never a key.
    @router.post(
        "/connections/dataObjects/_search",
        response_model=schemas.DataObjectList,
        summary="Search for data objects by connection and attributes",
        tags=["data objects"],
    )
    async def search_data_objects(body: schemas.SearchRequest) -> Response:
        key = check_connection_key(body.connectionKey)
        state = emulator.state
        state.get_connection(key)
        items, next_cursor = state.inventory.search_page(
            key, body.attributes, limit=body.page.limit, cursor=body.page.cursor
        )
        return _page(emulator, "dataObjects", items, next_cursor)

    @router.get(
        "/connections",
        response_model=schemas.ConnectionList,
        summary="Get a list of connections",
        tags=["connections"],
    )
    async def list_connections(
        limit: PageLimit = PAGE_LIMIT_DEFAULT, cursor: PageCursor = None
    ) -> Response:
        items, next_cursor = emulator.state.list_connections(limit=limit, cursor=cursor)
        return _page(emulator, "connections", items, next_cursor)

    @router.post(
        "/connections",
        response_model=schemas.Connection,
        summary="Create a new connection",
        tags=["connections"],
    )
    async def create_connection(
        request: Request, body: schemas.CreateConnectionRequest
    ) -> Response:
        check_connection_key(body.connectionKey)
        record = emulator.state.create_connection(
            body.model_dump(exclude_none=True), _principal(request)
        )
        return _json(record.to_wire())

    @router.get(
        "/connections/{connectionKey}",
        response_model=schemas.Connection,
        summary="Get an existing connection",
        tags=["connections"],
    )
    async def get_connection(connectionKey: ConnectionKey) -> Response:
        key = check_connection_key(connectionKey)
        return _json(emulator.state.get_connection(key).to_wire())

    @router.delete(
        "/connections/{connectionKey}",
        status_code=202,
        response_model=schemas.TaskReference,
        summary="Delete a connection and all its data objects",
        tags=["connections"],
    )
    async def delete_connection(request: Request, connectionKey: ConnectionKey) -> Response:
        key = check_connection_key(connectionKey)
        task = emulator.state.delete_connection(key, _principal(request))
        return _json({"taskId": task.id}, 202)

    @router.patch(
        "/connections/{connectionKey}",
        response_model=schemas.Connection,
        summary="Partially update the connection",
        tags=["connections"],
    )
    async def update_connection(
        request: Request,
        connectionKey: ConnectionKey,
        body: Annotated[schemas.UpdateConnectionRequest, Body()],
        dryRun: Annotated[bool, Query(description="Only check the change.")] = False,
    ) -> Response:
        key = check_connection_key(connectionKey)
        record = emulator.state.update_connection(
            key, body.model_dump(exclude_unset=True), dry_run=dryRun, principal=_principal(request)
        )
        return _json(record.to_wire())

    @router.post(
        "/connections/{connectionKey}/_activate",
        response_model=schemas.Connection,
        summary="Activate the connection",
        tags=["connections"],
    )
    async def activate_connection(request: Request, connectionKey: ConnectionKey) -> Response:
        key = check_connection_key(connectionKey)
        return _json(emulator.state.activate(key, _principal(request)).to_wire())

    @router.post(
        "/connections/{connectionKey}/_deactivate",
        response_model=schemas.Connection,
        summary="Deactivate the connection",
        tags=["connections"],
    )
    async def deactivate_connection(request: Request, connectionKey: ConnectionKey) -> Response:
        key = check_connection_key(connectionKey)
        return _json(emulator.state.deactivate(key, _principal(request)).to_wire())

    @router.post(
        "/connections/{connectionKey}/_validate",
        response_model=schemas.Connection,
        summary="Validate the connection",
        tags=["connections"],
    )
    async def validate_connection(connectionKey: ConnectionKey) -> Response:
        key = check_connection_key(connectionKey)
        return _json(emulator.state.validate(key).to_wire())

    @router.get(
        "/connections/{connectionKey}/dataObjects/{id}",
        response_model=schemas.DataObject,
        summary="Get a data object by connection and ID without children",
        tags=["data objects"],
    )
    async def get_data_object(
        connectionKey: ConnectionKey, data_object_id: DataObjectId
    ) -> Response:
        key = check_connection_key(connectionKey)
        state = emulator.state
        state.get_connection(key)
        return _json(state.inventory.wire(state.inventory.get(key, data_object_id)))

    @router.delete(
        "/connections/{connectionKey}/dataObjects/{id}",
        status_code=202,
        response_model=schemas.TaskReference,
        summary="Delete a data object and all its descendants",
        tags=["data objects"],
    )
    async def delete_data_object(
        request: Request, connectionKey: ConnectionKey, data_object_id: DataObjectId
    ) -> Response:
        key = check_connection_key(connectionKey)
        task = emulator.state.delete_data_object(key, data_object_id, _principal(request))
        return _json({"taskId": task.id}, 202)

    @router.patch(
        "/connections/{connectionKey}/dataObjects/{id}",
        response_model=schemas.DataObject,
        summary="Update a data object by connection and ID",
        tags=["data objects"],
    )
    async def update_data_object(
        request: Request,
        connectionKey: ConnectionKey,
        data_object_id: DataObjectId,
        body: schemas.UpdateDataObjectRequest,
    ) -> Response:
        key = check_connection_key(connectionKey)
        updated = emulator.state.update_data_object(
            key, data_object_id, body.model_dump(exclude_unset=True), _principal(request)
        )
        return _json(updated)

    @router.get(
        "/connections/{connectionKey}/dataObjects/{id}/children",
        response_model=schemas.DataObjectList,
        summary="Get the children of a data object by connection and ID",
        tags=["data objects"],
    )
    async def list_data_object_children(
        connectionKey: ConnectionKey,
        data_object_id: DataObjectId,
        limit: PageLimit = PAGE_LIMIT_DEFAULT,
        cursor: PageCursor = None,
    ) -> Response:
        key = check_connection_key(connectionKey)
        state = emulator.state
        state.get_connection(key)
        items, next_cursor = state.inventory.children_page(
            key, data_object_id, limit=limit, cursor=cursor
        )
        return _page(emulator, "dataObjects", items, next_cursor)

    @router.get(
        "/connections/{connectionKey}/tasks",
        response_model=schemas.TaskList,
        summary="Get a list of tasks",
        tags=["tasks"],
    )
    async def list_tasks(
        connectionKey: ConnectionKey,
        limit: PageLimit = PAGE_LIMIT_DEFAULT,
        cursor: PageCursor = None,
        task_type: Annotated[schemas.TaskType | None, Query(alias="filter[type]")] = None,
        status: StatusFilter = None,
        trigger: Annotated[schemas.TaskTrigger | None, Query(alias="filter[trigger]")] = None,
        created_by: Annotated[str | None, Query(alias="filter[createdBy]")] = None,
        parent_id: Annotated[
            str | None, Query(alias="filter[parentId]", pattern=UUID_PATTERN)
        ] = None,
    ) -> Response:
        key = check_connection_key(connectionKey)
        filters = {
            "type": task_type,
            "status": emulator.config.dialect.status_in(status),
            "trigger": trigger,
            "createdBy": created_by,
            "parentId": parent_id,
        }
        items, next_cursor = emulator.state.list_tasks(
            key, filters=filters, limit=limit, cursor=cursor
        )
        return _page(emulator, "tasks", items, next_cursor)

    @router.post(
        "/connections/{connectionKey}/tasks",
        response_model=schemas.Task,
        summary="Create a new task",
        tags=["tasks"],
    )
    async def create_task(
        request: Request, connectionKey: ConnectionKey, body: schemas.CreateTaskRequest
    ) -> Response:
        key = check_connection_key(connectionKey)
        state = emulator.state
        task = state.create_task(key, body.model_dump(), _principal(request))
        return _json(emulator.config.dialect.item(state.task_wire(task)))

    @router.get(
        "/connections/{connectionKey}/tasks/{taskId}",
        response_model=schemas.Task,
        summary="Get a task by ID",
        tags=["tasks"],
    )
    async def get_task(connectionKey: ConnectionKey, taskId: TaskId) -> Response:
        key = check_connection_key(connectionKey)
        state = emulator.state
        return _json(emulator.config.dialect.item(state.task_wire(state.get_task(key, taskId))))

    @router.get(
        "/connections/{connectionKey}/tasks/{taskId}/runs",
        response_model=schemas.TaskRunList,
        summary="Get task runs for a task",
        tags=["tasks"],
    )
    async def list_task_runs(
        connectionKey: ConnectionKey,
        taskId: TaskId,
        limit: PageLimit = PAGE_LIMIT_DEFAULT,
        cursor: PageCursor = None,
        status: StatusFilter = None,
    ) -> Response:
        key = check_connection_key(connectionKey)
        items, next_cursor = emulator.state.list_runs(
            key,
            taskId,
            status=emulator.config.dialect.status_in(status),
            limit=limit,
            cursor=cursor,
        )
        return _page(emulator, "runs", items, next_cursor)

    @router.get(
        "/connections/{connectionKey}/tasks/{taskId}/runs/{runId}",
        response_model=schemas.TaskRun,
        summary="Get a task run by ID",
        tags=["tasks"],
    )
    async def get_task_run(connectionKey: ConnectionKey, taskId: TaskId, runId: RunId) -> Response:
        key = check_connection_key(connectionKey)
        run = emulator.state.get_run(key, taskId, runId).to_wire()
        return _json(emulator.config.dialect.item(run))

    @router.post(
        "/connections/{connectionKey}/tasks/{taskId}/runs/{runId}/_cancel",
        response_model=schemas.CancelTaskRunResult,
        summary="Request to cancel a task run by ID",
        tags=["tasks"],
    )
    async def cancel_task_run(
        request: Request, connectionKey: ConnectionKey, taskId: TaskId, runId: RunId
    ) -> Response:
        key = check_connection_key(connectionKey)
        return _json(emulator.state.cancel_run(key, taskId, runId, _principal(request)))

    return router
