"""5. Emulator throughput, a context figure for the others (how fast the thing we poll answers).

A load process (``python -m benchmarks.emulator_throughput CONFIG_JSON``) keeps ``concurrency``
requests in flight with raw ``httpx.AsyncClient`` until ``requests`` are done or ``seconds`` pass,
for GET one task run and GET one page of a connection's tasks. Reported: requests/s, latency
percentiles, and the emulator process's CPU per request (read from /proc), which says what one
emulator core could serve whatever the load generator manages.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

CONNECTION_KEY = "snowflake-prod"


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(
    http: Any, path: str, *, requests: int, seconds: float, concurrency: int, server_pid: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    issued = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal issued, errors
        while issued < requests and time.perf_counter() < stop_at:
            issued += 1
            start = time.perf_counter()
            response = await http.get(path)
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                errors += 1

    server_cpu0 = _process_cpu(server_pid)
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    server_cpu = _process_cpu(server_pid) - server_cpu0
    latencies.sort()
    done = len(latencies)
    return {
        "requests": done,
        "errors": errors,
        "seconds": elapsed,
        "requests_per_s": done / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(done - 1, int(0.99 * done))],
        "server_cpu_ms_per_request": 1000 * server_cpu / max(done, 1),
    }


async def _main(config: dict[str, Any]) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {config['api_key']}", "Accept": "application/json"}
    limits = httpx.Limits(max_connections=config["concurrency"])
    async with httpx.AsyncClient(
        base_url=config["url"], headers=headers, limits=limits, timeout=30
    ) as http:
        created = await http.post(
            f"/api/connections/{CONNECTION_KEY}/tasks", json={"type": "DATA_OBJECT_SYNC"}
        )
        created.raise_for_status()
        task_id = created.json()["taskId"]
        runs = await http.get(f"/api/connections/{CONNECTION_KEY}/tasks/{task_id}/runs")
        runs.raise_for_status()
        run_id = runs.json()["runs"][0]["runId"]
        paths = {
            "GET task run": f"/api/connections/{CONNECTION_KEY}/tasks/{task_id}/runs/{run_id}",
            "GET list tasks (page of 20)": f"/api/connections/{CONNECTION_KEY}/tasks"
            "?page%5Blimit%5D=20",
        }
        results = {}
        for name, path in paths.items():
            await _load(
                http,
                path,
                requests=200,
                seconds=5,
                concurrency=config["concurrency"],
                server_pid=config["server_pid"],
            )  # warm-up
            results[name] = await _load(
                http,
                path,
                requests=config["requests"],
                seconds=config["seconds"],
                concurrency=config["concurrency"],
                server_pid=config["server_pid"],
            )
        return results


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    Path(settings["out"]).write_text(json.dumps(asyncio.run(_main(settings))))
