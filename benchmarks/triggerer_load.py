"""``python -m benchmarks.triggerer_load SPEC_FILE``: defer N task instances as Airflow would.

Runs with the benchmark triggerer's Airflow environment (metadata DB, Fernet key) and writes, in
one transaction, what Airflow's task-deferral path writes when N tasks defer at once: one DAG run,
N task instances of the mapped task (map index 0..N-1) in state ``deferred`` with
``next_method="execute_complete"``, and N ``trigger`` rows built by ``Trigger.from_object`` from
real trigger objects (so the kwargs are serialized and encrypted by Airflow itself). The deferral
itself (a worker running the operator up to ``self.defer``) is skipped: starting 10,000 task
processes on 2 cores takes far longer than the triggerer phase being measured, and none of it is
the triggerer's cost.

Prints one JSON line: the DAG run id, the commit time, the trigger ids in spec order.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

DAG_ID = "bench_triggerer_waits"


def _triggers(spec: dict[str, Any]) -> list[Any]:
    now = time.time()
    if spec["variant"] == "dbt":
        from airflow.providers.dbt.cloud.triggers.dbt import DbtCloudRunJobTrigger

        return [
            DbtCloudRunJobTrigger(
                conn_id="dbt_cloud_default",
                run_id=int(item["run_id"]),
                account_id=spec["account_id"],
                end_time=now + spec["timeout"],
                poll_interval=spec["poll_interval"],
            )
            for item in spec["items"]
        ]
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    return [
        ImmutaTaskRunTrigger(
            immuta_conn_id="immuta_default",
            connection_key=spec["connection_key"],
            immuta_task_id=item["task_id"],
            run_id=item["run_id"],
            poll_interval=spec["poll_interval"],
            deadline=now + spec["timeout"],
            started_at=now,
            # The operator defers with the status it last logged, so the trigger's first line
            # is the next change, not the same status again.
            last_status=item.get("status"),
        )
        for item in spec["items"]
    ]


def load(spec: dict[str, Any]) -> dict[str, Any]:
    """Write the DAG run, task instances and triggers of ``spec``; return what was made."""
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    task_id = "dbt_wait" if spec["variant"] == "dbt" else "immuta_wait"
    triggers = _triggers(spec)
    with create_session() as session:
        serialized = SerializedDagModel.get(DAG_ID, session=session)
        if serialized is None:
            raise RuntimeError(f"DAG {DAG_ID} is not serialized: run `airflow dags reserialize`")
        dag, version_id = serialized.dag, serialized.dag_version_id
        task = dag.get_task(task_id)
        now = dt.datetime.now(dt.timezone.utc)
        run = DagRun(
            dag_id=DAG_ID,
            run_id=spec["dag_run_id"],
            run_type=DagRunType.MANUAL,
            state=DagRunState.RUNNING,
            run_after=now,
            start_date=now,
            triggered_by=DagRunTriggeredByType.TEST,
        )
        run.created_dag_version_id = version_id
        session.add(run)
        rows = [Trigger.from_object(trigger) for trigger in triggers]
        session.add_all(rows)
        session.flush()
        instances = []
        for index, row in enumerate(rows):
            instance = TaskInstance(
                task=task,
                dag_version_id=version_id,
                run_id=spec["dag_run_id"],
                state=TaskInstanceState.DEFERRED,
                map_index=index,
            )
            instance.try_number = 1
            instance.start_date = now
            instance.trigger_id = row.id
            instance.next_method = "execute_complete"
            instances.append(instance)
        session.add_all(instances)
        session.flush()
        trigger_ids = [row.id for row in rows]
        session.commit()
        committed = time.time()
    return {"dag_run_id": spec["dag_run_id"], "created_at": committed, "trigger_ids": trigger_ids}


if __name__ == "__main__":
    result = load(json.loads(Path(sys.argv[1]).read_text()))
    sys.stdout.write(json.dumps(result) + "\n")
