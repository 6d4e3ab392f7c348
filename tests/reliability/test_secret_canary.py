"""Secret canary: a unique API key is used for a whole representative DAG run, then searched for
everywhere it could leak. It must be found nowhere.

The emulator is started with ``--api-key <canary>`` and an access log; some of its faults answer
with an error ``message`` that echoes the key (as a misconfigured proxy or a chatty server might),
so the key reaches the client in response bodies too. An Airflow connection whose host is
``http://user:<secret>@...`` adds a second secret.

Searched, after ``dag.test()`` of ``fault_dags/secret_canary.py`` (Airflow logging at DEBUG):

* everything the run printed (the task logs: ``dag.test()`` writes them to stdout), and every
  file under ``AIRFLOW_HOME/logs``;
* a raw DEBUG log of ``httpx``, ``httpcore`` and ``immuta_provider``, written by a plain handler
  that Airflow's secrets masker does not touch (what our code and httpx log, as logged);
* every value of every table of the run's metadata database: XComs, rendered template fields,
  trigger kwargs and events (``task_instance.next_kwargs``), the audit log...;
* the emulator's access log;
* in this process: every rendering (``str``, ``repr``, traceback, pickle, attributes) of the
  exceptions the client, the hook, the operator and the trigger raise or report for the same
  faults, and the connection test's message.

The connections use ``auth_method`` ``auto``, so every client exchanges the key for tokens
(``POST /bim/apikey/authenticate``); every token the emulator issued (``/_emulator/tokens``) is
searched for in the same places as the key.

Positive controls keep the search honest: the needle is found where it must be (the emulator's
own start-up banner prints its key), the echoing faults really fired, and a task that logs the
key on purpose shows ``***`` where the key was.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import re
import secrets
import sqlite3
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from immuta_provider.client import AsyncImmutaClient, ImmutaClient, ImmutaError
from immuta_provider.emulator.process import RunningEmulator, run_emulator
from tests.reliability.fault_fixtures import DagTestResult, DagTests, report, start_or_attach
from tests.support.connections import airflow_connection, immuta_connection

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

CORE = secrets.token_hex(16)
CANARY = f"canary-{CORE}-key"  # the API key
URL_SECRET = f"urlpw{secrets.token_hex(12)}"  # the password in a connection's host URL
# A run of the key's random part: finds a key cut in half by a truncated excerpt too.
NEEDLES = (CANARY, CORE[:16], CORE[16:], URL_SECRET)
CONN = "immuta_canary"
URL_CONN = "immuta_canary_url"
ECHO = f"The API key {CANARY} is not valid for this tenant."

CREATED = ("canary-sync", "canary-deferred", "canary-sensor", "canary-echo-create")
ECHO_POLL_KEY = "canary-echo-poll"
EXPECTED_STATES = {
    "sync_blocking": "success",
    "sync_deferred": "success",
    "sync_failed": "failed",
    "start_for_sensor": "success",
    "sensor": "success",
    "sync_401_echo": "failed",
    "sync_deferred_401_echo": "failed",
    "sync_409": "failed",
    "url_with_credentials": "failed",
    "connection_test": "success",
    "log_the_key_on_purpose": "success",
}


# The tokens the emulator issued to the run (filled in once the DAG has run): secrets too.
TOKENS: list[str] = []


def hits(text: str) -> int:
    return sum(text.count(needle) for needle in (*NEEDLES, *TOKENS))


def token_hits(text: str) -> int:
    return sum(text.count(token) for token in TOKENS)


@dataclass
class Scan:
    """What was searched, how big it was, and how many times a secret was found in it."""

    places: list[tuple[str, int, int]] = field(default_factory=list)
    airflow_mask_lines: list[str] = field(default_factory=list)

    def add(self, what: str, text: str, size: int | None = None) -> None:
        self.places.append((what, len(text) if size is None else size, hits(text)))

    @property
    def total_hits(self) -> int:
        return sum(found for _, _, found in self.places)

    def leaks(self) -> list[str]:
        return [what for what, _, found in self.places if found]


# Airflow 3.3.2's supervisor logs every request from the task at DEBUG, including the
# MaskSecret(value=<the secret>) that registers a secret for masking (supervisor.py, "Sending
# request"). Airflow's own connection lookup sends one per connection read, so this line is
# there with or without this provider: it is counted and reported, not searched.
AIRFLOW_MASK_REQUEST = re.compile(r"Sending request\b.*\bmsg=MaskSecret\(value=")


# The lines of the task that logs and prints the key on purpose (a positive control).
CARELESS = re.compile(r"^careless (print: )?the Immuta key is|\] careless: the Immuta key is")


def split_airflow_mask_requests(output: str) -> tuple[str, list[str]]:
    kept, airflow_own = [], []
    for line in output.splitlines():
        if CARELESS.search(line):
            continue
        (airflow_own if AIRFLOW_MASK_REQUEST.search(line) else kept).append(line)
    return "\n".join(kept), airflow_own


def renderings(exc: BaseException) -> str:
    """Every way an exception's text can end up somewhere: str, repr, args, attributes,
    its traceback as logged, its pickle (Airflow may pickle errors across processes)."""
    return "\n".join(
        [
            str(exc),
            repr(exc),
            repr(exc.args),
            repr(vars(exc)),
            "".join(traceback.format_exception(exc)),
            pickle.dumps(exc).decode("latin-1"),
        ]
    )


def setup_client(emulator: RunningEmulator) -> ImmutaClient:
    return ImmutaClient(emulator.url, CANARY, max_retries=0)


def prepare(emulator: RunningEmulator) -> None:
    admin = emulator.admin
    with setup_client(emulator) as client:
        for key in (*CREATED, ECHO_POLL_KEY):
            client.create_connection(
                {
                    "connectionKey": key,
                    "technology": "Snowflake",
                    "clientConfiguration": {"hostname": f"{key}.example.invalid"},
                }
            )
    admin.set_behaviour("canary-sensor", sync_duration=2.0)
    # The key echoed back: on a create, on the deferred poll, on the connection test's listing.
    admin.add_fault(
        method="POST", path="^/api/connections/canary-echo-create/tasks$", status=401, message=ECHO
    )
    admin.add_fault(
        method="GET",
        path=f"^/api/connections/{ECHO_POLL_KEY}/tasks/[^/]+/runs/[^/]+$",
        status=401,
        message=ECHO,
    )
    # Twice: a 401 makes the client exchange the key again and repeat the call once.
    admin.add_fault(method="GET", path="^/api/connections$", status=401, message=ECHO, count=2)


@dataclass
class CanaryRun:
    emulator_log: str
    access_log: str
    counters: dict[str, Any]
    result: DagTestResult
    tokens: list[str]


@pytest.fixture(scope="module")
def canary_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    workdir = tmp_path_factory.mktemp("canary-emulator")
    with run_emulator(
        seed="demo",
        sync_duration=1.0,
        api_keys=[CANARY],
        log_dir=workdir,
        access_log=workdir / "access.log",
    ) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def canary_run(canary_emulator: RunningEmulator, dag_tests: DagTests) -> CanaryRun:
    emulator = canary_emulator
    emulator.admin.reset()
    prepare(emulator)
    port = emulator.url.rsplit(":", 1)[1]
    running = dag_tests.start(
        "secret_canary.py",
        "secret_canary",
        connections={
            CONN: immuta_connection(emulator.url, CANARY, timeout=5, max_retries=1),
            URL_CONN: immuta_connection(
                f"http://canary-user:{URL_SECRET}@127.0.0.1:{port}", CANARY
            ),
        },
        extra_env={"AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG"},
    )
    result = running.wait(timeout=300)
    tokens = emulator.admin.tokens()
    TOKENS[:] = tokens
    return CanaryRun(
        emulator_log=emulator.log(),
        access_log=(emulator.log_path.parent / "access.log").read_text(errors="replace"),
        counters=emulator.admin.counters(),
        result=result,
        tokens=tokens,
    )


# ------------------------------------------------------------------- the DAG run, searched


def scan_run(run: CanaryRun) -> Scan:
    scan = Scan()
    result = run.result
    kept, airflow_own = split_airflow_mask_requests(result.output)
    scan.add("dag.test() output (task logs, DEBUG)", kept)
    scan.airflow_mask_lines = airflow_own
    log_files = result.log_files()
    # dag.test() prints task logs rather than writing them here; whatever is here is searched.
    scan.add(f"AIRFLOW_HOME/logs ({len(log_files)} files)", "\n".join(log_files.values()))
    for name, text in log_files.items():
        scan.add(f"AIRFLOW_HOME/logs/{name}", text)
    scan.add("raw DEBUG log (httpx, httpcore, immuta_provider)", result.debug_log)
    with sqlite3.connect(f"file:{result.home / 'airflow.db'}?mode=ro", uri=True) as db:
        tables = [
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table_name in tables:
            rows = db.execute(f'SELECT * FROM "{table_name}"').fetchall()
            text = "\n".join(
                "\t".join(
                    value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    for value in row
                )
                for row in rows
            )
            scan.add(f"metadata table {table_name}", text, size=len(rows))
    scan.add("emulator access log", run.access_log)
    return scan


def test_the_dag_ran_as_designed(canary_run: CanaryRun) -> None:
    result = canary_run.result
    assert result.states == EXPECTED_STATES, result.describe()
    # Positive controls: the echoing faults fired, so the key did come back in bodies.
    fired = canary_run.counters["faults"]
    assert len(fired) == 3 and all(count >= 1 for count in fired.values()), fired
    assert canary_run.counters["tasks_created"].get("canary-echo-create", 0) == 0
    # The failures are the clear ones, with the key replaced.
    log_401 = result.task_log("sync_401_echo")
    assert "Immuta returned 401" in log_401 and "The API key *** is not valid" in log_401, log_401
    poll_401 = result.task_log("sync_deferred_401_echo")
    assert "Immuta returned 401" in poll_401, poll_401
    assert "Connection state must be ACTIVE" in result.task_log("sync_409")
    assert "CONNECTION_AUTH_FAILED" in result.task_log("sync_failed")
    url_log = result.task_log("url_with_credentials")
    assert "the host must be the bare Immuta URL" in url_log, url_log


def test_the_key_is_nowhere(canary_run: CanaryRun, request: pytest.FixtureRequest) -> None:
    scan = scan_run(canary_run)
    lines = [
        f"canary API key, URL password and {len(canary_run.tokens)} issued tokens searched in "
        f"{len(scan.places)} places; hits: {scan.total_hits}"
    ]
    lines += [
        f"  {what}: {size} {'rows' if 'table' in what else 'chars'}, {found} hits"
        for what, size, found in scan.places
    ]
    lines.append(
        f"  excluded: {len(scan.airflow_mask_lines)} Airflow supervisor DEBUG lines "
        "'Sending request ... msg=MaskSecret(value=<secret>)' (Airflow's own, see the module)"
    )
    report(request.config, "secret canary scan", lines)
    assert scan.leaks() == [], "\n".join(lines)
    # Only Airflow's own MaskSecret requests were set aside: each holds the key alone, one token
    # (the hook registers each new token with the masker) or no secret at all (the extras),
    # never the URL's password.
    assert {hits(line) for line in scan.airflow_mask_lines} <= {0, 1, 3}
    assert all(
        token_hits(line) in (0, 1) and (token_hits(line) == 0 or hits(line) == 1)
        for line in scan.airflow_mask_lines
    )
    # Tokens were issued (the exchange happened), and the hook registered them for masking.
    assert canary_run.counters["auth"]["exchanges"] == len(canary_run.tokens) >= 2
    assert any(token_hits(line) for line in scan.airflow_mask_lines)
    assert not any(URL_SECRET in line for line in scan.airflow_mask_lines)
    # The search can find it: the emulator prints the key it accepts when it starts.
    assert hits(canary_run.emulator_log) >= 1
    # The access log is real (request lines and statuses), and has the 401s.
    assert canary_run.access_log.count("/api/connections") > 20
    assert re.search(r'" 401\b', canary_run.access_log)


def test_dag_test_output_is_not_masked(canary_run: CanaryRun) -> None:
    """``dag.test()`` prints task logs without Airflow's secrets masker (a real worker's
    supervisor masks them). So the search above found nothing because nothing printed the key,
    not because something hid it: the careless task's key shows in clear (and was set aside)."""
    careless = [line for line in canary_run.result.output.splitlines() if CARELESS.search(line)]
    assert len(careless) == 2, careless
    assert all(CANARY in line for line in careless)


