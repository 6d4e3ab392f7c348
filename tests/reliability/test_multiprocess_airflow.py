"""The sync operator in a real multi-process Airflow: failures that peers get wrong.

One cluster for the module: PostgreSQL on 127.0.0.1, `airflow scheduler` (LocalExecutor),
`airflow dag-processor`, `airflow api-server` and two `airflow triggerer`, every one a separate
process; the Immuta emulator as one more. Each scenario SIGKILLs or overrides something mid-sync
and then checks, on the emulator, what happened to the remote run:

* a triggerer dies while it holds the deferred sync: the other triggerer takes the trigger over,
  the run is not cancelled, no second sync starts, the deadline is the same, the task succeeds;
* the worker running a non-deferrable sync dies: Airflow's retry reattaches to the same run;
* a user marks the deferred task failed through the REST API: the remote run is cancelled.

The figures (takeover time, tasks created, run statuses, durations) are printed in pytest's
terminal summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .airflow_cluster import AirflowCluster, die_with_parent, running_cluster, wait_until
from .postgres import free_port, running_postgres

# Every wait inside is bounded; this is the backstop (cluster start-up counts in the first test).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

API_KEY = "reliability-api-key"
# The Immuta connections synced by the DAGs in dags/reliability_dags.py (not imported from there:
# that would import Airflow into the pytest process with whatever configuration it has).
TRIGGERER_LOSS_KEY = "reliability-triggerer-loss"
TRIGGERER_RESTART_KEY = "reliability-triggerer-restart"
TASK_PROCESS_KILL_KEY = "snowflake-prod"
WORKER_KILL_KEY = "databricks-analytics"
WORKER_KILL_LATE_KEY = "reliability-worker-kill-late"
MARK_FAILED_KEY = "reliability-mark-failed"
DEADLINE_KEY = "reliability-deadline"
DEADLINE_TIMEOUT_SECONDS = 40
TASK = "sync"
ACTIVE = {"PENDING", "RUNNING"}
CANCEL_STATES = {"CANCELING", "CANCELED"}
DAG_IDS = (
    "reliability_triggerer_loss",
    "reliability_triggerer_restart",
    "reliability_deadline_after_move",
    "reliability_task_process_kill",
    "reliability_worker_kill",
    "reliability_worker_kill_late",
    "reliability_mark_failed",
)


# ---- the emulator, as a separate process -----------------------------------------------------


@dataclass
class EmulatorProcess:
    """`python -m immuta_provider.emulator` on a free loopback port, with small helpers."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def __post_init__(self) -> None:
        self.api = httpx.Client(
            base_url=f"{self.url}/api", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
        )
        self.admin = httpx.Client(base_url=f"{self.url}/_emulator", timeout=10)

    def close(self) -> None:
        self.api.close()
        self.admin.close()

    def counters(self) -> dict[str, Any]:
        response = self.admin.get("/counters")
        response.raise_for_status()
        return dict(response.json())

    def tasks_created(self, key: str) -> int:
        return int(self.counters().get("tasks_created", {}).get(key, 0))

    def requests_matching(self, prefix: str, suffix: str = "") -> int:
        """How many requests the emulator served on paths `METHOD /path` with this prefix."""
        return sum(
            count
            for name, count in self.counters().get("requests", {}).items()
            if name.startswith(prefix) and name.endswith(suffix)
        )

    def set_sync_duration(self, key: str, seconds: float) -> None:
        response = self.admin.put(
            f"/connections/{key}/behaviour",
            json={"sync_duration": seconds, "fail": None, "stuck": False},
        )
        response.raise_for_status()

    def create_connection(self, key: str) -> None:
        response = self.api.post(
            "/connections",
            json={
                "connectionKey": key,
                "technology": "Snowflake",
                "clientConfiguration": {"hostname": "reliability.example.invalid"},
            },
        )
        response.raise_for_status()

    def user_tasks(self, key: str) -> list[dict[str, Any]]:
        """The tasks a client created (trigger MANUAL), not the per-database child tasks."""
        response = self.api.get(
            f"/connections/{key}/tasks", params={"filter[trigger]": "MANUAL", "page[limit]": 100}
        )
        response.raise_for_status()
        return [task for task in response.json()["tasks"] if not task.get("parentId")]

    def runs(self, key: str, task_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/connections/{key}/tasks/{task_id}/runs")
        response.raise_for_status()
        return list(response.json()["runs"])

    def only_run(self, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The one user task of `key` and its one run (fails if there are more)."""
        tasks = self.user_tasks(key)
        assert len(tasks) == 1, f"expected exactly one sync task on {key}, found {tasks}"
        runs = self.runs(key, tasks[0]["taskId"])
        assert len(runs) == 1, f"expected exactly one run of {tasks[0]['taskId']}, found {runs}"
        return tasks[0], runs[0]

    def run_in(self, key: str, statuses: set[str]) -> dict[str, Any] | None:
        """The one run of `key` if its status is one of `statuses`, else None."""
        _, run = self.only_run(key)
        return run if run["status"] in statuses else None

    def poll_count(self, key: str, task_id: str) -> int:
        """GETs of the task's runs: one per status check of the operator or trigger."""
        return self.requests_matching(f"GET /api/connections/{key}/tasks/{task_id}/runs")

    def cancel_count(self, key: str) -> int:
        return self.requests_matching(f"POST /api/connections/{key}/tasks/", "/_cancel")

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.contextmanager
def running_emulator(log_path: Path) -> Iterator[EmulatorProcess]:
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "immuta_provider.emulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--seed",
                "demo",
                "--api-key",
                API_KEY,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    emulator = EmulatorProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:

        def ready() -> bool:
            assert process.poll() is None, f"the emulator exited:\n{emulator.log_tail()}"
            return emulator.admin.get("/counters").status_code == 200

        wait_until("the emulator", ready, timeout=60, interval=0.2)
        yield emulator
    finally:
        emulator.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("multiprocess-airflow")


@pytest.fixture(scope="module")
def emulator(work_dir: Path) -> Iterator[EmulatorProcess]:
    with running_emulator(work_dir / "emulator.log") as running:
        yield running


@pytest.fixture(scope="module")
def cluster(emulator: EmulatorProcess, work_dir: Path) -> Iterator[AirflowCluster]:
    connection = {"conn_type": "immuta", "host": emulator.url, "password": API_KEY}
    extra_env = {"AIRFLOW_CONN_IMMUTA_DEFAULT": json.dumps(connection)}
    started = time.monotonic()
    with running_postgres() as postgres, running_cluster(work_dir, postgres, extra_env) as running:
        for dag_id in DAG_IDS:
            running.wait_for_dag(dag_id)
        print(
            f"\nAirflow cluster up in {time.monotonic() - started:.1f}s; "
            f"component logs in {running.logs}"
        )
        yield running


# ---- helpers ----------------------------------------------------------------------------------


def holder_of(cluster: AirflowCluster, dag_id: str, run_id: str) -> int | None:
    """The `job` id of the triggerer that holds the task's trigger (REST API view)."""
    trigger = cluster.task_instance(dag_id, run_id, TASK).get("trigger") or {}
    value = trigger.get("triggerer_id")
    return int(value) if value is not None else None


def trigger_row(cluster: AirflowCluster, trigger_id: int) -> dict[str, Any]:
    rows = [row for row in cluster.triggers() if row["id"] == trigger_id]
    assert rows, f"trigger {trigger_id} is gone from the trigger table"
    return rows[0]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc), parents first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def command_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return ""


def start_sync(
    cluster: AirflowCluster,
    emulator: EmulatorProcess,
    dag_id: str,
    key: str,
    sync_seconds: float,
    *,
    create: bool = True,
) -> str:
    """Make syncs of `key` last `sync_seconds` (creating the connection first, unless the demo
    seed has it) and trigger `dag_id`; the DAG run's id."""
    if create:
        emulator.create_connection(key)
    emulator.set_sync_duration(key, sync_seconds)
    return cluster.trigger_dag(dag_id)


def wait_for_polls(emulator: EmulatorProcess, key: str, immuta_task_id: str, who: str) -> None:
    """Wait until `who` has polled the task's run twice more."""
    polls = emulator.poll_count(key, immuta_task_id)
    wait_until(
        f"{who} to poll Immuta",
        lambda: emulator.poll_count(key, immuta_task_id) >= polls + 2,
        timeout=30,
    )


@dataclass
class DeferredSync:
    """A sync task deferred to a triggerer, whose trigger is polling the Immuta run."""

    trigger_id: int
    holder_job: int
    immuta_task_id: str
    immuta_run: dict[str, Any]


def deferred_and_polling(
    cluster: AirflowCluster, emulator: EmulatorProcess, dag_id: str, run_id: str, key: str
) -> DeferredSync:
    """Wait for the sync to defer, a triggerer to take the trigger and the trigger to poll."""
    ti = cluster.wait_for_task_state(dag_id, run_id, TASK, {"deferred"}, timeout=120)
    holder_job = wait_until(
        "a triggerer to take the trigger", lambda: holder_of(cluster, dag_id, run_id), timeout=60
    )
    immuta_task, immuta_run = emulator.only_run(key)
    wait_for_polls(emulator, key, immuta_task["taskId"], "the trigger")
    return DeferredSync(int(ti["trigger"]["id"]), holder_job, immuta_task["taskId"], immuta_run)


# ---- scenarios --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [
        # The machine or pod under the triggerer dies: nothing of it runs again.
        pytest.param("SIGKILL", id="sigkill"),
        # A rolling restart: the triggerer cancels its triggers (CancelledError) and exits. A
        # trigger that cancels the remote run on CancelledError fails here, not under SIGKILL.
        pytest.param("SIGTERM", id="sigterm"),
    ],
)
def test_triggerer_loss_moves_the_sync_without_cancelling_or_resetting_it(
    how: str,
    cluster: AirflowCluster,
    emulator: EmulatorProcess,
    reliability_figures: dict[str, dict[str, Any]],
) -> None:
    if how == "SIGKILL":
        dag_id, key = "reliability_triggerer_loss", TRIGGERER_LOSS_KEY
    else:
        dag_id, key = "reliability_triggerer_restart", TRIGGERER_RESTART_KEY
    # Long enough to outlast a kill and a takeover (~5 s each way) with room to spare.
    sync_seconds = 30.0
    run_id = start_sync(cluster, emulator, dag_id, key, sync_seconds)
    # The trigger polls a few times in its first home.
    deferred = deferred_and_polling(cluster, emulator, dag_id, run_id, key)
    trigger_id, holder_job, immuta_task_id = (
        deferred.trigger_id,
        deferred.holder_job,
        deferred.immuta_task_id,
    )
    assert deferred.immuta_run["status"] in ACTIVE
    holder = next(c for c in cluster.components.values() if c.job_id == holder_job)
    survivor = next(
        c
        for c in cluster.components.values()
        if c.name.startswith("triggerer") and c is not holder and c.alive()
    )
    before = trigger_row(cluster, trigger_id)
    assert before["triggerer_id"] == holder_job
    deadline_before = before["kwargs"]["deadline"]
    assert deadline_before is not None, "the DAG sets a timeout: the trigger must carry a deadline"

    killed_at = time.monotonic()
    exited_by_itself = None
    if how == "SIGKILL":
        # The whole process group, the trigger runner subprocess included.
        holder.kill_group()
    else:
        exited_by_itself = holder.terminate_group(timeout=30)
    stopped_seconds = time.monotonic() - killed_at
    # (a killed child stays a zombie until its new parent reaps it: allow a moment)
    wait_until(f"{holder.name}'s processes to be gone", lambda: not group_alive(holder.pid), 30)

    # Losing a triggerer, even gracefully, is not a reason to touch the remote run.
    _, run_after_stop = emulator.only_run(key)
    cancels = emulator.cancel_count(key)
    assert run_after_stop["status"] not in CANCEL_STATES and cancels == 0, (
        f"stopping {holder.name} ({how}) cancelled the remote run ({cancels} cancel "
        f"request(s)): {run_after_stop}"
    )
    assert exited_by_itself is not False, (
        f"{holder.name} did not stop within 30 s of SIGTERM (SIGKILLed then):\n{holder.log_tail()}"
    )
    assert run_after_stop["status"] in ACTIVE, (
        f"inconclusive: the run ended before the takeover ({stopped_seconds:.0f}s to stop "
        f"{holder.name}): {run_after_stop}"
    )

    polls_at_kill = emulator.poll_count(key, immuta_task_id)
    samples: list[tuple[float, int]] = []

    def moved() -> bool:
        samples.append((time.monotonic() - killed_at, emulator.poll_count(key, immuta_task_id)))
        return holder_of(cluster, dag_id, run_id) == survivor.job_id

    wait_until(f"{survivor.name} to take the trigger over", moved, timeout=60, interval=0.2)
    takeover_seconds = time.monotonic() - killed_at

    def polled_again() -> bool:
        samples.append((time.monotonic() - killed_at, emulator.poll_count(key, immuta_task_id)))
        return samples[-1][1] > polls_at_kill

    wait_until("the survivor to poll Immuta", polled_again, timeout=30, interval=0.2)
    first_poll_after_kill = next(t for t, count in samples if count > polls_at_kill)

    # Right after the takeover: nothing was cancelled and nothing was started again.
    task_now, run_now = emulator.only_run(key)
    assert task_now["taskId"] == immuta_task_id
    assert run_now["status"] in ACTIVE, f"the run did not survive the triggerer loss: {run_now}"
    assert emulator.cancel_count(key) == 0
    after = trigger_row(cluster, trigger_id)
    assert after["triggerer_id"] == survivor.job_id
    assert after["kwargs"]["deadline"] == deadline_before
    assert after["kwargs"] == before["kwargs"]

    # Bring a triggerer back (as a supervisor would); the trigger stays where it is.
    restarted = cluster.start_triggerer(f"{holder.name}-restarted")

    ti = cluster.wait_for_task_state(
        dag_id, run_id, TASK, {"success", "failed", "up_for_retry"}, timeout=sync_seconds + 60
    )
    _, run_end = emulator.only_run(key)
    assert ti["state"] == "success", cluster.diagnostics()
    assert ti["try_number"] == 1
    assert run_end["status"] == "COMPLETED", run_end
    assert not run_end.get("canceledBy")
    assert emulator.tasks_created(key) == 1
    assert emulator.cancel_count(key) == 0
    remaining = [row for row in cluster.triggers() if row["id"] == trigger_id]
    assert not remaining or remaining[0]["kwargs"]["deadline"] == deadline_before
    # The triggerers' own logs of this trigger: started on both, fired only by the survivor.
    trigger_logs = cluster.trigger_logs(dag_id, run_id, TASK, 1)
    assert set(trigger_logs) == {holder_job, survivor.job_id}, sorted(trigger_logs)
    assert "starting" in trigger_logs[holder_job]
    assert "Trigger fired event" not in trigger_logs[holder_job]
    assert "Trigger fired event" in trigger_logs[survivor.job_id]

    figures = reliability_figures[f"triggerer_loss[{how}]"] = {
        "killed": f"{holder.name} (job {holder_job}, process group {holder.pid}, {how})",
        "took_over": f"{survivor.name} (job {survivor.job_id})",
        "restarted": f"{restarted.name} (job {restarted.job_id})",
        "stopped_seconds": round(stopped_seconds, 1),
        "takeover_seconds": round(takeover_seconds, 1),
        "first_poll_after_kill_seconds": round(first_poll_after_kill, 1),
        "tasks_created": emulator.tasks_created(key),
        "cancel_requests": emulator.cancel_count(key),
        "run_status_after_takeover": run_now["status"],
        "run_status_final": run_end["status"],
        "deadline_unchanged": after["kwargs"]["deadline"] == deadline_before,
        "airflow_task": f"{ti['state']} on try {ti['try_number']}",
        "status_checks": emulator.poll_count(key, immuta_task_id),
    }
    print(f"\ntriggerer loss ({how}): {figures}")


