"""How many ``GET .../tasks/{taskId}/runs/{runId}`` per second the emulator answers.

    python -m benchmarks.emulator_load [--requests 20000] [--concurrency 32] [--processes 1]
                                       [--client httpx|raw] [--seconds 30]
                                       [--url URL --api-key KEY]

Starts an emulator on 127.0.0.1 (unless ``--url`` names one), creates one sync task, then
``--processes`` load processes, each with ``--concurrency`` workers with one
``httpx.AsyncClient`` each, GET that run until ``--requests`` in total are done or
``--seconds`` pass.
Prints requests/s, latency percentiles and the emulator's CPU time per request (from /proc),
which says what one emulator core can serve whatever the load generator manages. Bounded in
count and time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

CONNECTION_KEY = "snowflake-prod"


def _process_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(
    url: str, api_key: str, path: str, requests: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    """``concurrency`` workers, each with its own ``httpx.AsyncClient`` (one kept-alive
    connection each): a pool shared by many workers costs httpx several times more per request."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal issued, errors
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        ) as http:
            while issued < requests and time.perf_counter() < stop_at:
                issued += 1
                started = time.perf_counter()
                response = await http.get(path)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"done": len(latencies), "errors": errors, "elapsed": elapsed, "latencies": latencies}


async def _load_raw(
    url: str, api_key: str, path: str, requests: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    """The same load from a minimal keep-alive HTTP/1.1 client on asyncio streams: it costs a
    fraction of httpx per request, so the figure is closer to what the server can do."""
    parsed = httpx.URL(url)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n"
        f"Authorization: Bearer {api_key}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors = 0
    issued = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal issued, errors
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        try:
            while issued < requests and time.perf_counter() < stop_at:
                issued += 1
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"done": len(latencies), "errors": errors, "elapsed": elapsed, "latencies": latencies}


def _load_process(args: tuple[str, str, str, str, int, float, int]) -> dict[str, Any]:
    client, *rest = args
    return asyncio.run((_load_raw if client == "raw" else _load)(*rest))  # type: ignore[arg-type]


def measure(
    url: str,
    api_key: str,
    *,
    requests: int,
    seconds: float,
    concurrency: int,
    processes: int,
    server_pid: int | None,
    client: str = "httpx",
) -> dict[str, Any]:
    """Run the load and return the figures."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}) as http:
        task = http.post(
            f"/api/connections/{CONNECTION_KEY}/tasks", json={"type": "DATA_OBJECT_SYNC"}
        )
        task.raise_for_status()
        task_id = task.json()["taskId"]
        runs = http.get(f"/api/connections/{CONNECTION_KEY}/tasks/{task_id}/runs")
        run_id = runs.json()["runs"][0]["runId"]
    path = f"/api/connections/{CONNECTION_KEY}/tasks/{task_id}/runs/{run_id}"
    share = [
        requests // processes + (1 if i < requests % processes else 0) for i in range(processes)
    ]
    cpu_before = _process_cpu_seconds(server_pid) if server_pid else None
    started = time.perf_counter()
    if processes == 1:
        results = [_load_process((client, url, api_key, path, share[0], seconds, concurrency))]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            results = pool.map(
                _load_process,
                [(client, url, api_key, path, n, seconds, concurrency) for n in share],
            )
    wall = time.perf_counter() - started
    cpu_after = _process_cpu_seconds(server_pid) if server_pid else None
    latencies = sorted(x for r in results for x in r["latencies"])
    done = len(latencies)
    # The rate counts from the first worker start to the last worker end, excluding process
    # start-up time.
    busy = max(r["elapsed"] for r in results)
    figures: dict[str, Any] = {
        "client": client,
        "requests": done,
        "errors": sum(r["errors"] for r in results),
        "processes": processes,
        "concurrency_per_process": concurrency,
        "seconds": round(busy, 3),
        "wall_seconds": round(wall, 3),
        "requests_per_second": round(done / busy, 1) if busy else 0.0,
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "latency_ms_p99": round(latencies[int(0.99 * (done - 1))] * 1000, 2) if latencies else None,
    }
    if cpu_before is not None and cpu_after is not None and done:
        cpu = cpu_after - cpu_before
        figures["server_cpu_ms_per_request"] = round(cpu * 1000 / done, 3)
        figures["server_capacity_per_core"] = round(done / cpu, 1) if cpu else None
    return figures


def main(argv: list[str] | None = None) -> None:
    """Command line; prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--client",
        choices=["httpx", "raw"],
        default="httpx",
        help="httpx.AsyncClient, or a minimal HTTP/1.1 client that costs less per request",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="time cap")
    parser.add_argument("--url", help="an emulator already running (default: start one)")
    parser.add_argument("--api-key", default="immuta-demo-key")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 1_000_000 or not 1 <= args.processes <= 8:
        parser.error("--requests must be 1..1000000 and --processes 1..8")
    load = {
        "requests": args.requests,
        "seconds": min(args.seconds, 300.0),
        "concurrency": args.concurrency,
        "processes": args.processes,
        "client": args.client,
    }
    if args.url:
        figures = measure(args.url, args.api_key, server_pid=None, **load)
    else:
        from immuta_provider.emulator.process import run_emulator

        with run_emulator(seed="demo", sync_duration=3600.0) as emulator:
            figures = measure(
                emulator.url, emulator.api_key, server_pid=emulator.process.pid, **load
            )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
