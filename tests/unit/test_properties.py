"""Property-based tests (hypothesis) of the input rules and of response parsing.

* Any body a server may send (any JSON, any bytes, any status) ends as a model or as one of our
  typed errors: never a ``pydantic.ValidationError``, ``KeyError``, ``TypeError``...
* Models keep fields they do not know, and unknown enum values, through a round trip.
* The validators accept exactly the languages API-NOTES.md documents, checked against
  predicates written here independently (no regex shared with the code), and the emulator's own
  implementation of the same rules agrees with the client's.

Responses are served by ``httpx.MockTransport`` (no network); each example is one call.
"""

from __future__ import annotations

import json
import string
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from immuta_provider.client import ImmutaClient, Page
from immuta_provider.client.errors import (
    ImmutaAPIError,
    ImmutaAuthenticationError,
    ImmutaConflictError,
    ImmutaError,
    ImmutaNotFoundError,
    ImmutaRateLimitError,
    ImmutaResponseError,
    ImmutaServerError,
    ImmutaValidationError,
)
from immuta_provider.client.models import (
    CancelTaskRunResult,
    Connection,
    DataObject,
    ImmutaModel,
    Task,
    TaskReference,
    TaskRun,
)
from immuta_provider.client.validation import (
    validate_connection_key,
    validate_page_size,
    validate_uuid,
)
from immuta_provider.emulator import rules as emulator_rules

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEY = "snowflake-prod"
ID = "3f1c9a52-7d3e-4c8b-9a61-2b7e5d4c3a10"

# ------------------------------------------------------------------------------ strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

WIRE_NAMES = [
    "runId",
    "taskId",
    "status",
    "type",
    "trigger",
    "createdAt",
    "updatedAt",
    "startedAt",
    "completedAt",
    "canceledBy",
    "error",
    "code",
    "message",
    "connectionKey",
    "technology",
    "state",
    "health",
    "clientConfiguration",
    "id",
    "name",
    "parentId",
    "connections",
    "tasks",
    "runs",
    "dataObjects",
    "page",
    "nextCursor",
]
timestamps = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.text(
    max_size=25
)
# Objects that look like the API's: known names with plausible or wrong values, plus noise.
api_like = st.dictionaries(
    st.sampled_from(WIRE_NAMES) | st.text(max_size=10),
    json_values | timestamps | st.just(ID) | st.sampled_from(["COMPLETED", "RUNNING", "??"]),
    max_size=8,
)
bodies = st.one_of(
    json_values.map(json.dumps),
    api_like.map(json.dumps),
    st.dictionaries(
        st.sampled_from(["connections", "tasks", "runs", "dataObjects", "page"]),
        st.lists(api_like, max_size=3) | api_like | json_values,
        max_size=3,
    ).map(json.dumps),
    st.text(max_size=60),
).map(str.encode) | st.binary(max_size=80)


def client_answering(status: int, body: bytes, headers: dict[str, bytes] | None = None) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers or {})

    return ImmutaClient(
        "https://acme.example",
        "property-key-0123456789",
        max_retries=0,
        transport=httpx.MockTransport(answer),
        auth_method="bearer-key",
    )


CALLS: list[tuple[str, Callable[[ImmutaClient], Any], type]] = [
    ("get_task_run", lambda c: c.get_task_run(KEY, ID, ID), TaskRun),
    ("get_task", lambda c: c.get_task(KEY, ID), Task),
    ("get_connection", lambda c: c.get_connection(KEY), Connection),
    ("create_task", lambda c: c.create_task(KEY), Task),
    ("get_data_object", lambda c: c.get_data_object(KEY, ID), DataObject),
    ("delete_connection", lambda c: c.delete_connection(KEY), TaskReference),
    ("cancel_task_run", lambda c: c.cancel_task_run(KEY, ID, ID), CancelTaskRunResult),
    ("list_task_runs page", lambda c: c.list_task_runs(KEY, ID).get_page(), Page),
    ("list_tasks page", lambda c: c.list_tasks(KEY).get_page(), Page),
    ("list_connections page", lambda c: c.list_connections().get_page(), Page),
    ("search page", lambda c: c.search_data_objects(KEY).get_page(), Page),
]


# ------------------------------------------------------------------- parsing never crashes


