"""schemathesis against the emulator's own OpenAPI description (``/openapi.json``).

For every operation, generated requests (valid and invalid, with the API key set) must never
get a 5xx, and every answer must match what the schema documents: its status code, content type
and body schema. The emulator is the other implementation the client's contract tests compare
with, so it has to be right about its own description.

Bounded: a fixed number of examples per operation, derandomized so CI sees the same requests
each run (a new failure is then a change in the emulator, not luck). Own emulator process,
because the generated requests create, patch and delete things.

Order-independent: the reach check fuzzes, itself, every operation the parametrized cases have
not fuzzed in this session (all of them when it runs alone or first), with the same checks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from immuta_provider.emulator.process import RunningEmulator, run_emulator
from tests.reliability.fault_fixtures import report

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CALLS: dict[str, int] = {}


@pytest.fixture(scope="module")
def fuzzed_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    workdir = tmp_path_factory.mktemp("schema-emulator")
    with run_emulator(
        seed="demo", sync_duration=0.5, log_dir=workdir, access_log=workdir / "access.log"
    ) as emulator:
        yield emulator


def served_schema() -> dict[str, Any]:
    """The OpenAPI document the emulator serves, built from its app without starting a server
    (pytest needs it at collection time; schemathesis' fixture-based loading does not work with
    pytest 9). test_the_fuzzed_schema_is_the_served_one checks it against the running process."""
    from immuta_provider.emulator.app import create_app
    from immuta_provider.emulator.core import Emulator, EmulatorConfig

    document: dict[str, Any] = create_app(emulator=Emulator(EmulatorConfig(seed="none"))).openapi()
    return document


SERVED = served_schema()
schema = schemathesis.openapi.from_dict(SERVED)
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def label(operation: Any) -> str:
    """``METHOD /path`` of a schemathesis operation."""
    return f"{operation.method.upper()} {operation.path}"


def call_and_check(case: Any, emulator: RunningEmulator) -> None:
    """Send one generated request, run the schema checks on the answer, count it in CALLS."""
    response = case.call_and_validate(
        base_url=emulator.url,
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        checks=CHECKS,
    )
    operation = label(case.operation)
    CALLS[operation] = CALLS.get(operation, 0) + 1
    assert response.status_code < 500


def fuzz(operation: Any, emulator: RunningEmulator) -> None:
    """EXAMPLES generated requests of one operation, valid and invalid, each checked."""
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @BOUNDED
    @given(case=cases)
    def one(case: Any) -> None:
        call_and_check(case, emulator)

    one()


@schema.parametrize()
@BOUNDED
def test_every_answer_matches_the_schema_and_none_is_a_5xx(
    case: Any, fuzzed_emulator: RunningEmulator
) -> None:
    call_and_check(case, fuzzed_emulator)


def test_the_fuzzed_schema_is_the_served_one(fuzzed_emulator: RunningEmulator) -> None:
    served = httpx.get(f"{fuzzed_emulator.url}/openapi.json", timeout=30).json()
    assert served == SERVED
    operations = [
        f"{method.upper()} {path}" for path, item in SERVED["paths"].items() for method in item
    ]
    assert len(operations) == 19, operations
    assert all(operation.split()[1].startswith("/api/") for operation in operations)


def test_fuzzing_reached_every_operation(
    fuzzed_emulator: RunningEmulator, request: pytest.FixtureRequest
) -> None:
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        if label(operation) not in CALLS:  # this test ran alone, first, or with a -k subset
            fuzz(operation, fuzzed_emulator)
    by_route = fuzzed_emulator.admin.counters()["by_route"]
    access_log = (fuzzed_emulator.log_path.parent / "access.log").read_text()
    statuses = Counter(re.findall(r'" (\d{3})\b', access_log))
    report(
        request.config,
        "schemathesis against the emulator's OpenAPI",
        [
            f"{sum(CALLS.values())} generated requests over {len(CALLS)} documented operations "
            f"({EXAMPLES} examples each, plus schemathesis' coverage cases with undocumented "
            "methods when the parametrized cases ran); statuses: "
            + ", ".join(f"{code} x{count}" for code, count in sorted(statuses.items()))
        ],
    )
    assert len(CALLS) == 19, sorted(CALLS)
    assert all(count >= 5 for count in CALLS.values()), CALLS
    assert sum(by_route.values()) >= sum(CALLS.values())
    assert not any(code.startswith("5") for code in statuses)
