"""Fixtures for the browser tests; the machinery is in :mod:`harness`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from .harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    INSTALL_SCRIPT,
    REPO_ROOT,
    AirflowApiServer,
    run_airflow_api_server,
)


@pytest.fixture(scope="module")
def airflow_api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApiServer]:
    """An ``airflow api-server`` with this provider installed, for the module's tests."""
    with run_airflow_api_server(tmp_path_factory.mktemp("airflow-home")) as server:
        yield server


@pytest.fixture(scope="module")
def chromium_executable() -> Path:
    """Debian's Chromium; skips the browser tests (loudly) where it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing and could not be installed. "
            f"Run `make browser-deps` (bash {INSTALL_SCRIPT.relative_to(REPO_ROOT)}, needs root "
            "and Debian's apt) to run them."
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_executable: Path) -> Iterator[Browser]:
    """A headless Chromium driven by Playwright (Playwright's own browsers are never used)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()
