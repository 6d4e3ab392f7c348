"""The fault matrix: every fault the emulator injects x every place it can hit the provider.

Places (columns):

* ``start: lookup``  the sync operator's reattach lookup (GET .../tasks), through
  ``ImmutaDataObjectSyncOperator._start_or_attach`` (what ``execute`` calls first; with no
  Airflow 3.3 task state store, as there is no running task);
* ``start: create``  the create-task POST, same method; afterwards the fault is gone and the
  method runs again, as Airflow's retry of the task would: it must attach to a sync that the
  faulted request did start, never create a second one;
* ``trigger poll``   the GET run of ``ImmutaTaskRunTrigger.run()`` (rebuilt from ``serialize()``,
  driven in an event loop, as the triggerer does);
* ``sensor poke``    ``ImmutaTaskRunSensor`` in poke mode, in one real ``dag.test()`` (its poke
  pushes an XCom, which needs a real task instance);
* ``cancel: timeout`` the ``_cancel`` POST when a non-deferred wait hits its deadline
  (``_wait_or_defer`` with a short ``timeout`` on a stuck run);
* ``cancel: kill``   the ``_cancel`` POST of ``ImmutaTaskRunTrigger.on_kill()`` after the running
  trigger was cancelled, as the triggerer does when a user marks the task failed.

Faults (rows) are transient (the next two matching requests) unless marked persistent. Each cell
has its own Immuta connection on one emulator, so the cells run side by side and the emulator's
counters tell them apart. Every cell asserts its outcome (success after retries, or a failure
whose text names the fault), how many faults fired, that at most one sync task was created on its
connection, and its wall time. The matrix is printed in the terminal summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from immuta_provider.client import ImmutaClient, ImmutaTimeoutError
from immuta_provider.emulator.process import EmulatorAdmin, RunningEmulator, run_emulator
from tests.reliability.fault_fixtures import DagTests, report, start_or_attach, table
from tests.support.connections import airflow_connection, immuta_connection

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(480)]

CONN_ID = "immuta_matrix"
READ_TIMEOUT = 2.0  # the connection's "timeout" extra: seconds per HTTP request
MAX_RETRIES = 2  # the connection's "max_retries" extra
TRANSIENT = 2  # a transient fault hits this many matching requests in a row
LATENCY = READ_TIMEOUT + 1.0  # the "read timeout" fault answers this late
POLL_INTERVAL = 0.1
TRIGGER_DEADLINE = 30.0  # seconds from the trigger's start (its absolute deadline)
CELL_DEADLINE = 30.0  # no cell may take longer than this, whatever the fault
SENSOR_TIMEOUT = 30
WAIT_TIMEOUT = 0.5  # the operator's timeout in the "cancel: timeout" column
POLLS_TOLERATED = 5  # RunWatch's default max_consecutive_errors
CANCEL_STATES = ("CANCELING", "CANCELED")
WORKERS = 4


@dataclass(frozen=True)
class FaultKind:
    """One row: an emulator fault and what the provider is expected to make of it."""

    label: str
    spec: dict[str, Any]
    error: str  # the client exception it surfaces as
    evidence: str  # a regex the failure text must match: it names the fault
    client_retries: bool  # retried by the client on idempotent requests
    poll_tolerated: bool  # the run watch polls again after it
    reaches_app: bool = False  # the request is still served (slow answer, truncated body)
    persistent: bool = False

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.label.lower()).strip("_")


FAULTS = [
    FaultKind(
        "429 + Retry-After: 1",
        {"status": 429, "retry_after": "1"},
        "ImmutaRateLimitError",
        r"429",
        True,
        True,
    ),
    FaultKind("429, no Retry-After", {"status": 429}, "ImmutaRateLimitError", r"429", True, True),
    FaultKind("500", {"status": 500}, "ImmutaServerError", r"500", False, True),
    FaultKind("502", {"status": 502}, "ImmutaServerError", r"502", True, True),
    FaultKind("503", {"status": 503}, "ImmutaServerError", r"503", True, True),
    FaultKind("504", {"status": 504}, "ImmutaServerError", r"504", True, True),
    FaultKind(
        "dropped connection",
        {"drop": True},
        "ImmutaTransportError",
        r"[Dd]isconnected|closed|reset",
        True,
        True,
    ),
    FaultKind(
        f"read timeout ({LATENCY:g}s > {READ_TIMEOUT:g}s)",
        {"latency": LATENCY},
        "ImmutaTimeoutError",
        r"read timeout",
        True,
        True,
        reaches_app=True,
    ),
    FaultKind(
        "malformed JSON",
        {"body": "malformed_json"},
        "ImmutaResponseError",
        r"not valid JSON",
        False,
        True,
        reaches_app=True,
    ),
    FaultKind(
        "HTML page (proxy 502)",
        {"body": "html"},
        "ImmutaServerError",
        r"502.*Bad Gateway",
        True,
        True,
    ),
    FaultKind("401", {"status": 401}, "ImmutaAuthenticationError", r"401", False, False),
    FaultKind("403", {"status": 403}, "ImmutaPermissionError", r"403", False, False),
    FaultKind("404", {"status": 404}, "ImmutaNotFoundError", r"404", False, False),
    FaultKind("409", {"status": 409}, "ImmutaConflictError", r"409", False, False),
    FaultKind(
        "503, persistent", {"status": 503}, "ImmutaServerError", r"503", True, True, persistent=True
    ),
]

RUN_PATH = r"/tasks/[^/]+/runs/[^/]+$"
PLACES: dict[str, tuple[str, str]] = {
    # place -> (method, path regex after /api/connections/<key>)
    "start: lookup": ("GET", r"/tasks$"),
    "start: create": ("POST", r"/tasks$"),
    "trigger poll": ("GET", RUN_PATH),
    "sensor poke": ("GET", RUN_PATH),
    "cancel: timeout": ("POST", r"/tasks/[^/]+/runs/[^/]+/_cancel$"),
    "cancel: kill": ("POST", r"/tasks/[^/]+/runs/[^/]+/_cancel$"),
}


@dataclass
class Cell:
    """One fault at one place: its set-up, what happened, and what the emulator counted."""

    place: str
    fault: FaultKind
    key: str
    fault_id: str = ""
    immuta_task_id: str = ""
    run_id: str = ""
    succeeded: bool | None = None
    error_type: str | None = None
    message: str = ""
    seconds: float = 0.0
    fired: int = 0
    requests: int = 0
    tasks_created: int = 0
    run_status: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return PLACES[self.place][0]

    @property
    def path_regex(self) -> str:
        return f"^/api/connections/{re.escape(self.key)}{PLACES[self.place][1]}"

    def outcome(self) -> str:
        """The cell's text in the matrix."""
        code = _first_status(self.message) or _short(self.message, 30)
        if self.place.startswith("cancel"):
            if self.succeeded:
                if self.notes.get("reported"):
                    return f"cancelled, but said {self.notes['reported']}"
                return f"ok after {self.fired} retries" if self.fired else "ok"
            if self.notes.get("on_kill_error"):
                return f"failed: {self.error_type} {code}"
            if self.place == "cancel: kill":
                return f"failed: {code} (on_kill logged it)"
            return f"failed: {code} (in the task's error)"
        if self.succeeded:
            retries = "failed polls" if self.notes.get("polls_failed") else "retries"
            return f"ok after {self.fired} {retries}" if self.fired else "ok"
        text = f"failed: {self.error_type} {code}"
        if "attached" in self.notes:
            text += "; retry " + ("attached" if self.notes["attached"] else "created 1")
        return text


