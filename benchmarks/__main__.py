"""``python -m benchmarks`` (``make bench``): run every section, print the table, write the JSON.

Sections (see each module's docstring for the method):

1. import cost of our operators module against four peer providers' (:mod:`.import_cost`)
2. a 1,000-trigger fleet over TLS against two baselines (:mod:`.fleet`)
3. paging 100,000 data objects against a raw httpx loop (:mod:`.client_bench`)
4. client overhead of ``get_task_run``, sync and async, against raw httpx (:mod:`.client_bench`)
5. emulator throughput, for context (:mod:`.emulator_throughput`)
6. N waits in one real ``airflow triggerer`` (PostgreSQL, TLS) against dbt Cloud's trigger, and
7. the same triggerer SIGKILLed mid-wait with a second taking over (:mod:`.triggerer_scale`)

Every load is bounded in count and time; every server is started and stopped here, on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import client_bench, fleet, import_cost, triggerer_scale
from benchmarks.report import Row, SectionResult, render_table, write_json
from benchmarks.servers import ServerProcess, free_port
from benchmarks.tls import make_tls_files

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "latest.json"
API_KEY = "immuta-bench-key"


@dataclass
class Sizes:
    """How much work each section does."""

    import_samples: int = 15
    fleet_triggers: int = 1000
    poll_interval: float = 5.0
    run_duration: float = 25.0
    objects: int = 100_000
    paging_passes: int = 2
    calls: int = 5000
    load_requests: int = 4000
    load_seconds: float = 10.0
    triggerer_waits: int = 10_000
    triggerer_poll_interval: float = 30.0
    takeover_waits: int = 1000


QUICK = Sizes(
    import_samples=3,
    fleet_triggers=100,
    poll_interval=2.0,
    run_duration=6.0,
    objects=10_000,
    paging_passes=1,
    calls=500,
    load_requests=500,
    load_seconds=3.0,
    triggerer_waits=1000,
)


def _run_json(module: str, config: dict[str, Any], env: dict[str, str], timeout: float) -> Any:
    """Run ``python -m benchmarks.<module> CONFIG`` and read the JSON it writes to config["out"]."""
    out = Path(config["out"])
    completed = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )
    if completed.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"benchmarks.{module} failed ({completed.returncode}):\n{completed.stderr[-3000:]}"
        )
    return json.loads(out.read_text())


def paging_section(server: ServerProcess, env: dict[str, str], work: Path, sizes: Sizes) -> Any:
    """3. Inventory paging."""
    section = SectionResult("3 inventory paging")
    config = {
        "job": "paging",
        "url": server.url,
        "api_key": API_KEY,
        "objects": sizes.objects,
        "passes": sizes.paging_passes,
        "out": str(work / "paging.json"),
    }
    passes = _run_json("client_bench", config, env, timeout=400)
    section.details = passes
    raw_rate = client_bench.median_pass(passes["raw"], "objects_per_s")
    ours_rate = client_bench.median_pass(passes["ours"], "objects_per_s")
    counted = {p["objects"] for p in passes["ours"] + passes["raw"]}
    ratio = ours_rate / raw_rate
    section.rows.append(
        Row(
            section.name,
            f"objects/s, {sizes.objects:,} objects in pages of 100",
            ours_rate,
            "obj/s",
            baseline=raw_rate,
            baseline_name="raw httpx loop",
            ratio=ratio,
            ratio_meaning="of raw",
            goal=">= 0.9x",
            met=ratio >= 0.9 and counted == {sizes.objects},
            note=(
                f"client CPU {client_bench.median_pass(passes['ours'], 'cpu_us_per_object'):.1f}"
                f" us/object vs raw "
                f"{client_bench.median_pass(passes['raw'], 'cpu_us_per_object'):.1f} us/object"
                + ("" if counted == {sizes.objects} else f"; objects seen per pass: {counted}")
            ),
        )
    )
    growth = max(p["rss_growth_mib"] for p in passes["ours"])
    section.rows.append(
        Row(
            section.name,
            "peak RSS growth while paging",
            growth,
            "MiB",
            baseline=max(p["rss_growth_mib"] for p in passes["raw"]),
            baseline_name="raw httpx loop",
            goal="flat, < 50 MiB",
            met=growth < 50,
            note=(
                "growth after the first 10% of objects: "
                f"{max(p['rss_growth_after_10pc_mib'] for p in passes['ours']):.1f} MiB"
            ),
        )
    )
    return section


def overhead_section(server: ServerProcess, env: dict[str, str], work: Path, sizes: Sizes) -> Any:
    """4. Client overhead per call."""
    section = SectionResult("4 client overhead")
    config = {
        "job": "overhead",
        "url": server.url,
        "api_key": API_KEY,
        "calls": sizes.calls,
        "block": max(1, sizes.calls // 10),
        "out": str(work / "overhead.json"),
    }
    results = _run_json("client_bench", config, env, timeout=400)
    section.details = results
    for mode in ("sync", "async"):
        ours, raw = results[mode]["ours"], results[mode]["raw"]
        ratio = ours["us_per_call"] / raw["us_per_call"]
        section.rows.append(
            Row(
                section.name,
                f"get_task_run x{sizes.calls:,}, {mode}, per call",
                ours["us_per_call"],
                "us",
                baseline=raw["us_per_call"],
                baseline_name="raw httpx, same pool",
                ratio=ratio,
                ratio_meaning="of raw",
                goal="<= 1.3x",
                met=ratio <= 1.3,
                note=(
                    f"client-side CPU {ours['cpu_us_per_call']:.0f} us/call vs raw "
                    f"{raw['cpu_us_per_call']:.0f} us/call"
                ),
            )
        )
    return section


def throughput_section(server: ServerProcess, env: dict[str, str], work: Path, sizes: Sizes) -> Any:
    """5. Emulator throughput (context)."""
    section = SectionResult("5 emulator throughput")
    config = {
        "url": server.url,
        "api_key": API_KEY,
        "server_pid": server.pid,
        "concurrency": 8,
        "requests": sizes.load_requests,
        "seconds": sizes.load_seconds,
        "out": str(work / "throughput.json"),
    }
    results = _run_json("emulator_throughput", config, env, timeout=120)
    # The emulator engineer's load tool with its minimal HTTP/1.1 client (nearer the server limit).
    from benchmarks import emulator_load

    load = emulator_load.measure(
        server.url,
        API_KEY,
        requests=sizes.load_requests,
        seconds=sizes.load_seconds,
        concurrency=8,
        processes=1,
        server_pid=server.pid,
        client="raw",
    )
    section.details = {"httpx": results, "emulator_load_raw": load}
    section.rows.append(
        Row(
            section.name,
            "GET task run, 8 in flight, minimal client (context)",
            load["requests_per_second"],
            "req/s",
            note=(
                f"benchmarks/emulator_load.py --client raw: p50 {load['latency_ms_p50']} ms, "
                f"p99 {load['latency_ms_p99']} ms, emulator CPU "
                f"{load.get('server_cpu_ms_per_request')} ms/request, "
                f"{load['errors']} errors of {load['requests']}"
            ),
        )
    )
    for name, result in results.items():
        section.rows.append(
            Row(
                section.name,
                f"{name}, 8 in flight, httpx (context)",
                result["requests_per_s"],
                "req/s",
                note=(
                    f"{name}: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                    f"emulator CPU {result['server_cpu_ms_per_request']:.2f} ms/request, "
                    f"{result['errors']} errors of {result['requests']}"
                ),
            )
        )
    return section


def _timed(name: str, body: Callable[[], SectionResult]) -> SectionResult:
    start = time.perf_counter()
    print(f"-- {name} ...", file=sys.stderr, flush=True)
    try:
        section = body()
    except Exception as exc:
        traceback.print_exc()
        section = SectionResult(name, error=f"{type(exc).__name__}: {str(exc)[:400]}")
    section.seconds = time.perf_counter() - start
    print(f"-- {name}: {section.seconds:.0f} s", file=sys.stderr, flush=True)
    return section


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _meta(started: float) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    ).stdout.strip()
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "commit": commit or None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "versions": {
            name: _version(name)
            for name in (
                "apache-airflow",
                "httpx",
                "pydantic",
                "apache-airflow-providers-dbt-cloud",
                "apache-airflow-providers-databricks",
                "apache-airflow-providers-airbyte",
                "airflow-provider-fivetran-async",
            )
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Run the sections asked for; exit 1 if one could not run (a missed goal is not an error)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default="1,2,3,4,5,6,7", help="sections to run, e.g. 2,4")
    parser.add_argument("--quick", action="store_true", help="small sizes, for trying things out")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"JSON results (default {DEFAULT_OUTPUT.relative_to(REPO)} for a full run of every "
        "section, else only the work directory)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="profile the measured phases with pyinstrument (slower; figures then not comparable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--triggerer-waits",
        type=int,
        default=None,
        metavar="N",
        help="waits in section 6's real triggerer (default 10,000; 1,000 with --quick)",
    )
    parser.add_argument(
        "--triggerer-poll-interval",
        type=float,
        default=None,
        metavar="S",
        help="poll interval of sections 6 and 7 (default 30 s, the goal's)",
    )
    parser.add_argument(
        "--triggerer-what-if",
        default="",
        metavar="NAMES",
        help="also run section 6 with these bench-side patches, e.g. no_settings_cache",
    )
    args = parser.parse_args(argv)
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    sizes = QUICK if args.quick else Sizes()
    if args.triggerer_waits:
        sizes = dataclasses.replace(sizes, triggerer_waits=args.triggerer_waits)
    if args.triggerer_poll_interval:
        sizes = dataclasses.replace(sizes, triggerer_poll_interval=args.triggerer_poll_interval)
    started = time.time()
    meta = _meta(started)
    meta["sizes"] = vars(sizes)

    work = Path(tempfile.mkdtemp(prefix="immuta-bench-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(work / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO),
    }
    tls = make_tls_files(work / "tls")
    sections: list[SectionResult] = []
    failed = False
    try:
        if "1" in only:
            sections.append(
                _timed(
                    "1 import cost",
                    lambda: import_cost.run(sys.executable, env, samples=sizes.import_samples),
                )
            )
        if only & {"3", "4", "5"}:
            port = free_port()
            server = ServerProcess(
                sys.executable,
                [
                    "emulator",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--seed",
                    "demo",
                    "--api-key",
                    API_KEY,
                    "--seed-objects",
                    str(sizes.objects),
                ],
                port=port,
                scheme="http",
                log_path=work / "emulator-http.log",
                env=env,
            )
            with server:
                if "3" in only:
                    sections.append(
                        _timed(
                            "3 inventory paging",
                            lambda: paging_section(server, env, work, sizes),
                        )
                    )
                if "4" in only:
                    sections.append(
                        _timed(
                            "4 client overhead",
                            lambda: overhead_section(server, env, work, sizes),
                        )
                    )
                if "5" in only:
                    sections.append(
                        _timed(
                            "5 emulator throughput",
                            lambda: throughput_section(server, env, work, sizes),
                        )
                    )
        if "2" in only:
            sections.append(
                _timed(
                    "2 trigger fleet (TLS)",
                    lambda: fleet.run(
                        sys.executable,
                        env,
                        work,
                        tls,
                        count=sizes.fleet_triggers,
                        poll_interval=sizes.poll_interval,
                        run_duration=sizes.run_duration,
                        profile_dir=args.profile,
                    ),
                )
            )
        if "6" in only:
            sections.append(
                _timed(
                    "6 real triggerer",
                    lambda: triggerer_scale.run_scale(
                        sys.executable,
                        env,
                        work,
                        tls,
                        waits=sizes.triggerer_waits,
                        poll_interval=sizes.triggerer_poll_interval,
                        what_ifs=tuple(n for n in args.triggerer_what_if.split(",") if n),
                    ),
                )
            )
        if "7" in only:
            sections.append(
                _timed(
                    "7 triggerer takeover",
                    lambda: triggerer_scale.run_takeover(
                        sys.executable,
                        env,
                        work,
                        tls,
                        waits=sizes.takeover_waits,
                        poll_interval=sizes.triggerer_poll_interval,
                    ),
                )
            )
    finally:
        sections.sort(key=lambda section: section.name)
        failed = any(section.error for section in sections)
        meta["seconds"] = round(time.time() - started, 1)
        meta["load_average_at_end"] = os.getloadavg()
        full_run = not args.quick and only >= {"1", "2", "3", "4", "5", "6", "7"}
        output = args.output or (DEFAULT_OUTPUT if full_run else work / "results.json")
        write_json(output, meta, sections)
        print()
        print(render_table(sections))
        print()
        print(
            f"{meta['seconds']:.0f} s; load average {meta['load_average_at_start'][0]:.2f} at "
            f"start, {meta['load_average_at_end'][0]:.2f} at end (2 cores: above ~0.5 means "
            f"other work shared the machine); results in {output}"
        )
        if args.keep or failed:
            print(f"work directory (server logs): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
