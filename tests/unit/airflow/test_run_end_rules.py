"""When a run has ended, whatever the tenant calls its statuses (issue 14, items 1-2), and the
sensor's tolerance of transient errors in poke/reschedule mode (item 7).

A run has ended when its status is in the success or failure set *or* its ``completedAt`` is set.
An ended run whose status is in neither set fails at once with a message naming the status, the
``success_statuses`` / ``failure_statuses`` extras and the Airflow connection; a status in no set
without ``completedAt`` is logged once and polled on.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict, deque
from typing import Any

import httpx
import pytest

from immuta_provider._compat import AirflowException
from immuta_provider._task_runs import FAILURE, SUCCESS, RunWatch, run_has_ended
from immuta_provider.client import ImmutaClient, ui
from immuta_provider.client.models import TaskRun
from immuta_provider.client.statuses import RunStatuses
from immuta_provider.sensors.immuta import POLL_ERRORS_KEY, ImmutaTaskRunSensor

TASK = "0b8c4a52-6a5c-4d3e-9f00-3c1c2e6b7a10"
RUN = "6f1d1e2a-3b4c-4d5e-8f60-718293a4b5c6"
KEY = "snowflake-prod"
BASE_URL = "https://acme.hosted.immutacloud.com"
DONE_AT = "2026-11-30T05:00:00Z"
TENANT = RunStatuses.create(
    success=["SUCCEEDED"], failure=["ERRORED", "ABORTED"], active=["QUEUED", "IN_PROGRESS"]
)


def run(status: str, **fields: object) -> TaskRun:
    return TaskRun.model_validate({"runId": RUN, "taskId": TASK, "status": status, **fields})


def watch(caplog: pytest.LogCaptureFixture, **kwargs: Any) -> RunWatch:
    caplog.set_level(logging.INFO, logger="test.ends")
    params: dict[str, Any] = {
        "connection_key": KEY,
        "immuta_task_id": TASK,
        "run_id": RUN,
        "immuta_conn_id": "immuta_tenant",
        "logger": logging.getLogger("test.ends"),
    }
    params.update(kwargs)
    return RunWatch(**params)


def test_configured_names_decide_success_and_failure(caplog: pytest.LogCaptureFixture) -> None:
    w = watch(caplog, statuses=TENANT)
    assert w.observe_run(run("QUEUED")) is None
    assert w.observe_run(run("IN_PROGRESS")) is None
    outcome = w.observe_run(run("SUCCEEDED", completedAt=DONE_AT))
    assert outcome is not None and outcome["status"] == SUCCESS
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)  # nothing "unknown"
    failed = watch(caplog, statuses=TENANT).observe_run(run("ABORTED"))
    assert failed is not None and failed["status"] == FAILURE


def test_an_ended_run_with_a_status_in_neither_set_fails_at_once_naming_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: a run ending SUCCEEDED on a tenant the provider did not know was waited on forever
    (no default timeout) - or, with its own words, taken for a success."""
    w = watch(caplog)  # the default names: COMPLETED / FAILED, CANCELED
    assert w.observe_run(run("IN_PROGRESS")) is None
    outcome = w.observe_run(run("SUCCEEDED", completedAt=DONE_AT))
    assert outcome is not None and outcome["status"] == FAILURE
    message = outcome["message"]
    assert "ended with the status 'SUCCEEDED'" in message
    assert "success_statuses (COMPLETED)" in message
    assert "failure_statuses (FAILED, CANCELED)" in message
    assert "Airflow connection 'immuta_tenant'" in message
    assert '"success_statuses": ["COMPLETED", "SUCCEEDED"]' in message
    assert outcome["run_status"] == "SUCCEEDED"


def test_completed_at_ends_the_run_even_under_an_active_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome = watch(caplog, statuses=TENANT).observe_run(run("IN_PROGRESS", completedAt=DONE_AT))
    assert outcome is not None and outcome["status"] == FAILURE
    assert "'IN_PROGRESS'" in outcome["message"]


def test_an_unknown_status_without_completed_at_is_logged_once_and_polled_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = watch(caplog, statuses=TENANT)
    for status in ("WARMING_UP", "IN_PROGRESS", "WARMING_UP", "WARMING_UP"):
        assert w.observe_run(run(status)) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unknown status 'WARMING_UP'" in warnings[0]
    assert "active_statuses (QUEUED, IN_PROGRESS)" in warnings[0]
    assert "Airflow connection 'immuta_tenant'" in warnings[0]


def test_a_per_task_failure_override_keeps_its_meaning(caplog: pytest.LogCaptureFixture) -> None:
    """The sensor's failure_statuses=["FAILED"]: a CANCELED run (a failure status of the
    connection the override leaves out) succeeds, as it always did."""
    w = watch(caplog, failure_statuses=["FAILED"])
    outcome = w.observe_run(run("CANCELED"))
    assert outcome is not None and outcome["status"] == SUCCESS
    outcome = watch(caplog, failure_statuses=["FAILED"]).observe_run(run("FAILED"))
    assert outcome is not None and outcome["status"] == FAILURE
    # An override naming a status the connection does not know still ends the wait on it.
    outcome = watch(caplog, failure_statuses=["EXPLODED"]).observe_run(run("EXPLODED"))
    assert outcome is not None and outcome["status"] == FAILURE
    # ...but it does not turn an unknown end into a success.
    outcome = watch(caplog, failure_statuses=[]).observe_run(run("WEIRD", completedAt=DONE_AT))
    assert outcome is not None and outcome["status"] == FAILURE


