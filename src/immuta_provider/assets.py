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

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

if TYPE_CHECKING:
    from immuta_provider._compat import Asset, AssetAlias
    from immuta_provider.client import ImmutaClient

__all__ = [
    "ANNOUNCED_SYNCS_KEY",
    "ASSET_SCHEME",
    "DEFAULT_ASSET_ALIAS",
    "MAX_COUNTED_DATA_OBJECTS",
    "announce_operator_sync",
    "connection_asset_uri",
    "count_data_objects",
    "immuta_connection_asset",
    "immuta_sync_alias",
    "immuta_sync_completed_asset",
    "normalize_asset_uri",
    "sync_event_extra",
]

ASSET_SCHEME = "immuta"
DEFAULT_ASSET_ALIAS = "immuta_data_object_sync"
"""The asset alias the sync operator emits its events through, unless told another."""

MAX_COUNTED_DATA_OBJECTS = 1000
"""The data object count in an asset event stops here (at most 10 search requests of 100)."""
_COUNT_PAGE_SIZE = 100
_DEFAULT_PORTS = {"http": 80, "https": 443}
ANNOUNCED_SYNCS_KEY = "immuta_syncs_announced"
"""Asset state store key listing the Immuta sync tasks whose asset event a sync operator emits
itself; sync watchers of the same asset do not fire for them (one downstream run per sync)."""
MAX_ANNOUNCED_SYNCS = 50
_CONNECTION_KEY = re.compile(r"[A-Za-z0-9_-]+")
_URI_FORM = "immuta://<host>[:<port>]/connections/<connection key>"


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


def immuta_sync_completed_asset(
    host_or_url: str,
    connection_key: str,
    *,
    immuta_conn_id: str = "immuta_default",
    poll_interval: float = 60.0,
    fire_on_failure: bool = False,
    watcher_name: str | None = None,
) -> Asset:
    """The connection's asset, watched: it gets an event whenever a sync of the connection ends.

    The same asset as :func:`immuta_connection_asset` (same URI), with an ``AssetWatcher`` running
    :class:`~immuta_provider.triggers.sync_completed.ImmutaSyncCompletedTrigger` in the
    triggerer. A DAG scheduled on it runs once per completed sync, whoever started the sync
    (Airflow, Immuta's UI or its schedule); syncs run by the provider's sync operator are announced
    by it and emitted once, by the operator. Needs Airflow 3.3+ (raises ``RuntimeError`` saying so
    on older versions).

    :param host_or_url: The Immuta host or URL, as in the Airflow connection (see
        :func:`connection_asset_uri`); it must match the Airflow connection's host for the
        operator's events and the watcher's to land on the same asset.
    :param connection_key: The Immuta connection key.
    :param immuta_conn_id: The Airflow connection the watcher polls Immuta with.
    :param poll_interval: Seconds between two looks at the connection's syncs.
    :param fire_on_failure: Also fire for syncs that fail or are cancelled.
    :param watcher_name: The watcher's name in Airflow (default ``immuta_sync_<connection key>``).
    """
    from immuta_provider._compat import event_scheduling_unavailable

    unavailable = event_scheduling_unavailable()
    if unavailable is not None:
        raise RuntimeError(unavailable)
    from immuta_provider._compat import Asset, AssetWatcher
    from immuta_provider.triggers.sync_completed import ImmutaSyncCompletedTrigger

    trigger = ImmutaSyncCompletedTrigger(
        connection_key=connection_key,
        immuta_conn_id=immuta_conn_id,
        poll_interval=poll_interval,
        fire_on_failure=fire_on_failure,
    )
    name = watcher_name or f"immuta_sync_{connection_key}".replace("-", "_")
    return Asset(
        connection_asset_uri(host_or_url, connection_key),
        watchers=[AssetWatcher(name=name, trigger=trigger)],
    )


def announce_operator_sync(asset_uri: str, immuta_task_id: str) -> str | None:
    """Record in the asset's state store that the running operator will emit this sync's event.

    Called by the sync operator right after it starts (or attaches to) a sync, before waiting, so
    that a sync watcher of the same asset, which may see the sync end before the operator does,
    skips it. Keeps the last :data:`MAX_ANNOUNCED_SYNCS` task ids.

    :return: ``None`` when recorded, else why not (no state store before Airflow 3.3, or no
        active asset with that URI: then no watcher watches it either).
    """
    from immuta_provider._compat import asset_state_accessor

    accessor = asset_state_accessor(asset_uri)
    if accessor is None:
        return "this Airflow has no asset state store"
    try:
        announced = accessor.get(ANNOUNCED_SYNCS_KEY)
        recent = (
            [str(t) for t in announced if str(t) != immuta_task_id]
            if isinstance(announced, list)
            else []
        )
        accessor.set(ANNOUNCED_SYNCS_KEY, [*recent, immuta_task_id][-MAX_ANNOUNCED_SYNCS:])
    except Exception as exc:  # e.g. no DAG declares the asset: nothing watches it
        return f"{type(exc).__name__}: {exc}"
    return None


def normalize_asset_uri(parts: SplitResult) -> SplitResult:
    """Airflow's normalizer of ``immuta://`` asset URIs (registered in the provider info).

    Accepts ``immuta://<host>[:<port>]/connections/<connection key>`` and returns it with the host
    lower-cased; raises ``ValueError`` naming the problem for anything else (Airflow then refuses
    the asset), so that a typo cannot create an asset no sync ever updates.
    """
    uri = parts.geturl()
    problem = _uri_problem(parts)
    if problem is not None:
        raise ValueError(f"Invalid Immuta asset URI {uri!r}: {problem}. Expected {_URI_FORM}.")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return parts._replace(scheme=ASSET_SCHEME, netloc=netloc)


def _uri_problem(parts: SplitResult) -> str | None:
    if parts.scheme.lower() != ASSET_SCHEME:
        return f"the scheme must be {ASSET_SCHEME!r}"
    if parts.username is not None or parts.password is not None:
        return "it must not contain credentials"
    if not parts.hostname:
        return "the Immuta host is missing"
    try:
        port = parts.port
    except ValueError:
        return "the port is not a number from 0 to 65535"
    if port == 0:
        return "the port must be from 1 to 65535"
    if parts.query:
        return "it must not have a query string"
    segments = parts.path.split("/")
    if len(segments) != 3 or segments[0] != "" or segments[1] != "connections":
        return "the path must be /connections/<connection key>"
    key = unquote(segments[2])
    if not _CONNECTION_KEY.fullmatch(key):
        return (
            f"{key!r} is not an Immuta connection key (letters, digits, '-' and '_' only)"
            if key
            else "the connection key is missing"
        )
    return None


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
