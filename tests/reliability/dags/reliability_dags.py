"""DAGs for the multi-process Airflow reliability tests (tests/reliability).

One DAG per scenario, each syncing its own Immuta connection on the emulator, so that the
emulator's per-connection counters tell the scenarios apart. The two worker-kill DAGs sync
connections of the emulator's demo seed that have databases, so each sync also creates sub-tasks
(one per database) that a reattaching retry must not confuse with the sync it started; the other
connections are created by the test module.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
# Long enough never to fire during a test: each scenario ends well before it.
TIMEOUT_SECONDS = 600

TRIGGERER_LOSS_KEY = "reliability-triggerer-loss"
TRIGGERER_RESTART_KEY = "reliability-triggerer-restart"
TASK_PROCESS_KILL_KEY = "snowflake-prod"
WORKER_KILL_KEY = "databricks-analytics"
WORKER_KILL_LATE_KEY = "reliability-worker-kill-late"
MARK_FAILED_KEY = "reliability-mark-failed"
DEADLINE_KEY = "reliability-deadline"
# Short enough to pass while the test waits, long enough for a triggerer to die and be replaced.
DEADLINE_TIMEOUT_SECONDS = 40

for dag_id, connection_key in (
    ("reliability_triggerer_loss", TRIGGERER_LOSS_KEY),
    ("reliability_triggerer_restart", TRIGGERER_RESTART_KEY),
):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        ImmutaDataObjectSyncOperator(
            task_id="sync",
            connection_key=connection_key,
            deferrable=True,
            poll_interval=1,
            timeout=TIMEOUT_SECONDS,
        )

with DAG("reliability_deadline_after_move", schedule=None, start_date=START, catchup=False):
    ImmutaDataObjectSyncOperator(
        task_id="sync",
        connection_key=DEADLINE_KEY,
        deferrable=True,
        poll_interval=1,
        timeout=DEADLINE_TIMEOUT_SECONDS,
        cancel_on_kill=True,
    )

for dag_id, connection_key in (
    ("reliability_task_process_kill", TASK_PROCESS_KILL_KEY),
    ("reliability_worker_kill", WORKER_KILL_KEY),
    ("reliability_worker_kill_late", WORKER_KILL_LATE_KEY),
):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        ImmutaDataObjectSyncOperator(
            task_id="sync",
            connection_key=connection_key,
            deferrable=False,
            poll_interval=1,
            timeout=TIMEOUT_SECONDS,
            retries=1,
            retry_delay=datetime.timedelta(seconds=1),
        )

with DAG("reliability_mark_failed", schedule=None, start_date=START, catchup=False):
    ImmutaDataObjectSyncOperator(
        task_id="sync",
        connection_key=MARK_FAILED_KEY,
        deferrable=True,
        poll_interval=1,
        timeout=TIMEOUT_SECONDS,
        cancel_on_kill=True,
    )
