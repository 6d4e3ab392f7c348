"""Soak: 10,000+ polls through ImmutaTaskRunTrigger with 5% random retryable faults.

100 triggers run in one event loop, as in a triggerer, sharing the process-wide client of their
Airflow connection; each watches its own long-running sync on the emulator with a tiny poll
interval. Every GET of a run has a 5% chance of a 429, 502, 503, 504 or a dropped connection
(about 1% each). When the emulator has answered 10,000 polls, its clock is moved past the runs'
end, so every run completes and every trigger must report success: a single ``error`` or
``timeout`` event is a false failure. The process's memory is measured after a warm-up and at
the end; it must stay flat.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import re
import time
from typing import Any

import httpx
import psutil
import pytest

from immuta_provider.client import ImmutaClient
from immuta_provider.emulator.process import run_emulator
from tests.reliability.fault_fixtures import report
from tests.support.connections import airflow_connection, immuta_connection

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

CONN_ID = "immuta_soak"
KEY = "soak"
TRIGGERS = 100
POLLS = 10_000
WARM_UP_POLLS = 1_500
POLL_INTERVAL = 0.01
FAULT_RATE = 0.05
FAULT_KINDS: list[dict[str, Any]] = [
    {"status": 429},
    {"status": 502},
    {"status": 503},
    {"status": 504},
    {"drop": True},
]
RUN_SECONDS = 3600.0  # the runs' duration: they end only when the test moves the clock
TIME_LIMIT = 170.0  # the triggers' deadline and the soak's own bound
RSS_GROWTH_LIMIT_MB = 30.0
RUN_PATH = re.compile(rf"^GET /api/connections/{KEY}/tasks/[^/]+/runs/[^/]+$")


def per_kind_probability(total: float, kinds: int) -> float:
    """Each of ``kinds`` faults is tried in turn; this probability makes ``total`` overall."""
    return float(1 - (1 - total) ** (1 / kinds))


def polls_seen(counters: dict[str, Any]) -> int:
    return sum(n for request, n in counters["requests"].items() if RUN_PATH.match(request))


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 2**20


def build_trigger(task_id: str, run_id: str, deadline: float) -> Any:
    """An ImmutaTaskRunTrigger as the triggerer builds it: from its serialized form."""
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    classpath, kwargs = ImmutaTaskRunTrigger(
        immuta_conn_id=CONN_ID,
        connection_key=KEY,
        immuta_task_id=task_id,
        run_id=run_id,
        poll_interval=POLL_INTERVAL,
        deadline=deadline,
    ).serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")


def test_ten_thousand_polls_with_five_percent_faults(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    workdir = tmp_path_factory.mktemp("soak")
    this_process = psutil.Process()
    with run_emulator(seed="none", log_dir=workdir) as emulator:
        emulator_process = psutil.Process(emulator.process.pid)
        admin = emulator.admin
        with ImmutaClient(emulator.url, emulator.api_key, max_retries=0) as client:
            client.create_connection(
                {"connectionKey": KEY, "technology": "Snowflake", "clientConfiguration": {}}
            )
            admin.set_behaviour(KEY, sync_duration=RUN_SECONDS)
            runs = []
            for _ in range(TRIGGERS):
                task = client.create_task(KEY)
                (run,) = client.list_task_runs(KEY, task.task_id)
                runs.append((task.task_id, run.run_id))
        probability = per_kind_probability(FAULT_RATE, len(FAULT_KINDS))
        for kind in FAULT_KINDS:
            admin.add_fault(
                method="GET", path=RUN_PATH.pattern[5:], probability=probability, **kind
            )
        admin_url = f"{emulator.url}/_emulator/"
        figures: dict[str, Any] = {}

        async def soak() -> list[dict[str, Any]]:
            started = time.monotonic()
            deadline = time.time() + TIME_LIMIT
            triggers = [build_trigger(task_id, run_id, deadline) for task_id, run_id in runs]
            waiting = [asyncio.ensure_future(first_event(t)) for t in triggers]
            async with httpx.AsyncClient(base_url=admin_url, timeout=30) as admin_http:

                async def counters() -> dict[str, Any]:
                    answer = await admin_http.get("counters")
                    answer.raise_for_status()
                    result: dict[str, Any] = answer.json()
                    return result

                warm = False
                while time.monotonic() - started < TIME_LIMIT - 10:
                    await asyncio.sleep(0.5)
                    seen = polls_seen(await counters())
                    if not warm and seen >= WARM_UP_POLLS:
                        gc.collect()
                        figures["rss_start_mb"] = rss_mb(this_process)
                        figures["emulator_rss_start_mb"] = rss_mb(emulator_process)
                        warm = True
                    if seen >= POLLS or any(w.done() for w in waiting):
                        break
                figures["polls_before_completion"] = seen
                # Every run ends now: the emulator's clock moves past their end.
                (
                    await admin_http.post("clock/advance", json={"seconds": RUN_SECONDS})
                ).raise_for_status()
                events = await asyncio.wait_for(
                    asyncio.gather(*waiting), max(5.0, TIME_LIMIT - (time.monotonic() - started))
                )
                figures["counters"] = await counters()
            figures["seconds"] = round(time.monotonic() - started, 1)
            return list(events)

        with airflow_connection(
            CONN_ID, immuta_connection(emulator.url, emulator.api_key, timeout=10, max_retries=3)
        ):
            events = asyncio.run(soak())
        gc.collect()
        figures["rss_end_mb"] = rss_mb(this_process)
        figures["emulator_rss_end_mb"] = rss_mb(emulator_process)

    final = figures["counters"]
    polls = polls_seen(final)
    faults = sum(final["faults"].values())
    by_kind = final["faults_by_kind"]
    false_failures = [event for event in events if event["status"] != "success"]
    growth = figures["rss_end_mb"] - figures.get("rss_start_mb", float("nan"))
    lines = [
        f"{TRIGGERS} triggers, poll interval {POLL_INTERVAL}s, one event loop, "
        f"{figures['seconds']}s",
        f"polls answered by the emulator: {polls} ({figures['polls_before_completion']} before "
        "the runs were completed)",
        f"faults injected: {faults} ({faults / polls:.1%} of polls): "
        + ", ".join(f"{kind} x{n}" for kind, n in sorted(by_kind.items())),
        f"false failures: {len(false_failures)} of {len(events)} triggers",
        f"RSS of the triggerer (pytest) process: {figures.get('rss_start_mb', 0):.1f} MB after "
        f"{WARM_UP_POLLS} polls -> {figures['rss_end_mb']:.1f} MB at the end ({growth:+.1f} MB)",
        f"RSS of the emulator: {figures.get('emulator_rss_start_mb', 0):.1f} MB -> "
        f"{figures['emulator_rss_end_mb']:.1f} MB",
    ]
    report(request.config, "soak (trigger polling under 5% random faults)", lines)
    summary = "\n".join(lines)

    assert false_failures == [], f"{false_failures[:3]}\n{summary}"
    assert len(events) == TRIGGERS
    assert polls >= POLLS, summary
    assert 0.02 <= faults / polls <= 0.09, summary
    assert set(by_kind) == {"status_429", "status_502", "status_503", "status_504", "drop"}
    assert "rss_start_mb" in figures, summary
    assert growth < RSS_GROWTH_LIMIT_MB, summary
    assert figures["seconds"] < TIME_LIMIT, summary