def _first_status(message: str) -> str:
    match = re.search(r"returned (\d{3})\b", message) or re.search(
        r"answered \[.*?(\d{3})\]", message
    )
    if match:
        return match.group(1)
    for needle in ("read timeout", "not valid JSON", "disconnected", "giving up"):
        if needle in message:
            return needle
    return ""


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------ the places


def _setup_client(emulator: RunningEmulator) -> ImmutaClient:
    return ImmutaClient(emulator.url, emulator.api_key, max_retries=0, read_timeout=10)


def prepare(emulator: RunningEmulator, cell: Cell) -> None:
    """Create the cell's connection (and run, where the place needs one), then its fault."""
    admin = EmulatorAdmin(emulator.url)
    with _setup_client(emulator) as client:
        client.create_connection(
            {
                "connectionKey": cell.key,
                "technology": "Snowflake",
                "clientConfiguration": {"hostname": f"{cell.key}.example.invalid"},
            }
        )
        if cell.place.startswith("cancel"):
            admin.set_behaviour(cell.key, stuck=True)
        elif cell.place == "start: create":
            # Still running when the "Airflow retry" looks for it.
            admin.set_behaviour(cell.key, sync_duration=60.0)
        if cell.place in ("trigger poll", "sensor poke") or cell.place.startswith("cancel"):
            task = client.create_task(cell.key)
            (run,) = client.list_task_runs(cell.key, task.task_id)
            cell.immuta_task_id, cell.run_id = task.task_id, run.run_id
    cell.fault_id = admin.add_fault(
        method=cell.method,
        path=cell.path_regex,
        count=None if cell.fault.persistent else TRANSIENT,
        **cell.fault.spec,
    )
    admin.close()


