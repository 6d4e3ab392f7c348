"""1. Parse-time import cost: what importing an operators module adds on top of ``airflow.sdk``.

Airflow 3.3's DAG processor imports Airflow, calls ``gc.freeze()`` and forks one child per DAG
file parse (``airflow/dag_processing/manager.py``); the child is where a DAG file imports our
operators. The benchmark does the same: a few fresh interpreters each import ``airflow.sdk``,
freeze the GC and fork one child per sample; the child imports the module and reports the wall
time and the peak-RSS growth (``VmHWM`` after minus ``VmRSS`` before) of that import. Modules are
sampled in a shuffled order each round, so that drift on a noisy machine spreads over all of them;
each parent's first round is discarded (bytecode caches of a fresh venv, page cache).
``mode="exec"`` instead starts a whole new interpreter per sample (slower; a cross-check).
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
from typing import Any

from benchmarks.report import Row, SectionResult

OURS = "immuta_provider.operators.immuta"
PEERS = {
    "dbt Cloud": "airflow.providers.dbt.cloud.operators.dbt",
    "Databricks": "airflow.providers.databricks.operators.databricks",
    "Airbyte": "airflow.providers.airbyte.operators.airbyte",
    "Fivetran async": "fivetran_provider_async.operators",
}

# The parent: argv[1] is a JSON list of rounds, each a list of module names; one JSON line per
# sample on stdout, written by the forked child.
_PARENT = """
import gc, importlib, json, os, sys, time
def vm(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0
t0 = time.perf_counter()
import airflow.sdk
sdk_s = time.perf_counter() - t0
gc.collect()
gc.freeze()
for round_number, modules in enumerate(json.loads(sys.argv[1])):
    for module in modules:
        sys.stdout.flush()
        pid = os.fork()
        if pid:
            os.waitpid(pid, 0)
            continue
        try:
            before_kib = vm("VmRSS")
            before = set(sys.modules)
            t1 = time.perf_counter()
            importlib.import_module(module)
            added_s = time.perf_counter() - t1
            result = {"added_s": added_s, "added_kib": vm("VmHWM") - before_kib,
                      "new_modules": sorted(set(sys.modules) - before)}
        except BaseException as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result.update(module=module, round=round_number, sdk_s=sdk_s)
        sys.stdout.write(json.dumps(result) + "\\n")
        sys.stdout.flush()
        os._exit(0)
"""

# One fresh interpreter per sample (mode="exec").
_CHILD = """
import importlib, json, resource, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
m1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = set(sys.modules)
try:
    importlib.import_module(sys.argv[1])
except BaseException as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "module": sys.argv[1]}))
    raise SystemExit(0)
t2 = time.perf_counter()
m2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"module": sys.argv[1], "sdk_s": t1 - t0, "added_s": t2 - t1,
                  "added_kib": m2 - m1, "new_modules": sorted(set(sys.modules) - before)}))