@pytest.mark.parametrize(("name", "call", "model"), CALLS, ids=[name for name, _, _ in CALLS])
@PROPERTY
@given(body=bodies)
def test_any_2xx_body_parses_or_raises_our_error(
    name: str, call: Callable[[ImmutaClient], Any], model: type, body: bytes
) -> None:
    with client_answering(200, body) as client:
        try:
            result = call(client)
        except ImmutaResponseError as exc:
            assert exc.status_code == 200 and name.split()[0] in exc.endpoint
            assert len(exc.body_excerpt) <= 200
            return
    assert isinstance(result, model)


STATUS_CLASSES = {
    401: ImmutaAuthenticationError,
    404: ImmutaNotFoundError,
    409: ImmutaConflictError,
    429: ImmutaRateLimitError,
}


@PROPERTY
@given(
    status=st.integers(min_value=300, max_value=599),
    body=bodies,
    retry_after=st.none() | st.text(max_size=30) | st.integers(-5, 10**6).map(str),
)
def test_any_error_answer_raises_the_typed_error_for_its_status(
    status: int, body: bytes, retry_after: str | None
) -> None:
    # Header bytes are latin-1 on the wire; anything else cannot be sent at all.
    assume(all(ord(c) < 256 and c not in "\r\n" for c in retry_after or ""))
    headers = {"retry-after": retry_after.encode("latin-1")} if retry_after is not None else {}
    with client_answering(status, body, headers) as client, pytest.raises(ImmutaError) as caught:
        client.get_task_run(KEY, ID, ID)
    error = caught.value
    assert isinstance(error, ImmutaAPIError), repr(error)
    assert error.status_code == status and str(status) in str(error)
    if status >= 500:
        assert isinstance(error, ImmutaServerError)
    elif status in STATUS_CLASSES:
        assert isinstance(error, STATUS_CLASSES[status])
    assert isinstance(error.message, str) and len(error.message) <= 1000
    assert error.retry_after is None or error.retry_after >= 0


# ------------------------------------------------------------------------------ round trips

MODELS: list[tuple[type[ImmutaModel], dict[str, Any]]] = [
    (TaskRun, {"runId": ID, "status": "RUNNING"}),
    (Task, {"taskId": ID, "type": "DATA_OBJECT_SYNC", "status": "PENDING"}),
    (Connection, {"connectionKey": KEY}),
    (DataObject, {"id": ID, "connectionKey": KEY}),
    (CancelTaskRunResult, {"runId": ID, "message": "Cancellation requested."}),
]


def known_names(model: type[ImmutaModel]) -> set[str]:
    names = set()
    for field_name, info in model.model_fields.items():
        names.add(field_name)
        if info.alias:
            names.add(info.alias)
    return names


@pytest.mark.parametrize(("model", "base"), MODELS, ids=[m.__name__ for m, _ in MODELS])
@PROPERTY
@given(extras=st.dictionaries(st.text(min_size=1, max_size=15), json_values, max_size=5))
def test_unknown_fields_survive_a_round_trip(
    model: type[ImmutaModel], base: dict[str, Any], extras: dict[str, Any]
) -> None:
    extras = {k: v for k, v in extras.items() if k not in known_names(model)}
    wire = {**base, **extras}
    parsed = model.model_validate_json(json.dumps(wire))
    dumped = parsed.model_dump(by_alias=True, mode="json")
    for key, value in extras.items():
        assert key in dumped and dumped[key] == value
    assert model.model_validate(dumped) == parsed


@PROPERTY
@given(status=st.text(min_size=1, max_size=20), trigger=st.text(min_size=1, max_size=20))
def test_unknown_enum_values_are_kept_as_plain_strings(status: str, trigger: str) -> None:
    run = TaskRun.model_validate({"runId": ID, "status": status})
    task = Task.model_validate({"taskId": ID, "type": "X", "status": status, "trigger": trigger})
    assert run.status == status and str(run.status) == status
    assert task.trigger == trigger
    assert run.is_terminal is (status in ("COMPLETED", "FAILED", "CANCELED"))
    assert run.model_dump(by_alias=True, mode="json")["status"] == status


# --------------------------------------------------- the validators, against independent rules

LETTERS_DIGITS = set(string.ascii_letters + string.digits + "-_")
RESERVED = "data connection object crawl search settings metadata permission sync bulk upgrade"
HEX = set(string.hexdigits)


