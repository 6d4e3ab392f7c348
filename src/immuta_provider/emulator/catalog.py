"""The pretend remote platforms: realistic database, schema and table names per technology.

Used by the seed and by syncs (which "discover" new tables), so both produce the same shapes.
"""

from __future__ import annotations

import random
import uuid

from .records import DataObjectRecord

DATABASE_NAMES = {
    "Snowflake": ["ANALYTICS", "RAW", "FINANCE", "MARKETING", "SALES_OPS", "PRODUCT", "HR"],
    "Databricks": ["main", "analytics", "ml_features", "bronze", "silver", "gold"],
    "Trino": ["hive", "iceberg", "lakehouse", "archive"],
}
SCHEMA_NAMES = ["public", "staging", "reporting", "crm", "billing", "events", "core", "finance"]
ENTITIES = [
    "orders",
    "customers",
    "invoices",
    "payments",
    "shipments",
    "products",
    "accounts",
    "sessions",
    "page_views",
    "subscriptions",
    "refunds",
    "campaigns",
    "leads",
    "opportunities",
    "employees",
    "inventory",
    "suppliers",
    "returns",
    "clicks",
    "transactions",
]
SUFFIXES = ["", "_daily", "_history", "_snapshot", "_v2", "_raw", "_agg", "_dim", "_fact"]

# (remoteType, remoteFormat) of a table or view, per technology.
_TABLE_REMOTE: dict[str, dict[str, tuple[str, str | None]]] = {
    "Snowflake": {"table": ("BASE TABLE", None), "view": ("VIEW", None)},
    "Databricks": {"table": ("MANAGED", "DELTA"), "view": ("VIEW", None)},
    "Trino": {"table": ("TABLE", "PARQUET"), "view": ("VIEW", None)},
}
_NORMALIZED = {"database": "DATABASE", "schema": "SCHEMA", "table": "TABLE", "view": "TABLE"}
DAY = 86400.0


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (deterministic seeds give stable ids)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def platform_name(technology: str, name: str) -> str:
    """Snowflake shouts its identifiers; the others keep them lower case."""
    return name.upper() if technology == "Snowflake" else name.lower()


def database_names(technology: str) -> list[str]:
    """Plausible database (or catalog) names for a technology."""
    return DATABASE_NAMES.get(technology, DATABASE_NAMES["Trino"])


def table_name(index: int) -> str:
    """The ``index``-th table name of a schema: realistic first, then numbered to stay unique."""
    combos = len(ENTITIES) * len(SUFFIXES)
    entity = ENTITIES[index % len(ENTITIES)]
    suffix = SUFFIXES[(index // len(ENTITIES)) % len(SUFFIXES)]
    return entity + suffix if index < combos else f"{entity}{suffix}_{index // combos:04d}"


def make_object(
    seq: int,
    rng: random.Random,
    *,
    connection_key: str,
    technology: str,
    parent: DataObjectRecord | None,
    name: str,
    kind: str,
    now: float,
    created_by: str,
) -> DataObjectRecord:
    """A data object of ``kind`` (database, schema, table or view) under ``parent``."""
    name = platform_name(technology, name)
    remote_id = name if parent is None else f"{parent.remote_id}.{name}"
    remote_type: str | None = None
    remote_format: str | None = None
    if kind in ("table", "view"):
        remote_type, remote_format = _TABLE_REMOTE.get(technology, _TABLE_REMOTE["Trino"])[kind]
    elif technology == "Databricks" and kind == "database":
        remote_type = "CATALOG"
    remote_created = now - rng.uniform(30, 900) * DAY
    return DataObjectRecord(
        seq=seq,
        id=random_uuid(rng),
        connection_key=connection_key,
        parent_id=None if parent is None else parent.id,
        name=name,
        type=kind,
        normalized_type=_NORMALIZED[kind],
        technology=technology,
        remote_id=remote_id,
        remote_type=remote_type,
        remote_format=remote_format,
        remote_kind=kind.upper(),
        remote_created_at=remote_created,
        remote_updated_at=min(now, remote_created + rng.uniform(0, 30) * DAY),
        last_synced_at=now,
        created_by=created_by,
        created_at=now,
        updated_by=created_by,
        updated_at=now,
    )
