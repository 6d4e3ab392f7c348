"""Names and timings shared by the connection/data object scenario DAGs and their tests.

No Airflow import here. Each scenario uses its own Immuta connection on the emulator (created by
the test, prefix ``itc-`` for the connection DAG, ``itd-`` for the data object DAG), except the
searches and the data object deletion, which use the demo seed's inventories.
"""

from __future__ import annotations

POLL_INTERVAL = 0.25
LONG_SYNC_SECONDS = 120.0  # syncs the cancel scenarios cancel long before they would end
SENSOR_TIMEOUT_SECONDS = 2.0

CONNECTION_DAG = "it_connection_operators"
DATA_OBJECT_DAG = "it_data_object_operators"

# An Airflow connection holding the data platform's credentials, templated into create bodies.
PLATFORM_CONN_ID = "itc_platform"
PLATFORM_LOGIN = "itc-service-user"
PLATFORM_PASSWORD = "itc-platform-password-5678"  # must never show up in logs, XCom, templates

# ---- it_connection_operators -----------------------------------------------------------------
HEALTHY = "itc-healthy"
UNHEALTHY = "itc-unhealthy"  # created with credentials the emulator rejects
ACTIVE = "itc-active"
TOGGLE = "itc-toggle"  # INACTIVE at the start: activated, deactivated, deactivated again
CREATED = "itc-created"  # created by the DAG, then deleted by it
UPDATED = "itc-updated"
INACTIVE = "itc-inactive"  # INACTIVE: an update is refused, a plain delete works
CREATED_WAREHOUSE = "ITC_WH"
UPDATED_WAREHOUSE = "ITC_NEW_WH"
DRY_RUN_WAREHOUSE = "ITC_DRY_RUN_WH"
BODY_FILE = "itc_connection_body.json"  # next to the DAG file (the DAG folder)

# ---- it_data_object_operators ----------------------------------------------------------------
SEARCHED = "snowflake-prod"  # demo seed: 3 databases x 3 schemas x 16 objects (tables, views)
DELETED_FROM = "databricks-analytics"  # demo seed: one of its schemas is deleted
MISSING_CONNECTION = "itd-no-such-connection"
MISSING_ID = "2f1c7c3e-9a51-4b8e-8d2a-7e5b3c9a1f00"
CANCEL = "itd-cancel"
HEALTH_WAIT = "itd-health-wait"  # health UNKNOWN until the test validates it from outside
HEALTH_BROKEN = "itd-health-broken"  # credentials the emulator rejects: never healthy
SEARCH_CUT = 3
RENAMED_TABLE = "itd_renamed_table"

CREATED_FOR_CONNECTION_DAG = (HEALTHY, UNHEALTHY, ACTIVE, TOGGLE, UPDATED, INACTIVE)
CREATED_FOR_DATA_OBJECT_DAG = (CANCEL, HEALTH_WAIT, HEALTH_BROKEN)
STARTS_INACTIVE = (TOGGLE, INACTIVE)
REJECTED_CREDENTIALS = (UNHEALTHY, HEALTH_BROKEN)
