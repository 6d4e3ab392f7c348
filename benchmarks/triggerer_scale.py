"""6 and 7. N waits in one real ``airflow triggerer`` (Airflow 3.3, PostgreSQL), over TLS.

Section 6 answers "how many Immuta waits can one triggerer hold, and at what cost" with Airflow's
own triggerer process, not an event loop of ours:

* a throw-away PostgreSQL (``tests/reliability/postgres.py``), ``airflow db migrate``, and
  ``airflow dags reserialize`` of :mod:`benchmarks.triggerer_dags.bench_triggerer_waits`;
* the emulator and the dbt Cloud stub over TLS (:mod:`benchmarks.servers`, which also records the
  time of every GET per path);
* for each variant (``ours``: ``ImmutaTaskRunTrigger``; ``dbt``: ``DbtCloudRunJobTrigger``) a fresh
  ``airflow triggerer --capacity <N + margin>`` run through :mod:`benchmarks.triggerer_probe`
  (counts the supervisor's requests, e.g. ``GetConnection``), left idle first to measure its
  idle RSS and CPU; then N remote runs are made, ending at spread times, and N deferred task
  instances with their triggers are written in one transaction (:mod:`benchmarks.triggerer_load`,
  which says why that and not real task processes).

Measured: from the commit to the moment every run has been polled once (server side); the CPU of
the triggerer's whole process tree (supervisor + trigger runner) per poll, and as a share of one
core in the steady window (all polled, no run ended yet); peak RSS of the tree above its idle RSS;
``GetConnection`` round trips per trigger start; TLS connections per poll; detection latency from
a run's end (the emulator's or stub's end time) to its task instance leaving ``deferred`` in the
DB (a PostgreSQL trigger on ``task_instance`` records the time of every state change, with
``clock_timestamp()``); and how many task instances resumed, how often.

Section 7 (takeover): the same at N = 1,000 with a standby triggerer started once the first holds
every trigger, and the first SIGKILLed (its whole process group) mid-wait: every wait must be
polled again by the second within 60 s,
every task instance resume exactly once, no run be cancelled, and each run be polled at the
configured interval after the takeover.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.report import Row, SectionResult
from benchmarks.servers import ServerProcess, free_port
from benchmarks.tls import TLSFiles
from benchmarks.triggerer_probe import WHAT_IF_ENV

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "benchmarks" / "triggerer_dags"
API_KEY = "immuta-bench-key"
CONNECTION_KEY = "snowflake-prod"
DBT_ACCOUNT_ID = 1
DBT_TOKEN = "dbt-bench-token"
HEARTBEAT, HEALTH_THRESHOLD = 1, 6
FIRST_POLL_GOAL_S = 60.0
INTAKE_LIMIT_S = 420.0  # longest wait for every trigger to poll once before runs may end
IDLE_SETTLE_S = 12.0
TRIED_SETTINGS = ("AIRFLOW__TRIGGERER__", "AIRFLOW__LOGGING__")
FAR_AHEAD_S = 4 * 3600.0  # runs are made ending this far ahead, then the server clock is moved

RECORDER_SQL = """
CREATE TABLE IF NOT EXISTS bench_ti_transition (
    ti_id uuid NOT NULL, run_id text NOT NULL, map_index int NOT NULL,
    old_state text, new_state text, at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE FUNCTION bench_record_ti() RETURNS trigger AS $$
BEGIN
    INSERT INTO bench_ti_transition (ti_id, run_id, map_index, old_state, new_state)
    VALUES (NEW.id, NEW.run_id, NEW.map_index, OLD.state, NEW.state);
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS bench_ti_state ON task_instance;
CREATE TRIGGER bench_ti_state AFTER UPDATE ON task_instance FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION bench_record_ti();
"""


# ------------------------------------------------------------------------- pure helpers


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_id_of_path(path: str) -> str:
    """The last id in a run-status path: ``.../runs/<id>`` or dbt's ``.../runs/<id>/``."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def planned_duration(
    batch: int, batches: int, elapsed: float, first_end: float, spread: float
) -> float:
    """The duration that makes ``batch`` end at ``first_end + spread * batch / (batches - 1)``.

    ``elapsed`` is when the batch is made and ``first_end`` when the first batch should end, both
    in seconds after the first batch was made. Never below 1 s.
    """
    end = first_end + (spread * batch / (batches - 1) if batches > 1 else 0.0)
    return max(1.0, end - elapsed)


BLOCKED_LOOP = re.compile(r"async thread was blocked for ([0-9.]+) seconds")
STALLED_RUNNER = "event loop appears deadlocked"


def stalls_in_log(text: str) -> dict[str, Any]:
    """What the triggerer's own log says about its runner's event loop.

    Airflow logs every block of the runner's loop longer than 0.2 s, and "appears deadlocked" when
    the runner has not talked to the supervisor for 30 s.
    """
    blocks = [float(m.group(1)) for m in BLOCKED_LOOP.finditer(text)]
    return {
        "loop_blocks": len(blocks),
        "longest_loop_block_s": max(blocks) if blocks else 0.0,
        "runner_silent_30s": text.count(STALLED_RUNNER),
    }


