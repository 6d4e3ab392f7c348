"""The ``Emulator``: configuration, state, faults, counters and the clock, in one object.

The FastAPI app, its middleware and the admin API all read and change this one object; a reset
replaces its state with a freshly seeded one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .dialect import DOCUMENTED, Dialect
from .faults import Counters, FaultRegistry, FaultSpec
from .persistence import StateFile
from .scheduler import Behaviour
from .seed import seed_state
from .state import State
from .tokens import DEFAULT_AUTH_MODE, DEFAULT_TOKEN_TTL, Authenticator

DEFAULT_API_KEY = "immuta-demo-key"
DEFAULT_SYNC_DURATION = 2.0


@dataclass
class EmulatorConfig:
    """Everything the command line sets."""

    api_keys: tuple[str, ...] = (DEFAULT_API_KEY,)
    seed: str = "demo"
    seed_objects: int = 0
    sync_duration: float = DEFAULT_SYNC_DURATION
    state_file: Path | None = None
    faults: list[FaultSpec] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    dialect: Dialect = DOCUMENTED
    auth: str = DEFAULT_AUTH_MODE
    token_ttl: float = DEFAULT_TOKEN_TTL


class Emulator:
    """One emulated Immuta tenant."""

    def __init__(self, config: EmulatorConfig, *, clock: Callable[[], float] = time.time) -> None:
        if not config.api_keys:
            raise ValueError("At least one API key is required.")
        self.config = config
        self.faults = FaultRegistry()
        self.counters = Counters()
        self._clock = clock
        self._clock_offset = 0.0
        self.auth = Authenticator(
            config.api_keys, mode=config.auth, token_ttl=config.token_ttl, clock=self.now
        )
        self._state_file = StateFile(config.state_file) if config.state_file else None
        if self._state_file is not None and self._state_file.has_state():
            self.state = self._empty_state()
            self._state_file.load(self.state)
        else:
            self.state = self._seeded_state()
            if self._state_file is not None:
                self._state_file.save_all(self.state)
            self.state.clear_dirty()
        for spec in config.faults:
            self.faults.add(spec)

    def now(self) -> float:
        """The emulator's clock: wall time plus whatever the admin API advanced it by."""
        return self._clock() + self._clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the clock forward (fast-forwards runs); returns the new time."""
        self._clock_offset += seconds
        self.state.tick()
        self.save()
        return self.now()

    def _empty_state(self) -> State:
        return State(
            clock=self.now,
            sync_duration=self.config.sync_duration,
            behaviours=copy.deepcopy(self.config.behaviours),
        )

    def _seeded_state(self) -> State:
        state = self._empty_state()
        seed_state(state, self.config.seed, large_objects=self.config.seed_objects)
        return state

    def reset(self) -> None:
        """Back to the start-up seed, with no faults, zero counters and the real clock."""
        self._clock_offset = 0.0
        self.state = self._seeded_state()
        self.faults.clear()
        self.counters.clear()
        self.auth.clear_counters()
        if self._state_file is not None:
            self._state_file.save_all(self.state)
        self.state.clear_dirty()

    def authenticate(self, authorization: bytes | None) -> tuple[str | None, str | None]:
        """``(principal, None)`` for an accepted ``Authorization`` value (the API key or a
        token, as the auth mode allows), else ``(None, why)``; see ``tokens.py``."""
        return self.auth.authenticate(authorization)

    def save(self) -> None:
        """Write what changed to the state file (without one, just forget what changed)."""
        if not self.state.dirty:
            return
        if self._state_file is not None:
            self._state_file.save_changes(self.state)
        else:
            self.state.clear_dirty()

    def close(self) -> None:
        """Save and close the state file."""
        if self._state_file is not None:
            self.save()
            self._state_file.close()
            self._state_file = None
