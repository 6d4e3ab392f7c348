"""``make demo``: the nightly example DAG in a real Airflow, against a local Immuta emulator.

1. starts the emulator with its demo data on a free port of 127.0.0.1, accepting only tokens
   exchanged for the API key (``--auth exchange-only``, the flow Immuta documents);
2. makes a throw-away Airflow home in ``.demo/airflow-home`` (SQLite, ``airflow db migrate``);
3. points the ``immuta_default`` connection at the emulator (an environment variable, as in a
   container) and checks it with ``airflow connections test``;
4. runs ``example_dags/immuta_nightly_sync.py`` with ``airflow dags test``, showing the Immuta
   lines of its log as they come;
5. prints the DAG's summary and the wall time, stops the emulator, and exits non-zero if anything
   failed. The whole Airflow log is kept in ``.demo/dags-test.log``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from immuta_provider.emulator.process import RunningEmulator, run_emulator

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / ".demo"
AIRFLOW_HOME = DEMO_DIR / "airflow-home"
DAG_ID = "immuta_nightly_sync"
DAGS_FOLDER = REPO / "example_dags"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
SYNC_SECONDS = 2.0  # how long each emulated sync takes
POLL_INTERVAL = 1.0  # the DAG's default (30 s) suits a real Immuta, not a 2 s demo sync

# structlog's console lines: "2026-11-25T09:08:19.345133Z [info     ] message [logger] loc=..."
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d)\.\d+Z \[(\w+)\s*\] (.*?) \[([\w.]+)\]")
SHOWN_LOGGERS = ("immuta_provider", "immuta_nightly_sync")


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def airflow_env(emulator: RunningEmulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW_CONN_IMMUTA_DEFAULT": json.dumps(
                {"conn_type": "immuta", "host": emulator.url, "password": emulator.api_key}
            ),
            "IMMUTA_SYNC_POLL_INTERVAL": str(POLL_INTERVAL),
        }
    )
    return env


def run(command: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own fixed commands, no shell
        command, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise SystemExit(f"{what} failed (exit code {done.returncode})")
    return done.stdout + done.stderr


def show(line: str) -> None:
    """Print the provider's and the DAG's own log lines, compactly."""
    match = LOG_LINE.match(line)
    # The operators log as airflow.task.operators.immuta_provider..., the trigger and the DAG's
    # tasks under their own names.
    if match and any(name in match.group(4) for name in SHOWN_LOGGERS):
        clock, level, message, _ = match.groups()
        print(f"  {clock} {level:<7} {message}", flush=True)


def dags_test(env: dict[str, str], log_path: Path) -> int:
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - a fixed command, no shell
            [AIRFLOW, "dags", "test", DAG_ID],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            show(line)
        return process.wait()


def read_results() -> tuple[str | None, dict[str, str], Any]:
    """The DAG run's state, its task states and the summary task's return value."""
    with sqlite3.connect(AIRFLOW_HOME / "airflow.db") as db:
        row = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (DAG_ID,),
        ).fetchone()
        if row is None:
            return None, {}, None
        run_id, state = row
        tasks = {
            (task_id if map_index < 0 else f"{task_id}[{map_index}]"): task_state
            for task_id, map_index, task_state in db.execute(
                "SELECT task_id, map_index, state FROM task_instance "
                "WHERE dag_id = ? AND run_id = ? ORDER BY task_id, map_index",
                (DAG_ID, run_id),
            )
        }
        value = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'summarize' "
            "AND key = 'return_value'",
            (DAG_ID, run_id),
        ).fetchone()
    summary = json.loads(value[0]) if value and value[0] else None
    if isinstance(summary, str):  # stored as a JSON string holding JSON
        summary = json.loads(summary)
    return state, tasks, summary


def print_summary(state: str | None, tasks: dict[str, str], summary: Any) -> None:
    step(f"DAG run of {DAG_ID}: {state}")
    for task, task_state in tasks.items():
        print(f"  {task:<28} {task_state}")
    if not summary:
        print("  (no summary: the summarize task did not finish)")
        return
    print("\n  connection                     data objects before -> after")
    for key in summary["synced"]:
        before = summary["data_objects_before"].get(key, "?")
        after = summary["data_objects_after"].get(key, "?")
        print(f"  {key:<30} {before:>6} -> {after}")
    for key in summary["failed"]:
        print(f"  {key:<30} SYNC FAILED")
    for key, reason in summary["unhealthy"].items():
        print(f"  {key:<30} skipped (unhealthy: {reason})")
    print(
        f"\n  {len(summary['synced'])} synced, {len(summary['failed'])} failed, "
        f"{len(summary['unhealthy'])} skipped"
    )


def main() -> int:
    started = time.monotonic()
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
    AIRFLOW_HOME.mkdir(parents=True)

    step("Starting the Immuta emulator (demo data; API key exchanged for tokens)")
    with run_emulator(
        seed="demo", sync_duration=SYNC_SECONDS, log_dir=DEMO_DIR, auth="exchange-only"
    ) as emulator:
        print(f"  {emulator.url}  ({emulator.admin.health()['connections']} connections)")
        env = airflow_env(emulator)

        step(f"Creating a throw-away Airflow home in {AIRFLOW_HOME.relative_to(REPO)}")
        run([AIRFLOW, "db", "migrate"], env, "airflow db migrate")
        print("  metadata database migrated (SQLite)")

        step("Testing the immuta_default connection")
        output = run([AIRFLOW, "connections", "test", "immuta_default"], env, "connection test")
        print("  " + next((ln for ln in output.splitlines() if "Connection" in ln), output.strip()))

        step(f"Running {DAG_ID} with `airflow dags test`")
        log_path = DEMO_DIR / "dags-test.log"
        returncode = dags_test(env, log_path)
        state, tasks, summary = read_results()
        print_summary(state, tasks, summary)
        auth = emulator.admin.counters()["auth"]
        print(
            f"\n  Authentication: {auth['exchanges']} token exchange(s) at "
            f"POST /bim/apikey/authenticate, {sum(auth['unauthorized'].values())} refused call(s)"
        )

    elapsed = time.monotonic() - started
    ok = returncode == 0 and state == "success" and bool(summary) and not summary["failed"]
    verdict = "Done" if ok else "FAILED"
    step(f"{verdict} in {elapsed:.1f} s (Airflow log: {log_path.relative_to(REPO)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