def poll_intervals(times: list[float], after: float) -> list[float]:
    """Gaps between consecutive polls that both happened after ``after``."""
    later = sorted(t for t in times if t >= after)
    return [b - a for a, b in itertools.pairwise(later)]


# ------------------------------------------------------------------------- processes


@dataclass
class Triggerer:
    """One ``airflow triggerer`` under the probe, in its own process group."""

    name: str
    root: Path
    env: dict[str, str]
    capacity: int
    what_if: str = ""
    process: subprocess.Popen[bytes] | None = None
    job_id: int | None = None

    @property
    def counts_file(self) -> Path:
        return self.root / f"{self.name}-counts.json"

    @property
    def log_file(self) -> Path:
        return self.root / f"{self.name}.log"

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.triggerer_probe",
                    str(self.counts_file),
                    "triggerer",
                    "--capacity",
                    str(self.capacity),
                    "--skip-serve-logs",
                ],
                env={
                    **self.env,
                    "BENCH_WHAT_IF": self.what_if,
                    **WHAT_IF_ENV.get(self.what_if, {}),
                },
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def raise_if_exited(self) -> None:
        """Raise, with the end of its log, if the triggerer process has ended."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")

    def counts(self) -> dict[str, Any]:
        try:
            result: dict[str, Any] = json.loads(self.counts_file.read_text())
        except (OSError, ValueError):
            return {"messages": {}, "events_per_trigger": {}}
        return result

    def tree(self) -> tuple[float, float]:
        """(CPU seconds, RSS bytes) of the process and all its descendants, now."""
        import psutil

        root = psutil.Process(self.pid)
        procs = [root, *root.children(recursive=True)]
        cpu, rss = 0.0, 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
        with contextlib.suppress(psutil.Error):
            times = root.cpu_times()
            cpu += times.children_user + times.children_system  # children already reaped
        return cpu, rss

    def kill(self) -> None:
        """SIGKILL the whole process group (the host under it died)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Harness:
    """PostgreSQL, a migrated Airflow home, the TLS servers; triggerers started on demand."""

    def __init__(self, python: str, env: dict[str, str], work: Path, tls: TLSFiles) -> None:
        self.python, self.work, self.tls = python, work / "triggerer", tls
        self.work.mkdir(parents=True, exist_ok=True)
        self.base_env = env
        self._stack = contextlib.ExitStack()
        self.triggerers: list[Triggerer] = []
        self.advanced = {"ours": 0.0, "dbt": 0.0}  # seconds each server's clock was moved on

    def __enter__(self) -> Harness:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        from cryptography.fernet import Fernet
        from tests.reliability.postgres import running_postgres

        self.postgres = self._stack.enter_context(running_postgres("airflow"))
        emulator_port, stub_port = free_port(), free_port()
        tls_args = [
            "--ssl-certfile",
            str(self.tls.server_cert),
            "--ssl-keyfile",
            str(self.tls.server_key),
        ]
        base = {k: v for k, v in self.base_env.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        self.env = {
            **base,
            "PYTHONPATH": str(REPO),
            "AIRFLOW_HOME": str(self.work / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.sqlalchemy_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": str(HEARTBEAT),
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_THRESHOLD),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "SSL_CERT_FILE": str(self.tls.ca_cert),  # aiohttp (dbt Cloud hook) trusts it
            # Triggerer and logging settings to try, from the caller's environment, e.g.
            # AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP=2000 (Airflow's default: 50) or
            # AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING.
            **{k: v for k, v in self.base_env.items() if k.startswith(TRIED_SETTINGS)},
        }
        self._airflow("db", "migrate", timeout=600)
        # In the metadata DB, as most deployments keep them (an AIRFLOW_CONN_* variable would be
        # read inside the trigger runner without a round trip to the supervisor).
        for conn_id, conn in self.connections(emulator_port, stub_port).items():
            self._airflow(
                "connections", "add", conn_id, "--conn-json", json.dumps(conn), timeout=600
            )
        self._airflow("dags", "reserialize", timeout=300)
        self.sql(RECORDER_SQL)
        emulator_args = ["emulator", "--host", "127.0.0.1", "--port", str(emulator_port)]
        emulator_args += ["--seed", "demo", "--api-key", API_KEY, *tls_args]
        self.emulator = self._stack.enter_context(
            ServerProcess(
                self.python,
                emulator_args,
                port=emulator_port,
                scheme="https",
                log_path=self.work / "emulator.log",
                ca_cert=self.tls.ca_cert,
                env=self.base_env,
            )
        )
        self.stub = self._stack.enter_context(
            ServerProcess(
                self.python,
                ["dbt-stub", "--port", str(stub_port), "--token", DBT_TOKEN, *tls_args],
                port=stub_port,
                scheme="https",
                log_path=self.work / "dbt-stub.log",
                ca_cert=self.tls.ca_cert,
                env=self.base_env,
            )
        )

    def connections(self, emulator_port: int, stub_port: int) -> dict[str, dict[str, Any]]:
        """The Airflow connections of the two variants."""
        return {
            "immuta_default": {
                "conn_type": "immuta",
                "host": f"https://127.0.0.1:{emulator_port}",
                "password": API_KEY,
                "extra": {"ca_bundle": str(self.tls.ca_cert)},
            },
            "dbt_cloud_default": {
                "conn_type": "dbt_cloud",
                "host": f"127.0.0.1:{stub_port}",
                "login": str(DBT_ACCOUNT_ID),
                "password": DBT_TOKEN,
            },
        }

    def __exit__(self, *exc: object) -> None:
        for triggerer in self.triggerers:
            with contextlib.suppress(Exception):
                triggerer.stop()
        self._stack.close()

    def _airflow(self, *args: str, timeout: float) -> None:
        airflow = str(Path(self.python).parent / "airflow")
        done = subprocess.run(
            [airflow, *args],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg2

        connection = psycopg2.connect(self.postgres.dsn, connect_timeout=10)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(query, params)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    def start_triggerer(self, name: str, capacity: int, what_if: str = "") -> Triggerer:
        """Start a counted triggerer and wait for its live ``job`` row."""
        known = {row[0] for row in self.sql("SELECT id FROM job WHERE job_type='TriggererJob'")}
        triggerer = Triggerer(name, self.work, self.env, capacity, what_if)
        self.triggerers.append(triggerer)
        triggerer.start()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            triggerer.raise_if_exited()
            rows = self.sql(
                "SELECT id FROM job WHERE job_type='TriggererJob' AND end_date IS NULL "
                "AND latest_heartbeat > now() - interval '5 seconds'"
            )
            fresh = [row[0] for row in rows if row[0] not in known]
            if fresh:
                triggerer.job_id = fresh[0]
                return triggerer
            time.sleep(0.5)
        raise TimeoutError(f"{name} did not heartbeat within 180 s:\n{triggerer.log_tail()}")

    # ---- remote runs --------------------------------------------------------------------

    def make_runs(
        self, variant: str, count: int, first_end_after: float, spread: float
    ) -> list[dict[str, Any]]:
        """``count`` remote runs ending from ``first_end_after`` s from now, over ``spread`` s.

        Made in 20 batches; each batch's duration is set so that it ends at its planned time.
        ``ends_at`` is in real time (the server's clock minus what it was advanced).
        """
        batches = min(20, count)
        sizes = [count // batches + (1 if b < count % batches else 0) for b in range(batches)]
        started = time.time()
        runs: list[dict[str, Any]] = []
        for index, size in enumerate(sizes):
            duration = planned_duration(
                index, batches, time.time() - started, first_end_after, spread
            )
            if variant == "dbt":
                made = self.stub.request(
                    "POST", "/_stub/runs", json={"count": size, "duration": duration}
                )
                made.raise_for_status()
                runs.extend(
                    {
                        "run_id": str(run["id"]),
                        "ends_at": run["finishes_at"] - self.advanced[variant],
                    }
                    for run in made.json()["runs"]
                )
            else:
                runs.extend(self._immuta_runs(size, duration))
        return runs

    def _immuta_runs(self, size: int, duration: float) -> list[dict[str, Any]]:
        import asyncio

        import httpx

        self.emulator.request(
            "PUT",
            f"/_emulator/connections/{CONNECTION_KEY}/behaviour",
            json={"sync_duration": duration},
        ).raise_for_status()

        async def make_all() -> list[dict[str, Any]]:
            limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
            semaphore = asyncio.Semaphore(8)
            tasks = f"/api/connections/{CONNECTION_KEY}/tasks"
            async with httpx.AsyncClient(
                base_url=self.emulator.url,
                verify=str(self.tls.ca_cert),
                limits=limits,
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=60,
            ) as http:

                async def make() -> dict[str, Any]:
                    async with semaphore:
                        created = await http.post(tasks, json={"type": "DATA_OBJECT_SYNC"})
                        created.raise_for_status()
                        task_id = created.json()["taskId"]
                        listed = await http.get(f"{tasks}/{task_id}/runs")
                        listed.raise_for_status()
                        run = listed.json()["runs"][0]
                    created_at = _epoch(run["createdAt"])
                    return {
                        "task_id": task_id,
                        "run_id": run["runId"],
                        "status": run["status"],
                        "ends_at": created_at + duration - self.advanced["ours"],
                    }

                return await asyncio.gather(*(make() for _ in range(size)))

        return asyncio.run(make_all())

    def end_runs_from(self, variant: str, runs: list[dict[str, Any]], first_end: float) -> None:
        """Advance the server's clock so that the first run ends at ``first_end`` (epoch).

        Runs are made ending far ahead (made first, their ids go into the trigger kwargs), and
        the clock is moved once the waits are written: how long making and writing took on a
        busy machine then no longer decides whether runs end before their triggers started.
        """
        seconds = min(run["ends_at"] for run in runs) - first_end
        if seconds <= 0:
            return
        if variant == "dbt":
            self.stub.request("POST", "/_stub/advance", json={"seconds": seconds})
        else:
            self.emulator.request("POST", "/_emulator/clock/advance", json={"seconds": seconds})
        self.advanced[variant] += seconds
        for run in runs:
            run["ends_at"] -= seconds

    def server_of(self, variant: str) -> ServerProcess:
        return self.stub if variant == "dbt" else self.emulator

    def load(
        self, variant: str, runs: list[dict[str, Any]], poll_interval: float
    ) -> dict[str, Any]:
        spec = {
            "variant": variant,
            "dag_run_id": f"bench_{variant}_{secrets.token_hex(4)}",
            "items": runs,
            "poll_interval": poll_interval,
            "timeout": 3600,
            "connection_key": CONNECTION_KEY,
            "account_id": DBT_ACCOUNT_ID,
        }
        spec_file = self.work / f"load-{spec['dag_run_id']}.json"
        spec_file.write_text(json.dumps(spec))
        done = subprocess.run(
            [self.python, "-m", "benchmarks.triggerer_load", str(spec_file)],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"loading the waits failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def retire(self, dag_run_id: str) -> None:
        """Take a finished variant's left-over waits out of the DB, so the next triggerer does not
        pick them up (a variant that ran out of time leaves deferred task instances behind)."""
        self.sql(
            "DELETE FROM trigger WHERE id IN (SELECT trigger_id FROM task_instance "
            "WHERE run_id = %s AND trigger_id IS NOT NULL)",
            (dag_run_id,),
        )
        self.sql(
            "UPDATE task_instance SET state = 'removed' WHERE run_id = %s AND state = 'deferred'",
            (dag_run_id,),
        )

    def unassigned_triggers(self) -> int:
        """Trigger rows no triggerer has taken yet."""
        return int(self.sql("SELECT count(*) FROM trigger WHERE triggerer_id IS NULL")[0][0])

    def transitions(self, dag_run_id: str) -> list[tuple[int, str, str, float]]:
        """(map index, old state, new state, epoch) of every state change of the run's TIs."""
        rows = self.sql(
            "SELECT map_index, old_state, new_state, extract(epoch FROM at) "
            "FROM bench_ti_transition WHERE run_id = %s ORDER BY at",
            (dag_run_id,),
        )
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def resumed_count(self, dag_run_id: str) -> int:
        rows = self.sql(
            "SELECT count(DISTINCT map_index) FROM bench_ti_transition "
            "WHERE run_id = %s AND old_state = 'deferred' AND new_state = 'scheduled'",
            (dag_run_id,),
        )
        return int(rows[0][0])


def _epoch(value: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# ------------------------------------------------------------------------- one measured phase


@dataclass
class Phase:
    """What one variant's triggerer did with N waits."""

    variant: str
    waits: int
    poll_interval: float
    figures: dict[str, Any] = field(default_factory=dict)


class Sampler:
    """Samples a triggerer's tree CPU and RSS every half second in a thread."""

    def __init__(self, triggerer: Triggerer) -> None:
        import threading

        self.triggerer = triggerer
        self.samples: list[tuple[float, float, float]] = []  # (time, cpu s, rss bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                cpu, rss = self.triggerer.tree()
                self.samples.append((time.time(), cpu, rss))
            self._stop.wait(0.5)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def cpu_at(self, moment: float) -> float:
        """CPU seconds of the tree at the sample nearest ``moment``."""
        return min(self.samples, key=lambda s: abs(s[0] - moment))[1]

    def window(self, start: float, end: float) -> list[tuple[float, float, float]]:
        return [s for s in self.samples if start <= s[0] <= end]


def measure_variant(
    harness: Harness, variant: str, waits: int, poll_interval: float, *, label: str = ""
) -> dict[str, Any]:
    """Idle triggerer, then N waits; every figure of section 6 for this variant.

    ``variant`` is ``ours``, ``dbt`` or ``ours_<what-if>`` (ours with a bench-side patch applied
    in the triggerer, see :func:`benchmarks.triggerer_probe.apply_what_if`).
    """
    name = f"triggerer-{variant}{label}"
    kind = "dbt" if variant == "dbt" else "ours"
    what_if = variant.removeprefix("ours_") if variant.startswith("ours_") else ""
    triggerer = harness.start_triggerer(name, capacity=waits + 100, what_if=what_if)
    server = harness.server_of(kind)
    with Sampler(triggerer) as sampler:
        time.sleep(IDLE_SETTLE_S)
        idle_start = time.time()
        time.sleep(8.0)
        idle = sampler.window(idle_start, time.time())
        idle_rss = statistics.median(s[2] for s in idle)
        idle_cpu_rate = (idle[-1][1] - idle[0][1]) / max(0.1, idle[-1][0] - idle[0][0])
        idle_counts = triggerer.counts()
        runs = harness.make_runs(kind, waits, FAR_AHEAD_S, 2 * poll_interval)
        server.reset_stats()
        loaded = harness.load(kind, runs, poll_interval)
        created_at = loaded["created_at"]
        dag_run_id = loaded["dag_run_id"]
        # Runs end only once every wait has polled (or INTAKE_LIMIT_S after the commit), then
        # after two intervals of steady waiting, over two intervals: the steady CPU share and the
        # detection latency then cover all N waits, however long Airflow took to start them.
        while time.time() < created_at + INTAKE_LIMIT_S:
            triggerer.raise_if_exited()
            if server.stats()["polled_paths"] >= waits:
                break
            time.sleep(2.0)
        steady_from = max(time.time(), created_at + FIRST_POLL_GOAL_S)
        harness.end_runs_from(kind, runs, steady_from + 2 * poll_interval)
        last_end = max(run["ends_at"] for run in runs)
        limit = last_end + poll_interval + 90  # runs end after the 60 s goal (steady_from)
        resumed = 0
        while time.time() < limit:
            triggerer.raise_if_exited()
            resumed = harness.resumed_count(dag_run_id)
            if resumed >= waits:
                break
            time.sleep(1.0)
        phase_end = time.time()
        time.sleep(1.5)  # a last sample and a last counts write
    counts = triggerer.counts()
    polls_by_path: dict[str, list[float]] = server.request("GET", "/_bench/polls").json()
    stats = server.stats()
    stalls = stalls_in_log(triggerer.log_file.read_text(errors="replace"))
    triggerer.stop()
    harness.retire(dag_run_id)

    polls_by_run = {run_id_of_path(path): times for path, times in polls_by_path.items()}
    first_polls = [min(polls_by_run[r["run_id"]]) for r in runs if r["run_id"] in polls_by_run]
    polled_runs = len(first_polls)
    polls = sum(len(polls_by_run.get(r["run_id"], ())) for r in runs)
    all_polled_at = max(first_polls) if polled_runs == waits else None
    transitions = harness.transitions(dag_run_id)
    resumes: dict[int, list[float]] = {}
    for index, old, new, at in transitions:
        if old == "deferred" and new == "scheduled":
            resumes.setdefault(index, []).append(at)
    latencies = [resumes[i][0] - run["ends_at"] for i, run in enumerate(runs) if i in resumes]
    ended_before_first_poll = sum(
        1
        for run in runs
        if run["run_id"] in polls_by_run and min(polls_by_run[run["run_id"]]) > run["ends_at"]
    )

    phase = sampler.window(created_at, phase_end)
    cpu_phase = phase[-1][1] - phase[0][1] if len(phase) > 1 else 0.0
    first_end_at = min(run["ends_at"] for run in runs)
    steady_start = (all_polled_at or first_end_at) + 2.0
    steady = sampler.window(steady_start, first_end_at)
    steady_share = (
        (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0]) if len(steady) > 4 else None
    )
    peak_rss = max(s[2] for s in phase) if phase else idle_rss
    messages = counts.get("messages", {})
    idle_messages = idle_counts.get("messages", {})
    connection_reads = messages.get("GetConnection", 0) - idle_messages.get("GetConnection", 0)
    # Requests other than the runner's periodic state sync: connection reads, secret masking...
    requests = sum(
        n - idle_messages.get(kind_, 0)
        for kind_, n in messages.items()
        if kind_ != "TriggerStateChanges"
    )
    events = counts.get("events_per_trigger", {})
    connections = stats["connections"]
    return {
        "variant": variant,
        "waits": waits,
        "poll_interval_s": poll_interval,
        "dag_run_id": dag_run_id,
        "runs_end_after_commit_s": [
            round(first_end_at - created_at, 1),
            round(last_end - created_at, 1),
        ],
        "runs_polled": polled_runs,
        "first_poll_s": {
            "p50": _round(percentile([t - created_at for t in first_polls], 0.5)),
            "max": _round(max(first_polls) - created_at if first_polls else None),
        },
        "all_polled_s": _round(all_polled_at - created_at if all_polled_at else None),
        "polls": polls,
        "phase_s": round(phase_end - created_at, 1),
        "cpu_s": round(cpu_phase, 2),
        "cpu_ms_per_poll": 1000 * cpu_phase / max(1, polls),
        "idle_cpu_share": idle_cpu_rate,
        "cpu_ms_per_poll_above_idle": 1000
        * max(0.0, cpu_phase - idle_cpu_rate * (phase_end - created_at))
        / max(1, polls),
        "steady_cpu_share": steady_share,
        "steady_window_s": _round(steady[-1][0] - steady[0][0] if len(steady) > 4 else None),
        "idle_rss_mb": idle_rss / 1e6,
        "rss_above_idle_mb": (peak_rss - idle_rss) / 1e6,
        "connection_reads": connection_reads,
        "connection_reads_per_trigger": connection_reads / waits,
        "supervisor_requests_per_trigger": requests / waits,
        "supervisor_messages": messages,
        "tls_connections": connections,
        "tls_connections_per_poll": connections / max(1, polls),
        "latency_s": {
            "n": len(latencies),
            "p50": _round(percentile(latencies, 0.5)),
            "p99": _round(percentile(latencies, 0.99)),
            "max": _round(max(latencies) if latencies else None),
        },
        "runs_ended_before_first_poll": ended_before_first_poll,
        "stalls": stalls,
        "polls_in_last_60s": sum(
            1 for times in polls_by_run.values() for t in times if t > phase_end - 60
        ),
        "tis_resumed": len(resumes),
        "tis_resumed_more_than_once": sum(1 for v in resumes.values() if len(v) > 1),
        "events_submitted": sum(events.values()),
        "load_average": os.getloadavg(),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# ------------------------------------------------------------------------- section 6 rows


def scale_rows(
    ours: dict[str, Any],
    dbt: dict[str, Any] | None,
    waits: int,
    what_ifs: dict[str, dict[str, Any]] | None = None,
) -> SectionResult:
    """The rows of section 6 from the variants' figures (what-if rows are context)."""
    section = SectionResult(f"6 real triggerer, {waits:,} waits")
    section.details = {"ours": ours, "dbt": dbt, **(what_ifs or {})}
    judged = waits >= 10_000
    scale_note = "" if judged else f" (goal is for 10,000 waits; this run has {waits:,})"
    interval = ours["poll_interval_s"]

    def add(
        metric: str,
        key: str,
        unit: str,
        *,
        scale: float = 1.0,
        goal: str = "",
        met: bool | None = None,
        less_is_better: bool = True,
        note: str = "",
    ) -> None:
        value = ours.get(key)
        base = dbt.get(key) if dbt else None
        value = None if value is None else value * scale
        base = None if base is None else base * scale
        ratio = None
        if value and base:
            ratio = base / value if less_is_better else value / base
        section.rows.append(
            Row(
                section.name,
                metric,
                value,
                unit,
                baseline=base,
                baseline_name="dbt Cloud trigger" if dbt else "",
                ratio=ratio,
                ratio_meaning="less" if less_is_better else "of dbt",
                goal=goal,
                met=met,
                note=note,
            )
        )

    all_polled = ours["all_polled_s"]
    add(
        "time until every trigger polled once",
        "all_polled_s",
        "s",
        goal="<= 60 s",
        met=all_polled is not None and all_polled <= FIRST_POLL_GOAL_S,
        note=f"p50 {ours['first_poll_s']['p50']} s; {ours['runs_polled']} of {waits} runs polled",
    )
    cpu_ratio = (dbt["cpu_ms_per_poll"] / ours["cpu_ms_per_poll"]) if dbt else None
    add(
        "triggerer CPU per poll (supervisor + runner)",
        "cpu_ms_per_poll",
        "ms",
        goal=">= 3x less",
        met=None if cpu_ratio is None else cpu_ratio >= 3,
        note=(
            f"above the idle triggerer: ours {ours['cpu_ms_per_poll_above_idle']:.2f} ms"
            + (f", dbt {dbt['cpu_ms_per_poll_above_idle']:.2f} ms" if dbt else "")
            + f"; {ours['polls']} polls in {ours['phase_s']} s"
        ),
    )
    steady = ours["steady_cpu_share"]
    add(
        "triggerer CPU, steady waiting",
        "steady_cpu_share",
        "% of a core",
        scale=100,
        goal="< 25% (10,000 waits)",
        met=None if not judged or steady is None else steady < 0.25,
        note=f"window {ours['steady_window_s']} s after all polled{scale_note}; "
        f"idle triggerer {100 * ours['idle_cpu_share']:.1f}%",
    )
    rss = ours["rss_above_idle_mb"]
    add(
        "peak RSS above the idle triggerer",
        "rss_above_idle_mb",
        "MB",
        goal="< 100 MB (10,000 waits)",
        met=None if not judged else rss < 100,
        note=f"idle triggerer {ours['idle_rss_mb']:.0f} MB (sum over its processes){scale_note}",
    )
    add(
        "connection reads (supervisor round trips) per trigger start",
        "connection_reads_per_trigger",
        "",
        note=f"ours {ours['connection_reads']} GetConnection for {waits} triggers"
        + (f"; dbt {dbt['connection_reads']}" if dbt else ""),
    )
    add(
        "all supervisor requests per trigger start (connection reads, secret masking, ...)",
        "supervisor_requests_per_trigger",
        "",
        note="ours "
        + ", ".join(f"{k} {v}" for k, v in ours["supervisor_messages"].items())
        + ("; dbt " + ", ".join(f"{k} {v}" for k, v in dbt["supervisor_messages"].items()))
        if dbt
        else "",
    )
    add(
        "TLS connections per poll",
        "tls_connections_per_poll",
        "%",
        scale=100,
        note=f"ours {ours['tls_connections']} for {ours['polls']} polls"
        + (f"; dbt {dbt['tls_connections']} for {dbt['polls']}" if dbt else ""),
    )
    latency = ours["latency_s"]
    for quantile in ("p50", "p99"):
        section.rows.append(
            Row(
                section.name,
                f"detection latency {quantile} (run end -> TI resumed in the DB)",
                latency[quantile],
                "s",
                baseline=(dbt["latency_s"][quantile] if dbt else None),
                baseline_name="dbt Cloud trigger" if dbt else "",
                goal=f"<= {interval + 1:.0f} s" if quantile == "p99" else "",
                met=(
                    None
                    if quantile != "p99" or latency["p99"] is None
                    else latency["p99"] <= interval + 1 and latency["n"] == waits
                ),
                note=(
                    f"{latency['n']} of {waits} runs detected; "
                    f"{ours['runs_ended_before_first_poll']} ended before their first poll"
                    if quantile == "p99"
                    else ""
                ),
            )
        )
    section.rows.append(
        Row(
            section.name,
            "task instances resumed",
            ours["tis_resumed"],
            "",
            baseline=dbt["tis_resumed"] if dbt else None,
            baseline_name="dbt Cloud trigger" if dbt else "",
            goal=f"{waits}, once each",
            met=ours["tis_resumed"] == waits and ours["tis_resumed_more_than_once"] == 0,
            note=f"load average {ours['load_average'][0]:.2f} (ours), "
            + (f"{dbt['load_average'][0]:.2f} (dbt)" if dbt else ""),
        )
    )
    for variant in (ours, dbt):
        if variant is None:
            continue
        stalls = variant["stalls"]
        section.rows.append(
            Row(
                section.name,
                f"runner event loop ({variant['variant']}): longest block",
                stalls["longest_loop_block_s"],
                "s",
                note=f"{stalls['loop_blocks']} blocks > 0.2 s; 'appears deadlocked' (runner "
                f"silent 30 s) {stalls['runner_silent_30s']}x; "
                f"{variant['polls_in_last_60s']} polls in the phase's last 60 s",
            )
        )
    for name, other in (what_ifs or {}).items():
        for metric, key, unit in (
            ("time until every trigger polled once", "all_polled_s", "s"),
            ("triggerer CPU per poll", "cpu_ms_per_poll", "ms"),
            ("connection reads per trigger start", "connection_reads_per_trigger", ""),
            ("supervisor requests per trigger start", "supervisor_requests_per_trigger", ""),
        ):
            value, shipped = other.get(key), ours.get(key)
            section.rows.append(
                Row(
                    section.name,
                    f"what-if {name}: {metric}",
                    value,
                    unit,
                    baseline=shipped,
                    baseline_name="ours as shipped",
                    ratio=(value / shipped) if value and shipped else None,
                    ratio_meaning="of shipped",
                    note=f"load average {other['load_average'][0]:.2f}"
                    if key == "all_polled_s"
                    else "",
                )
            )
    return section


def run_scale(
    python: str,
    env: dict[str, str],
    work: Path,
    tls: TLSFiles,
    *,
    waits: int,
    poll_interval: float = 30.0,
    what_ifs: tuple[str, ...] = (),
) -> SectionResult:
    """Section 6: ours, dbt Cloud's, then any what-if variants (``ours_<name>``)."""
    variants = ("ours", "dbt", *(f"ours_{name}" for name in what_ifs))
    with Harness(python, env, work, tls) as harness:
        results = {v: measure_variant(harness, v, waits, poll_interval) for v in variants}
    others = {v: r for v, r in results.items() if v.startswith("ours_")}
    return scale_rows(results["ours"], results.get("dbt"), waits, others)


# ------------------------------------------------------------------------- section 7


def run_takeover(
    python: str,
    env: dict[str, str],
    work: Path,
    tls: TLSFiles,
    *,
    waits: int = 1000,
    poll_interval: float = 30.0,
) -> SectionResult:
    """Section 7: SIGKILL the triggerer mid-wait; a second takes over."""
    section = SectionResult(f"7 triggerer takeover, {waits:,} waits")
    with Harness(python, env, work, tls) as harness:
        first = harness.start_triggerer("triggerer-a", capacity=waits + 100)
        # Kill after every run was polled once (<= 60 s); runs end well after the takeover.
        kill_after = FIRST_POLL_GOAL_S + 10
        runs = harness.make_runs("ours", waits, FAR_AHEAD_S, 2 * poll_interval)
        harness.emulator.reset_stats()
        loaded = harness.load("ours", runs, poll_interval)
        created_at, dag_run_id = loaded["created_at"], loaded["dag_run_id"]
        harness.end_runs_from(
            "ours", runs, created_at + kill_after + FIRST_POLL_GOAL_S + 2 * poll_interval
        )
        # The standby: started once the first holds every trigger, as a second replica runs in
        # an HA deployment; it takes over when the first stops heartbeating.
        while time.time() < created_at + kill_after and harness.unassigned_triggers():
            time.sleep(1.0)
        second = harness.start_triggerer("triggerer-b", capacity=waits + 100)
        time.sleep(max(0.0, created_at + kill_after - time.time()))
        polled_before = harness.emulator.request("GET", "/_bench/polls").json()
        first.kill()
        killed_at = time.time()
        last_end = max(run["ends_at"] for run in runs)
        limit = last_end + poll_interval + 90
        while time.time() < limit and harness.resumed_count(dag_run_id) < waits:
            time.sleep(1.0)
        time.sleep(1.5)
        polls_by_path = harness.emulator.request("GET", "/_bench/polls").json()
        stats = harness.emulator.stats()
        counts_a, counts_b = first.counts(), second.counts()
        transitions = harness.transitions(dag_run_id)
        second.stop()

    polls_by_run = {run_id_of_path(p): t for p, t in polls_by_path.items()}
    polled_before_kill = {run_id_of_path(p) for p in polled_before}
    resumed_after = []
    intervals: list[float] = []
    for run in runs:
        times = polls_by_run.get(run["run_id"], [])
        after = [t for t in times if t > killed_at]
        if after:
            resumed_after.append(min(after) - killed_at)
        intervals.extend(poll_intervals(times, killed_at))
    resumes: dict[int, int] = {}
    for index, old, new, _at in transitions:
        if old == "deferred" and new == "scheduled":
            resumes[index] = resumes.get(index, 0) + 1
    events: dict[str, int] = {}
    for counts in (counts_a, counts_b):
        for trigger_id, n in counts.get("events_per_trigger", {}).items():
            events[trigger_id] = events.get(trigger_id, 0) + n
    cancels = sum(n for route, n in stats["requests"].items() if "cancel" in route.lower())
    worst_resume = max(resumed_after) if len(resumed_after) == waits else None
    median_interval = statistics.median(intervals) if intervals else None
    details = {
        "waits": waits,
        "poll_interval_s": poll_interval,
        "killed_after_commit_s": round(killed_at - created_at, 1),
        "runs_polled_before_kill": len(polled_before_kill),
        "standby_started_before_kill": True,
        "resume_after_kill_s": {
            "n": len(resumed_after),
            "p50": _round(percentile(resumed_after, 0.5)),
            "max": _round(max(resumed_after) if resumed_after else None),
        },
        "tis_resumed": len(resumes),
        "tis_resumed_more_than_once": sum(1 for n in resumes.values() if n > 1),
        "events_submitted": {
            "a": sum(counts_a.get("events_per_trigger", {}).values()),
            "b": sum(counts_b.get("events_per_trigger", {}).values()),
        },
        "triggers_with_more_than_one_event": sum(1 for n in events.values() if n > 1),
        "cancel_requests": cancels,
        "poll_interval_after_takeover_s": {
            "n": len(intervals),
            "p5": _round(percentile(intervals, 0.05)),
            "p50": _round(median_interval),
            "p95": _round(percentile(intervals, 0.95)),
        },
        "load_average": os.getloadavg(),
    }
    section.details = details
    name = section.name
    section.rows += [
        Row(
            name,
            "every wait polled again by the second triggerer",
            worst_resume,
            "s",
            goal="<= 60 s after the kill",
            met=worst_resume is not None and worst_resume <= 60,
            note=f"{len(resumed_after)} of {waits} runs polled after the kill; "
            f"p50 {details['resume_after_kill_s']['p50']} s; the standby triggerer ran before "
            f"the kill (health threshold {HEALTH_THRESHOLD} s); load average "
            f"{details['load_average'][0]:.2f}",
        ),
        Row(
            name,
            "task instances resumed exactly once",
            len(resumes) - details["tis_resumed_more_than_once"],
            "",
            goal=f"{waits}",
            met=len(resumes) == waits
            and details["tis_resumed_more_than_once"] == 0
            and details["triggers_with_more_than_one_event"] == 0,
            note=f"events submitted: {details['events_submitted']}; triggers with more than "
            f"one event {details['triggers_with_more_than_one_event']}",
        ),
        Row(name, "Immuta runs cancelled", cancels, "", goal="0", met=cancels == 0),
        Row(
            name,
            "poll interval per run after the takeover, median",
            median_interval,
            "s",
            baseline=poll_interval,
            baseline_name="configured",
            ratio=None if median_interval is None else median_interval / poll_interval,
            ratio_meaning="of configured",
            goal=f"{poll_interval:.0f} s",
            met=median_interval is not None
            and abs(median_interval - poll_interval) <= 1.0
            and (percentile(intervals, 0.05) or 0) >= poll_interval - 1.0,
            note=f"p5 {details['poll_interval_after_takeover_s']['p5']} s, p95 "
            f"{details['poll_interval_after_takeover_s']['p95']} s over {len(intervals)} gaps",
        ),
    ]
    return section