def _operator(cell: Cell, **kwargs: Any) -> Any:
    from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

    return ImmutaDataObjectSyncOperator(
        task_id=f"sync_{cell.key}".replace("-", "_"),
        connection_key=cell.key,
        immuta_conn_id=CONN_ID,
        **kwargs,
    )


def _record_error(cell: Cell, exc: BaseException) -> None:
    cell.succeeded = False
    cell.error_type = type(exc).__name__
    cell.message = str(exc)


def run_start_lookup(emulator: RunningEmulator, cell: Cell) -> None:
    operator = _operator(cell, reuse_running_sync=True)
    try:
        start_or_attach(operator)
    except Exception as exc:
        _record_error(cell, exc)
    else:
        cell.succeeded = True
    finally:
        operator.hook.close()


def run_start_create(emulator: RunningEmulator, cell: Cell) -> None:
    operator = _operator(cell, reuse_running_sync=True)
    try:
        start_or_attach(operator)
    except Exception as exc:
        _record_error(cell, exc)
    else:
        cell.succeeded = True
    finally:
        operator.hook.close()
    admin = EmulatorAdmin(emulator.url)
    try:
        if cell.fault.spec.get("latency"):
            # Airflow's retry comes after retry_delay; by then the slow request has been served.
            time.sleep(LATENCY - READ_TIMEOUT + 0.5)
        admin.remove_fault(cell.fault_id)
        before = admin.counters()["tasks_created"].get(cell.key, 0)
        cell.notes["tasks_after_first_try"] = before
        retry = _operator(cell, reuse_running_sync=True)
        try:
            start_or_attach(retry)
        finally:
            retry.hook.close()
        cell.notes["attached"] = admin.counters()["tasks_created"].get(cell.key, 0) == before
    finally:
        admin.close()


def _trigger(cell: Cell, *, cancel_on_kill: bool) -> Any:
    """The trigger as the triggerer gets it: built from what ``serialize()`` recorded."""
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    original = ImmutaTaskRunTrigger(
        immuta_conn_id=CONN_ID,
        connection_key=cell.key,
        immuta_task_id=cell.immuta_task_id,
        run_id=cell.run_id,
        poll_interval=POLL_INTERVAL,
        deadline=time.time() + TRIGGER_DEADLINE,
        cancel_on_kill=cancel_on_kill,
    )
    classpath, kwargs = original.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")


