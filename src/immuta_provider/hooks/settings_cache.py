"""Connection settings shared by the triggers of one triggerer that start together.

When thousands of tasks defer at once, a triggerer starts thousands of ``ImmutaTaskRunTrigger``s
within seconds, all reading the same Airflow connection. On Airflow 3 each read is a round trip
from the trigger runner to the triggerer's supervisor (``GetConnection``, then one ``MaskSecret``
per secret), served one at a time: at 1,000 triggers that queue held the first polls back by
many seconds. Here the first trigger reads the connection and the others starting on the same
event loop within :data:`SETTINGS_TTL` seconds get its result (while a read is in flight they
wait for it rather than starting their own). A failed read is not kept: the next trigger reads
again. A changed connection (a rotated API key) is seen by triggers that start after the TTL;
triggers already running keep the settings they started with, as before.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from immuta_provider.hooks.connection_settings import ImmutaConnectionSettings

SETTINGS_TTL = 30.0
"""Seconds a connection read is reused by triggers starting on the same event loop."""

_Key = tuple[str, int]


class SettingsCache:
    """Per (Airflow connection, event loop): the last settings read and any read in flight.

    :param ttl: Seconds a successful read is reused.
    :param clock: Monotonic clock (for tests).
    """

    def __init__(self, ttl: float = SETTINGS_TTL, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        # The loop is kept as a weak reference and compared: a new loop can reuse a dead one's id.
        self._done: dict[_Key, tuple[float, ImmutaConnectionSettings, weakref.ref[Any]]] = {}
        self._reading: dict[_Key, asyncio.Future[ImmutaConnectionSettings]] = {}

    def clear(self) -> None:
        """Forget every read (tests, or after a connection is known to have changed)."""
        self._done.clear()
        self._reading.clear()

    async def get(
        self, conn_id: str, read: Callable[[], Awaitable[ImmutaConnectionSettings]]
    ) -> ImmutaConnectionSettings:
        """The settings of ``conn_id``: reused, awaited from a read in flight, or ``read()``."""
        loop = asyncio.get_running_loop()
        key = (conn_id, id(loop))
        while True:
            done = self._done.get(key)
            if done is not None and done[2]() is loop and self._clock() - done[0] < self._ttl:
                return done[1]
            reading = self._reading.get(key)
            if reading is None or reading.get_loop() is not loop:
                break
            # asyncio.wait raises only if this caller is cancelled, never for the reader's fate.
            await asyncio.wait([reading])
            if reading.cancelled():  # the reading trigger was cancelled: read here instead
                continue
            return reading.result()  # the reader's settings, or its exception
        future: asyncio.Future[ImmutaConnectionSettings] = loop.create_future()
        self._reading[key] = future
        try:
            settings = await read()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved, so no "exception was never retrieved" when unawaited
            raise
        else:
            self._done[key] = (self._clock(), settings, weakref.ref(loop))
            future.set_result(settings)
            return settings
        finally:
            if self._reading.get(key) is future:
                del self._reading[key]


shared_settings = SettingsCache()
"""The process-wide cache ``ImmutaHook.aget_settings`` reads through."""
