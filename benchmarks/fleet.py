"""2. A triggerer's worth of waiting triggers, over TLS.

``count`` triggers run in one event loop (as in one triggerer process), each waiting on its own
remote run that finishes ``run_duration`` seconds after it was created, against a server in another
process. Four variants, each in a fresh process so that CPU time and peak RSS are its own:

* ``ours``: ``ImmutaTaskRunTrigger`` as shipped and configured by default (one shared client and
  keep-alive pool; the client sends with aiohttp, installed in ``.venv-bench``);
* ``per_poll_client``: the same trigger logic, but every poll opens a new ``AsyncImmutaClient`` and
  closes it (the pattern of the dbt Cloud and Fivetran triggers), via a hook subclass; pinned to
  ``http_backend="httpx"`` so this baseline stays what it always measured (a new httpx client per
  poll; (b) is the new-aiohttp-session-per-poll pattern);
* ``dbt``: the dbt Cloud provider's ``DbtCloudRunJobTrigger`` against :mod:`benchmarks.dbt_stub`;
* ``ours_httpx`` (context only): ``ours`` with the shared client on ``http_backend="httpx"``, the
  shipped configuration before the aiohttp backend (and still the one without aiohttp installed).

Measured in the variant's process over the fleet phase only: CPU seconds (``time.process_time``),
RSS growth (sampled ``VmRSS`` peak minus the RSS before the triggers were made), and for each
trigger the time its event came out minus the time its run finished (detection latency). The
server counts the polls and the TLS connections (:mod:`benchmarks.servers`).

Triggers start spread evenly over one poll interval, as triggers of a real triggerer are: a fleet
that starts in lock-step polls in bursts, which no triggerer does for long.

Authentication is the flow Immuta documents: the emulator accepts only tokens exchanged for the
API key (``--auth exchange-only``) and the Airflow connection pins ``auth_method`` ``exchange``;
the emulator's count of exchanges per variant is in the details (``token_exchanges``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import importlib
import inspect
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from benchmarks.report import Row, SectionResult
from benchmarks.servers import ServerProcess, free_port
from benchmarks.tls import TLSFiles

VARIANTS = ("ours", "per_poll_client", "dbt", "ours_httpx")
# What-if variants: the shipped trigger with a bench-side patch, to show the effect of a change
# (here: the httpx backend, as before aiohttp); never judged against a goal.
WHAT_IF = {"ours_httpx": {"http_backend": "httpx"}}
CONNECTION_KEY = "snowflake-prod"  # ACTIVE in the emulator's demo seed
DBT_ACCOUNT_ID = 1
DBT_TOKEN = "dbt-bench-token"
API_KEY = "immuta-bench-key"
REPO = Path(__file__).resolve().parent.parent


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


# ------------------------------------------------------------------- the variant process


async def _create_runs(config: dict[str, Any]) -> None:
    """The run maker (its own process, so its CPU is not the fleet's): one JSON line per run.

    Runs are made at most ``count / poll_interval`` per second, so that the fleet's triggers,
    each started as its run arrives, are spread over at least one poll interval.
    """
    import httpx

    count, pace = config["count"], config["poll_interval"] / config["count"]
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=600)
    transport = httpx.AsyncHTTPTransport(verify=_context(config["ca_cert"]), limits=limits)
    headers = {}
    if config["variant"] != "dbt":  # the emulator takes exchanged tokens only
        async with httpx.AsyncClient(base_url=config["url"], transport=transport) as exchange:
            answer = await exchange.post(
                "/bim/apikey/authenticate", json={"apikey": config["api_key"]}
            )
            answer.raise_for_status()
            headers = {"Authorization": f"Bearer {answer.json()['token']}"}
        transport = httpx.AsyncHTTPTransport(verify=_context(config["ca_cert"]), limits=limits)
    else:
        headers = {"Authorization": f"Bearer {config['api_key']}"}
    semaphore = asyncio.Semaphore(8)
    started = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=config["url"], transport=transport, headers=headers, timeout=60
    ) as http:

        async def make(index: int) -> None:
            await asyncio.sleep(max(0.0, started + index * pace - time.perf_counter()))
            async with semaphore:
                if config["variant"] == "dbt":
                    body = {"count": 1, "duration": config["run_duration"]}
                    made = (await http.post("/_stub/runs", json=body)).json()["runs"][0]
                    run = {"id": made["id"], "finishes_at": made["finishes_at"]}
                else:
                    tasks = f"/api/connections/{CONNECTION_KEY}/tasks"
                    created = await http.post(tasks, json={"type": "DATA_OBJECT_SYNC"})
                    created.raise_for_status()
                    task_id = created.json()["taskId"]
                    runs = (await http.get(f"{tasks}/{task_id}/runs")).json()["runs"]
                    run = {"task_id": task_id, "run_id": runs[0]["runId"]}
            sys.stdout.write(json.dumps(run) + "\n")
            sys.stdout.flush()

        await asyncio.gather(*(make(index) for index in range(count)))
        opened = len(transport._pool.connections)
    sys.stdout.write(json.dumps({"creator_connections": opened}) + "\n")
    sys.stdout.flush()


def _context(ca_cert: str) -> Any:
    import ssl

    return ssl.create_default_context(cafile=ca_cert)


def _per_poll_trigger_class() -> type[Any]:
    """``ImmutaTaskRunTrigger`` whose hook hands out a client that is rebuilt for every call."""
    from immuta_provider.client import AsyncImmutaClient, ClientConfig
    from immuta_provider.hooks.immuta import ImmutaHook
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    class ClientPerCall:
        """Quacks like ``AsyncImmutaClient``; each method call opens and closes a new one."""

        def __init__(self, client_kwargs: dict[str, Any]) -> None:
            self._client_kwargs = client_kwargs
            config = ClientConfig.create(client_kwargs["base_url"], client_kwargs["api_key"])
            self.base_url = config.base_url

        def __getattr__(self, name: str) -> Any:
            if not inspect.iscoroutinefunction(getattr(AsyncImmutaClient, name, None)):
                raise AttributeError(name)

            async def call(*args: Any, **kwargs: Any) -> Any:
                async with AsyncImmutaClient(**self._client_kwargs, http_backend="httpx") as client:
                    return await getattr(client, name)(*args, **kwargs)

            return call

    class PerPollHook(ImmutaHook):
        @asynccontextmanager
        async def shared_async_client(self) -> AsyncIterator[Any]:  # type: ignore[override]
            settings = await self.aget_settings()
            yield ClientPerCall(settings.client_kwargs())

    class PerPollClientTrigger(ImmutaTaskRunTrigger):
        def _hook(self) -> Any:
            return PerPollHook(immuta_conn_id=self.immuta_conn_id)

    return PerPollClientTrigger


def _trigger_factory(config: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    """Import the variant's trigger class (before the phase) and return a builder of one."""
    deadline = time.time() + config["run_duration"] + 300
    if config["variant"] == "dbt":
        from airflow.providers.dbt.cloud.triggers.dbt import DbtCloudRunJobTrigger

        def build_dbt(run: dict[str, Any]) -> Any:
            return DbtCloudRunJobTrigger(
                conn_id="dbt_cloud_default",
                run_id=run["id"],
                end_time=deadline,
                poll_interval=config["poll_interval"],
                account_id=DBT_ACCOUNT_ID,
            )

        return build_dbt
    if config["variant"] in ("ours", *WHAT_IF):
        from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

        trigger_class: type[Any] = ImmutaTaskRunTrigger
    else:
        trigger_class = _per_poll_trigger_class()
    # Everything a first poll would import, so the phase measures polling, not imports.
    import immuta_provider.hooks.immuta  # noqa: F401

    with contextlib.suppress(ImportError):  # the default backend, imported by the first client
        importlib.import_module("immuta_provider.client._aiohttp")

    def build_ours(run: dict[str, Any]) -> Any:
        return trigger_class(
            immuta_conn_id="immuta_default",
            connection_key=CONNECTION_KEY,
            immuta_task_id=run["task_id"],
            run_id=run["run_id"],
            poll_interval=config["poll_interval"],
            deadline=deadline,
        )

    return build_ours


class _Fleet:
    """What the fleet phase saw: one entry per trigger, in the order runs were made."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.events: list[tuple[float, dict[str, Any]] | None] = []
        self.peak_kib = _rss_kib()
        self.creator_connections = 0
        self.timed_out = 0


async def _drive(config: dict[str, Any], build: Callable[[dict[str, Any]], Any]) -> _Fleet:
    """Start a trigger as each run arrives from the run maker; wait for every first event.

    Stops ``poll_interval + run_duration + 40`` seconds after it began: a fleet that cannot keep
    up is a result too. Unfinished triggers are left as they are (cancelling a thousand requests
    queued in httpx's pool takes minutes of its own); the process exits right after reporting.
    """
    fleet = _Fleet()
    finished = asyncio.Event()

    async def sample_rss() -> None:
        while not finished.is_set():
            fleet.peak_kib = max(fleet.peak_kib, _rss_kib())
            await asyncio.sleep(0.5)

    async def one(index: int, trigger: Any) -> None:
        # A real task defers some time after its run started, unrelated to the poll interval:
        # start each trigger at an evenly spread phase within one interval after its run was made,
        # so that detection latency covers the whole range rather than one lucky alignment.
        await asyncio.sleep((index * 0.6180339887498949) % 1.0 * config["poll_interval"])
        generator = trigger.run()
        event = await generator.__anext__()
        fleet.events[index] = (time.time(), dict(event.payload))
        await generator.aclose()

    sampler = asyncio.ensure_future(sample_rss())
    # Every run is made within about one poll interval and ends run_duration later: the phase
    # gets that, plus a margin, and no more.
    stop_at = time.monotonic() + config["poll_interval"] + config["run_duration"] + 40
    maker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.fleet",
        "create",
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    tasks: list[asyncio.Future[None]] = []

    async def read_runs() -> None:
        assert maker.stdout is not None
        async for line in maker.stdout:
            item = json.loads(line)
            if "creator_connections" in item:
                fleet.creator_connections = item["creator_connections"]
                continue
            fleet.runs.append(item)
            fleet.events.append(None)
            tasks.append(asyncio.ensure_future(one(len(tasks), build(item))))
        await maker.wait()

    try:
        await asyncio.wait_for(read_runs(), timeout=stop_at - time.monotonic())
    except asyncio.TimeoutError:
        maker.kill()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=max(0.1, stop_at - time.monotonic()))
        fleet.timed_out = len(pending)
    finished.set()
    await sampler
    return fleet


def _apply_experiment(config: dict[str, Any]) -> None:
    """What-if switches for profiling sessions (``experiment`` in the config); none by default."""
    limit = (config.get("experiment") or {}).get("httpx_pool_limit")
    if limit:
        import httpx

        original = httpx.AsyncClient.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault(
                "limits", httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
            )
            original(self, *args, **kwargs)

        httpx.AsyncClient.__init__ = init  # type: ignore[method-assign]
    gate = (config.get("experiment") or {}).get("in_flight_limit")
    if gate:
        import httpx

        send = httpx.AsyncClient.send
        semaphores: dict[int, asyncio.Semaphore] = {}

        async def gated_send(self: Any, *args: Any, **kwargs: Any) -> Any:
            semaphore = semaphores.setdefault(id(self), asyncio.Semaphore(gate))
            async with semaphore:
                return await send(self, *args, **kwargs)

        httpx.AsyncClient.send = gated_send  # type: ignore[method-assign]
    backend = (config.get("experiment") or {}).get("http_backend")
    if backend:
        from immuta_provider.client import AsyncImmutaClient
        from immuta_provider.hooks import shared_clients

        def new_client(settings: Any) -> Any:
            return AsyncImmutaClient(**settings.client_kwargs(), http_backend=backend)

        shared_clients.shared_async_clients._factory = new_client


def _variant_main(config: dict[str, Any]) -> dict[str, Any]:
    import httpx

    _apply_experiment(config)

    # Logging as a triggerer has it: INFO and up, formatted, to a file.
    logging.basicConfig(
        filename=config["log_file"],
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    admin = httpx.Client(base_url=config["url"], verify=config["ca_cert"], timeout=30)
    build = _trigger_factory(config)
    gc.collect()
    rss_before = _rss_kib()
    admin.post("/_bench/reset").raise_for_status()
    server_cpu_before = _process_cpu(config["server_pid"])
    profiler = _start_profiler(config)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    loop = asyncio.new_event_loop()
    fleet = loop.run_until_complete(_drive(config, build))
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    _stop_profiler(profiler, config)
    server_cpu = _process_cpu(config["server_pid"]) - server_cpu_before
    stats = admin.get("/_bench/stats").json()
    admin.close()

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    for run, item in zip(fleet.runs, fleet.events, strict=True):
        if item is None:
            statuses["no event"] = statuses.get("no event", 0) + 1
            continue
        at, payload = item
        status = str(payload.get("status"))
        statuses[status] = statuses.get(status, 0) + 1
        if config["variant"] == "dbt":
            finished = run.get("finishes_at")
        else:
            finished = _epoch((payload.get("run") or {}).get("completed_at"))
        if finished is not None and status == "success":
            latencies.append(at - finished)
    poll_route = [route for route in stats["requests"] if "/runs/{id}" in route]
    polls = sum(stats["requests"][route] for route in poll_route)
    return {
        "variant": config["variant"],
        "triggers": len(fleet.runs),
        "statuses": statuses,
        "cpu_s": cpu,
        "wall_s": wall,
        "polls": polls,
        "requests": stats["requests"],
        # The run maker's own connections are not the fleet's.
        "connections": stats["connections"] - fleet.creator_connections,
        "run_maker_connections": fleet.creator_connections,
        "server_cpu_s": server_cpu,
        "rss_before_mib": rss_before / 1024,
        "rss_growth_mib": (fleet.peak_kib - rss_before) / 1024,
        "latencies_s": sorted(latencies),
        "example_event": fleet.events[0][1] if fleet.events and fleet.events[0] else None,
    }


def _start_profiler(config: dict[str, Any]) -> Any:
    if not config.get("profile_dir"):
        return None
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    return profiler


def _stop_profiler(profiler: Any, config: dict[str, Any]) -> None:
    if profiler is None:
        return
    profiler.stop()
    directory = Path(config["profile_dir"])
    directory.mkdir(parents=True, exist_ok=True)
    for suffix, show_all in (("txt", False), ("full.txt", True)):
        (directory / f"fleet-{config['variant']}.{suffix}").write_text(
            profiler.output_text(unicode=False, color=False, show_all=show_all)
        )


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------- the benchmark process


def run_variant(python: str, env: dict[str, str], config: dict[str, Any]) -> dict[str, Any]:
    """Run one variant in a fresh process; its JSON result."""
    out = Path(config["out"])
    completed = subprocess.run(
        [python, "-m", "benchmarks.fleet", json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=config["run_duration"] + 400,
        check=False,
        cwd=REPO,
    )
    if completed.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"fleet variant {config['variant']} failed ({completed.returncode}):\n"
            + completed.stderr[-3000:]
        )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, round(fraction * (len(values) - 1)))]


def summarize(results: dict[str, dict[str, Any]], poll_interval: float) -> SectionResult:
    """The rows of section 2 from the three variants' results."""
    section = SectionResult("2 trigger fleet (TLS)")
    for name, result in results.items():
        lat = result["latencies_s"]
        section.details[name] = {
            **{k: v for k, v in result.items() if k != "latencies_s"},
            "cpu_ms_per_poll": 1000 * result["cpu_s"] / max(result["polls"], 1),
            "rss_kib_per_trigger": 1024 * result["rss_growth_mib"] / max(result["triggers"], 1),
            "connections_per_poll": result["connections"] / max(result["polls"], 1),
            "server_cpu_ms_per_poll": 1000 * result["server_cpu_s"] / max(result["polls"], 1),
            "latency_s": {
                "n": len(lat),
                "p50": statistics.median(lat) if lat else None,
                "p95": _percentile(lat, 0.95),
                "max": max(lat) if lat else None,
            },
        }
    labels = {"per_poll_client": "(a) client per poll", "dbt": "(b) dbt Cloud trigger"}
    for name in ("ours", *WHAT_IF):
        if name in section.details:
            section.rows.extend(_rows_for(section, name, labels, poll_interval))
    return section


def _rows_for(
    section: SectionResult, name: str, labels: dict[str, str], poll_interval: float
) -> list[Row]:
    """The rows of one of our variants; a what-if variant's rows are context, never judged."""
    ours = section.details[name]
    what_if = name in WHAT_IF
    prefix = f"what-if {name}: " if what_if else ""
    rows: list[Row] = []
    for other_name, label in labels.items():
        other = section.details.get(other_name)
        if other is None:
            continue
        ratio = other["cpu_ms_per_poll"] / ours["cpu_ms_per_poll"]
        rows.append(
            Row(
                section.name,
                f"{prefix}CPU per poll vs {label}",
                ours["cpu_ms_per_poll"],
                "ms",
                baseline=other["cpu_ms_per_poll"],
                baseline_name=label,
                ratio=ratio,
                ratio_meaning="less",
                goal="" if what_if else ">= 3x less",
                met=None if what_if else ratio >= 3 and _all_succeeded(other),
                note=(
                    ""
                    if _all_succeeded(other)
                    else f"{label} did not run cleanly: statuses {other['statuses']}"
                ),
            )
        )
    per_poll = section.details.get("per_poll_client")
    dbt = section.details.get("dbt")
    rows.append(
        Row(
            section.name,
            f"{prefix}peak RSS per waiting trigger",
            ours["rss_kib_per_trigger"],
            "KiB",
            baseline=per_poll["rss_kib_per_trigger"] if per_poll else None,
            baseline_name=labels["per_poll_client"] if per_poll else "",
            note=f"(b): {dbt['rss_kib_per_trigger']:.1f} KiB" if dbt and not what_if else "",
        )
    )
    rows.append(
        Row(
            section.name,
            f"{prefix}TLS connections opened / polls",
            100 * ours["connections_per_poll"],
            "%",
            baseline=100 * per_poll["connections_per_poll"] if per_poll else None,
            baseline_name=labels["per_poll_client"] if per_poll else "",
            goal="" if what_if else "<= 1%",
            met=None if what_if else ours["connections_per_poll"] <= 0.01,
            note=(
                f"{name}: {ours['connections']} connections for {ours['polls']} polls"
                + (f"; (a): {per_poll['connections']} for {per_poll['polls']}" if per_poll else "")
                + (f"; (b): {dbt['connections']} for {dbt['polls']}" if dbt else "")
            ),
        )
    )
    latency = ours["latency_s"]
    worst = latency["max"]
    all_seen = latency["n"] == ours["triggers"]
    rows.append(
        Row(
            section.name,
            f"{prefix}detection latency, worst",
            None if worst is None else 1000 * worst,
            "ms",
            baseline=1000 * poll_interval,
            baseline_name="poll interval",
            goal="" if what_if else "<= interval + 100 ms",
            met=None if what_if or worst is None else all_seen and worst <= poll_interval + 0.1,
            note=(
                f"{name}: p50 {_ms(latency['p50'])}, p95 {_ms(latency['p95'])}; "
                f"{latency['n']} of {ours['triggers']} triggers saw their run complete "
                f"within the time limit (statuses {ours['statuses']}); "
                f"fleet phase {ours['wall_s']:.0f} s"
            ),
        )
    )
    return rows


def run(
    python: str,
    env: dict[str, str],
    workdir: Path,
    tls: TLSFiles,
    *,
    count: int = 1000,
    poll_interval: float = 5.0,
    run_duration: float = 25.0,
    variants: tuple[str, ...] = VARIANTS,
    profile_dir: Path | None = None,
    experiment: dict[str, Any] | None = None,
) -> SectionResult:
    """Start the TLS emulator and the dbt Cloud stub, run each variant, summarize."""
    emulator_port, stub_port = free_port(), free_port()
    tls_args = ["--ssl-certfile", str(tls.server_cert), "--ssl-keyfile", str(tls.server_key)]
    emulator_args = ["emulator", "--host", "127.0.0.1", "--port", str(emulator_port)]
    emulator_args += ["--seed", "demo", "--api-key", API_KEY, "--sync-duration", str(run_duration)]
    emulator_args += ["--auth", "exchange-only"]
    stub_args = ["dbt-stub", "--port", str(stub_port), "--token", DBT_TOKEN, *tls_args]
    variant_env = {
        **env,
        "SSL_CERT_FILE": str(tls.ca_cert),  # aiohttp (dbt Cloud hook) trusts the default paths
        "AIRFLOW_CONN_IMMUTA_DEFAULT": json.dumps(
            {
                "conn_type": "immuta",
                "host": f"https://127.0.0.1:{emulator_port}",
                "password": API_KEY,
                "extra": {"ca_bundle": str(tls.ca_cert), "auth_method": "exchange"},
            }
        ),
        "AIRFLOW_CONN_DBT_CLOUD_DEFAULT": json.dumps(
            {
                "conn_type": "dbt_cloud",
                "host": f"127.0.0.1:{stub_port}",
                "login": str(DBT_ACCOUNT_ID),
                "password": DBT_TOKEN,
            }
        ),
    }
    results: dict[str, dict[str, Any]] = {}
    emulator = ServerProcess(
        python,
        [*emulator_args, *tls_args],
        port=emulator_port,
        scheme="https",
        log_path=workdir / "fleet-emulator.log",
        ca_cert=tls.ca_cert,
        env=env,
    )
    stub = ServerProcess(
        python,
        stub_args,
        port=stub_port,
        scheme="https",
        log_path=workdir / "fleet-dbt-stub.log",
        ca_cert=tls.ca_cert,
        env=env,
    )
    with emulator, stub:
        for variant in variants:
            server = stub if variant == "dbt" else emulator
            if variant != "dbt":
                emulator.request("POST", "/_emulator/reset").raise_for_status()
            config = {
                "variant": variant,
                "url": server.url,
                "api_key": API_KEY,
                "ca_cert": str(tls.ca_cert),
                "count": count,
                "poll_interval": poll_interval,
                "run_duration": run_duration,
                "server_pid": server.pid,
                "log_file": str(workdir / f"fleet-{variant}.log"),
                "out": str(workdir / f"fleet-{variant}.json"),
                "profile_dir": str(profile_dir) if profile_dir else None,
                "experiment": experiment or WHAT_IF.get(variant),
            }
            results[variant] = run_variant(python, variant_env, config)
            if variant != "dbt":
                counted = emulator.request("GET", "/_emulator/counters").json()["auth"]
                # The run maker's one exchange is not the fleet's.
                results[variant]["token_exchanges"] = counted["exchanges"] - 1
    section = summarize(results, poll_interval)
    section.details["setup"] = {
        "triggers": count,
        "poll_interval_s": poll_interval,
        "run_duration_s": run_duration,
        "tls": "RSA-2048 server certificate signed by a throw-away CA",
    }
    return section


def _all_succeeded(result: dict[str, Any]) -> bool:
    return bool(result["statuses"]) and set(result["statuses"]) == {"success"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.0f} ms"


if __name__ == "__main__":
    if sys.argv[1] == "create":
        asyncio.run(_create_runs(json.loads(sys.argv[2])))
    else:
        settings = json.loads(sys.argv[1])
        Path(settings["out"]).write_text(json.dumps(_variant_main(settings), default=str))
        # Skip the event loop's clean-up: cancelling triggers still queued (a fleet that did not
        # keep up) takes minutes in httpx's pool, and the figures are written.
        logging.shutdown()
        os._exit(0)