def test_the_hook_registers_the_key_with_the_masker(canary_run: CanaryRun) -> None:
    """In a real task the hook sends the key to the supervisor's masker (MaskSecret) right after
    reading the connection, before the first request to Immuta (Airflow's own lookup sends one
    before "Connection Retrieved"; the one after it is the hook's)."""
    lines = canary_run.result.task_log("sync_blocking").splitlines()
    retrieved = next(
        i for i, line in enumerate(lines) if "Connection Retrieved 'immuta_canary'" in line
    )
    first_call = next(
        i for i, line in enumerate(lines) if "HTTP Request: GET http://127.0.0.1" in line
    )
    ours = [
        line
        for line in lines[retrieved:first_call]
        if AIRFLOW_MASK_REQUEST.search(line) and CANARY in line
    ]
    assert retrieved < first_call and len(ours) == 1, lines[retrieved:first_call]


def test_connection_test_message_hides_an_echoed_key(canary_run: CanaryRun) -> None:
    rows = canary_run.result.rows(
        "SELECT value FROM xcom WHERE task_id = 'connection_test' AND key = 'return_value'"
    )
    (value,) = (json.loads(row[0]) for row in rows)
    assert value["ok"] is False
    assert "refused the token for GET /api/connections (401)" in value["message"], value
    assert hits(json.dumps(value)) == 0


