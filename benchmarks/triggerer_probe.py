"""``python -m benchmarks.triggerer_probe COUNTS_FILE triggerer [options]``: a counted triggerer.

Runs Airflow's own CLI (``airflow triggerer ...``) unchanged, after wrapping one method of the
triggerer's supervisor, ``TriggerRunnerSupervisor._handle_request``, which handles every message
the trigger runner subprocess sends it. The wrapper counts the messages by type (a
``GetConnection`` is one supervisor round trip for a connection read) and the events each trigger
submitted, and a thread writes the counts to ``COUNTS_FILE`` as JSON every second (so that the
figures of a SIGKILLed triggerer survive up to its last second). Nothing else is changed: the
runner, the trigger code and the database work are Airflow's.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any


class Counts:
    """What the supervisor was asked, written to a file by a daemon thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: Counter[str] = Counter()
        self.events: Counter[int] = Counter()
        self.lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "pid": os.getpid(),
                "at": time.time(),
                "messages": dict(self.messages),
                "events_per_trigger": {str(k): v for k, v in self.events.items()},
            }

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(self.path)

    def writer(self) -> None:
        while True:
            time.sleep(1.0)
            self.write()


def install(counts: Counts) -> None:
    """Wrap the supervisor's request handler so that each message is counted first."""
    from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor

    original = TriggerRunnerSupervisor._handle_request

    def counted(self: Any, msg: Any, log: Any, req_id: int) -> None:
        with counts.lock:
            counts.messages[type(msg).__name__] += 1
            for event in getattr(msg, "events", None) or ():
                counts.events[int(event.trigger_id)] += 1
        original(self, msg, log, req_id)

    TriggerRunnerSupervisor._handle_request = counted  # type: ignore[method-assign]


WHAT_IF_ENV = {
    # The triggerer logs warnings and errors only: no "trigger ... starting" line per trigger
    # from Airflow, no progress lines from ours. Each such line is written from the runner's
    # event loop to the supervisor, and blocks the loop while the supervisor is busy.
    "warning_logs": {"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"},
}


def apply_what_if(name: str) -> None:
    """A bench-side patch of the shipped provider, to measure a fix against its absence.

    ``no_settings_cache``: every trigger reads the Airflow connection itself (as before
    ``immuta_provider.hooks.settings_cache``). ``quiet_progress``: ``[immuta]
    progress_log_interval`` 600 s instead of 60 s (fewer "still RUNNING" task-log lines, each a
    message from the runner to the supervisor and a write to the task's log file).
    """
    if name == "no_settings_cache":
        from immuta_provider.hooks import settings_cache

        async def read_each_time(conn_id: str, read: Any) -> Any:
            return await read()

        settings_cache.shared_settings.get = read_each_time  # type: ignore[method-assign]
    elif name == "quiet_progress":
        os.environ["AIRFLOW__IMMUTA__PROGRESS_LOG_INTERVAL"] = "600"
    elif name in WHAT_IF_ENV:
        pass  # set in the triggerer's environment before Airflow configures its logging
    elif name:
        raise SystemExit(f"unknown BENCH_WHAT_IF {name!r}")


def main() -> None:
    """Install the counter, start the writer, run ``airflow`` with the remaining arguments."""
    counts = Counts(Path(sys.argv[1]))
    install(counts)
    apply_what_if(os.environ.get("BENCH_WHAT_IF", ""))
    counts.write()
    threading.Thread(target=counts.writer, name="bench-counts", daemon=True).start()
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *sys.argv[2:]]
    try:
        airflow_main()
    finally:
        counts.write()


if __name__ == "__main__":
    main()
