"""SettingsCache: triggers starting together share one read of the Airflow connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from immuta_provider.hooks.settings_cache import SettingsCache


class Reader:
    """Counts reads; each returns a new object (so sharing is visible) after a short wait."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.reads = 0
        self.fail = fail

    async def __call__(self) -> Any:
        self.reads += 1
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail
        return object()


async def test_concurrent_starts_share_one_read_and_reuse_it_within_the_ttl() -> None:
    now = [0.0]
    cache = SettingsCache(ttl=30, clock=lambda: now[0])
    reader = Reader()
    results = await asyncio.gather(*(cache.get("immuta_default", reader) for _ in range(50)))
    assert reader.reads == 1
    assert all(result is results[0] for result in results)
    now[0] = 29.0
    assert await cache.get("immuta_default", reader) is results[0]
    now[0] = 31.0  # after the TTL a rotated key is read again
    assert await cache.get("immuta_default", reader) is not results[0]
    assert reader.reads == 2
    assert await cache.get("other_conn", reader) is not results[0]
    assert reader.reads == 3


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept() -> None:
    cache = SettingsCache()
    failing = Reader(fail=ValueError("no such connection"))
    outcomes = await asyncio.gather(
        *(cache.get("immuta_default", failing) for _ in range(5)), return_exceptions=True
    )
    assert failing.reads == 1
    assert all(isinstance(outcome, ValueError) for outcome in outcomes)
    good = Reader()
    await cache.get("immuta_default", good)
    assert good.reads == 1


async def test_a_cancelled_reader_does_not_cancel_the_triggers_waiting_on_it() -> None:
    cache = SettingsCache()
    reader = Reader()
    first = asyncio.ensure_future(cache.get("immuta_default", reader))
    await asyncio.sleep(0)  # the first is reading
    waiter = asyncio.ensure_future(cache.get("immuta_default", reader))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await waiter is not None  # it read the connection itself
    assert reader.reads == 2


def test_each_event_loop_reads_for_itself() -> None:
    cache = SettingsCache()
    reader = Reader()
    one = asyncio.run(cache.get("immuta_default", reader))
    two = asyncio.run(cache.get("immuta_default", reader))
    assert one is not two
    assert reader.reads == 2
