"""The raw ASGI middleware in front of every route: counting, fault injection, auth, saving.

Raw ASGI rather than Starlette's BaseHTTPMiddleware: it costs almost nothing per request, and it
can drop a connection, which needs the server's transport rather than a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core import Emulator
from .faults import Fault
from .rules import ApiError, connection_key_problem, error_bytes, is_uuid
from .tokens import EXCHANGE_PATH, UNAUTHORIZED_MESSAGES

ADMIN_PREFIX = "/_emulator/"
API_PREFIX = "/api/"
PRINCIPAL_SCOPE_KEY = "immuta_emulator.principal"
PROXY_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)
_ROUTE_CACHE_LIMIT = 50_000
_TASK_RUN_PATH = re.compile(r"^/api/connections/([^/]+)/tasks/([^/]+)/runs/([^/]+)$")


class DroppedConnection(ConnectionError):
    """Raised where a connection should be dropped but the server gives no transport to abort
    (in-process test transports); a real server closes the socket instead."""


class EmulatorMiddleware:
    """Counts each request, injects the matching fault, checks the API key, saves changes."""

    def __init__(self, app: ASGIApp, emulator: Emulator, router: Router) -> None:
        self.app = app
        self.emulator = emulator
        self.router = router
        self._route_cache: dict[tuple[str, str], str | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        emulator = self.emulator
        method: str = scope["method"]
        path: str = scope["path"]
        emulator.counters.record_request(method, path, self._route_of(scope))
        fault = emulator.faults.pick(method, path)
        if fault is not None:
            emulator.counters.record_fault(fault)
            if fault.spec.latency:
                # Read the body before stalling, as a slow server that has received the request
                # would: a client that gives up meanwhile must not stop the request being served.
                receive = await _buffered(receive)
            continue_with = await self._apply_fault(fault, receive, send)
            if continue_with is None:
                return
            send = continue_with
        if path == EXCHANGE_PATH and emulator.auth.exchange_enabled:
            await self._exchange(scope, receive, send)
            return
        if path.startswith(API_PREFIX):
            principal, why = emulator.authenticate(_header(scope, b"authorization"))
            if principal is None:
                await _answer(
                    send,
                    401,
                    error_bytes(401, UNAUTHORIZED_MESSAGES[why or ""]),
                    extra_headers=[(b"www-authenticate", b"Bearer")],
                )
                return
            scope[PRINCIPAL_SCOPE_KEY] = principal
            emulator.state.tick()
        try:
            if method != "GET" or not await self._fast_get_run(path, send):
                await self.app(scope, receive, send)
        finally:
            emulator.save()

    async def _exchange(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /bim/apikey/authenticate``: a token for an API key (see ``tokens.py``)."""
        if scope["method"] != "POST":
            refusal = f"Method {scope['method']} is not allowed on {EXCHANGE_PATH}."
            await _answer(send, 405, error_bytes(405, refusal), extra_headers=[(b"allow", b"POST")])
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        content_type = (_header(scope, b"content-type") or b"").decode("latin-1")
        status, answer = self.emulator.auth.exchange(
            body, content_type, _header(scope, b"authorization")
        )
        if status != 200:
            await _answer(send, status, error_bytes(status, answer))
            return
        await _answer(send, 200, json.dumps(answer, separators=(",", ":")).encode())

    async def _fast_get_run(self, path: str, send: Send) -> bool:
        """Answer ``GET .../tasks/{taskId}/runs/{runId}`` without FastAPI's routing and parameter
        machinery (5x the cost of the rest): it is what pollers hit, thousands of times.

        Only well-formed paths are served here; anything else falls through to the route, which
        gives the same answers plus the validation errors. Returns whether it answered.
        """
        match = _TASK_RUN_PATH.match(path)
        if match is None:
            return False
        key, task_id, run_id = match.groups()
        if connection_key_problem(key) is not None or not (is_uuid(task_id) and is_uuid(run_id)):
            return False
        try:
            run = self.emulator.state.get_run(key, task_id, run_id).to_wire()
            body = json.dumps(
                self.emulator.config.dialect.item(run), separators=(",", ":")
            ).encode()
        except ApiError as exc:
            await _answer(send, exc.status_code, error_bytes(exc.status_code, exc.message))
            return True
        await _answer(send, 200, body)
        return True

    def _route_of(self, scope: Scope) -> str | None:
        """The route template a request matches (a method mismatch still names the route)."""
        cache_key = (scope["method"], scope["path"])
        if cache_key in self._route_cache:
            return self._route_cache[cache_key]
        found: str | None = None
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                found = getattr(route, "path", None)
                break
            if match is Match.PARTIAL and found is None:
                found = getattr(route, "path", None)
        if len(self._route_cache) >= _ROUTE_CACHE_LIMIT:
            self._route_cache.clear()
        self._route_cache[cache_key] = found
        return found

    async def _apply_fault(self, fault: Fault, receive: Receive, send: Send) -> Send | None:
        """Do what ``fault`` says. Returns the ``send`` to continue with, or None if answered."""
        spec = fault.spec
        if spec.latency:
            await asyncio.sleep(spec.latency)
        if spec.drop:
            await _drop_connection(receive)
            return None
        if spec.drop_answer:
            return _dropping_answer(receive)
        headers: list[tuple[bytes, bytes]] = []
        retry_after = spec.retry_after_header()
        if retry_after is not None:
            headers.append((b"retry-after", retry_after.encode()))
        if spec.body == "html":
            await _answer(send, spec.answer_status(), PROXY_HTML, b"text/html", headers)
            return None
        if spec.body == "malformed_json":
            return _truncating(send, spec.status, headers)
        if spec.status is not None:
            body = error_bytes(spec.status, spec.answer_message())
            await _answer(send, spec.status, body, extra_headers=headers)
            return None
        return send  # latency only


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request body now; the returned ``receive`` replays it, then passes on."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replaying() -> Message:
        return replay.pop() if replay else await receive()

    return replaying


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers.extend(extra_headers or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(receive: Receive) -> None:
    """Close the client's connection without sending a byte of response.

    uvicorn answers 500 to an app that raises before responding, so raising is not enough: the
    transport is aborted instead. uvicorn's ``receive`` is a method of its request cycle, which
    holds the transport.
    """
    cycle: Any = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise DroppedConnection("fault injection dropped the connection")
    transport.abort()
    # Let uvicorn notice the disconnect before the app returns, so it does not try to answer.

    async def until_disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(until_disconnected(), 1.0)


def _dropping_answer(receive: Receive) -> Send:
    """A ``send`` that swallows the answer and closes the connection once the route is done: the
    request has had its effect (a task is created), the client sees a dropped connection."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            await _drop_connection(receive)

    return wrapped


def _truncating(send: Send, status: int | None, extra_headers: list[tuple[bytes, bytes]]) -> Send:
    """A ``send`` that cuts the response body in half, leaving JSON that cannot be parsed."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        full = b"".join(chunks)
        body = full[: max(1, len(full) // 2)]
        try:
            json.loads(body)
            body = body[:-1]  # a 1-byte body like "0" could still parse
        except ValueError:
            pass
        headers = [
            (name, value)
            for name, value in start.get("headers", [])
            if name.lower() not in (b"content-length", b"content-type")
        ]
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra_headers,
        ]
        await send(
            {
                "type": "http.response.start",
                "status": status if status is not None else start.get("status", 200),
                "headers": headers,
            }
        )
        await send({"type": "http.response.body", "body": body})

    return wrapped
