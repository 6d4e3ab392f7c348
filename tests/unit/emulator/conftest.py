"""In-process emulator fixtures: the ASGI app behind FastAPI's TestClient, with a fake clock."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from immuta_provider.emulator.app import create_app
from immuta_provider.emulator.core import Emulator, EmulatorConfig

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; plain httpx is what this project pins.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API_KEY = "immuta-demo-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
START = 1_800_000_000.0  # 2027-01-15, a fixed "now"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """A TestClient with the API key set, plus the emulator and clock behind it."""

    def __init__(self, client: TestClient, emulator: Emulator, clock: FakeClock) -> None:
        self.client = client
        self.emulator = emulator
        self.clock = clock

    def request(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**AUTH, **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        """The JSON body of a request that must answer ``status``."""
        response = self.request(method, path, **kw)
        assert response.status_code == status, response.text
        return response.json()

    # Shortcuts used across the tests.
    def start_sync(self, key: str = "snowflake-prod") -> tuple[str, str]:
        task = self.ok("POST", f"/api/connections/{key}/tasks", json={"type": "DATA_OBJECT_SYNC"})
        runs = self.ok("GET", f"/api/connections/{key}/tasks/{task['taskId']}/runs")["runs"]
        return task["taskId"], runs[0]["runId"]

    def run(self, key: str, task_id: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok(
            "GET", f"/api/connections/{key}/tasks/{task_id}/runs/{run_id}"
        )
        return result

    def search(self, key: str, **attributes: Any) -> list[dict[str, Any]]:
        body = {"connectionKey": key, "attributes": attributes, "page": {"limit": 100}}
        result: list[dict[str, Any]] = self.ok(
            "POST", "/api/connections/dataObjects/_search", json=body
        )["dataObjects"]
        return result


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_api(clock: FakeClock) -> Iterator[Callable[..., Api]]:
    """Build an in-process emulator with ``EmulatorConfig`` overrides (sync_duration 10 s)."""
    clients: list[TestClient] = []
    emulators: list[Emulator] = []

    def make(**config: Any) -> Api:
        config.setdefault("sync_duration", 10.0)
        emulator = Emulator(EmulatorConfig(**config), clock=clock)
        client = TestClient(create_app(emulator=emulator))
        clients.append(client)
        emulators.append(emulator)
        return Api(client, emulator, clock)

    yield make
    for client in clients:
        client.close()
    for emulator in emulators:
        emulator.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """The demo seed, 10 s syncs, fake clock."""
    return make_api()
