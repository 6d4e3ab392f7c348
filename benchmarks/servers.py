"""Servers the benchmarks talk to, each in its own process, and the counters they keep.

``python -m benchmarks.servers emulator [immuta-emulator options]`` runs the emulator's own CLI
(so every option means what it means there) under uvicorn with two bench-side additions, put in
by wrapping ``uvicorn.Config.load`` rather than by editing emulator code:

* the HTTP protocol class counts the connections it is handed (over TLS, asyncio hands a
  connection to the protocol once its handshake has completed, so this counts TLS handshakes);
* an ASGI wrapper counts requests per route, keeps the times of every GET per path, and answers
  ``GET /_bench/stats``, ``GET /_bench/polls`` and ``POST /_bench/reset``.

``python -m benchmarks.servers dbt-stub`` runs the same machinery around a small stub of dbt
Cloud's run-status endpoint (see :mod:`benchmarks.dbt_stub`).

:class:`ServerProcess` starts either one from the benchmark process and always stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Ids in paths are replaced so that requests are counted per route, not per resource.
_ID_PATTERN = re.compile(r"/(?:[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|\d+)(?=/|$)")


class _Stats:
    """Counters of one server process (module-level singleton, the server is single-process)."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: Counter[str] = Counter()
        self.started = time.time()
        # GET path -> wall-clock times it was asked for (served at /_bench/polls), for the
        # real-triggerer section's first-poll and poll-rate figures.
        self.polls: dict[str, list[float]] = {}

    def reset(self) -> None:
        self.connections = 0
        self.requests.clear()
        self.polls.clear()
        self.started = time.time()

    def snapshot(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "polled_paths": len(self.polls),
            "since": self.started,
            "pid": os.getpid(),
        }


STATS = _Stats()


def route_of(method: str, path: str) -> str:
    """``GET /api/connections/x/tasks/<uuid>`` -> ``GET /api/connections/x/tasks/{id}``."""
    return f"{method} {_ID_PATTERN.sub('/{id}', path)}"


def counting_protocol(base: type[Any]) -> type[Any]:
    """A subclass of uvicorn's HTTP protocol class that counts accepted connections."""

    def connection_made(self: Any, transport: Any) -> None:
        STATS.connections += 1
        base.connection_made(self, transport)

    return type(f"Counting{base.__name__}", (base,), {"connection_made": connection_made})


def stats_middleware(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app: count requests per route, serve ``/_bench/stats`` and ``/_bench/reset``."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_bench/"):
            if path == "/_bench/reset":
                STATS.reset()
            if path == "/_bench/polls":
                await send_json(send, 200, STATS.polls)
                return
            await send_json(send, 200, STATS.snapshot())
            return
        STATS.requests[route_of(scope["method"], path)] += 1
        if scope["method"] == "GET":
            STATS.polls.setdefault(path, []).append(time.time())
        await app(scope, receive, send)

    return wrapped


async def send_json(send: Send, status: int, payload: Any) -> None:
    """Send one complete JSON response."""
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_uvicorn_instrumentation() -> None:
    """Make every ``uvicorn.Config`` loaded from now on count connections and requests."""
    from uvicorn.config import Config

    original_load = Config.load

    def load(self: Config) -> None:
        original_load(self)
        self.http_protocol_class = counting_protocol(self.http_protocol_class)
        self.loaded_app = stats_middleware(self.loaded_app)

    Config.load = load  # type: ignore[method-assign]


def _serve_emulator(emulator_args: list[str]) -> None:
    install_uvicorn_instrumentation()
    from immuta_provider.emulator.cli import main as emulator_main

    sys.argv = ["immuta-emulator", *emulator_args]
    result = emulator_main()
    raise SystemExit(result if isinstance(result, int) else 0)


def _serve_dbt_stub(args: argparse.Namespace) -> None:
    install_uvicorn_instrumentation()
    import uvicorn

    from benchmarks.dbt_stub import DbtCloudStub

    stub = DbtCloudStub(token=args.token)
    print(f"dbt Cloud stub on https://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        stub,
        host=args.host,
        port=args.port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``emulator ARGS...`` or ``dbt-stub --port N ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "emulator":
        _serve_emulator(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers dbt-stub")
    parser.add_argument("kind", choices=["dbt-stub"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ssl-certfile", required=True)
    parser.add_argument("--ssl-keyfile", required=True)
    parser.add_argument("--token", default="dbt-bench-token")
    _serve_dbt_stub(parser.parse_args(argv))


# ---------------------------------------------------------------- the benchmark process's side


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server subprocess: started on a free loopback port, stopped on exit, whatever happens.

    ``stats()`` / ``reset_stats()`` read the bench-side counters described above.
    """

    def __init__(
        self,
        python: str,
        args: Sequence[str],
        *,
        port: int,
        scheme: str,
        log_path: Path,
        ca_cert: Path | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.port = port
        self._command = [python, "-m", "benchmarks.servers", *args]
        self._log_path = log_path
        self._ca_cert = ca_cert
        self._env = env
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._http: Any = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> ServerProcess:
        import httpx

        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self._log_path.open("wb")
        env = {**os.environ, **(self._env or {})}
        self._process = subprocess.Popen(
            self._command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=_repo_root()
        )
        log.close()
        verify: Any = str(self._ca_cert) if self._ca_cert else True
        self._http = httpx.Client(base_url=self.url, verify=verify, timeout=10.0)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        import httpx

        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self._process.returncode}; see {self._log_path}:\n"
                    + self._log_path.read_text(errors="replace")[-3000:]
                )
            try:
                if self._http.get("/_bench/stats").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {self._start_timeout}s; see {self._log_path}")

    def stats(self) -> dict[str, Any]:
        """The server's counters since the last reset."""
        response = self._http.get("/_bench/stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """An ``httpx.Response`` from the server (admin calls)."""
        return self._http.request(method, path, **kwargs)

    def reset_stats(self) -> None:
        """Zero the counters (before a measured phase)."""
        self._http.post("/_bench/reset").raise_for_status()

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


if __name__ == "__main__":
    main()
