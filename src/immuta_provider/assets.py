"""Airflow Assets (Datasets on Airflow 2.11) for the data objects of an Immuta connection.

A successful :class:`~immuta_provider.operators.immuta.ImmutaDataObjectSyncOperator` emits an
asset event for the connection it synced, so that downstream DAGs can be scheduled on a fresh
inventory::

    from immuta_provider.assets import immuta_connection_asset

    @dag(schedule=[immuta_connection_asset("acme.hosted.immutacloud.com", "snowflake-prod")])
    def refresh_catalog(): ...

The asset's URI is ``immuta://<host>[:<port>]/connections/<connection key>``: the Immuta host
(lower case, without credentials, the path or a default port) and the connection key. Its name is
the URI. :func:`immuta_connection_asset` is the one function that builds it; the operator uses it
too, so the two always agree.

Cheap to import (DAG files import it at every parse): Airflow's asset classes come from
``immuta_provider._compat`` on first use, the client is never imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from immuta_provider._compat import Asset, AssetAlias
    from immuta_provider.client import ImmutaClient

__all__ = [
    "ASSET_SCHEME",
    "DEFAULT_ASSET_ALIAS",
    "MAX_COUNTED_DATA_OBJECTS",
    "connection_asset_uri",
    "count_data_objects",
    "immuta_connection_asset",
    "immuta_sync_alias",
    "sync_event_extra",
]

ASSET_SCHEME = "immuta"
DEFAULT_ASSET_ALIAS = "immuta_data_object_sync"
"""The asset alias the sync operator emits its events through, unless told another."""

MAX_COUNTED_DATA_OBJECTS = 1000
"""The data object count in an asset event stops here (at most 10 search requests of 100)."""
_COUNT_PAGE_SIZE = 100
_DEFAULT_PORTS = {"http": 80, "https": 443}


def connection_asset_uri(host_or_url: str, connection_key: str) -> str:
    """The asset URI of an Immuta connection: ``immuta://<host>[:<port>]/connections/<key>``.

    :param host_or_url: The Immuta host (``acme.hosted.immutacloud.com``) or URL
        (``https://acme.hosted.immutacloud.com/``, the Airflow connection's host). The scheme,
        credentials, path and a default port are dropped; the host is lower-cased.
    :param connection_key: The Immuta connection key.
    """
    text = str(host_or_url).strip()
    if not text:
        raise ValueError("An Immuta host or URL is required to build the connection's asset URI.")
    parts = urlsplit(text if "://" in text else f"//{text}")
    host = parts.hostname
    if not host:
        raise ValueError(f"No host in {host_or_url!r}: pass the Immuta host or URL.")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"Bad port in {host_or_url!r}: {exc}") from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        netloc += f":{port}"
    key = str(connection_key)
    if not key or "{{" in key:
        raise ValueError(f"A rendered Immuta connection key is required, got {connection_key!r}.")
    return f"{ASSET_SCHEME}://{netloc}/connections/{quote(key, safe='')}"


def immuta_connection_asset(host_or_url: str, connection_key: str) -> Asset:
    """The Airflow Asset (a Dataset on Airflow 2.11) of an Immuta connection's data objects.

    The sync operator emits an event for this asset each time it syncs the connection
    successfully; schedule a DAG on it with ``schedule=[immuta_connection_asset(...)]``.

    :param host_or_url: The Immuta host or URL, as in the Airflow connection (see
        :func:`connection_asset_uri`).
    :param connection_key: The Immuta connection key.
    """
    from immuta_provider._compat import Asset

    return Asset(connection_asset_uri(host_or_url, connection_key))


def immuta_sync_alias(name: str = DEFAULT_ASSET_ALIAS) -> AssetAlias:
    """The asset alias (a DatasetAlias on Airflow 2.11) the sync operator emits through."""
    from immuta_provider._compat import AssetAlias

    return AssetAlias(name)


def count_data_objects(
    client: ImmutaClient, connection_key: str, *, limit: int = MAX_COUNTED_DATA_OBJECTS
) -> tuple[int, bool]:
    """Count a connection's data objects, reading at most ``limit`` of them.

    The search API has no total, so this pages through the results (100 a page) and stops once
    ``limit`` are counted, keeping the cost bounded for connections with large inventories.

    :return: ``(count, exact)``; ``exact`` is ``False`` when the count stopped at ``limit``.
    """
    counted = 0
    for page in client.search_data_objects(connection_key, page_size=_COUNT_PAGE_SIZE).pages():
        counted += len(page.items)
        if page.next_cursor is None:
            return counted, True
        if counted >= limit:
            return counted, False
    return counted, True


def sync_event_extra(
    summary: dict[str, Any],
    *,
    task_run_url: str,
    data_object_count: int | None,
    data_object_count_exact: bool,
) -> dict[str, Any]:
    """The ``extra`` of a sync's asset event: the run summary, its Immuta page and the count.

    JSON-safe and free of secrets (the Airflow connection's key never gets here).
    """
    return {
        **summary,
        "task_run_url": task_run_url,
        "data_object_count": data_object_count,
        "data_object_count_exact": data_object_count_exact,
    }
