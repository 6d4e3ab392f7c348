"""The clients against a real HTTP server on 127.0.0.1 (real sockets, real httpcore / aiohttp): the
API key never shows up in logs (httpx/httpcore/aiohttp at DEBUG included), errors or reprs, on
success and error paths alike; one keep-alive pool per client; real read timeouts and refused
connections. Async tests run on both HTTP backends of ``AsyncImmutaClient``."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from immuta_provider.client import (
    AsyncImmutaClient,
    ImmutaAuthenticationError,
    ImmutaClient,
    ImmutaError,
    ImmutaNotFoundError,
    ImmutaResponseError,
    ImmutaServerError,
    ImmutaTimeoutError,
    ImmutaTransportError,
    ImmutaValidationError,
)

CANARY = "CANARY-7f3a9c1e-d00d-SECRET"


class _Immuta(BaseHTTPRequestHandler):
    """A few canned answers keyed by connection key; records who asked what."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.server.bodies.append((self.headers.get("content-type"), self.rfile.read(length)))
        self.server.seen.append(
            (self.client_address[1], self.command, self.path, self.headers.get("authorization"))
        )
        key = self.path.split("/")[3] if self.path.count("/") >= 3 else ""
        status, headers, body = 200, {"content-type": "application/json"}, b""
        if key == "slow":
            time.sleep(0.6)
        if key in ("ok", "slow"):
            body = json.dumps({"connectionKey": key, "state": "ACTIVE"}).encode()
        elif key == "missing":
            status, body = 404, b'{"statusCode":404,"message":"Connection missing not found"}'
        elif key == "denied":
            status, body = 401, b'{"statusCode":401,"message":"Invalid API key"}'
        elif key == "busy":
            status, body = 503, b'{"message":"busy"}'
            headers["retry-after"] = "0"
        elif key == "html":
            status, body = 500, b"<html><body><h1>Internal error</h1></body></html>"
            headers["content-type"] = "text/html"
        elif key == "garbage":
            body = b"{not json"
        self.send_response(status)
        for name, value in {**headers, "content-length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    seen: list[tuple[int, str, str, str | None]]
    bodies: list[tuple[str | None, bytes]]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out has hung up on the slow answer; that is expected here."""


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Immuta)
    httpd.seen = []
    httpd.bodies = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def url(server: _Server) -> str:
    server.seen.clear()
    server.bodies.clear()
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(params=["httpx", "aiohttp"])
def backend(request: pytest.FixtureRequest) -> str:
    """The async client's HTTP backend under test."""
    name: str = request.param
    return name


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _no_sleep(seconds: float) -> None:
    """Retries without waiting."""


async def _no_async_sleep(seconds: float) -> None:
    """Retries without waiting."""


def _everything_said_about(error: BaseException) -> str:
    return "\n".join(
        [
            str(error),
            repr(error),
            "".join(traceback.format_exception(type(error), error, error.__traceback__)),
            repr(vars(error)),
            repr(pickle.dumps(error)),
        ]
    )


def _exercise_sync(base_url: str, closed_port_url: str) -> list[str]:
    texts: list[str] = []
    with ImmutaClient(
        base_url, CANARY, sleep=_no_sleep, read_timeout=0.3, max_retries=1, auth_method="bearer-key"
    ) as c:
        texts += [repr(c), repr(c.config), str(c.config)]
        texts.append(repr(c.get_connection("ok")))
        for key in ("missing", "denied", "busy", "html", "garbage", "slow"):
            with pytest.raises(ImmutaError) as caught:
                c.get_connection(key)
            texts.append(_everything_said_about(caught.value))
        with pytest.raises(ImmutaError) as caught:
            c.create_task("busy")
        texts.append(_everything_said_about(caught.value))
    with ImmutaClient(
        closed_port_url, CANARY, sleep=_no_sleep, max_retries=2, auth_method="bearer-key"
    ) as c:
        with pytest.raises(ImmutaTransportError) as caught:
            c.create_task("ok")
        texts.append(_everything_said_about(caught.value))
    return texts


async def _exercise_async(base_url: str, closed_port_url: str, backend: str) -> list[str]:
    texts: list[str] = []
    async with AsyncImmutaClient(
        base_url,
        CANARY,
        sleep=_no_async_sleep,
        read_timeout=0.3,
        max_retries=1,
        http_backend=backend,  # type: ignore[arg-type]
        auth_method="bearer-key",
    ) as c:
        assert c.http_backend == backend
        texts += [repr(c), repr(c.config)]
        texts.append(repr(await c.get_connection("ok")))
        for key in ("missing", "denied", "busy", "html", "garbage", "slow"):
            with pytest.raises(ImmutaError) as caught:
                await c.get_connection(key)
            texts.append(_everything_said_about(caught.value))
        with pytest.raises(ImmutaError) as caught:
            await c.update_connection("busy", {"policyConfiguration": {"enabled": True}})
        texts.append(_everything_said_about(caught.value))
    async with AsyncImmutaClient(
        closed_port_url,
        CANARY,
        sleep=_no_async_sleep,
        max_retries=2,
        http_backend=backend,  # type: ignore[arg-type]
        auth_method="bearer-key",
    ) as c:
        with pytest.raises(ImmutaTransportError) as caught:
            await c.get_connection("ok")
        texts.append(_everything_said_about(caught.value))
    return texts


async def test_the_api_key_never_leaks(
    url: str,
    closed_port_url: str,
    server: _Server,
    backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in (
        "httpx",
        "httpcore",
        "aiohttp",
        "immuta_provider",
        "immuta_provider.client",
        "asyncio",
    ):
        caplog.set_level(logging.DEBUG, logger=name)

    texts = await asyncio.to_thread(_exercise_sync, url, closed_port_url)
    texts += await _exercise_async(url, closed_port_url, backend)

    # The key did travel (so this test can fail), but only in the Authorization header.
    assert {seen[3] for seen in server.seen} == {f"Bearer {CANARY}"}
    # Every log record, formatted with its exception and traceback, plus its raw args.
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = [formatter.format(record) + repr(record.args) for record in caplog.records]
    assert any(r.name.startswith("httpcore") for r in caplog.records), "httpcore was not captured"
    assert any(r.name == "httpx" for r in caplog.records)
    assert any(r.name == "immuta_provider.client" for r in caplog.records), "no retry was logged"
    for text in texts + logged:
        assert CANARY not in text
    assert "**********" in texts[1]


def test_one_keep_alive_connection_serves_sequential_calls(url: str, server: _Server) -> None:
    with ImmutaClient(url, "key", auth_method="bearer-key") as client:
        for _ in range(3):
            client.get_connection("ok")
    assert len({seen[0] for seen in server.seen}) == 1


async def test_async_client_keeps_its_connection_alive(
    url: str, server: _Server, backend: str
) -> None:
    async with AsyncImmutaClient(
        url, "key", http_backend=backend, auth_method="bearer-key"
    ) as client:  # type: ignore[arg-type]
        for _ in range(3):
            await client.get_connection("ok")
    assert len({seen[0] for seen in server.seen}) == 1


def test_real_read_timeout_is_retried_on_get_then_reported(url: str, server: _Server) -> None:
    client = ImmutaClient(
        url, "key", read_timeout=0.2, max_retries=1, sleep=_no_sleep, auth_method="bearer-key"
    )
    with client, pytest.raises(ImmutaTimeoutError, match=r"read timeout of 0.2s.*\[after 2"):
        client.get_connection("slow")
    assert [seen[2] for seen in server.seen] == ["/api/connections/slow"] * 2


def test_real_refused_connection_is_retried_even_for_create_task(closed_port_url: str) -> None:
    sleeps: list[float] = []
    client = ImmutaClient(
        closed_port_url, "key", max_retries=2, sleep=sleeps.append, auth_method="bearer-key"
    )
    with client, pytest.raises(ImmutaTransportError, match=r"ConnectError.*\[after 3 attempts"):
        client.create_task("ok")
    assert len(sleeps) == 2


def test_real_task_creation_that_reached_the_server_is_not_repeated(
    url: str, server: _Server
) -> None:
    with (
        ImmutaClient(url, "key", sleep=_no_sleep, auth_method="bearer-key") as client,
        pytest.raises(ImmutaError),
    ):
        client.create_task("busy")
    assert [(seen[1], seen[2]) for seen in server.seen] == [("POST", "/api/connections/busy/tasks")]


# --- the async client on each backend: the same errors, retries and headers ------------------


def _async_client(url: str, backend: str, **options: Any) -> AsyncImmutaClient:
    return AsyncImmutaClient(
        url, "key", sleep=_no_async_sleep, http_backend=backend, **options, auth_method="bearer-key"
    )  # type: ignore[arg-type]


async def test_async_real_read_timeout_is_retried_on_get_then_reported(
    url: str, server: _Server, backend: str
) -> None:
    client = _async_client(url, backend, read_timeout=0.2, max_retries=1)
    async with client:
        with pytest.raises(ImmutaTimeoutError, match=r"read timeout of 0.2s.*\[after 2"):
            await client.get_connection("slow")
    assert [seen[2] for seen in server.seen] == ["/api/connections/slow"] * 2


async def test_async_real_refused_connection_is_retried_even_for_create_task(
    closed_port_url: str, backend: str
) -> None:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    client = AsyncImmutaClient(
        closed_port_url,
        "key",
        max_retries=2,
        sleep=record,
        http_backend=backend,  # type: ignore[arg-type]
        auth_method="bearer-key",
    )
    async with client:
        with pytest.raises(
            ImmutaTransportError, match=r"ConnectError.*\[after 3 attempts"
        ) as caught:
            await client.create_task("ok")
    assert not isinstance(caught.value, ImmutaTimeoutError)
    assert len(sleeps) == 2


async def test_async_task_creation_that_reached_the_server_is_not_repeated(
    url: str, server: _Server, backend: str
) -> None:
    async with _async_client(url, backend) as client:
        with pytest.raises(ImmutaServerError):
            await client.create_task("busy")
    assert [(seen[1], seen[2]) for seen in server.seen] == [("POST", "/api/connections/busy/tasks")]


async def test_async_backends_map_answers_to_the_same_errors(url: str, server: _Server) -> None:
    said: dict[str, list[tuple[type[BaseException], str, int]]] = {}
    for backend in ("httpx", "aiohttp"):
        said[backend] = []
        async with _async_client(url, backend, max_retries=1) as client:
            for key in ("missing", "denied", "busy", "html", "garbage"):
                with pytest.raises(ImmutaError) as caught:
                    await client.get_connection(key)
                attempts = getattr(caught.value, "attempts", 1)
                said[backend].append((type(caught.value), str(caught.value), attempts))
    assert said["aiohttp"] == said["httpx"]
    assert [kind for kind, _, _ in said["httpx"]] == [
        ImmutaNotFoundError,
        ImmutaAuthenticationError,
        ImmutaServerError,
        ImmutaServerError,
        ImmutaResponseError,
    ]


async def test_async_backends_send_the_same_request(url: str, server: _Server) -> None:
    for backend in ("httpx", "aiohttp"):
        async with _async_client(url, backend) as client:
            # The test server answers these with bodies that do not parse; only the requests
            # matter here.
            with pytest.raises(ImmutaResponseError):
                await client.update_connection("ok", {"name": "ü €"}, dry_run=True)
            with pytest.raises(ImmutaResponseError):
                await client.list_tasks("ok", status="RUNNING", page_size=5).get_page("c 1/+")
    requests = [(seen[1], seen[2], seen[3]) for seen in server.seen]
    # Same method, path, query (encoded the same way) and key from each backend.
    assert requests[:2] == requests[2:]
    assert requests[1][1] == (
        "/api/connections/ok/tasks?filter%5Bstatus%5D=RUNNING&page%5Blimit%5D=5"
        "&page%5Bcursor%5D=c+1%2F%2B"
    )
    # The same JSON bytes and content type.
    assert server.bodies[:2] == server.bodies[2:]
    assert server.bodies[0] == ("application/json", '{"name":"ü €"}'.encode())


async def test_async_client_closed_refuses_to_send(url: str, backend: str) -> None:
    client = _async_client(url, backend)
    await client.get_connection("ok")
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.get_connection("ok")


def test_async_client_picks_aiohttp_when_installed_unless_given_a_transport() -> None:
    assert (
        AsyncImmutaClient("https://acme.example", "key", auth_method="bearer-key").http_backend
        == "aiohttp"
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    chosen = AsyncImmutaClient(
        "https://acme.example", "key", transport=transport, auth_method="bearer-key"
    )
    assert chosen.http_backend == "httpx"
    forced = AsyncImmutaClient(
        "https://acme.example", "key", http_backend="httpx", auth_method="bearer-key"
    )
    assert forced.http_backend == "httpx"
    with pytest.raises(ImmutaValidationError, match="cannot send through an httpx transport"):
        AsyncImmutaClient(
            "https://acme.example", "key", transport=transport, http_backend="aiohttp"
        )
    with pytest.raises(ImmutaValidationError, match="http_backend 'curl' must be one of"):
        AsyncImmutaClient("https://acme.example", "key", http_backend="curl")  # type: ignore[arg-type]


# --- TLS: the CA bundle, default trust and verify=False on each backend -----------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    # A self-signed certificate for 127.0.0.1 (its own CA), as the emulator's TLS test makes it.
    from tests.unit.emulator.test_emulator_process import _self_signed

    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    httpd = _Server(("127.0.0.1", 0), _Immuta)
    httpd.seen, httpd.bodies = [], []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", cert
    httpd.shutdown()
    httpd.server_close()


async def test_async_tls_trusts_the_ca_bundle_and_only_it(
    tls_server: tuple[str, Path], backend: str
) -> None:
    url, cert = tls_server
    async with _async_client(url, backend, verify=str(cert)) as client:
        assert (await client.get_connection("ok")).connection_key == "ok"
    async with _async_client(url, backend, verify=False) as client:
        assert (await client.get_connection("ok")).connection_key == "ok"
    # The default trust store does not know this certificate: a connect error, retried like one.
    async with _async_client(url, backend, max_retries=1) as client:
        with pytest.raises(ImmutaTransportError, match=r"ConnectError.*\[after 2 attempts"):
            await client.get_connection("ok")
