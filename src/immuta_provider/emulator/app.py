"""``create_app``: the FastAPI application of one emulator.

Every error leaves as the JSON error body of API-NOTES.md, including FastAPI's own validation
errors (422 there, 400 here, as Immuta answers) and unknown routes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from .admin import admin_router
from .api import api_router
from .core import Emulator, EmulatorConfig
from .middleware import EmulatorMiddleware
from .rules import ApiError, connection_key_problem, error_bytes

logger = logging.getLogger("immuta_provider.emulator")


def create_app(
    config: EmulatorConfig | None = None,
    *,
    emulator: Emulator | None = None,
    clock: Callable[[], float] | None = None,
) -> FastAPI:
    """Build the app. Pass an ``emulator`` to share one, or a ``config`` (and a test ``clock``)."""
    if emulator is None:
        config = config or EmulatorConfig()
        emulator = Emulator(config, clock=clock) if clock is not None else Emulator(config)
    app = FastAPI(
        title="Immuta Connections API (emulator)",
        version="1.0.0",
        description="A stateful local emulator of Immuta's Connections API, for tests.",
        redirect_slashes=False,
        docs_url="/_emulator/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.emulator = emulator
    app.include_router(api_router(emulator))
    app.include_router(admin_router(emulator))
    app.add_middleware(EmulatorMiddleware, emulator=emulator, router=app.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _error(status_code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        error_bytes(status_code, message),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.status_code, exc.message, exc.headers or None)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _error(400, validation_message(exc.errors()))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = {
        404: f"No route for {request.method} {request.url.path}.",
        405: f"Method {request.method} is not allowed on {request.url.path}.",
    }.get(exc.status_code, str(exc.detail))
    return _error(exc.status_code, message, dict(exc.headers or {}))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("Unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "The emulator failed unexpectedly; see its log.")


def validation_message(errors: Sequence[Any]) -> str:
    """One readable sentence for FastAPI's validation errors, naming the bad value."""
    parts: list[str] = []
    for error in errors[:3]:
        location = [str(part) for part in error.get("loc", ())]
        where, name = (location[0], ".".join(location[1:])) if location else ("request", "")
        value = error.get("input")
        if name == "connectionKey":
            parts.append(connection_key_problem(value) or f"Invalid connectionKey {value!r}.")
        elif where == "path":
            parts.append(f"Invalid {name} {value!r}: it must be a UUID.")
        elif name in ("page[limit]", "page.limit"):
            parts.append(f"Invalid page[limit] {value}: it must be an integer between 1 and 100.")
        elif where == "body" and error.get("type") == "json_invalid":
            parts.append("The request body is not valid JSON.")
        elif (
            where == "body"
            and not name
            and error.get("type") in ("missing", "model_attributes_type")
        ):
            parts.append("A JSON object request body is required.")
        else:
            label = f"{where} field {name!r}" if name else where
            parts.append(f"Invalid {label}: {error.get('msg', 'invalid value')}.")
    return " ".join(parts) or "Invalid request."


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with bearer auth declared and FastAPI's 422s removed (the emulator
    answers 400 with the error body instead)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer <API key>",
    }
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            operation.get("responses", {}).pop("422", None)
            operation["security"] = [{"bearerAuth": []}]
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    app.openapi_schema = schema
    return schema
