"""The call's total timeout enforced on every socket operation of the blocking client.

httpx's read timeout applies to each socket read: a server (or a proxy) that sends one byte every
few seconds keeps a call going for as long as it likes, whatever the total timeout says. The
async client cuts the whole attempt with ``asyncio.timeout``; a blocking call has no such lever,
so the sync client sends through an httpcore network backend whose streams cap every read, write
and TLS handshake at the time left before the call's deadline (a context variable the client sets
for each attempt). A call then ends within a few milliseconds of its total timeout.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

CALL_DEADLINE: ContextVar[float | None] = ContextVar("immuta_call_deadline", default=None)
"""The ``time.monotonic()`` deadline of the call being sent in this thread (``None``: none)."""


def _capped(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before the call's deadline; raises ``error`` (an
    httpcore timeout, which httpx turns into its own) when no time is left."""
    deadline = CALL_DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error("the call's total timeout was used up")
    return remaining if timeout is None else min(timeout, remaining)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the call's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _capped(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _capped(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return DeadlineStream(
            self._stream.start_tls(
                ssl_context, server_hostname, _capped(timeout, httpcore.ConnectTimeout)
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking socket backend, with :class:`DeadlineStream` streams."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return DeadlineStream(
            self._backend.connect_tcp(
                host,
                port,
                _capped(timeout, httpcore.ConnectTimeout),
                local_address,
                socket_options,
            )
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return DeadlineStream(
            self._backend.connect_unix_socket(
                path, _capped(timeout, httpcore.ConnectTimeout), socket_options
            )
        )

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def deadline_transport(ssl_context: ssl.SSLContext, limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's own transport (same request mapping, same exceptions) over :class:`DeadlineBackend`.

    httpx does not expose httpcore's ``network_backend`` option, so the transport's pool is
    rebuilt with the same settings and that backend. The trickling-server tests
    (``tests/unit/client/test_client_trickle.py``) catch an httpx release that stops using it.
    """
    transport = httpx.HTTPTransport(verify=ssl_context, limits=limits)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=DeadlineBackend(),
    )
    return transport
