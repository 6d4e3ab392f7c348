"""One ``AsyncImmutaClient`` per (Airflow connection, settings, event loop) in a triggerer process.

A triggerer runs hundreds of triggers on one event loop. Giving each trigger (or worse, each poll)
its own HTTP client means one connection pool, one TLS handshake and one set of sockets per trigger.
Here every trigger that uses the same Airflow connection borrows the same client, so they share one
keep-alive pool. Leases are counted: the client is closed when the last trigger using it returns
its lease, so nothing outlives the triggers (or the event loop) that needed it.

The key holds a fingerprint of the settings (URL, key, timeouts, TLS) rather than the settings
themselves, so a rotated API key gets a fresh client while the key itself is never kept in a key.
The running loop is part of the key because an httpx async pool is bound to the loop it was
created on (``dag.test()`` runs each trigger in its own ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from immuta_provider.client import AsyncImmutaClient
    from immuta_provider.hooks.connection_settings import ImmutaConnectionSettings

log = logging.getLogger(__name__)

ClientKey = tuple[str, str, int]


@dataclass
class _Entry:
    client: AsyncImmutaClient
    loop: asyncio.AbstractEventLoop
    leases: int = 0


class SharedAsyncClientRegistry:
    """Lends out shared async clients and closes each one when its last borrower is done.

    :param factory: Builds a new client from connection settings. Public so that tests can make
        the process-wide registry build clients on an ``httpx.MockTransport`` (the trigger unit
        tests); nothing else should change it.
    """

    def __init__(self, factory: Callable[[ImmutaConnectionSettings], AsyncImmutaClient]) -> None:
        self.factory = factory
        self._entries: dict[ClientKey, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def leases(self, settings: ImmutaConnectionSettings) -> int:
        """How many borrowers currently hold the client for ``settings`` on the running loop."""
        entry = self._entries.get(self._key(settings, asyncio.get_running_loop()))
        return entry.leases if entry else 0

    @staticmethod
    def _key(settings: ImmutaConnectionSettings, loop: asyncio.AbstractEventLoop) -> ClientKey:
        return (settings.conn_id, settings.fingerprint, id(loop))

    @asynccontextmanager
    async def lease(self, settings: ImmutaConnectionSettings) -> AsyncIterator[AsyncImmutaClient]:
        """Borrow the shared client for ``settings`` for the duration of the ``async with``."""
        loop = asyncio.get_running_loop()
        key = self._key(settings, loop)
        # No await between the lookup and the insert: two triggers starting together on the same
        # loop cannot both create a client.
        entry = self._entries.get(key)
        if entry is None or entry.loop is not loop:
            entry = _Entry(client=self.factory(settings), loop=loop)
            self._entries[key] = entry
            log.debug("Opened a shared Immuta client for connection %r", settings.conn_id)
        entry.leases += 1
        try:
            yield entry.client
        finally:
            entry.leases -= 1
            if entry.leases == 0 and self._entries.get(key) is entry:
                # Unregister before awaiting, so no new borrower is handed a closing client.
                del self._entries[key]
                log.debug("Closing the shared Immuta client for connection %r", settings.conn_id)
                await entry.client.aclose()


def _new_async_client(settings: ImmutaConnectionSettings) -> AsyncImmutaClient:
    from immuta_provider._compat import amask_secret
    from immuta_provider.client import AsyncImmutaClient

    # One token for every trigger of the connection, masked in task logs like the key.
    return AsyncImmutaClient(**settings.client_kwargs(), on_secret=amask_secret)


shared_async_clients = SharedAsyncClientRegistry(_new_async_client)
"""The process-wide registry every ``ImmutaHook`` borrows async clients from."""
