"""Start-up data: the demo connections (one in every state) and optional large inventories.

Everything is drawn from a seeded random generator, so ids are the same on every start and reset.
"""

from __future__ import annotations

import random
from typing import Any

from . import catalog
from .records import HEALTH_COMPONENTS, ConnectionRecord, DataObjectRecord, RunRecord, TaskRecord
from .scheduler import SYSTEM_PRINCIPAL, auth_failure
from .state import State

SEEDS = ("demo", "none")
LARGE_CONNECTION_KEY = "snowflake-large"
ADMIN_PRINCIPAL = "admin@acme.example"
BAD_PASSWORD = "invalid-rotated-2024"  # noqa: S105 - the emulator's marker for rejected credentials

# key, technology, state, client configuration, (databases, schemas per database, tables per
# schema)
_DEMO_CONNECTIONS: list[tuple[str, str, str, dict[str, Any], tuple[int, int, int]]] = [
    (
        "snowflake-prod",
        "Snowflake",
        "ACTIVE",
        {
            "hostname": "acme-prod.snowflakecomputing.com",
            "port": 443,
            "warehouse": "IMMUTA_WH",
            "role": "IMMUTA_SYSTEM",
            "authenticationType": "userPassword",
            "username": "IMMUTA_SYSTEM_ACCOUNT",
            "password": "demo-snowflake-password",
        },
        (3, 3, 16),
    ),
    (
        "databricks-analytics",
        "Databricks",
        "ACTIVE",
        {
            "hostname": "dbc-4f2a9c1e-77b3.cloud.databricks.com",
            "port": 443,
            "httpPath": "/sql/1.0/warehouses/5e1d2c3b4a596877",
            "authenticationType": "accessToken",
            "token": "demo-databricks-token",
        },
        (2, 3, 12),
    ),
    (
        "trino-archive",
        "Trino",
        "INACTIVE",
        {
            "hostname": "trino.internal.acme.example",
            "port": 8443,
            "authenticationType": "userPassword",
            "username": "immuta",
            "password": "demo-trino-password",
        },
        (1, 2, 10),
    ),
    (
        "snowflake-legacy",
        "Snowflake",
        "UNHEALTHY",
        {
            "hostname": "acme-legacy.snowflakecomputing.com",
            "port": 443,
            "warehouse": "LEGACY_WH",
            "role": "IMMUTA_LEGACY",
            "authenticationType": "userPassword",
            "username": "IMMUTA_LEGACY_ACCOUNT",
            "password": BAD_PASSWORD,
        },
        (1, 2, 8),
    ),
]
DAY = catalog.DAY


def seed_state(state: State, seed: str, *, large_objects: int = 0) -> None:
    """Fill an empty ``state`` with the named seed, plus ``large_objects`` objects in one
    extra ACTIVE connection (``snowflake-large``) when it is positive."""
    if seed not in SEEDS:
        raise ValueError(f"Unknown seed {seed!r}; choose one of {', '.join(SEEDS)}.")
    rng = random.Random(f"immuta-emulator:{seed}")  # noqa: S311 - stable ids, not secrets
    now = state.clock()
    if seed == "demo":
        for key, technology, connection_state, config, shape in _DEMO_CONNECTIONS:
            connection = _connection(state, key, technology, connection_state, config, now)
            _tree(state, rng, connection, shape, now - 2 * DAY)
            _history(state, rng, connection, now)
    if large_objects > 0:
        config = dict(_DEMO_CONNECTIONS[0][3], hostname="acme-dw.snowflakecomputing.com")
        connection = _connection(state, LARGE_CONNECTION_KEY, "Snowflake", "ACTIVE", config, now)
        _large_tree(state, rng, connection, large_objects, now - DAY)


