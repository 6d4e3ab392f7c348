"""A harness that runs each client test against both ``ImmutaClient`` and ``AsyncImmutaClient``.

Tests are ``async def`` and use the ``api`` fixture (parametrized sync/async): ``await
api.call("get_task_run", ...)`` calls the method on either client, ``await api.collect(p)`` drains
a paginator. Responses come from an ``httpx.MockTransport`` handler; sleeps are recorded, never
slept.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from immuta_provider.client import (
    AsyncImmutaClient,
    AsyncPaginator,
    ImmutaClient,
    Page,
    Paginator,
)

BASE_URL = "https://acme.hosted.immutacloud.com"
API_KEY = "test-api-key-0123456789"

Handler = Callable[[httpx.Request], httpx.Response]


class Replies:
    """A MockTransport handler that answers from a queue and records every request.

    Each queued reply is an ``httpx.Response``, an exception to raise, or a callable taking the
    request. The last reply is repeated once the queue is down to it.
    """

    def __init__(self, *replies: httpx.Response | Exception | Handler) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            # A fresh copy each time: a response's stream can be read only once.
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)
        return reply(request)

    @property
    def count(self) -> int:
        return len(self.requests)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


class Api:
    """One client (sync or async) over a MockTransport, with helpers that await when needed."""

    def __init__(self, kind: str, handler: Handler, **options: Any) -> None:
        self.kind = kind
        self.sleeps: list[float] = []
        transport = httpx.MockTransport(handler)
        options.setdefault("base_url", BASE_URL)
        options.setdefault("api_key", API_KEY)
        # The key itself: these tests are about one request each (auth: test_client_auth.py).
        options.setdefault("auth_method", "bearer-key")
        self.client: ImmutaClient | AsyncImmutaClient
        if kind == "sync":
            self.client = ImmutaClient(transport=transport, sleep=self.sleeps.append, **options)
        else:

            async def record_sleep(seconds: float) -> None:
                self.sleeps.append(seconds)

            self.client = AsyncImmutaClient(transport=transport, sleep=record_sleep, **options)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a client method by name; awaits coroutines (and returns paginators as they are)."""
        result = getattr(self.client, method)(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = await result
        return result

    async def collect(self, paginator: Paginator[Any] | AsyncPaginator[Any]) -> list[Any]:
        if isinstance(paginator, AsyncPaginator):
            return [item async for item in paginator]
        return list(paginator)

    async def pages(self, paginator: Paginator[Any] | AsyncPaginator[Any]) -> list[Page[Any]]:
        if isinstance(paginator, AsyncPaginator):
            return [page async for page in paginator.pages()]
        return list(paginator.pages())

    async def get_page(
        self, paginator: Paginator[Any] | AsyncPaginator[Any], cursor: str | None = None
    ) -> Page[Any]:
        if isinstance(paginator, AsyncPaginator):
            return await paginator.get_page(cursor)
        return paginator.get_page(cursor)

    async def close(self) -> None:
        if isinstance(self.client, AsyncImmutaClient):
            await self.client.aclose()
        else:
            self.client.close()


@pytest.fixture(params=["sync", "async"])
def client_kind(request: pytest.FixtureRequest) -> str:
    """Which client a test runs against."""
    return str(request.param)


@pytest.fixture
async def make_api(client_kind: str) -> Any:
    """Factory: ``make_api(*replies, **client_options) -> (Api, Replies)``."""
    made: list[Api] = []

    def factory(
        *replies: httpx.Response | Exception | Handler, **options: Any
    ) -> tuple[Api, Replies]:
        handler = Replies(*replies)
        api = Api(client_kind, handler, **options)
        made.append(api)
        return api, handler

    yield factory
    for api in made:
        await api.close()
