"""A loopback stand-in for dbt Cloud's run-status endpoint, for ``DbtCloudRunJobTrigger``.

Only what the provider's trigger reads is modelled (facts read from the installed
``apache-airflow-providers-dbt-cloud``): ``GET /api/v2/accounts/{account_id}/runs/{run_id}/`` with
``Authorization: Token <token>``, answering ``{"data": {"status": <int>, ...}}`` where 3 is
running and 10 is success. Runs are made in bulk by the benchmark through
``POST /_stub/runs {"count": N, "duration": seconds}``; each turns to success ``duration`` seconds
after it was made. ``POST /_stub/advance {"seconds": s}`` moves the stub's clock forward (as the
emulator's ``/_emulator/clock/advance`` does), so that runs made long ago end when wanted.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Any

from benchmarks.servers import Receive, Scope, Send, send_json

RUNNING, SUCCESS = 3, 10
_RUN_PATH = re.compile(r"^/api/v2/accounts/(\d+)/runs/(\d+)/?$")


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat()


class DbtCloudStub:
    """The ASGI app: runs kept in memory, status computed from the clock at each request."""

    def __init__(self, token: str) -> None:
        self._authorization = f"Token {token}".encode()
        self._runs: dict[int, tuple[float, float]] = {}  # id -> (created_at, finishes_at)
        self._offset = 0.0  # seconds the clock was advanced

    def _now(self) -> float:
        return time.time() + self._offset

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == "/_stub/runs":
            await send_json(send, 200, self._create_runs(await _read_json(receive)))
            return
        if method == "POST" and path == "/_stub/advance":
            self._offset += float((await _read_json(receive))["seconds"])
            await send_json(send, 200, {"now": self._now()})
            return
        match = _RUN_PATH.match(path)
        if method != "GET" or match is None:
            await send_json(send, 404, {"status": {"code": 404, "is_success": False}})
            return
        if dict(scope["headers"]).get(b"authorization") != self._authorization:
            await send_json(send, 401, {"status": {"code": 401, "is_success": False}})
            return
        account_id, run_id = int(match.group(1)), int(match.group(2))
        if run_id not in self._runs:
            await send_json(send, 404, {"status": {"code": 404, "is_success": False}})
            return
        await send_json(send, 200, self._run_body(account_id, run_id))

    def _create_runs(self, request: dict[str, Any]) -> dict[str, Any]:
        now = self._now()
        duration = float(request["duration"])
        first = len(self._runs) + 1
        created = []
        for run_id in range(first, first + int(request["count"])):
            self._runs[run_id] = (now, now + duration)
            created.append({"id": run_id, "finishes_at": now + duration})
        return {"runs": created}

    def _run_body(self, account_id: int, run_id: int) -> dict[str, Any]:
        created_at, finishes_at = self._runs[run_id]
        now = self._now()
        done = now >= finishes_at
        return {
            "status": {"code": 200, "is_success": True, "user_message": "Success!"},
            "data": {
                "id": run_id,
                "account_id": account_id,
                "job_definition_id": 1,
                "trigger_id": run_id,
                "status": SUCCESS if done else RUNNING,
                "status_humanized": "Success" if done else "Running",
                "in_progress": not done,
                "is_complete": done,
                "is_success": done,
                "is_error": False,
                "is_cancelled": False,
                "created_at": _iso(created_at),
                "updated_at": _iso(min(now, finishes_at)),
                "started_at": _iso(created_at),
                "finished_at": _iso(finishes_at) if done else None,
                "href": f"https://cloud.getdbt.com/deploy/{account_id}/runs/{run_id}/",
            },
        }


async def _read_json(receive: Receive) -> dict[str, Any]:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    result: dict[str, Any] = json.loads(body or b"{}")
    return result
