"""Bad input: every rule is enforced before anything is sent, with a message that names it.

Covered: connection keys (empty, reserved, bad characters; templated to a bad value at run
time in a real ``dag.test()``), malformed ids, page limits 0 and 101, broken Airflow
connections (no host, no API key, a non-http URL), ``timeout``/``poll_interval`` <= 0, and a
status value the provider does not know (kept, logged, waited on until the deadline).

The validation tests check the emulator's counters: a rejected call sends nothing. The unknown
status comes from a stand-in server on 127.0.0.1 (the emulator cannot produce one: its runs only
take the six documented statuses).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from immuta_provider.client import ImmutaClient, ImmutaValidationError
from immuta_provider.client.validation import RESERVED_CONNECTION_KEYS
from immuta_provider.emulator.process import RunningEmulator
from tests.reliability.fault_fixtures import DagTestResult, DagTests
from tests.support.connections import airflow_connection, immuta_connection

UNKNOWN_STATUS = "QUEUED_FOR_REVIEW"
TASK_ID = "3f1c9a52-7d3e-4c8b-9a61-2b7e5d4c3a10"  # the ids of fault_dags/bad_input.py
RUN_ID = "8e2d4b61-5a7c-4f3e-8d9b-1c6a7e5f4b20"

EMPTY = "must be at least 1 character long"
RESERVED = "is a reserved name in Immuta"
CHARACTERS = "may contain only letters, digits, '-' and '_'"
NOT_UUID = "is not a UUID as Immuta expects"

BAD_KEYS = [
    ("", EMPTY),
    *[(name, RESERVED) for name in sorted(RESERVED_CONNECTION_KEYS)],
    ("my key", CHARACTERS),
    ("my/key", CHARACTERS),
    ("key.with.dots", CHARACTERS),
    ("clé", CHARACTERS),
    ("key\n", CHARACTERS),
    ("../snowflake-prod", CHARACTERS),
    ("%2e%2e", CHARACTERS),
]
BAD_IDS = [
    "not-a-uuid",
    "",
    "3f1c9a52-7d3e-4c8b-9a61-2b7e5d4c3a1",  # one digit short
    "3f1c9a52-7d3e-9c8b-9a61-2b7e5d4c3a10",  # version 9
    "3f1c9a52-7d3e-4c8b-7a61-2b7e5d4c3a10",  # variant 7
    "3f1c9a527d3e4c8b9a612b7e5d4c3a10",  # no hyphens
    "{3f1c9a52-7d3e-4c8b-9a61-2b7e5d4c3a10}",
    "3f1c9a52-7d3e-4c8b-9a61-2b7e5d4c3a10\n",
]


def api_requests(emulator: RunningEmulator) -> int:
    """Requests to the Connections API; the API-key exchange (issue 13) is not one of them."""
    requests = emulator.admin.counters()["requests"]
    return sum(count for route, count in requests.items() if " /api/" in route)


# ------------------------------------------------------------------------ the client's rules


@pytest.mark.parametrize(("key", "rule"), BAD_KEYS, ids=[repr(k) for k, _ in BAD_KEYS])
def test_bad_connection_keys_are_refused_before_sending(
    emulator: RunningEmulator, key: str, rule: str
) -> None:
    with ImmutaClient(emulator.url, emulator.api_key, max_retries=0) as client:
        calls = [
            lambda: client.get_connection(key),
            lambda: client.create_task(key),
            lambda: client.get_task_run(key, TASK_ID, RUN_ID),
            lambda: list(client.list_tasks(key)),
            lambda: client.create_connection(
                {"connectionKey": key, "technology": "Snowflake", "clientConfiguration": {}}
            ),
        ]
        for call in calls:
            with pytest.raises(ImmutaValidationError) as caught:
                call()
            assert rule in str(caught.value)
            assert repr(key) in str(caught.value)  # names the bad value
    assert api_requests(emulator) == 0


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=repr)
def test_malformed_ids_are_refused_before_sending(emulator: RunningEmulator, bad_id: str) -> None:
    with ImmutaClient(emulator.url, emulator.api_key, max_retries=0) as client:
        for call, name in [
            (lambda: client.get_task(("snowflake-prod"), bad_id), "task_id"),
            (lambda: client.get_task_run("snowflake-prod", TASK_ID, bad_id), "run_id"),
            (lambda: client.cancel_task_run("snowflake-prod", bad_id, RUN_ID), "task_id"),
            (lambda: client.get_data_object("snowflake-prod", bad_id), "data_object_id"),
            (lambda: list(client.list_task_runs("snowflake-prod", bad_id)), "task_id"),
        ]:
            with pytest.raises(ImmutaValidationError) as caught:
                call()
            assert NOT_UUID in str(caught.value) and name in str(caught.value), caught.value
    assert api_requests(emulator) == 0


@pytest.mark.parametrize("limit", [0, 101, -1, 10_000, True, 2.5, "20"])
def test_page_limits_outside_1_to_100_are_refused(emulator: RunningEmulator, limit: Any) -> None:
    with ImmutaClient(emulator.url, emulator.api_key, max_retries=0) as client:
        for listing in [
            lambda: client.list_connections(page_size=limit),
            lambda: client.list_tasks("snowflake-prod", page_size=limit),
            lambda: client.search_data_objects("snowflake-prod", page_size=limit),
        ]:
            with pytest.raises(ImmutaValidationError) as caught:
                list(listing())
            message = str(caught.value)
            if isinstance(limit, int) and not isinstance(limit, bool):
                assert "out of range; it must be between 1 and 100" in message, message
            else:
                assert "must be an integer" in message, message
    assert api_requests(emulator) == 0


def test_page_limits_1_and_100_are_sent(emulator: RunningEmulator) -> None:
    with ImmutaClient(emulator.url, emulator.api_key, max_retries=0) as client:
        assert len(client.list_connections(page_size=1).get_page().items) == 1
        assert len(client.list_connections(page_size=100).get_page().items) == 4
    assert api_requests(emulator) == 2


# --------------------------------------------------------- Airflow connections and arguments


BROKEN_CONNECTIONS = [
    ({"conn_type": "immuta", "password": "key-1234"}, "has no host"),
    ({"conn_type": "immuta", "host": "   ", "password": "key-1234"}, "has no host"),
    ({"conn_type": "immuta", "host": "https://immuta.example.com"}, "has no API key"),
    (
        {"conn_type": "immuta", "host": "https://immuta.example.com", "password": "  "},
        "has no API key",
    ),
    (
        {"conn_type": "immuta", "host": "ftp://immuta.example.com", "password": "key-1234"},
        "is not an http(s) URL",
    ),
    (
        {"conn_type": "immuta", "host": "file:///etc/passwd", "password": "key-1234"},
        "is not an http(s) URL",
    ),
    (
        {
            "conn_type": "immuta",
            "host": "immuta.example.com",
            "password": "key-1234",
            "extra": {"scheme": "gopher"},
        },
        "extra 'scheme' must be http or https",
    ),
    (
        {
            "conn_type": "immuta",
            "host": "https://immuta.example.com",
            "password": "key-1234",
            "extra": {"timeout": 0},
        },
        "extra 'timeout' must be a number >= 1",
    ),
    (
        {
            "conn_type": "immuta",
            "host": "https://immuta.example.com",
            "password": "key-1234",
            "extra": {"max_retries": -1},
        },
        "extra 'max_retries' must be a number >= 0",
    ),
]


@pytest.mark.parametrize(
    ("conn", "rule"), BROKEN_CONNECTIONS, ids=[rule for _, rule in BROKEN_CONNECTIONS]
)
def test_broken_airflow_connections_are_named_with_what_to_fix(
    conn: dict[str, Any], rule: str
) -> None:
    from immuta_provider._compat import AirflowException
    from immuta_provider.hooks.immuta import ImmutaHook

    with airflow_connection("immuta_broken", json.dumps(conn)):
        with pytest.raises(AirflowException) as caught:
            ImmutaHook(immuta_conn_id="immuta_broken").get_client()
        message = str(caught.value)
        assert rule in message and "'immuta_broken'" in message, message
        # The connection test says the same instead of raising.
        ok, text = ImmutaHook(immuta_conn_id="immuta_broken").test_connection()
        assert not ok and rule in text, text


WAITING_OPERATORS = [
    ("immuta_provider.operators.immuta", "ImmutaDataObjectSyncOperator", {}),
    ("immuta_provider.operators.connections", "ImmutaDeleteConnectionOperator", {}),
    (
        "immuta_provider.operators.data_objects",
        "ImmutaDeleteDataObjectOperator",
        {"data_object_id": TASK_ID},
    ),
    (
        "immuta_provider.operators.task_runs",
        "ImmutaCancelTaskRunOperator",
        {"immuta_task_id": TASK_ID, "run_id": RUN_ID},
    ),
]


@pytest.mark.parametrize("argument", ["timeout", "poll_interval"])
@pytest.mark.parametrize("value", [0, -1, -0.5, math.nan])
@pytest.mark.parametrize(
    ("module", "name", "extra"), WAITING_OPERATORS, ids=[n for _, n, _ in WAITING_OPERATORS]
)
def test_timeout_and_poll_interval_must_be_positive(
    module: str, name: str, extra: dict[str, Any], argument: str, value: float
) -> None:
    import importlib

    operator_class = getattr(importlib.import_module(module), name)
    with pytest.raises(ValueError, match=rf"{argument} must be a number of seconds > 0, got"):
        operator_class(task_id="t", connection_key="snowflake-prod", **extra, **{argument: value})


# ------------------------------------------------------------ a status nobody documented


class _StandIn(BaseHTTPRequestHandler):
    """Answers any GET of a run with an undocumented status, accepts cancels; no key exchange."""

    protocol_version = "HTTP/1.1"
    server: _StandInServer

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path))
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 7 and parts[5] == "runs":
            self._send(
                200,
                {
                    "runId": parts[6],
                    "taskId": parts[4],
                    "status": UNKNOWN_STATUS,
                    "createdAt": "2026-11-25T09:00:00Z",
                    "updatedAt": "2026-11-25T09:00:01Z",
                    "reviewQueue": "compliance",
                },
            )
        else:
            self._send(404, {"statusCode": 404, "error": "Not Found", "message": "stand-in"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.server.seen.append(("POST", self.path))
        if not self.path.startswith("/api/"):
            # A tenant without the key exchange (auth_method "auto" then sends the key itself).
            self._send(404, {"statusCode": 404, "error": "Not Found", "message": "stand-in"})
            return
        run_id = self.path.strip("/").split("/")[-2]
        self._send(200, {"runId": run_id, "message": "Cancellation requested."})

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, str]]


@dataclass
class StandIn:
    url: str
    seen: list[tuple[str, str]]


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    server = _StandInServer(("127.0.0.1", 0), _StandIn)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield StandIn(f"http://127.0.0.1:{server.server_address[1]}", server.seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_unknown_status_is_kept_as_it_is(stand_in: StandIn) -> None:
    with ImmutaClient(stand_in.url, "stand-in-key", max_retries=0) as client:
        run = client.get_task_run("snowflake-prod", TASK_ID, RUN_ID)
    assert run.status == UNKNOWN_STATUS and type(run.status) is str
    assert not run.is_terminal
    assert run.model_dump(by_alias=True)["reviewQueue"] == "compliance"


def test_the_trigger_waits_on_an_unknown_status_until_its_deadline(stand_in: StandIn) -> None:
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    with airflow_connection("immuta_stand_in", immuta_connection(stand_in.url, "stand-in-key")):
        deadline = time.time() + 1.5
        trigger = ImmutaTaskRunTrigger(
            immuta_conn_id="immuta_stand_in",
            connection_key="snowflake-prod",
            immuta_task_id=TASK_ID,
            run_id=RUN_ID,
            poll_interval=0.1,
            deadline=deadline,
        )

        async def first_event() -> dict[str, Any]:
            async for event in trigger.run():
                payload: dict[str, Any] = event.payload
                return payload
            raise AssertionError("no event")

        before = len(stand_in.seen)
        payload = asyncio.run(asyncio.wait_for(first_event(), 20))
    ended = time.time()
    assert payload["status"] == "timeout", payload
    assert f"last status {UNKNOWN_STATUS}" in payload["message"]
    assert payload["run_status"] == UNKNOWN_STATUS
    assert deadline <= ended < deadline + 2.0  # waited until the deadline, not past it
    # It kept polling after the unknown status (more than one poll; how many depends on the
    # machine's load: the first poll waits for Airflow's connection read).
    assert len(stand_in.seen) - before >= 2


def test_a_waiting_operator_times_out_on_an_unknown_status_and_cancels(stand_in: StandIn) -> None:
    from immuta_provider._compat import AirflowException
    from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator

    with airflow_connection("immuta_stand_in", immuta_connection(stand_in.url, "stand-in-key")):
        operator = ImmutaDataObjectSyncOperator(
            task_id="sync",
            connection_key="snowflake-prod",
            immuta_conn_id="immuta_stand_in",
            deferrable=False,
            timeout=1.0,
            poll_interval=0.1,
        )
        client = operator.hook.get_client()
        run = client.get_task_run("snowflake-prod", TASK_ID, RUN_ID)
        started = time.monotonic()
        with pytest.raises(AirflowException) as caught:
            operator._wait_or_defer(client, TASK_ID, run)
        operator.hook.close()
    assert 1.0 <= time.monotonic() - started < 3.0
    message = str(caught.value)
    assert "did not finish before the deadline" in message and UNKNOWN_STATUS in message
    assert "Asked Immuta to cancel the run" in message
    assert stand_in.seen[-1][0] == "POST" and stand_in.seen[-1][1].endswith("/_cancel")


# ------------------------------------------------------------------------- in a real DAG run


@pytest.fixture(scope="module")
def bad_input_run(
    dag_tests: DagTests, emulator_server: RunningEmulator, stand_in: StandIn
) -> tuple[DagTestResult, dict[str, Any]]:
    emulator = emulator_server
    emulator.admin.reset()
    good = immuta_connection(emulator.url, emulator.api_key)
    running = dag_tests.start(
        "bad_input.py",
        "bad_input",
        connections={
            "immuta_bad_input": good,
            "immuta_no_host": json.dumps({"conn_type": "immuta", "password": "key-1234"}),
            "immuta_no_key": json.dumps({"conn_type": "immuta", "host": emulator.url}),
            "immuta_ftp": json.dumps(
                {"conn_type": "immuta", "host": "ftp://127.0.0.1:21", "password": "key-1234"}
            ),
            "immuta_stand_in": immuta_connection(stand_in.url, "stand-in-key"),
        },
    )
    result = running.wait(timeout=240)
    return result, emulator.admin.counters()


RUN_TIME_FAILURES = {
    "empty_key": "connection_key '' must be at least 1 character long",
    "reserved_key": "connection_key 'sync' is a reserved name in Immuta",
    "spaced_key": "connection_key 'my key' may contain only letters, digits, '-' and '_'",
    "malformed_run_id": "run_id 'not-a-uuid' is not a UUID as Immuta expects",
    "no_host": "Airflow connection 'immuta_no_host' has no host",
    "no_key": "Airflow connection 'immuta_no_key' has no API key",
    "ftp_url": "Airflow connection 'immuta_ftp': the host 'ftp://127.0.0.1:21' is not an http(s)",
}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(("task", "message"), sorted(RUN_TIME_FAILURES.items()))
def test_templated_and_configured_bad_input_fails_the_task_naming_the_rule(
    bad_input_run: tuple[DagTestResult, dict[str, Any]], task: str, message: str
) -> None:
    result, counters = bad_input_run
    assert result.states.get(task) == "failed", result.describe()
    log = result.task_log(task)
    assert message in log, log[-3000:]
    # Nothing reached the emulator: every task failed before sending.
    assert counters["requests"] == {}, counters["requests"]


@pytest.mark.integration
@pytest.mark.slow
def test_a_sensor_waits_on_an_unknown_status_until_its_timeout(
    bad_input_run: tuple[DagTestResult, dict[str, Any]],
) -> None:
    result, _ = bad_input_run
    assert result.states.get("unknown_status") == "failed", result.describe()
    log = result.task_log("unknown_status")
    assert f"reports the unknown status '{UNKNOWN_STATUS}'" in log, log[-3000:]
    assert "so it is treated as still going and polled on" in " ".join(log.split())
    assert "Sensor has timed out" in log
    # Logged once, not at every poke.
    assert log.count("reports the unknown status") == 1


@pytest.mark.parametrize("interval", [0, -1, math.nan])
def test_a_deferred_sensor_or_trigger_refuses_a_poll_interval_of_zero_or_less(
    interval: float,
) -> None:
    """Regression (6349653): a deferred sensor with poke_interval=0 made its trigger poll
    Immuta in a tight loop (515 GETs of one run in one second, measured here before the fix)."""
    from immuta_provider.sensors.immuta import ImmutaTaskRunSensor
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    with pytest.raises(ValueError, match="poke_interval must be > 0 with deferrable=True"):
        ImmutaTaskRunSensor(
            task_id="sensor",
            connection_key="snowflake-prod",
            immuta_task_id=TASK_ID,
            run_id=RUN_ID,
            poke_interval=interval if interval >= 0 else 0,  # Airflow itself refuses < 0
            deferrable=True,
        )
    with pytest.raises(ValueError, match="poll_interval must be a number of seconds > 0"):
        ImmutaTaskRunTrigger(
            immuta_conn_id="immuta_default",
            connection_key="snowflake-prod",
            immuta_task_id=TASK_ID,
            run_id=RUN_ID,
            poll_interval=interval,
        )