def test_deadline_survives_the_triggerer_move_and_the_run_is_cancelled_at_timeout(
    cluster: AirflowCluster,
    emulator: EmulatorProcess,
    reliability_figures: dict[str, dict[str, Any]],
) -> None:
    """The deadline is kept in wall-clock time: after a move it fires when it was due, not later."""
    dag_id, key = "reliability_deadline_after_move", DEADLINE_KEY
    # Far longer than the task's timeout.
    run_id = start_sync(cluster, emulator, dag_id, key, 180.0)
    deferred = deferred_and_polling(cluster, emulator, dag_id, run_id, key)
    trigger_id, holder_job, immuta_run = (
        deferred.trigger_id,
        deferred.holder_job,
        deferred.immuta_run,
    )
    holder = next(c for c in cluster.components.values() if c.job_id == holder_job)
    before = trigger_row(cluster, trigger_id)
    deadline = float(before["kwargs"]["deadline"])
    # Deferring and the first polls take a few seconds (more on a loaded machine); the move must
    # happen well before the deadline for the scenario to say anything.
    assert deadline - time.time() > 12, "too little time left before the deadline to move"

    killed_at = time.monotonic()
    holder.kill_group()

    def moved() -> int | None:
        job = holder_of(cluster, dag_id, run_id)
        return job if job not in (None, holder_job) else None

    new_holder = wait_until("another triggerer to take over", moved, timeout=60, interval=0.2)
    takeover_seconds = time.monotonic() - killed_at
    assert time.time() < deadline - 2, "the takeover ended too close to the deadline to tell"

    run_cancelled = wait_until(
        "the run to be cancelled at the deadline",
        lambda: emulator.run_in(key, CANCEL_STATES),
        timeout=max(deadline - time.time(), 0) + 60,
        interval=0.25,
        on_timeout=cluster.diagnostics,
    )
    lateness = time.time() - deadline
    ti = cluster.wait_for_task_state(dag_id, run_id, TASK, {"failed", "success"}, timeout=60)
    after = [row for row in cluster.triggers() if row["id"] == trigger_id]

    assert ti["state"] == "failed"
    assert ti["try_number"] == 1
    assert emulator.tasks_created(key) == 1
    assert emulator.cancel_count(key) >= 1
    assert run_cancelled["runId"] == immuta_run["runId"]
    assert not after or float(after[0]["kwargs"]["deadline"]) == deadline
    # Not before the deadline; and well under the takeover time after it (a deadline restarted
    # by the new triggerer would fire `takeover_seconds` + the time already waited too late).
    assert lateness > -1.0, f"cancelled {-lateness:.1f}s before the deadline"
    assert lateness < 8.0, f"cancelled {lateness:.1f}s after the deadline"

    reliability_figures["deadline_after_move"] = {
        "timeout_seconds": DEADLINE_TIMEOUT_SECONDS,
        "killed": f"{holder.name} (job {holder_job})",
        "took_over": f"job {new_holder}",
        "takeover_seconds": round(takeover_seconds, 1),
        "remote_cancel_after_deadline_seconds": round(lateness, 1),
        "run_status_seen": run_cancelled["status"],
        "tasks_created": emulator.tasks_created(key),
        "cancel_requests": emulator.cancel_count(key),
        "airflow_task": f"{ti['state']} on try {ti['try_number']}",
    }
    print(f"\ndeadline after move: {reliability_figures['deadline_after_move']}")


