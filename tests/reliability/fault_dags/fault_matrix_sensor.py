"""The "sensor poke" column of the fault matrix: one poke-mode sensor per fault.

The test writes the cells (connection key, Immuta task and run) to the JSON file named by
``IMMUTA_FAULT_MATRIX_CELLS`` and injects each cell's fault on the emulator before starting
``dag.test()``. The sensors run one after the other (``all_done``), so every cell runs whatever
the others did.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

from airflow.sdk import DAG, chain

from immuta_provider.sensors.immuta import ImmutaTaskRunSensor

CELLS = (
    json.loads(Path(os.environ["IMMUTA_FAULT_MATRIX_CELLS"]).read_text())
    if (os.environ.get("IMMUTA_FAULT_MATRIX_CELLS"))
    else []
)

with DAG(
    "fault_matrix_sensor",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    default_args={"trigger_rule": "all_done", "retries": 0},
) as dag:
    chain(
        *[
            ImmutaTaskRunSensor(
                task_id=cell["airflow_task_id"],
                immuta_conn_id=cell["conn_id"],
                connection_key=cell["connection_key"],
                immuta_task_id=cell["immuta_task_id"],
                run_id=cell["run_id"],
                mode="poke",
                poke_interval=0.1,
                timeout=cell["timeout"],
            )
            for cell in CELLS
        ]
    )
