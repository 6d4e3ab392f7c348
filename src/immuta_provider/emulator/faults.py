"""Fault specs, the registry that decides which request gets which fault, and request counters."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_DEFAULT_MESSAGES = {
    400: "Invalid request.",
    401: "Invalid API key.",
    403: "The API key is not allowed to perform this action.",
    404: "Not found.",
    409: "The request conflicts with the current state of the resource.",
    429: "Rate limit exceeded. Retry later.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service temporarily unavailable.",
    504: "Gateway timeout.",
}


class FaultSpec(BaseModel):
    """One fault: which requests it hits, what happens to them, and how often.

    ``path`` is a regular expression searched in the request path (anchor it with ``^``/``$``);
    ``method`` is an HTTP method or ``*``. Effects combine: ``latency`` is waited first, then
    ``drop`` closes the connection without an answer, ``drop_answer`` lets the request do its work
    and then closes the connection instead of sending the answer (a create really creates),
    ``body: "html"`` answers with a proxy's HTML page (status 502 unless ``status`` says
    otherwise), ``body: "malformed_json"`` lets the request through and truncates its JSON answer,
    and otherwise ``status`` answers with that status and the JSON error body. ``count`` limits
    the fault to the next N matching requests, ``probability`` makes each match fire at random.
    """

    model_config = ConfigDict(extra="forbid")

    method: str = "*"
    path: str = ".*"
    status: int | None = Field(default=None, ge=100, le=599)
    retry_after: str | int | float | None = None
    retry_after_date: float | None = Field(
        default=None, description="Send Retry-After as an HTTP date this many seconds ahead."
    )
    latency: float = Field(default=0.0, ge=0.0, le=600.0)
    drop: bool = False
    drop_answer: bool = Field(
        default=False,
        description="Serve the request, then close the connection instead of answering.",
    )
    body: Literal["malformed_json", "html"] | None = None
    message: str | None = None
    count: int | None = Field(default=None, ge=1)
    probability: float = Field(default=1.0, ge=0.0, le=1.0)

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"path is not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _has_effect(self) -> FaultSpec:
        if (
            self.status is None
            and not self.drop
            and not self.drop_answer
            and self.body is None
            and self.latency == 0
        ):
            raise ValueError(
                "a fault needs at least one of status, latency, drop, drop_answer or body"
            )
        return self

    @property
    def kind(self) -> str:
        """The fault's main effect, as counted by ``/_emulator/counters``."""
        if self.drop:
            return "drop"
        if self.drop_answer:
            return "drop_answer"
        if self.body is not None:
            return self.body
        if self.status is not None:
            return f"status_{self.status}"
        return "latency"

    def answer_status(self) -> int:
        """The status answered by a status or HTML fault."""
        if self.status is not None:
            return self.status
        return 502 if self.body == "html" else 500

    def answer_message(self) -> str:
        """The ``message`` of the JSON error body."""
        return self.message or _DEFAULT_MESSAGES.get(self.answer_status(), "Injected fault.")

    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` value to send, if any (an HTTP date is computed when it fires)."""
        if self.retry_after_date is not None:
            return formatdate(time.time() + self.retry_after_date, usegmt=True)
        if self.retry_after is None:
            return None
        return str(self.retry_after)


@dataclass
class Fault:
    """A registered fault and how many times it fired."""

    id: str
    spec: FaultSpec
    pattern: re.Pattern[str]
    remaining: int | None
    fired: int = 0

    def to_wire(self) -> dict[str, Any]:
        """The fault as the admin API lists it."""
        return {
            "id": self.id,
            **self.spec.model_dump(),
            "remaining": self.remaining,
            "fired": self.fired,
        }


class FaultRegistry:
    """Faults in the order they were added; the first one that matches and fires wins."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1
        self._rng = rng or random.SystemRandom()

    def add(self, spec: FaultSpec) -> Fault:
        """Register a fault and return it (with its id)."""
        fault = Fault(
            id=f"fault-{self._next_id}",
            spec=spec,
            pattern=re.compile(spec.path),
            remaining=spec.count,
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        """Remove one fault; False if there is none with that id."""
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) != before

    def clear(self) -> int:
        """Remove every fault; returns how many there were."""
        count = len(self._faults)
        self._faults = []
        return count

    def all(self) -> list[Fault]:
        """Every registered fault, spent ones included."""
        return list(self._faults)

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, if any, counted as fired."""
        if not self._faults:
            return None
        for fault in self._faults:
            if fault.remaining == 0:
                continue
            if fault.spec.method not in ("*", method) or not fault.pattern.search(path):
                continue
            if fault.spec.probability < 1.0 and self._rng.random() >= fault.spec.probability:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
            fault.fired += 1
            return fault
        return None


class Counters:
    """What the emulator saw: requests by path and by route, and the faults it injected."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.by_route: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.faults_by_kind: Counter[str] = Counter()

    def record_request(self, method: str, path: str, route: str | None) -> None:
        """Count one request under ``METHOD /path`` and ``METHOD /route/{template}``."""
        self.requests[f"{method} {path}"] += 1
        self.by_route[f"{method} {route or '<unmatched>'}"] += 1

    def record_fault(self, fault: Fault) -> None:
        """Count one injected fault, by id and by kind."""
        self.faults[fault.id] += 1
        self.faults_by_kind[fault.spec.kind] += 1

    def clear(self) -> None:
        """Start counting from zero."""
        self.requests.clear()
        self.by_route.clear()
        self.faults.clear()
        self.faults_by_kind.clear()