@pytest.mark.parametrize(
    "victim",
    [
        # The OOM killer's choice: the task process dies, its supervisor reports the loss.
        pytest.param("task_process", id="task-process"),
        # The worker's machine dies: supervisor and task together; only the missing heartbeats
        # tell Airflow ([scheduler] task_instance_heartbeat_timeout).
        pytest.param("worker", id="whole-worker"),
    ],
)
def test_worker_kill_retry_reattaches_to_the_same_run(
    victim: str,
    cluster: AirflowCluster,
    emulator: EmulatorProcess,
    reliability_figures: dict[str, dict[str, Any]],
) -> None:
    # The run must outlast the time Airflow needs to start the retry: ~2 s when the supervisor
    # reports the loss, the heartbeat timeout (12 s) and a little more when nobody does.
    if victim == "task_process":
        dag_id, key, sync_seconds = "reliability_task_process_kill", TASK_PROCESS_KILL_KEY, 20.0
    else:
        dag_id, key, sync_seconds = "reliability_worker_kill", WORKER_KILL_KEY, 35.0
    run_id = start_sync(cluster, emulator, dag_id, key, sync_seconds, create=False)
    cluster.wait_for_task_state(dag_id, run_id, TASK, {"running"}, timeout=120)
    immuta_task = wait_until(
        "the first try to start a sync", lambda: emulator.user_tasks(key), timeout=60
    )[0]
    immuta_task_id = immuta_task["taskId"]
    wait_for_polls(emulator, key, immuta_task_id, "the worker")
    _, first_run = emulator.only_run(key)
    assert first_run["status"] in ACTIVE

    # The TI's pid is the task process; its parent is the LocalExecutor worker (the task's
    # supervisor), a child of the scheduler.
    task_pid = int(cluster.task_instance(dag_id, run_id, TASK)["pid"])
    worker_pid = parent_of(task_pid)
    assert parent_of(worker_pid) == cluster.components["scheduler"].pid, (
        f"unexpected process tree: task {task_pid} {command_line(task_pid)!r}, "
        f"parent {worker_pid} {command_line(worker_pid)!r}"
    )
    victims = [task_pid] if victim == "task_process" else process_tree(worker_pid)
    killed_at = time.monotonic()
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def first_try_over() -> dict[str, Any] | None:
        current = cluster.task_instance(dag_id, run_id, TASK)
        return current if current["try_number"] >= 2 or current["state"] != "running" else None

    first_try_end = wait_until(
        "Airflow to notice the lost try",
        first_try_over,
        timeout=90,
        on_timeout=cluster.diagnostics,
    )
    noticed_seconds = time.monotonic() - killed_at

    def retry_running() -> dict[str, Any] | None:
        current = cluster.task_instance(dag_id, run_id, TASK)
        return current if current["try_number"] >= 2 and current["state"] == "running" else None

    retry = wait_until(
        "the retry to run", retry_running, timeout=120, on_timeout=cluster.diagnostics
    )
    retry_seconds = time.monotonic() - killed_at
    _, run_at_retry = emulator.only_run(key)
    # The scenario means something only if the run was still going when the retry began.
    assert run_at_retry["status"] in ACTIVE, (
        f"the run ended before the retry began ({run_at_retry}); lengthen the sync"
    )

    ti = cluster.wait_for_task_state(
        dag_id, run_id, TASK, {"success", "failed"}, timeout=sync_seconds + 60
    )
    task_end, run_end = emulator.only_run(key)
    log = cluster.task_log(dag_id, run_id, TASK, ti["try_number"])
    assert ti["state"] == "success", f"{ti}\n{log[-3000:]}"
    assert ti["try_number"] == 2
    assert emulator.tasks_created(key) == 1, "the retry started a second sync"
    assert task_end["taskId"] == immuta_task_id
    assert run_end["runId"] == first_run["runId"]
    assert run_end["status"] == "COMPLETED"
    assert emulator.cancel_count(key) == 0
    response = cluster.http.get(
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{TASK}/xcomEntries/return_value"
    )
    response.raise_for_status()
    result = response.json()["value"]
    if isinstance(result, str):
        result = json.loads(result)
    assert result["immuta_task_id"] == immuta_task_id, (
        f"the retry followed another Immuta task than the sync it started: {result}"
    )
    assert result["run_id"] == first_run["runId"]

    reliability_figures[f"worker_kill[{victim}]"] = {
        "killed": (
            f"task process {task_pid}"
            if victim == "task_process"
            else f"LocalExecutor worker {worker_pid} with its task process {task_pid}"
        ),
        "first_try_state": f"{first_try_end['state']} (try {first_try_end['try_number']})",
        "loss_noticed_after_seconds": round(noticed_seconds, 1),
        "retry_running_after_seconds": round(retry_seconds, 1),
        "run_status_when_retry_started": run_at_retry["status"],
        "tasks_created": emulator.tasks_created(key),
        "cancel_requests": emulator.cancel_count(key),
        "run_status_final": run_end["status"],
        "airflow_task": f"{ti['state']} on try {ti['try_number']}",
        "retry_try_number": retry["try_number"],
    }
    print(f"\nworker kill ({victim}): {reliability_figures[f'worker_kill[{victim}]']}")


