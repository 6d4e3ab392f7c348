"""Pytest fixtures for a real emulator process (loaded from tests/conftest.py).

``emulator_server`` (session) starts ``python -m immuta_provider.emulator --port 0 --seed demo
--sync-duration 1.0`` on 127.0.0.1 and stops it at the end; ``emulator`` (function) resets it
first, so each test sees the demo seed, no faults and zero counters. Both have ``.url``,
``.api_key`` and ``.admin`` (``reset()``, ``add_fault(**spec)``, ``clear_faults()``,
``counters()``, ``set_behaviour(connection_key, **kw)``, ``advance_clock(seconds)``).
``start_emulator`` (module) starts further emulators with other options (``dialect=``...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from immuta_provider.emulator.process import RunningEmulator, run_emulator

SYNC_DURATION = 1.0


@pytest.fixture(scope="session")
def emulator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One emulator process for the whole session (demo seed, 1 s syncs)."""
    log_dir = tmp_path_factory.mktemp("emulator")
    with run_emulator(
        seed="demo",
        sync_duration=SYNC_DURATION,
        log_dir=log_dir,
        access_log=log_dir / "access.log",
    ) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: RunningEmulator) -> RunningEmulator:
    """The session's emulator, reset to the demo seed with no faults and zero counters."""
    if emulator_server.returncode is not None:
        pytest.fail(f"the emulator process has exited:\n{emulator_server.log()[-4000:]}")
    emulator_server.admin.reset()
    return emulator_server


@pytest.fixture(scope="module")
def start_emulator(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RunningEmulator]]:
    """Factory for emulators of one module's own: ``start_emulator(dialect=path, ...)`` (any
    option of ``run_emulator``; demo seed and 1 s syncs unless given) starts a fresh process,
    stopped when the module is done. For a tenant the session's emulator cannot play: a dialect
    (tests/dialects), another authentication, state no other test may touch."""
    with ExitStack() as stack:

        def start(**options: Any) -> RunningEmulator:
            options.setdefault("seed", "demo")
            options.setdefault("sync_duration", SYNC_DURATION)
            options.setdefault("log_dir", tmp_path_factory.mktemp("emulator"))
            return stack.enter_context(run_emulator(**options))

        yield start