def run_trigger_poll(emulator: RunningEmulator, cell: Cell) -> None:
    trigger = _trigger(cell, cancel_on_kill=False)
    payload = asyncio.run(asyncio.wait_for(_first_event(trigger), TRIGGER_DEADLINE + 15))
    cell.notes["deadline"] = trigger.deadline
    cell.notes["event_at"] = time.time()
    cell.succeeded = payload["status"] == "success"
    cell.message = payload["message"]
    if not cell.succeeded:
        cell.error_type = f"{payload['status']} event"
    cell.notes["polls_failed"] = not cell.fault.client_retries


def run_cancel_timeout(emulator: RunningEmulator, cell: Cell) -> None:
    operator = _operator(
        cell,
        deferrable=False,
        timeout=WAIT_TIMEOUT,
        poll_interval=POLL_INTERVAL,
        cancel_on_kill=True,
    )
    client = operator.hook.get_client()
    try:
        run = client.get_task_run(cell.key, cell.immuta_task_id, cell.run_id)
        operator._wait_or_defer(client, cell.immuta_task_id, run)
    except Exception as exc:
        cell.message = str(exc)
        cell.notes["operator_error"] = type(exc).__name__
    finally:
        operator.hook.close()
    _cancel_outcome(emulator, cell)


def run_cancel_kill(emulator: RunningEmulator, cell: Cell) -> None:
    trigger = _trigger(cell, cancel_on_kill=True)

    async def kill_while_deferred() -> None:
        waiting = asyncio.ensure_future(_first_event(trigger))
        await asyncio.sleep(0.5)  # it polls the stuck run a few times
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        await trigger.on_kill()

    try:
        asyncio.run(asyncio.wait_for(kill_while_deferred(), CELL_DEADLINE))
    except Exception as exc:
        cell.message = str(exc)
        cell.notes["on_kill_error"] = type(exc).__name__
    _cancel_outcome(emulator, cell)


def _cancel_outcome(emulator: RunningEmulator, cell: Cell) -> None:
    """Did the run get cancelled? Read back from the emulator (no fault on that GET)."""
    with _setup_client(emulator) as client:
        cell.run_status = str(
            client.get_task_run(cell.key, cell.immuta_task_id, cell.run_id).status
        )
    cell.succeeded = cell.run_status in CANCEL_STATES
    if cell.notes.get("on_kill_error"):
        cell.error_type = cell.notes["on_kill_error"]


def _reported_cancel_problem(cell: Cell) -> None:
    """What the cancel reported when it did not simply succeed (read after the counters)."""
    answers = cell.notes.get("answers", [])
    if cell.place == "cancel: kill" and not cell.notes.get("on_kill_error") and answers:
        last = answers[-1]
        if last >= 400:
            # on_kill logs a 409 and returns: the emulator's access log has the answer.
            cell.message = f"on_kill logged the answer and returned; _cancel answered {answers}"
            cell.notes["reported"] = f"{last} (logged)"
        return
    said = re.search(r"(Cancelling the run in Immuta failed|was not cancelled)", cell.message)
    if said or cell.notes.get("on_kill_error"):
        cell.notes["reported"] = cell.notes.get("on_kill_error") or _first_status(cell.message)


RUNNERS: dict[str, Callable[[RunningEmulator, Cell], None]] = {
    "start: lookup": run_start_lookup,
    "start: create": run_start_create,
    "trigger poll": run_trigger_poll,
    "cancel: timeout": run_cancel_timeout,
    "cancel: kill": run_cancel_kill,
}


def run_cell(emulator: RunningEmulator, cell: Cell) -> Cell:
    prepare(emulator, cell)
    started = time.monotonic()
    try:
        RUNNERS[cell.place](emulator, cell)
    except Exception as exc:  # a bug in the harness or a crash in the provider: keep it visible
        cell.succeeded = False
        cell.error_type = f"UNEXPECTED {type(exc).__name__}"
        cell.message = repr(exc)
    cell.seconds = round(time.monotonic() - started, 2)
    return cell


# ---------------------------------------------------------------------- the sensor column


