"""A sync whose create-task answer is lost, with ``retries=0`` (test_ambiguous_create.py).

Each task syncs its own connection of the emulator, whose create-task request the test breaks in
a different way before the DAG runs.
"""

from __future__ import annotations

import datetime

try:
    from airflow.sdk import DAG, chain
except ImportError:  # Airflow 2.11
    from airflow.models.baseoperator import chain
    from airflow.models.dag import DAG

from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

DAG_ID = "it_lost_create_answer"
DROPPED_ANSWER = "it-lost-dropped"  # the create reaches Immuta, the connection drops its answer
MALFORMED_ANSWER = "it-lost-malformed"  # the create reaches Immuta, its answer is cut in half
NEVER_ARRIVED = "it-lost-before-immuta"  # the connection drops before Immuta sees the create

with DAG(
    DAG_ID,
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    default_args={"trigger_rule": "all_done", "retries": 0},
) as dag:
    chain(
        *(
            ImmutaDataObjectSyncOperator(
                task_id=f"sync_{key.replace('-', '_')}",
                connection_key=key,
                poll_interval=0.25,
                # No attaching to a running sync before the create: what is followed is found
                # only because the create's answer was lost.
                reuse_running_sync=False,
                deferrable=False,
            )
            for key in (DROPPED_ANSWER, MALFORMED_ANSWER, NEVER_ARRIVED)
        )
    )
