"""The total timeout of one call holds against a real server on 127.0.0.1 that trickles its answer
(a byte at a time, each well inside the read timeout), for the sync client and both async backends.

Before: the read timeout applies to each socket read, so a server that sends a byte every 50 ms kept
a call going for as long as it liked, whatever ``total_timeout`` said.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from immuta_provider.client import AsyncImmutaClient, ImmutaClient, ImmutaTimeoutError

KEY = "trickle-test-key"
TOTAL = 1.0
READ = 0.5
# What a finished call may overrun the total timeout by on a busy 2-core machine.
SLACK = 0.6


class TricklingServer:
    """Answers every request with a 200 whose head (``mode="head"``) or body (``mode="body"``)
    arrives one byte every ``interval`` seconds, for as long as the client listens."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.mode = "body"
        self.requests = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            body = b'{"connectionKey": "ok", "state": "ACTIVE"}' + b" " * 2000
            head = (
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
            )
            if self.mode == "body":
                conn.sendall(head)
                trickled = body
            else:
                trickled = head + body
            try:
                for index in range(len(trickled)):
                    if self._stop.is_set():
                        return
                    conn.sendall(trickled[index : index + 1])
                    time.sleep(self.interval)
            except OSError:
                return  # the client gave up and closed the connection: what the test wants

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2)


@pytest.fixture(scope="module")
def server() -> Iterator[TricklingServer]:
    trickler = TricklingServer()
    yield trickler
    trickler.close()


def _options(**extra: Any) -> dict[str, Any]:
    return {
        "read_timeout": READ,
        "total_timeout": TOTAL,
        "max_retries": 2,
        "auth_method": "bearer-key",  # one request per call: the trickle is what is measured
        **extra,
    }


@pytest.mark.parametrize("mode", ["head", "body"])
def test_sync_client_total_timeout_holds_against_a_trickling_server(
    server: TricklingServer, mode: str
) -> None:
    server.mode = mode
    url = f"http://127.0.0.1:{server.port}"
    with ImmutaClient(url, KEY, **_options()) as client:
        started = time.monotonic()
        with pytest.raises(ImmutaTimeoutError) as caught:
            client.get_connection("ok")
        took = time.monotonic() - started
    assert TOTAL * 0.9 <= took <= TOTAL + SLACK, f"the call took {took:.2f}s"
    assert f"total timeout of {TOTAL:g}s" in str(caught.value)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
@pytest.mark.parametrize("mode", ["head", "body"])
async def test_async_client_total_timeout_holds_against_a_trickling_server(
    server: TricklingServer, mode: str, backend: str
) -> None:
    server.mode = mode
    url = f"http://127.0.0.1:{server.port}"
    async with AsyncImmutaClient(url, KEY, http_backend=backend, **_options()) as client:  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(ImmutaTimeoutError) as caught:
            await client.get_connection("ok")
        took = time.monotonic() - started
    assert TOTAL * 0.9 <= took <= TOTAL + SLACK, f"the call took {took:.2f}s"
    assert f"total timeout of {TOTAL:g}s" in str(caught.value)
    assert KEY not in str(caught.value)


def test_sync_client_trickle_within_the_total_timeout_still_succeeds(
    server: TricklingServer,
) -> None:
    """The cap only bites at the deadline: a slow answer that fits is read whole."""
    slow = TricklingServer(interval=0.0)
    slow.mode = "body"
    try:
        url = f"http://127.0.0.1:{slow.port}"
        with ImmutaClient(url, KEY, **_options(total_timeout=30.0)) as client:
            connection = client.get_connection("ok")
        assert connection.connection_key == "ok"
    finally:
        slow.close()