def documented_connection_key(value: str) -> bool:
    """API-NOTES: min length 1; only letters, digits, - and _; not a reserved name."""
    return len(value) >= 1 and set(value) <= LETTERS_DIGITS and value not in RESERVED.split()


def documented_uuid(value: str) -> bool:
    """API-NOTES: 8-4-4-4-12 hex digits, version 1-8, variant 8/9/a/b; or the nil UUID."""
    if value == "00000000-0000-0000-0000-000000000000":
        return True
    groups = value.split("-")
    return (
        [len(group) for group in groups] == [8, 4, 4, 4, 12]
        and all(set(group) <= HEX for group in groups)
        and groups[2][0] in "12345678"
        and groups[3][0] in "89abAB"
    )


connection_keys = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=sorted(LETTERS_DIGITS), max_size=12),
    st.sampled_from(RESERVED.split()),
    st.sampled_from(RESERVED.split()).map(str.upper),
    st.sampled_from(RESERVED.split()).map(lambda name: name + "s"),
    st.text(alphabet=sorted(LETTERS_DIGITS), min_size=1, max_size=8).map(lambda k: k + "\n"),
)


def _mutations(value: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            value,
            value.upper(),
            value + "\n",
            "\n" + value,
            "{" + value + "}",
            value.replace("-", ""),
            value[:-1],
            value + "0",
            value[:14] + "9" + value[15:],  # version 9
            value[:19] + "7" + value[20:],  # variant 7
            value[:19] + "c" + value[20:],  # variant c
            value.replace("a", "g", 1),
        ]
    )


uuids = st.one_of(
    st.uuids().map(str).flatmap(_mutations),
    st.uuids(version=4).map(str),
    st.just("00000000-0000-0000-0000-000000000000"),
    st.text(alphabet=sorted(HEX | {"-"}), max_size=40),
    st.text(max_size=40),
)


def accepted(validator: Callable[..., Any], *args: Any) -> bool:
    try:
        validator(*args)
    except ImmutaValidationError:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(value=connection_keys)
def test_connection_key_rule_is_exactly_the_documented_one(value: str) -> None:
    assert accepted(validate_connection_key, value) is documented_connection_key(value)


@settings(max_examples=600, deadline=None)
@given(value=uuids)
def test_uuid_rule_is_exactly_the_documented_one(value: str) -> None:
    assert accepted(validate_uuid, value, "run_id") is documented_uuid(value)


@settings(max_examples=300, deadline=None)
@given(value=st.integers(-1000, 1000) | st.booleans() | st.floats() | st.text(max_size=4))
def test_page_size_rule_is_exactly_1_to_100(value: Any) -> None:
    documented = type(value) is int and 1 <= value <= 100
    assert accepted(validate_page_size, value) is documented


def test_every_generated_uuid_of_rfc_versions_is_accepted() -> None:
    for version in (1, 3, 4, 5):
        for _ in range(50):
            if version in (3, 5):
                value = uuid.uuid3(uuid.NAMESPACE_DNS, str(uuid.uuid4()))
                value = value if version == 3 else uuid.uuid5(uuid.NAMESPACE_DNS, str(value))
            else:
                value = uuid.uuid1() if version == 1 else uuid.uuid4()
            assert accepted(validate_uuid, str(value), "id")


# The emulator implements the same rules independently (its docstring says so); they must agree.


@settings(max_examples=600, deadline=None)
@given(value=connection_keys)
def test_emulator_and_client_agree_on_connection_keys(value: str) -> None:
    emulator_accepts = emulator_rules.connection_key_problem(value) is None
    assert emulator_accepts is accepted(validate_connection_key, value)


@settings(max_examples=600, deadline=None)
@given(value=uuids)
def test_emulator_and_client_agree_on_uuids(value: str) -> None:
    assert emulator_rules.is_uuid(value) is accepted(validate_uuid, value, "id")


@pytest.mark.parametrize("value", [f"{KEY}\n", f"{ID}\n"])
def test_emulator_refuses_a_trailing_newline_like_the_client(value: str) -> None:
    """Regression: the emulator's checks used re.match with '$', which also matches before a
    final newline (fixed in 36dbae8, found by the agreement tests below)."""
    if value.startswith(KEY):
        assert emulator_rules.connection_key_problem(value) is not None
    else:
        assert not emulator_rules.is_uuid(value)
