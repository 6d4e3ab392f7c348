"""The async client's aiohttp backend: one ``aiohttp`` session (one pool) per client.

Why: a triggerer polls hundreds of runs through one shared client, and httpx/httpcore/anyio spend
about four times the CPU of aiohttp on the same keep-alive TLS request (URL merging, the cookie
jar, the TLS stream's bookkeeping; see benchmarks/README.md, section 2). This module only sends:
requests are built from the same :class:`~immuta_provider.client._base.Request` (so from the same
endpoint descriptions) and answers are parsed and mapped by the same ``ClientCore`` code.

aiohttp's exceptions are translated into the httpx exceptions the httpx backend would have raised
for the same failure, so the retry rules (``retries.py``) and the error messages (``_base.py``) are
shared rather than restated. Imported only when an ``AsyncImmutaClient`` picks this backend, so
``import immuta_provider.client`` never imports aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from urllib.parse import urlencode
from urllib.request import getproxies, proxy_bypass

import aiohttp
import httpx
from multidict import CIMultiDictProxy
from yarl import URL

from immuta_provider.client._base import Request

# Added to the session's headers for a request with a JSON body.
_JSON_BODY = {"Content-Type": "application/json"}


class AiohttpAnswer:
    """A complete response (body read), with the attributes ``ClientCore`` reads."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(
        self, status_code: int, reason_phrase: str, headers: CIMultiDictProxy[str], content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        # Case-insensitive like httpx.Headers (Retry-After, X-Request-Id...).
        self.headers: Mapping[str, str] = headers
        self.content = content


class AiohttpSender:
    """Sends a client's requests through one lazily opened ``aiohttp.ClientSession``.

    The session is opened on the first request because aiohttp binds it to the running loop,
    and clients may be built outside one.
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        ssl_context: ssl.SSLContext,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        keepalive_expiry: float,
    ) -> None:
        self._base_url = base_url
        self._headers = dict(headers)
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._proxy = _environment_proxy(base_url)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            # As httpx does for a closed client.
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            ssl=self._ssl_context,
            keepalive_timeout=self._keepalive_expiry,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=self._timeout,
            # Immuta authenticates with the Authorization header; a cookie jar is per-request
            # work for nothing (and authentication never depends on what a proxy sets).
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
            # trust_env=True would read ~/.netrc on every request (in a thread) and refuse our
            # Authorization header if it had an entry; the proxy is resolved once instead.
            trust_env=False,
        )
        # aiohttp silently re-sends an idempotent request once when a reused connection drops;
        # retries are ours (counted, logged, backed off and bounded by the total timeout), as
        # with httpx. A private switch of aiohttp's session (checked against aiohttp 3.14; the
        # dropped-connection contract and fault-matrix tests catch a release that renames it).
        self._session._retry_connection = False
        return self._session

    def _url(self, request: Request) -> URL:
        url = self._base_url + request.path
        if request.params:
            url += "?" + urlencode(request.params)
        # Path parts are validated ([A-Za-z0-9_-] keys, UUIDs) and the query is encoded above:
        # nothing for yarl to quote again.
        return URL(url, encoded=True)

    async def send(
        self, request: Request, budget: float | None, auth: Mapping[str, str] | None = None
    ) -> AiohttpAnswer:
        """Send one attempt; ``budget``: seconds left of the call (caps both timeouts);
        ``auth``: the ``Authorization`` header of this attempt."""
        session = self._session or self._open()
        timeout = self._timeout
        if budget is not None:
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=min(self._connect_timeout, budget),
                sock_read=min(self._read_timeout, budget),
            )
        data: bytes | None = None
        headers = auth
        if request.json is not None:
            # The bytes httpx sends for json=.
            data = json.dumps(
                request.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            headers = {**auth, **_JSON_BODY} if auth else _JSON_BODY
        try:
            async with session.request(
                request.method,
                self._url(request),
                data=data,
                headers=headers,
                allow_redirects=False,
                timeout=timeout,
                proxy=self._proxy,
            ) as response:
                content = await response.read()
                return AiohttpAnswer(
                    response.status, response.reason or "", response.headers, content
                )
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise as_httpx_error(error) from error

    async def aclose(self) -> None:
        """Close the session and its pool (later sends raise ``RuntimeError``)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _environment_proxy(base_url: str) -> str | None:
    """The proxy httpx would use for ``base_url`` from ``HTTPS_PROXY``/``HTTP_PROXY``/
    ``ALL_PROXY`` and ``NO_PROXY`` (httpx's default ``trust_env=True``)."""
    proxies = getproxies()
    url = URL(base_url)
    proxy = proxies.get(url.scheme or "") or proxies.get("all")
    if not proxy or (url.host and proxy_bypass(url.host)):
        return None
    return proxy


def as_httpx_error(error: aiohttp.ClientError | asyncio.TimeoutError) -> httpx.TransportError:
    """The httpx exception the httpx backend raises for the same failure.

    That decides whether it is retried (connect failures even for creates; read timeouts and
    dropped connections for idempotent calls only) and how the error message reads.
    """
    detail = str(error)
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(detail)
    if isinstance(error, asyncio.TimeoutError):
        # SocketTimeoutError (sock_read) or a bare timeout while reading.
        return httpx.ReadTimeout(detail)
    if isinstance(error, aiohttp.ClientConnectorError):
        # Refused, unreachable, DNS, TLS handshake and certificate failures: never sent.
        return httpx.ConnectError(detail)
    if isinstance(error, aiohttp.ClientOSError):
        return httpx.ReadError(detail)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(
            detail or "Server disconnected without sending a response."
        )
    return httpx.RemoteProtocolError(detail or type(error).__name__)
