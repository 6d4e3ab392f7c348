"""Fixtures of the reliability tests, and a terminal summary of the figures they measured."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.reliability.fault_fixtures import DagTests

FIGURES_KEY = pytest.StashKey[dict[str, dict[str, Any]]]()


@pytest.fixture(scope="session")
def reliability_figures(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """Measured figures, by scenario; printed at the end of the pytest run."""
    return request.config.stash.setdefault(FIGURES_KEY, {})


@pytest.fixture(scope="session")
def dag_tests(tmp_path_factory: pytest.TempPathFactory) -> DagTests:
    """Airflow homes for ``dag.test()`` of the DAGs in ``fault_dags/`` (migrated on first use,
    once per session)."""
    return DagTests(tmp_path_factory.mktemp("fault-airflow"))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    figures = config.stash.get(FIGURES_KEY, None)
    if not figures:
        return
    terminalreporter.section("reliability figures (multi-process Airflow on 127.0.0.1)")
    for scenario, values in figures.items():
        terminalreporter.write_line(f"{scenario}: {json.dumps(values, default=str)}")
