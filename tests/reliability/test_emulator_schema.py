"""schemathesis against the emulator's own OpenAPI description (``/openapi.json``).

For every operation, generated requests (valid and invalid, with the API key set) must never
get a 5xx, and every answer must match what the schema documents: its status code, content type
and body schema. The emulator is the other implementation the client's contract tests compare
with, so it has to be right about its own description.

Bounded: a fixed number of examples per operation, derandomized so CI sees the same requests
each run (a new failure is then a change in the emulator, not luck). Own emulator process,
because the generated requests create, patch and delete things.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
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


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_matches_the_schema_and_none_is_a_5xx(
    case: Any, fuzzed_emulator: RunningEmulator
) -> None:
    response = case.call_and_validate(
        base_url=fuzzed_emulator.url,
        headers={"Authorization": f"Bearer {fuzzed_emulator.api_key}"},
        checks=CHECKS,
    )
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    CALLS[operation] = CALLS.get(operation, 0) + 1
    assert response.status_code < 500


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
    if not CALLS:
        pytest.skip("the schemathesis cases did not run in this session")
    by_route = fuzzed_emulator.admin.counters()["by_route"]
    access_log = (fuzzed_emulator.log_path.parent / "access.log").read_text()
    statuses = Counter(re.findall(r'" (\d{3})\b', access_log))
    report(
        request.config,
        "schemathesis against the emulator's OpenAPI",
        [
            f"{sum(CALLS.values())} generated requests over {len(CALLS)} documented operations "
            f"({EXAMPLES} examples each plus schemathesis' coverage cases, undocumented methods "
            "included); statuses: "
            + ", ".join(f"{code} x{count}" for code, count in sorted(statuses.items()))
        ],
    )
    assert len(CALLS) == 19, sorted(CALLS)
    assert all(count >= 5 for count in CALLS.values()), CALLS
    assert sum(by_route.values()) >= sum(CALLS.values())
    assert not any(code.startswith("5") for code in statuses)