"""


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _run_parent(python: str, rounds: list[list[str]], env: dict[str, str]) -> list[dict[str, Any]]:
    completed = subprocess.run(
        [python, "-c", _PARENT, json.dumps(rounds)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    results = _json_lines(completed.stdout)
    if not results:
        raise RuntimeError(f"import benchmark parent failed: {completed.stderr.strip()[-1500:]}")
    return [r for r in results if r["round"] > 0]  # round 0 is the warm-up


def _run_exec(python: str, module: str, env: dict[str, str]) -> dict[str, Any]:
    completed = subprocess.run(
        [python, "-c", _CHILD, module],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    results = _json_lines(completed.stdout)
    if not results:
        return {
            "module": module,
            "error": f"exit {completed.returncode}: {completed.stderr[-500:]}",
        }
    return results[-1]


def _import_profile(python: str, module: str, env: dict[str, str], top: int = 8) -> list[str]:
    """The imports with the largest cumulative time under ``module`` (``-X importtime``)."""
    code = f"import airflow.sdk, sys; sys.stderr.write('--mark--\\n'); import {module}"
    completed = subprocess.run(
        [python, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    tail = completed.stderr.split("--mark--", 1)[-1]
    entries: list[tuple[int, int, str]] = []
    for line in tail.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        try:
            self_us, cumulative_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue
        entries.append((cumulative_us, self_us, parts[2].rstrip()))
    entries.sort(reverse=True)
    return [
        f"{cum / 1000:7.1f} ms cum {own / 1000:6.1f} ms self {name}"
        for cum, own, name in entries[:top]
    ]


def run(
    python: str,
    env: dict[str, str],
    samples: int = 15,
    parents: int = 3,
    mode: str = "fork",
    seed: int = 1,
) -> SectionResult:
    """Measure OURS and every peer ``samples`` times (split over ``parents`` interpreters)."""
    section = SectionResult("1 import cost")
    modules = {"ours": OURS, **PEERS}
    by_module = {module: name for name, module in modules.items()}
    rng = random.Random(seed)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in modules}
    if mode == "fork":
        per_parent = -(-samples // parents)
        for _ in range(parents):
            rounds = []
            for _ in range(per_parent + 1):
                order = list(modules.values())
                rng.shuffle(order)
                rounds.append(order)
            for result in _run_parent(python, rounds, env):
                results[by_module[result["module"]]].append(result)
    else:
        for module in modules.values():  # warm-up
            _run_exec(python, module, env)
        for _ in range(samples):
            order = list(modules.values())
            rng.shuffle(order)
            for module in order:
                results[by_module[module]].append(_run_exec(python, module, env))
    section.details["mode"] = mode

    medians: dict[str, tuple[float, float]] = {}
    for name, runs in results.items():
        good = [r for r in runs if "error" not in r]
        detail: dict[str, Any] = {"module": modules[name], "samples": len(good)}
        if not good:
            detail["error"] = runs[0].get("error") if runs else "no samples"
        else:
            added_ms = [r["added_s"] * 1000 for r in good]
            added_mib = [r["added_kib"] / 1024 for r in good]
            medians[name] = (statistics.median(added_ms), statistics.median(added_mib))
            detail.update(
                added_ms_median=medians[name][0],
                added_ms_min=min(added_ms),
                added_ms_max=max(added_ms),
                added_mib_median=medians[name][1],
                sdk_ms_median=statistics.median(r["sdk_s"] * 1000 for r in good),
                new_modules=len(good[0]["new_modules"]),
            )
            if name == "ours":
                detail["new_module_names"] = good[0]["new_modules"]
        section.details[name] = detail

    peer_medians = {name: medians[name] for name in PEERS if name in medians}
    lightest = min(peer_medians, key=lambda name: peer_medians[name][0]) if peer_medians else None
    ours = medians.get("ours")
    for name in PEERS:
        if name in medians:
            section.rows.append(
                Row(section.name, f"time added: {name} (peer)", medians[name][0], "ms")
            )
    if ours is None:
        section.error = f"{OURS} did not import: {section.details['ours'].get('error')}"
        return section
    if lightest is not None:
        time_ratio = ours[0] / peer_medians[lightest][0]
        mem_ratio = ours[1] / peer_medians[lightest][1] if peer_medians[lightest][1] else None
        section.rows.append(
            Row(
                section.name,
                "time added: ours",
                ours[0],
                "ms",
                baseline=peer_medians[lightest][0],
                baseline_name=f"lightest peer ({lightest})",
                ratio=time_ratio,
                ratio_meaning="of peer",
                goal="<= 0.25x",
                met=time_ratio <= 0.25,
            )
        )
        section.rows.append(
            Row(
                section.name,
                "peak RSS added: ours",
                ours[1],
                "MiB",
                baseline=peer_medians[lightest][1],
                baseline_name=f"lightest peer ({lightest})",
                ratio=mem_ratio,
                ratio_meaning="of peer",
            )
        )
    section.details["ours"]["importtime_top"] = _import_profile(python, OURS, env)
    section.details["sdk_ms_median_all"] = statistics.median(
        r["sdk_s"] * 1000 for runs in results.values() for r in runs if "error" not in r
    )
    return section


if __name__ == "__main__":  # quick manual run: python -m benchmarks.import_cost [samples]
    import os

    from benchmarks.report import render_table

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    how = sys.argv[2] if len(sys.argv) > 2 else "fork"
    result = run(sys.executable, dict(os.environ), samples=count, mode=how)
    print(render_table([result]))
    print(json.dumps(result.details, indent=1)[:4000])
