"""The triggerer-wide registry: one AsyncImmutaClient per connection, settings and event loop."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from immuta_provider.client import AsyncImmutaClient
from immuta_provider.hooks.connection_settings import ImmutaConnectionSettings
from immuta_provider.hooks.shared_clients import SharedAsyncClientRegistry

SETTINGS = ImmutaConnectionSettings(
    conn_id="immuta_default",
    base_url="https://acme.example",
    api_key="key-one-1234",
    auth_method="bearer-key",  # the in-memory transport has no token exchange
)


class RecordingClient(AsyncImmutaClient):
    """A real client on an in-memory transport that remembers whether it was closed."""

    closed = False

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"connections": [], "page": {"nextCursor": None}})


@pytest.fixture
def created() -> list[RecordingClient]:
    return []


@pytest.fixture
def registry(created: list[RecordingClient]) -> SharedAsyncClientRegistry:
    def factory(settings: ImmutaConnectionSettings) -> AsyncImmutaClient:
        client = RecordingClient(**settings.client_kwargs(), transport=httpx.MockTransport(_answer))
        created.append(client)
        return client

    return SharedAsyncClientRegistry(factory)


async def test_concurrent_borrowers_share_one_client_and_the_last_one_closes_it(
    registry: SharedAsyncClientRegistry, created: list[RecordingClient]
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    seen: list[AsyncImmutaClient] = []

    async def trigger() -> None:
        async with registry.lease(SETTINGS) as client:
            seen.append(client)
            await client.list_connections(page_size=1).get_page()
            if len(seen) == 3:
                started.set()
            await release.wait()

    tasks = [asyncio.create_task(trigger()) for _ in range(3)]
    await started.wait()
    assert len(created) == 1
    assert all(client is created[0] for client in seen)
    assert registry.leases(SETTINGS) == 3
    release.set()
    await asyncio.gather(*tasks)
    assert created[0].closed
    assert len(registry) == 0


async def test_different_settings_or_connections_get_their_own_client(
    registry: SharedAsyncClientRegistry, created: list[RecordingClient]
) -> None:
    rotated = ImmutaConnectionSettings(
        conn_id="immuta_default", base_url="https://acme.example", api_key="key-two-5678"
    )
    other_conn = ImmutaConnectionSettings(
        conn_id="immuta_other", base_url="https://acme.example", api_key="key-one-1234"
    )
    async with (
        registry.lease(SETTINGS) as first,
        registry.lease(rotated) as second,
        registry.lease(other_conn) as third,
    ):
        assert len({id(first), id(second), id(third)}) == 3
        assert len(registry) == 3
    assert all(client.closed for client in created)


async def test_a_lease_returned_on_cancellation_still_closes_the_client(
    registry: SharedAsyncClientRegistry, created: list[RecordingClient]
) -> None:
    borrowed = asyncio.Event()

    async def poll_forever() -> None:
        async with registry.lease(SETTINGS):
            borrowed.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(poll_forever())
    await borrowed.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert created[0].closed
    assert len(registry) == 0


def test_each_event_loop_gets_its_own_client(
    registry: SharedAsyncClientRegistry, created: list[RecordingClient]
) -> None:
    async def borrow() -> int:
        async with registry.lease(SETTINGS) as client:
            await client.list_connections(page_size=1).get_page()
            return id(client)

    asyncio.run(borrow())
    asyncio.run(borrow())
    assert len(created) == 2
    assert all(client.closed for client in created)


def test_module_registry_builds_real_clients_from_settings() -> None:
    from immuta_provider.hooks.shared_clients import shared_async_clients

    async def borrow() -> None:
        async with shared_async_clients.lease(SETTINGS) as client:
            assert isinstance(client, AsyncImmutaClient)
            assert "key-one-1234" not in repr(client)

    asyncio.run(borrow())
    assert len(shared_async_clients) == 0