def start_sensor_column(
    emulator: RunningEmulator, dag_tests: DagTests, cells: list[Cell], workdir: Path
) -> Any:
    for cell in cells:
        prepare(emulator, cell)
        cell.notes["airflow_task_id"] = f"poke_{cell.fault.slug}"
    spec = workdir / "sensor-cells.json"
    spec.write_text(
        json.dumps(
            [
                {
                    "airflow_task_id": cell.notes["airflow_task_id"],
                    "conn_id": CONN_ID,
                    "connection_key": cell.key,
                    "immuta_task_id": cell.immuta_task_id,
                    "run_id": cell.run_id,
                    "timeout": SENSOR_TIMEOUT,
                }
                for cell in cells
            ]
        )
    )
    return dag_tests.start(
        "fault_matrix_sensor.py",
        "fault_matrix_sensor",
        connections={CONN_ID: _conn_json(emulator)},
        extra_env={"IMMUTA_FAULT_MATRIX_CELLS": str(spec)},
    )


def finish_sensor_column(running: Any, cells: list[Cell]) -> None:
    result = running.wait(timeout=300)
    for cell in cells:
        task_id = cell.notes["airflow_task_id"]
        state = result.states.get(task_id)
        log = result.task_log(task_id)
        # From the sensor's first line (it names the connection) to the end of the task.
        seconds = result.seconds_between(log, f"Immuta connection '{cell.key}'", "end task")
        cell.seconds = round(seconds if seconds is not None else float("inf"), 2)
        cell.succeeded = state == "success"
        cell.notes["state"] = state
        if not cell.succeeded:
            errors = re.findall(r"(Immuta[A-Za-z]*Error): (.+)", log)
            if errors:
                cell.error_type, cell.message = errors[-1]
            else:
                cell.error_type = f"task {state}"
                cell.message = log[-2000:] or result.describe()


# ------------------------------------------------------------------------------ the fixture


def _conn_json(emulator: RunningEmulator) -> str:
    return immuta_connection(
        emulator.url, emulator.api_key, timeout=READ_TIMEOUT, max_retries=MAX_RETRIES
    )


ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>[^ ?"]+)[^"]*" (?P<status>\d{3})')


def _answers_by_request(access_log: Path) -> list[tuple[str, str, int]]:
    """(method, path, status) of every answered request, from the emulator's access log."""
    answers = []
    for line in access_log.read_text().splitlines():
        match = ACCESS_LINE.search(line)
        if match:
            answers.append((match["method"], match["path"], int(match["status"])))
    return answers


def _warm_up() -> None:
    """Import what the cells use once, so that the first cells' times are not import times."""
    from immuta_provider.hooks.immuta import ImmutaHook
    from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator  # noqa: F401
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger  # noqa: F401

    hook = ImmutaHook(immuta_conn_id=CONN_ID)
    hook.get_client()
    hook.close()


def _count(counters: dict[str, Any], cell: Cell, answers: list[tuple[str, str, int]]) -> None:
    pattern = re.compile(cell.path_regex)
    cell.fired = counters["faults"].get(cell.fault_id, 0)
    cell.tasks_created = counters["tasks_created"].get(cell.key, 0)
    cell.requests = 0
    for request, count in counters["requests"].items():
        method, _, path = request.partition(" ")
        if method == cell.method and pattern.search(path):
            cell.requests += count
    cell.notes["answers"] = [
        status for method, path, status in answers if method == cell.method and pattern.search(path)
    ]


