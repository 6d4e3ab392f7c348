"""Read-only access to a tenant, keeping every raw answer for the checks.

The doctor talks through the provider's own :class:`~immuta_provider.client.ImmutaClient` (same
authentication, envelope rules and models as a DAG), over a transport that

* refuses, before anything is sent, every request but a GET, the auth exchange and the data
  object ``_search`` (so a bug in the doctor cannot create, change, validate, cancel or delete
  anything: validation persists health, cancelling stops a sync);
* keeps the decoded JSON of each API answer, so that a check can look at the raw shape even when
  the client refuses it. Answers of the auth exchange are never kept (they hold the token).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from immuta_provider.client import ImmutaClient

READ_ONLY_POSTS = ("/dataObjects/_search", "/bim/apikey/authenticate")
"""Path endings of the only POSTs the doctor may send: they read, they change nothing."""


class RefusedRequest(RuntimeError):
    """The doctor was about to send a request that could change something in Immuta."""


def is_read_only(method: str, path: str) -> bool:
    """Whether the doctor may send ``method path``."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return True
    return method == "POST" and path.rstrip("/").endswith(READ_ONLY_POSTS)


@dataclass(frozen=True)
class Answer:
    """One API answer as it came: status and decoded JSON body (``None``: not JSON)."""

    method: str
    path: str
    status_code: int
    body: Any


class ReadOnlyTransport(httpx.BaseTransport):
    """Wraps a transport: refuses writes, records API answers (see the module docstring)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner
        self.answers: list[Answer] = []
        self.sent: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not is_read_only(request.method, path):
            raise RefusedRequest(
                f"immuta-doctor is read-only and refused to send {request.method} {path}"
            )
        self.sent.append((request.method, path))
        response = self._inner.handle_request(request)
        content = response.read()
        response.close()
        if "/api/" in path:
            try:
                body: Any = json.loads(content) if content else None
            except ValueError:
                body = None
            self.answers.append(Answer(request.method, path, response.status_code, body))
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=content,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


@dataclass
class Outcome:
    """What one client call gave: its value, or the error it raised; and the raw last answer."""

    value: Any
    error: Exception | None
    answer: Answer | None


def verify_option(verify: bool | str) -> bool | ssl.SSLContext:
    """httpx's ``verify`` for ``True``/``False`` or the path of a CA bundle."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


class Probe:
    """A read-only client on one tenant, with the raw answers of its calls.

    Args:
        base_url: the tenant URL.
        api_key: the API key (kept by the client as a ``SecretStr``).
        verify: TLS verification, as for the client.
        timeout: seconds per request.
        transport: the transport to wrap (tests); by default an ``httpx.HTTPTransport``.
        client_options: further :class:`ImmutaClient` keyword arguments (``auth_method``).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        verify: bool | str = True,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        **client_options: Any,
    ) -> None:
        inner = transport or httpx.HTTPTransport(verify=verify_option(verify))
        self.transport = ReadOnlyTransport(inner)
        self.client = ImmutaClient(
            base_url,
            api_key,
            verify=verify,
            max_retries=1,
            connect_timeout=min(timeout, 10.0),
            read_timeout=timeout,
            total_timeout=max(timeout * 3, 30.0),
            transport=self.transport,
            **client_options,
        )

    def call(self, method: Callable[..., Any], *args: Any) -> Outcome:
        """Run ``method(client, *args)`` (an ``ImmutaClient`` method); keep its result or error,
        and the last raw API answer."""
        before = len(self.transport.answers)
        try:
            value: Any = method(self.client, *args)
            error = None
        except RefusedRequest:
            raise
        except Exception as caught:  # the checks report every kind of failure
            value, error = None, caught
        answers = self.transport.answers[before:]
        return Outcome(value, error, answers[-1] if answers else None)

    def page(
        self,
        method: Callable[..., Any],
        *args: Any,
        page_size: int,
        cursor: str | None = None,
    ) -> Outcome:
        """One page of a listing method (``ImmutaClient.list_tasks``...): ``get_page(cursor)``."""

        def one_page(client: ImmutaClient, *args: Any) -> Any:
            return method(client, *args, page_size=page_size).get_page(cursor)

        return self.call(one_page, *args)

    def close(self) -> None:
        """Close the client (and its transport)."""
        self.client.close()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
