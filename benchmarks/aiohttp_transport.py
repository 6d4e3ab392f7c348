"""What-if only: an ``httpx.AsyncBaseTransport`` that sends through one ``aiohttp`` session.

The fleet benchmark's profiles put most of our CPU per poll in httpx/httpcore/anyio's request
path, while aiohttp sends the same keep-alive TLS request for about a quarter of the CPU. This
transport lets the shipped ``AsyncImmutaClient`` (which takes ``transport=``) run on aiohttp
unchanged, to measure what such a change would buy (``ours_aiohttp`` in :mod:`benchmarks.fleet`).
It maps only the errors the benchmark can meet; it is not a production transport.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests with one lazily made ``aiohttp.ClientSession`` (its own pool)."""

    def __init__(self, verify: ssl.SSLContext | bool = True, max_connections: int = 10) -> None:
        self._ssl = verify
        self._max_connections = max_connections
        self._session: Any = None

    def _get_session(self) -> Any:
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp

        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
        )
        body = await request.aread()
        try:
            async with self._get_session().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                content = await response.read()
                return httpx.Response(
                    status_code=response.status,
                    headers=[(k.decode(), v.decode()) for k, v in response.raw_headers],
                    content=content,
                    request=request,
                )
        except asyncio.TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