@pytest.fixture(scope="module")
def matrix(
    dag_tests: DagTests, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[tuple[str, str], Cell]]:
    workdir = tmp_path_factory.mktemp("fault-matrix")
    cells: dict[tuple[str, str], Cell] = {}
    for p, place in enumerate(PLACES):
        for f, fault in enumerate(FAULTS):
            cells[(place, fault.label)] = Cell(place, fault, key=f"fm-{p}-{f}")
    with (
        run_emulator(
            seed="demo", sync_duration=1.0, log_dir=workdir, access_log=workdir / "access.log"
        ) as emulator,
        airflow_connection(CONN_ID, _conn_json(emulator)),
    ):
        _warm_up()
        started = time.monotonic()
        sensor_cells = [cell for cell in cells.values() if cell.place == "sensor poke"]
        sensor_run = start_sensor_column(emulator, dag_tests, sensor_cells, workdir)
        try:
            direct = [cell for cell in cells.values() if cell.place != "sensor poke"]
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                list(pool.map(lambda cell: run_cell(emulator, cell), direct))
            finish_sensor_column(sensor_run, sensor_cells)
        finally:
            sensor_run.kill()
        counters = emulator.admin.counters()
        answers = _answers_by_request(workdir / "access.log")
        for cell in cells.values():
            _count(counters, cell, answers)
            if cell.place.startswith("cancel"):
                _reported_cancel_problem(cell)
        total = round(time.monotonic() - started, 1)
        _report(request.config, cells, total)
        yield cells


def _report(config: pytest.Config, cells: dict[tuple[str, str], Cell], total: float) -> None:
    rows = [
        [fault.label] + [cells[(place, fault.label)].outcome() for place in PLACES]
        for fault in FAULTS
    ]
    lines = table(["fault \\ place", *PLACES], rows, max_width=54)
    lines.append("")
    lines.append(
        f"{len(cells)} cells in {total}s; per cell: faults fired / requests on the faulted route /"
        " sync tasks created on its connection / seconds"
    )
    detail = [
        [fault.label]
        + [
            "{0.fired}/{0.requests}/{0.tasks_created}/{0.seconds:g}s".format(
                cells[(place, fault.label)]
            )
            for place in PLACES
        ]
        for fault in FAULTS
    ]
    lines += table(["fault \\ place", *PLACES], detail, max_width=40)
    report(config, "fault matrix (fault x place -> outcome)", lines)


# ------------------------------------------------------------------------------ the checks


def expected_fired(place: str, fault: FaultKind) -> int:
    """How many times the fault must fire in a cell (each firing forced one more try)."""
    if fault.label == "401":
        return 2  # a 401 gets one new key exchange and one repeat; the second 401 is the real one
    if place == "start: create":
        # Only a 429 is retried (Immuta refused the request unread); a second POST after any
        # other fault could start a second sync.
        return TRANSIENT if is_rate_limit(fault) and not fault.persistent else 1
    if fault.persistent:
        attempts = MAX_RETRIES + 1
        if place in POLLING_PLACES:
            return attempts * POLLS_TOLERATED
        if place == "start: lookup" or place.startswith("cancel"):
            return attempts
    if fault.client_retries:
        return TRANSIENT
    if place in POLLING_PLACES and fault.poll_tolerated:
        return TRANSIENT
    return 1


# The trigger and the sensor both poll again after a transient error (issue 14), five in a row.
POLLING_PLACES = ("trigger poll", "sensor poke")


def is_rate_limit(fault: FaultKind) -> bool:
    return fault.spec.get("status") == 429


def served_anyway(place: str, fault: FaultKind) -> bool:
    """Whether the emulator still serves the faulted request after the client gave up on it.

    A slow answer (latency) is served late, even a create whose client hung up during the wait
    (test_slow_create_is_still_served), and a malformed-JSON answer is served, then cut.
    """
    return fault.reaches_app


def followed_at_once(place: str, fault: FaultKind) -> bool:
    """A create whose answer was lost but which Immuta carried out before answering (a body cut
    short): the operator finds the sync it started and follows it (issue 14)."""
    return place == "start: create" and fault.reaches_app and "latency" not in fault.spec


def expected_success(place: str, fault: FaultKind) -> bool:
    if fault.persistent:
        return False
    if place == "start: create":
        return is_rate_limit(fault) or followed_at_once(place, fault)
    if place.startswith("cancel"):
        # The cancel got through: retried to success, or the faulted request was still served.
        return fault.client_retries or served_anyway(place, fault)
    if place in POLLING_PLACES:
        return fault.poll_tolerated
    return fault.client_retries


