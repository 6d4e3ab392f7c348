"""Names and timings shared by the scenario DAGs (dags/) and the tests that check them.

No Airflow import here: the test module reads these without defining any DAG.
Each scenario has its own Immuta connection on the emulator, so the emulator's per-connection
counters and runs tell the scenarios apart.
"""

from __future__ import annotations

POLL_INTERVAL = 0.25
SYNC_SECONDS = 1.0  # how long an ordinary emulator sync takes
TIMEOUT_SECONDS = 2.0  # the operator's timeout in the timeout scenarios
LONG_SYNC_SECONDS = 60.0  # syncs that the test cancels from outside long before they end

OPERATOR_DAG = "it_sync_operator"
SENSOR_DAG = "it_task_run_sensor"

# Operator scenarios (connections created by the test, except the demo seed's UNHEALTHY one).
SYNC_BLOCKING = "it-sync-blocking"
SYNC_DEFERRED = "it-sync-deferred"
FAILING = "snowflake-legacy"  # demo seed: its syncs end FAILED with CONNECTION_AUTH_FAILED
FAILING_CODE = "CONNECTION_AUTH_FAILED"
REATTACH = "it-reattach"
RESUME = "it-resume"  # the first try loses contact with Immuta; the retry resumes its run
RESUME_FAILED_POLLS = 5  # the operator gives up after this many failed polls in a row
NO_RETRIES_CONN_ID = "immuta_no_retries"  # an Airflow connection with max_retries=0
STUCK_BLOCKING = "it-stuck-blocking"
STUCK_DEFERRED = "it-stuck-deferred"
CANCEL_BLOCKING = "it-cancel-blocking"
CANCEL_DEFERRED = "it-cancel-deferred"

# Sensor scenarios.
SENSOR_POKE = "it-sensor-poke"
SENSOR_RESCHEDULE = "it-sensor-reschedule"
SENSOR_DEFERRED = "it-sensor-deferred"

CREATED_CONNECTIONS = (
    SYNC_BLOCKING,
    SYNC_DEFERRED,
    REATTACH,
    RESUME,
    STUCK_BLOCKING,
    STUCK_DEFERRED,
    CANCEL_BLOCKING,
    CANCEL_DEFERRED,
    SENSOR_POKE,
    SENSOR_RESCHEDULE,
    SENSOR_DEFERRED,
)
STUCK = (STUCK_BLOCKING, STUCK_DEFERRED)
CANCELLED_FROM_OUTSIDE = (CANCEL_BLOCKING, CANCEL_DEFERRED)

# Asset events and progress lines (test_assets_and_progress.py, dags/asset_scenarios.py).
ASSET_DAG = "it_sync_assets"
ASSET_DOWNSTREAM_DAG = "immuta_downstream_on_fresh_inventory"  # example_dags/
ASSET_MAPPED = ("it-asset-mapped-a", "it-asset-mapped-b")
ASSET_BLOCKING = "it-asset-blocking"
ASSET_OPT_OUT = "it-asset-opt-out"
ASSET_SENSOR = "it-asset-sensor"
ASSET_CONNECTIONS = (*ASSET_MAPPED, ASSET_BLOCKING, ASSET_OPT_OUT, ASSET_SENSOR)
ASSET_SYNC_SECONDS = 3.5  # long enough for a few heartbeat lines at the interval below
PROGRESS_LOG_INTERVAL = 1.0  # [immuta] progress_log_interval in the child processes