def test_rendered_fields_were_searched(canary_run: CanaryRun) -> None:
    """The rendered template fields exist (so searching them meant something)."""
    rows = canary_run.result.rows(
        "SELECT task_id, rendered_fields FROM rendered_task_instance_fields"
    )
    rendered = {task_id: json.loads(fields) for task_id, fields in rows}
    assert rendered["sync_blocking"]["connection_key"] == "canary-sync"
    assert rendered["sync_blocking"]["extra_body"] == {"note": "from the canary DAG"}
    assert re.fullmatch(r"[0-9a-f-]{36}", rendered["sensor"]["run_id"])


# --------------------------------------------------------------- exceptions, in this process


@pytest.fixture
def echoing(canary_emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    """The canary emulator, reset, with every request to ``canary-echo-*`` answered by an error
    that echoes the key (401, 409, 500 with the key at the excerpt's cut)."""
    emulator = canary_emulator
    emulator.admin.reset()
    with setup_client(emulator) as client:
        for key in ("canary-echo-401", "canary-echo-409", "canary-echo-500"):
            client.create_connection(
                {"connectionKey": key, "technology": "Snowflake", "clientConfiguration": {}}
            )
    for status in (401, 409):
        emulator.admin.add_fault(
            path=f"^/api/connections/canary-echo-{status}/", status=status, message=ECHO
        )
    # The key straddles the 200-character cut of the body excerpt.
    emulator.admin.add_fault(
        path="^/api/connections/canary-echo-500/",
        status=500,
        message="x" * 160 + CANARY + " trailing text",
    )
    with airflow_connection(CONN, immuta_connection(emulator.url, CANARY, max_retries=0)):
        yield emulator


TASK = "00000000-0000-0000-0000-000000000000"


def test_client_errors_never_hold_an_echoed_key(echoing: RunningEmulator) -> None:
    """Regression: the client quoted Immuta's error message verbatim, key included."""
    texts = []
    with ImmutaClient(echoing.url, CANARY, max_retries=0) as client:
        for status in (401, 409, 500):
            with pytest.raises(ImmutaError) as caught:
                client.get_task_run(f"canary-echo-{status}", TASK, TASK)
            texts.append(renderings(caught.value))
            assert f"{status}" in str(caught.value)

    async def async_errors() -> list[str]:
        found = []
        async with AsyncImmutaClient(echoing.url, CANARY, max_retries=0) as client:
            for status in (401, 409, 500):
                try:
                    await client.create_task(f"canary-echo-{status}")
                except ImmutaError as exc:
                    found.append(renderings(exc))
        return found

    texts += asyncio.run(async_errors())
    assert len(texts) == 6
    assert "***" in texts[0]  # the echo is there, without the key
    assert [hits(text) for text in texts] == [0] * 6


def test_operator_hook_and_trigger_never_show_an_echoed_key(echoing: RunningEmulator) -> None:
    from immuta_provider.hooks.immuta import ImmutaHook
    from immuta_provider.operators.immuta import ImmutaDataObjectSyncOperator
    from immuta_provider.triggers.immuta import ImmutaTaskRunTrigger

    texts = []
    operator = ImmutaDataObjectSyncOperator(
        task_id="sync", connection_key="canary-echo-401", immuta_conn_id=CONN
    )
    with pytest.raises(ImmutaError) as caught:
        start_or_attach(operator)
    operator.hook.close()
    texts.append(renderings(caught.value))

    echoing.admin.add_fault(method="GET", path="^/api/connections$", status=401, message=ECHO)
    ok, message = ImmutaHook(immuta_conn_id=CONN).test_connection()
    assert not ok and "401" in message, message
    texts.append(message)

    trigger = ImmutaTaskRunTrigger(
        immuta_conn_id=CONN,
        connection_key="canary-echo-409",
        immuta_task_id=TASK,
        run_id=TASK,
        poll_interval=0.1,
    )

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            payload: dict[str, Any] = event.payload
            return payload
        raise AssertionError("no event")

    payload = asyncio.run(asyncio.wait_for(first_event(), 30))
    assert payload["status"] == "error" and "409" in payload["message"], payload
    texts.append(json.dumps(payload))
    assert [hits(text) for text in texts] == [0, 0, 0]


HOSTS_WITH_CREDENTIALS = [
    f"ftp://user:{URL_SECRET}@immuta.example.com",
    f"https://user:{URL_SECRET}@",
    f"https://user:{URL_SECRET}@immuta.example.com:99999",
    f"https://[user:{URL_SECRET}@immuta.example.com",
    f"https://user:{URL_SECRET}@immuta.example.com",
    f"user:{URL_SECRET}@immuta.example.com",
]


@pytest.mark.parametrize("host", HOSTS_WITH_CREDENTIALS)
def test_a_host_with_credentials_is_never_echoed(host: str) -> None:
    """Regression: three of the hook's host errors quoted the host, password included; the
    client's base_url check quoted an unparsable URL."""
    from immuta_provider._compat import AirflowException
    from immuta_provider.client.errors import ImmutaValidationError
    from immuta_provider.hooks.immuta import ImmutaHook

    with airflow_connection("immuta_bad_host", immuta_connection(host, CANARY)):
        with pytest.raises(AirflowException) as caught:
            ImmutaHook(immuta_conn_id="immuta_bad_host").settings  # noqa: B018
        assert hits(renderings(caught.value)) == 0, str(caught.value)
        assert "immuta_bad_host" in str(caught.value)
    with pytest.raises(ImmutaValidationError) as invalid:
        ImmutaClient(host, CANARY)
    assert hits(renderings(invalid.value)) == 0, str(invalid.value)