CELL_IDS = [(place, fault.label) for place in PLACES for fault in FAULTS]


@pytest.mark.parametrize(("place", "fault_label"), CELL_IDS, ids=[f"{p}|{f}" for p, f in CELL_IDS])
def test_cell(matrix: dict[tuple[str, str], Cell], place: str, fault_label: str) -> None:
    cell = matrix[(place, fault_label)]
    fault = cell.fault
    context = f"{place} x {fault_label}: {cell.outcome()} | {cell.message[:600]}"

    assert cell.succeeded is expected_success(place, fault), context
    assert cell.fired == expected_fired(place, fault), context
    assert cell.requests >= cell.fired, context
    assert cell.tasks_created <= 1, f"duplicate sync: {context}"
    assert cell.seconds < CELL_DEADLINE, context

    if place in ("start: lookup", "start: create", "sensor poke") and not cell.succeeded:
        # A clear failure: our exception type, and a text naming the fault. The sensor reports
        # a non-transient error through its wait outcome (it tolerates transient ones, issue 14),
        # so its task fails with the client's message rather than the class name.
        expected_types = {fault.error, "task failed"} if place == "sensor poke" else {fault.error}
        assert cell.error_type in expected_types, context
        assert re.search(fault.evidence, cell.message), context
    if place == "start: lookup":
        assert cell.tasks_created == (1 if cell.succeeded else 0), context
    if place == "start: create" and cell.succeeded:
        assert cell.tasks_created == 1, context
    if place == "start: create" and not cell.succeeded:
        assert cell.error_type == fault.error, context
        assert re.search(fault.evidence, cell.message), context
        # The faulted POST started a sync only if it reached the app; Airflow's retry then
        # attached to it, so there is exactly one either way.
        served = served_anyway(place, fault)
        assert cell.notes["tasks_after_first_try"] == (1 if served else 0), context
        assert cell.notes["attached"] is served, context
        assert cell.tasks_created == 1, context
    if place == "trigger poll":
        assert cell.notes["event_at"] < cell.notes["deadline"], context
        if cell.succeeded:
            assert "ended COMPLETED" in cell.message, context
        else:
            assert re.search(fault.evidence, cell.message), context
            if fault.persistent:
                assert f"giving up after {POLLS_TOLERATED} failed polls" in cell.message, context
    if place == "sensor poke" and cell.succeeded:
        assert cell.notes["state"] == "success", context
    if place.startswith("cancel"):
        if place == "cancel: timeout":
            assert "did not finish before the deadline" in cell.message, context
            assert cell.notes.get("operator_error") == "AirflowException", context
        if cell.succeeded and not served_anyway(place, fault):
            # Retried to success: no error at all on the way.
            assert not cell.notes.get("on_kill_error"), context
            if place == "cancel: timeout":
                assert "Asked Immuta to cancel the run" in cell.message, context
        if not cell.succeeded:
            assert cell.run_status == "RUNNING", context
            assert re.search(fault.evidence, cell.message), context
            if place == "cancel: kill" and fault.error != "ImmutaConflictError":
                # on_kill lets the error out (the triggerer logs it); a 409 is only logged.
                assert cell.notes.get("on_kill_error") == fault.error, context


def test_slow_create_is_still_served(emulator: RunningEmulator) -> None:
    """A create whose answer comes after the client's read timeout still creates the task."""
    key = "snowflake-prod"
    emulator.admin.add_fault(
        method="POST", path=f"^/api/connections/{key}/tasks$", latency=1.0, count=1
    )
    with (
        ImmutaClient(emulator.url, emulator.api_key, max_retries=0, read_timeout=0.3) as client,
        pytest.raises(ImmutaTimeoutError),
    ):
        client.create_task(key)
    created, deadline = 0, time.monotonic() + 3.0
    while not created and time.monotonic() < deadline:
        time.sleep(0.1)
        created = emulator.admin.counters()["tasks_created"].get(key, 0)
    assert created == 1