def _connection(
    state: State,
    key: str,
    technology: str,
    connection_state: str,
    config: dict[str, Any],
    now: float,
) -> ConnectionRecord:
    checked = now - 3600.0
    healthy = {"status": "HEALTHY", "message": None, "checkedAt": checked}
    health = {name: dict(healthy) for name in HEALTH_COMPONENTS}
    if connection_state == "UNHEALTHY":
        health["client"] = {
            "status": "UNHEALTHY",
            "message": f"{technology} rejected the credentials: incorrect username or password.",
            "checkedAt": checked,
        }
    record = ConnectionRecord(
        seq=state.next_seq(),
        key=key,
        technology=technology,
        state=connection_state,
        client_configuration=dict(config),
        policy_configuration={"enabled": True},
        audit_configuration={"enabled": technology != "Trino"},
        health=health,
        created_by=ADMIN_PRINCIPAL,
        created_at=now - 90 * DAY,
        updated_by=ADMIN_PRINCIPAL,
        updated_at=now - 7 * DAY,
    )
    state.add_connection(record)
    return record


def _tree(
    state: State,
    rng: random.Random,
    connection: ConnectionRecord,
    shape: tuple[int, int, int],
    at: float,
) -> None:
    databases, schemas, tables = shape
    for database_name in catalog.database_names(connection.technology)[:databases]:
        database = state.add_object(connection, None, database_name, "database", at, rng)
        for schema_name in catalog.SCHEMA_NAMES[:schemas]:
            schema = state.add_object(connection, database, schema_name, "schema", at, rng)
            for index in range(tables):
                kind = "view" if index % 7 == 6 else "table"
                state.add_object(connection, schema, catalog.table_name(index), kind, at, rng)


def _large_tree(
    state: State, rng: random.Random, connection: ConnectionRecord, total: int, at: float
) -> None:
    """Exactly ``total`` objects: a few databases of eight schemas each, the rest tables."""
    databases = max(1, min(len(catalog.DATABASE_NAMES["Snowflake"]), total // 20_000))
    schemas_per_database = len(catalog.SCHEMA_NAMES)
    containers = databases * (1 + schemas_per_database)
    if total <= containers:  # too few for the full shape: one database, then schemas
        databases, schemas_per_database = 1, max(0, min(total - 1, len(catalog.SCHEMA_NAMES)))
        containers = 1 + schemas_per_database
    schemas: list[DataObjectRecord] = []
    for database_name in catalog.DATABASE_NAMES["Snowflake"][:databases]:
        database = state.add_object(connection, None, database_name, "database", at, rng)
        for schema_name in catalog.SCHEMA_NAMES[:schemas_per_database]:
            schemas.append(state.add_object(connection, database, schema_name, "schema", at, rng))
    tables = total - containers
    # Tables are added schema by schema so that each schema's children are contiguous.
    for position, schema in enumerate(schemas):
        share = tables // len(schemas) + (1 if position < tables % len(schemas) else 0)
        for index in range(share):
            state.add_object(connection, schema, catalog.table_name(index), "table", at, rng)


def _history(state: State, rng: random.Random, connection: ConnectionRecord, now: float) -> None:
    """One past sync per active-ish connection, so task listings are not empty at start."""
    if connection.state == "INACTIVE":
        return
    started = now - DAY
    task = TaskRecord(
        seq=state.next_seq(),
        id=catalog.random_uuid(rng),
        connection_key=connection.key,
        type="DATA_OBJECT_SYNC",
        trigger="SCHEDULED",
        created_by=SYSTEM_PRINCIPAL,
        created_at=started,
        parent_id=None,
        target_id=None,
        extra={},
        run_ids=[],
    )
    failed = connection.credentials_rejected()
    run = RunRecord(
        seq=state.next_seq(),
        id=catalog.random_uuid(rng),
        task_id=task.id,
        connection_key=connection.key,
        created_at=started,
        start_at=started + 1.0,
        end_at=started + 95.0,
        outcome="FAILED" if failed else "COMPLETED",
        error=auth_failure(connection) if failed else None,
        cancel_delay=1.0,
        status="FAILED" if failed else "COMPLETED",
        updated_at=started + 95.0,
        started_at=started + 1.0,
        completed_at=started + 95.0,
    )
    task.run_ids.append(run.id)
    state.add_task(task)
    state.add_run(run)