def test_run_has_ended() -> None:
    assert run_has_ended(run("SUCCEEDED"), TENANT)
    assert run_has_ended(run("WHATEVER", completedAt=DONE_AT), TENANT)
    assert not run_has_ended(run("COMPLETED"), TENANT)  # not this tenant's word, no completedAt
    assert not run_has_ended(None, TENANT)


# --- the sensor in poke / reschedule mode -------------------------------------------------------


class FakeImmuta:
    """Answers each ``METHOD /path`` from its own queue (an exception: no answer)."""

    def __init__(self, routes: dict[str, list[Any]]) -> None:
        self.routes = {route: deque(replies) for route, replies in routes.items()}
        self.calls: dict[str, int] = defaultdict(int)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = f"{request.method} {request.url.path}"
        self.calls[route] += 1
        replies = self.routes[route]
        reply = replies.popleft() if len(replies) > 1 else replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply  # type: ignore[no-any-return]


class FakeHook:
    base_url = BASE_URL

    def __init__(self, immuta: FakeImmuta, statuses: RunStatuses) -> None:
        self.run_statuses = statuses
        self.client = ImmutaClient(
            BASE_URL,
            "unit-test-key",
            transport=httpx.MockTransport(immuta),
            max_retries=0,
            auth_method="bearer-key",  # the fake Immuta has no key exchange
        )

    def get_client(self) -> ImmutaClient:
        return self.client

    def connection_url(self, connection_key: str) -> str:
        return ui.connection_url(BASE_URL, connection_key)


class FakeTaskInstance:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = json.loads(json.dumps(value))


class FakeStateStore:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


RUN_PATH = f"GET /api/connections/{KEY}/tasks/{TASK}/runs/{RUN}"


def _json(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


def _sensor(immuta: FakeImmuta, statuses: RunStatuses = TENANT, **kwargs: Any) -> Any:
    sensor = ImmutaTaskRunSensor(
        task_id="wait",
        connection_key=KEY,
        immuta_task_id=TASK,
        run_id=RUN,
        immuta_conn_id="immuta_tenant",
        deferrable=False,
        **kwargs,
    )
    sensor._hook = FakeHook(immuta, statuses)
    return sensor


def test_poke_mode_tolerates_transient_errors_then_succeeds() -> None:
    """Before: the first 503 or read timeout of a poke failed the sensor (the trigger tolerated
    five in a row)."""
    immuta = FakeImmuta(
        {
            RUN_PATH: [
                _json({"runId": RUN, "taskId": TASK, "status": "IN_PROGRESS"}),
                httpx.Response(503, json={"message": "busy"}),
                httpx.ReadTimeout("timed out"),
                _json({"runId": RUN, "taskId": TASK, "status": "SUCCEEDED"}),
            ]
        }
    )
    sensor = _sensor(immuta)
    context = {"ti": FakeTaskInstance()}
    assert sensor.poke(context) is False
    assert sensor.poke(context) is False  # 503: tolerated
    assert sensor.poke(context) is False  # read timeout: tolerated
    done = sensor.poke(context)
    assert done and done.xcom_value["status"] == "SUCCEEDED"


def test_poke_mode_gives_up_after_the_triggers_limit_in_a_row() -> None:
    immuta = FakeImmuta({RUN_PATH: [httpx.Response(502, json={"message": "bad gateway"})]})
    sensor = _sensor(immuta)
    context = {"ti": FakeTaskInstance()}
    for _ in range(4):
        assert sensor.poke(context) is False
    with pytest.raises(AirflowException, match="giving up after 5 failed polls in a row"):
        sensor.poke(context)


def test_reschedule_mode_carries_the_count_in_the_task_state_store() -> None:
    """Each reschedule builds a new sensor; the count lives in task_state_store (3.3+)."""
    immuta = FakeImmuta({RUN_PATH: [httpx.Response(503, json={"message": "busy"})]})
    store = FakeStateStore()
    for attempt in range(1, 5):
        sensor = _sensor(immuta, mode="reschedule")
        assert sensor.poke({"ti": FakeTaskInstance(), "task_state_store": store}) is False
        assert store.values[POLL_ERRORS_KEY] == attempt
    sensor = _sensor(immuta, mode="reschedule")
    with pytest.raises(AirflowException, match="giving up after 5 failed polls"):
        sensor.poke({"ti": FakeTaskInstance(), "task_state_store": store})
    assert POLL_ERRORS_KEY not in store.values


def test_a_non_transient_error_still_fails_the_poke_at_once() -> None:
    immuta = FakeImmuta({RUN_PATH: [httpx.Response(404, json={"message": "Run not found"})]})
    with pytest.raises(AirflowException, match="Run not found"):
        _sensor(immuta).poke({"ti": FakeTaskInstance()})


def test_sensor_fails_at_once_on_an_ended_run_with_an_unknown_status() -> None:
    immuta = FakeImmuta(
        {RUN_PATH: [_json({"runId": RUN, "status": "SUCCESS", "completedAt": DONE_AT})]}
    )
    with pytest.raises(AirflowException) as caught:
        _sensor(immuta).poke({"ti": FakeTaskInstance()})
    assert "'SUCCESS'" in str(caught.value) and "success_statuses" in str(caught.value)