class InconclusiveScenario(RuntimeError):
    """The scenario's precondition did not hold (timing); not a verdict on the operator."""


def test_worker_kill_retry_after_the_run_completed_does_not_sync_again(
    cluster: AirflowCluster,
    emulator: EmulatorProcess,
    reliability_figures: dict[str, dict[str, Any]],
) -> None:
    """The worker dies and Immuta finishes the run before Airflow notices: the retry must pick
    up the finished run (the task's task_state_store), not start a second sync.

    Listing PENDING/RUNNING syncs (reuse_running_sync) cannot find a finished run; this failed
    before the operator kept the run in task_state_store (commit 5893252).
    """
    dag_id, key = "reliability_worker_kill_late", WORKER_KILL_LATE_KEY
    # Shorter than Airflow takes to notice a dead worker (the 12 s heartbeat timeout).
    run_id = start_sync(cluster, emulator, dag_id, key, 6.0)
    cluster.wait_for_task_state(dag_id, run_id, TASK, {"running"}, timeout=120)
    immuta_task = wait_until("the first try to start a sync", lambda: emulator.user_tasks(key), 60)[
        0
    ]
    task_pid = int(cluster.task_instance(dag_id, run_id, TASK)["pid"])
    worker_pid = parent_of(task_pid)
    if parent_of(worker_pid) != cluster.components["scheduler"].pid:
        raise InconclusiveScenario(f"unexpected process tree above task pid {task_pid}")
    for pid in process_tree(worker_pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def completed() -> dict[str, Any] | None:
        runs = emulator.runs(key, immuta_task["taskId"])
        return runs[-1] if runs and runs[-1]["status"] == "COMPLETED" else None

    wait_until("the run to complete", completed, timeout=60)
    if cluster.task_instance(dag_id, run_id, TASK)["try_number"] != 1:
        raise InconclusiveScenario("the retry began before the run completed")

    ti = cluster.wait_for_task_state(dag_id, run_id, TASK, {"success", "failed"}, timeout=120)
    created = emulator.tasks_created(key)
    reliability_figures["worker_kill[run completed before the retry]"] = {
        "tasks_created": created,
        "airflow_task": f"{ti['state']} on try {ti['try_number']}",
    }
    print(f"\nworker kill, run completed before the retry: {created} sync task(s) created")
    assert ti["state"] == "success"
    assert ti["try_number"] == 2
    assert created == 1, f"the retry started a second sync ({created} tasks created)"


def test_marking_the_deferred_task_failed_cancels_the_remote_run(
    cluster: AirflowCluster,
    emulator: EmulatorProcess,
    reliability_figures: dict[str, dict[str, Any]],
) -> None:
    dag_id, key = "reliability_mark_failed", MARK_FAILED_KEY
    run_id = start_sync(cluster, emulator, dag_id, key, 120.0)
    immuta_run = deferred_and_polling(cluster, emulator, dag_id, run_id, key).immuta_run

    marked_at = time.monotonic()
    cluster.set_task_state(dag_id, run_id, TASK, "failed")

    run_cancelling = wait_until(
        "the remote run to be cancelled",
        lambda: emulator.run_in(key, CANCEL_STATES),
        timeout=30,
        interval=0.25,
        on_timeout=cluster.diagnostics,
    )
    cancel_seconds = time.monotonic() - marked_at
    run_final = wait_until(
        "the run to reach CANCELED",
        lambda: emulator.run_in(key, {"CANCELED"}),
        timeout=30,
    )
    ti = cluster.task_instance(dag_id, run_id, TASK)
    assert ti["state"] == "failed"
    assert emulator.tasks_created(key) == 1
    assert emulator.cancel_count(key) >= 1
    assert run_final["runId"] == immuta_run["runId"]
    assert cancel_seconds < 20, f"cancelling took {cancel_seconds:.1f}s"

    reliability_figures["mark_failed"] = {
        "remote_cancel_seconds": round(cancel_seconds, 1),
        "run_status_seen": run_cancelling["status"],
        "run_status_final": run_final["status"],
        "canceled_by": run_final.get("canceledBy"),
        "tasks_created": emulator.tasks_created(key),
        "cancel_requests": emulator.cancel_count(key),
        "airflow_task": ti["state"],
    }
    print(f"\nmark failed: {reliability_figures['mark_failed']}")
