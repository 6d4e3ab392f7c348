"""The admin API under ``/_emulator/``: reset, faults, counters, behaviours, clock.

No auth (it is a test tool on loopback) and left out of ``/openapi.json``, so a schema-driven
fuzzer never resets the emulator or injects faults into its own run.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from .core import Emulator
from .faults import FaultSpec
from .rules import ApiError, check_connection_key
from .scheduler import Behaviour


class FailureSpec(BaseModel):
    """The error a failing run reports."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1)
    message: str = Field(min_length=1)


class BehaviourSpec(BaseModel):
    """How later runs of one connection behave."""

    model_config = ConfigDict(extra="forbid")

    sync_duration: float | None = Field(default=None, ge=0.0)
    fail: FailureSpec | None = None
    stuck: bool = False

    def to_behaviour(self) -> Behaviour:
        """As the state stores it."""
        return Behaviour(
            sync_duration=self.sync_duration,
            fail=self.fail.model_dump() if self.fail is not None else None,
            stuck=self.stuck,
        )


class ClockAdvance(BaseModel):
    """How far to move the emulator's clock."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0.0)


def admin_router(emulator: Emulator) -> APIRouter:
    """The ``/_emulator`` routes of one emulator."""
    router = APIRouter(prefix="/_emulator", include_in_schema=False)

    @router.get("/health")
    async def health() -> dict[str, Any]:
        state = emulator.state
        return {
            "status": "ok",
            "connections": len(state.connections),
            "dataObjects": len(state.inventory),
            "tasks": len(state.tasks),
        }

    @router.post("/reset")
    async def reset() -> dict[str, str]:
        emulator.reset()
        return {"status": "reset"}

    @router.get("/faults")
    async def list_faults() -> dict[str, list[dict[str, Any]]]:
        return {"faults": [fault.to_wire() for fault in emulator.faults.all()]}

    @router.post("/faults")
    async def add_fault(spec: FaultSpec) -> dict[str, str]:
        return {"id": emulator.faults.add(spec).id}

    @router.delete("/faults")
    async def clear_faults() -> dict[str, int]:
        return {"cleared": emulator.faults.clear()}

    @router.delete("/faults/{fault_id}")
    async def remove_fault(fault_id: str) -> dict[str, str]:
        if not emulator.faults.remove(fault_id):
            raise ApiError(404, f"Fault '{fault_id}' not found.")
        return {"removed": fault_id}

    @router.get("/counters")
    async def counters() -> dict[str, Any]:
        counted = emulator.counters
        state = emulator.state
        return {
            "requests": dict(counted.requests),
            "by_route": dict(counted.by_route),
            "faults": dict(counted.faults),
            "faults_by_kind": dict(counted.faults_by_kind),
            "tasks_created": dict(state.tasks_created),
            "child_tasks_created": dict(state.child_tasks_created),
            "auth": emulator.auth.counters(),
        }

    @router.get("/tokens")
    async def tokens() -> dict[str, list[str]]:
        # Every token ever issued: the secret canary searches Airflow's traces for them.
        return {"issued": list(emulator.auth.issued)}

    @router.delete("/tokens")
    async def revoke_tokens() -> dict[str, int]:
        return {"revoked": emulator.auth.revoke_all()}

    @router.get("/connections/{connection_key}/behaviour")
    async def get_behaviour(connection_key: str) -> dict[str, Any]:
        check_connection_key(connection_key)
        return emulator.state.behaviour(connection_key).to_wire()

    @router.put("/connections/{connection_key}/behaviour")
    async def set_behaviour(connection_key: str, spec: BehaviourSpec) -> dict[str, Any]:
        check_connection_key(connection_key)
        behaviour = spec.to_behaviour()
        emulator.state.behaviours[connection_key] = behaviour
        return behaviour.to_wire()

    @router.delete("/connections/{connection_key}/behaviour")
    async def clear_behaviour(connection_key: str) -> dict[str, Any]:
        check_connection_key(connection_key)
        emulator.state.behaviours.pop(connection_key, None)
        return emulator.state.behaviour(connection_key).to_wire()

    @router.post("/clock/advance")
    async def advance_clock(body: ClockAdvance) -> dict[str, float]:
        return {"now": emulator.advance_clock(body.seconds)}

    return router
