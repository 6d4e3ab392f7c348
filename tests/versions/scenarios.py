"""Names and timings shared by the version-suite DAG (dags/) and the tests that check it.

No Airflow import here. Each scenario has its own Immuta connection on the emulator.
"""

from __future__ import annotations

DAG_ID = "version_suite"
POLL_INTERVAL = 0.25
SYNC_SECONDS = 1.0
SENSOR_SYNC_SECONDS = 3.0  # long enough for every sensor mode to see the run before it ends

DEFERRED = "vs-sync-deferred"
SENSOR_POKE = "vs-sensor-poke"
SENSOR_RESCHEDULE = "vs-sensor-reschedule"
SENSOR_DEFERRED = "vs-sensor-deferred"
RESUME = "vs-resume"  # the first try loses contact with Immuta; what does the retry do?
RESUME_FAILED_POLLS = 5
NO_RETRIES_CONN_ID = "immuta_no_retries"

CONNECTIONS = (DEFERRED, SENSOR_POKE, SENSOR_RESCHEDULE, SENSOR_DEFERRED, RESUME)
SENSORS = {
    "poke": ("start_poke", "sensor_poke", SENSOR_POKE),
    "reschedule": ("start_reschedule", "sensor_reschedule", SENSOR_RESCHEDULE),
    "deferrable": ("start_deferred", "sensor_deferred", SENSOR_DEFERRED),
}
"""Sensor mode -> (task starting the sync, sensor task, connection key)."""
