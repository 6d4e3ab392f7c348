"""3. Inventory paging and 4. client overhead: our client against raw httpx, same server, same run.

Both run in a fresh process (``python -m benchmarks.client_bench CONFIG_JSON``) against the
emulator over plain HTTP on loopback: without TLS the server answers faster, so the client's own
cost is a larger share of each call and the ratio is the stricter one.

* Paging: every data object of the emulator's ``snowflake-large`` connection (``--seed-objects``)
  through ``ImmutaClient.search_data_objects(page_size=100)``, and through a raw ``httpx.Client``
  loop posting the same search bodies and following the same cursors. Passes alternate
  (raw, ours, raw, ours, ...) so that drift hits both; the median pass is reported. Peak RSS growth
  over a pass is sampled every page.
* Overhead: ``get_task_run`` on one run, sync and async, against raw httpx with the same pool
  settings, in alternating blocks; wall time and process CPU per call.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LARGE_CONNECTION_KEY = "snowflake-large"
TASK_CONNECTION_KEY = "snowflake-prod"
SEARCH_PATH = "/api/connections/dataObjects/_search"


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _Pass:
    """Timing, CPU and sampled RSS of one pass."""

    def __init__(self) -> None:
        self.rss_start = _rss_kib()
        self.rss_peak = self.rss_start
        self.rss_at_10pc: int | None = None
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def sample(self, done: int, total: int) -> None:
        rss = _rss_kib()
        self.rss_peak = max(self.rss_peak, rss)
        if self.rss_at_10pc is None and done >= total // 10:
            self.rss_at_10pc = rss

    def result(self, count: int) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall0
        cpu = time.process_time() - self.cpu0
        return {
            "objects": count,
            "seconds": wall,
            "cpu_seconds": cpu,
            "objects_per_s": count / wall,
            "cpu_us_per_object": 1e6 * cpu / max(count, 1),
            "rss_growth_mib": (self.rss_peak - self.rss_start) / 1024,
            "rss_growth_after_10pc_mib": (self.rss_peak - (self.rss_at_10pc or self.rss_start))
            / 1024,
        }


def _headers(api_key: str) -> dict[str, str]:
    # What the client sends (minus its User-Agent), so the server does the same work.
    return {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}


def paging(config: dict[str, Any]) -> dict[str, Any]:
    """Section 3 in this process."""
    import httpx

    from immuta_provider.client import ImmutaClient

    url, key, total = config["url"], config["api_key"], config["objects"]
    page_size = config.get("page_size", 100)
    raw = httpx.Client(base_url=url, headers=_headers(key), timeout=30.0)
    client = ImmutaClient(url, key)

    def raw_pass() -> dict[str, Any]:
        measure = _Pass()
        count, cursor = 0, None
        while True:
            page: dict[str, Any] = {"limit": page_size}
            if cursor:
                page["cursor"] = cursor
            body = {"connectionKey": LARGE_CONNECTION_KEY, "attributes": {}, "page": page}
            response = raw.post(SEARCH_PATH, json=body)
            response.raise_for_status()
            data = response.json()
            for _item in data["dataObjects"]:
                count += 1
            measure.sample(count, total)
            cursor = (data.get("page") or {}).get("nextCursor")
            if not cursor:
                return measure.result(count)

    def client_pass() -> dict[str, Any]:
        measure = _Pass()
        count = 0
        for _item in client.search_data_objects(LARGE_CONNECTION_KEY, page_size=page_size):
            count += 1
            if count % page_size == 0:
                measure.sample(count, total)
        return measure.result(count)

    # Warm-up: connections, imports, caches on both sides.
    client.search_data_objects(LARGE_CONNECTION_KEY, page_size=page_size).get_page()
    raw.post(SEARCH_PATH, json={"connectionKey": LARGE_CONNECTION_KEY, "attributes": {}})
    passes: dict[str, list[dict[str, Any]]] = {"raw": [], "ours": []}
    for _ in range(config.get("passes", 2)):
        passes["raw"].append(raw_pass())
        passes["ours"].append(client_pass())
    client.close()
    raw.close()
    return passes


def _blocks(
    calls: int, block: int, runners: dict[str, Callable[[int], None]]
) -> dict[str, dict[str, Any]]:
    """Run each runner for ``calls`` calls in alternating blocks; per-call wall and CPU."""
    wall = dict.fromkeys(runners, 0.0)
    cpu = dict.fromkeys(runners, 0.0)
    done = 0
    while done < calls:
        size = min(block, calls - done)
        for name, runner in runners.items():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            runner(size)
            wall[name] += time.perf_counter() - wall0
            cpu[name] += time.process_time() - cpu0
        done += size
    return {
        name: {
            "calls": calls,
            "us_per_call": 1e6 * wall[name] / calls,
            "cpu_us_per_call": 1e6 * cpu[name] / calls,
        }
        for name in runners
    }


def overhead(config: dict[str, Any]) -> dict[str, Any]:
    """Section 4 in this process."""
    import httpx

    from immuta_provider.client import AsyncImmutaClient, ImmutaClient

    url, key, calls = config["url"], config["api_key"], config["calls"]
    block = config.get("block", 500)
    client = ImmutaClient(url, key)
    task = client.create_task(TASK_CONNECTION_KEY)
    run_id = client.list_task_runs(TASK_CONNECTION_KEY, task.task_id).get_page().items[0].run_id
    path = f"/api/connections/{TASK_CONNECTION_KEY}/tasks/{task.task_id}/runs/{run_id}"
    raw = httpx.Client(base_url=url, headers=_headers(key), timeout=30.0)

    def sync_ours(n: int) -> None:
        for _ in range(n):
            client.get_task_run(TASK_CONNECTION_KEY, task.task_id, run_id)

    def sync_raw(n: int) -> None:
        for _ in range(n):
            response = raw.get(path)
            response.raise_for_status()
            response.json()

    sync_ours(50)
    sync_raw(50)
    results: dict[str, Any] = {"sync": _blocks(calls, block, {"raw": sync_raw, "ours": sync_ours})}
    client.close()
    raw.close()

    async def async_part() -> dict[str, Any]:
        async_client = AsyncImmutaClient(url, key)
        async_raw = httpx.AsyncClient(base_url=url, headers=_headers(key), timeout=30.0)
        loop = asyncio.get_running_loop()

        async def ours(n: int) -> None:
            for _ in range(n):
                await async_client.get_task_run(TASK_CONNECTION_KEY, task.task_id, run_id)

        async def raw_calls(n: int) -> None:
            for _ in range(n):
                response = await async_raw.get(path)
                response.raise_for_status()
                response.json()

        await ours(50)
        await raw_calls(50)
        timings: dict[str, dict[str, float]] = {
            name: {"wall": 0.0, "cpu": 0.0} for name in ("raw", "ours")
        }
        done = 0
        while done < calls:
            size = min(block, calls - done)
            for name, runner in (("raw", raw_calls), ("ours", ours)):
                cpu0, wall0 = time.process_time(), loop.time()
                await runner(size)
                timings[name]["wall"] += loop.time() - wall0
                timings[name]["cpu"] += time.process_time() - cpu0
            done += size
        await async_client.aclose()
        await async_raw.aclose()
        return {
            name: {
                "calls": calls,
                "us_per_call": 1e6 * t["wall"] / calls,
                "cpu_us_per_call": 1e6 * t["cpu"] / calls,
            }
            for name, t in timings.items()
        }

    results["async"] = asyncio.run(async_part())
    return results


def median_pass(passes: list[dict[str, Any]], key: str) -> float:
    """The median of one figure over passes."""
    return float(statistics.median(p[key] for p in passes))


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    job = {"paging": paging, "overhead": overhead}[settings["job"]]
    Path(settings["out"]).write_text(json.dumps(job(settings)))
