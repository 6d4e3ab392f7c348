"""Many concurrent calls on one client (a triggerer's shared client): bounded work in httpx."""

from __future__ import annotations

import asyncio

import httpx

from immuta_provider.client import AsyncImmutaClient, ImmutaClient
from immuta_provider.client._base import MAX_CONNECTIONS

KEY = "snowflake-prod"
TASK_ID = "3f0e7b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
RUN_ID = "00000000-0000-4000-8000-000000000001"


async def test_async_client_lets_at_most_max_connections_requests_into_httpx() -> None:
    # Regression: without the gate every concurrent call queued in httpcore's pool, whose
    # bookkeeping grows with the queue; a 1,000-trigger fleet then fell behind for good.
    in_flight = peak = 0

    async def slow_server(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"runId": RUN_ID, "status": "RUNNING"})

    transport = httpx.MockTransport(slow_server)
    async with AsyncImmutaClient(
        "https://acme.example", "k", transport=transport, auth_method="bearer-key"
    ) as client:
        runs = await asyncio.gather(
            *(client.get_task_run(KEY, TASK_ID, RUN_ID) for _ in range(5 * MAX_CONNECTIONS))
        )

    assert [run.run_id for run in runs] == [RUN_ID] * (5 * MAX_CONNECTIONS)
    assert peak == MAX_CONNECTIONS


def test_pool_keeps_alive_every_connection_it_may_open() -> None:
    # httpcore closes idle connections once it holds more than max_keepalive_connections; equal
    # limits mean a burst never turns into a new TLS handshake per request afterwards.
    client = ImmutaClient("https://acme.example", "k", auth_method="bearer-key")
    try:
        limits = client._http_options()["limits"]
        assert limits.max_connections == limits.max_keepalive_connections == MAX_CONNECTIONS
    finally:
        client.close()
