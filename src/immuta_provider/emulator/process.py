"""Start a real emulator process and talk to its admin API (for pytest fixtures and benchmarks).

Needs only httpx: a benchmark or an integration test can import this without FastAPI installed in
its own process (the child process needs the ``[emulator]`` extra).

    with run_emulator(seed="demo", sync_duration=1.0) as emulator:
        client = ImmutaClient(emulator.url, emulator.api_key)
        emulator.admin.add_fault(method="GET", path="/runs/", status=503, count=2)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

_URL_LINE = re.compile(r"listening on (\S+)")
_KEY_LINE = re.compile(r"^API key: (\S+)", re.MULTILINE)


class EmulatorStartError(RuntimeError):
    """The emulator process exited or did not become ready in time."""


class EmulatorAdmin(httpx.Client):
    """An httpx client on the admin API (``<url>/_emulator/``) with a helper per admin call.

    ``admin.get("counters")`` works like any httpx client; ``admin.counters()`` does the same and
    returns the JSON.
    """

    def __init__(
        self, url: str, *, verify: bool | str | ssl.SSLContext = True, timeout: float = 30.0
    ) -> None:
        if isinstance(verify, str):  # a CA bundle, e.g. the emulator's self-signed certificate
            verify = ssl.create_default_context(cafile=verify)
        super().__init__(base_url=f"{url.rstrip('/')}/_emulator/", verify=verify, timeout=timeout)

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = self.request(method, path, json=json)
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "connections": n, "dataObjects": n, "tasks": n}``."""
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def reset(self) -> None:
        """Back to the start-up seed; clears faults, behaviours, counters and clock offset."""
        self._call("POST", "reset")

    def add_fault(self, **spec: Any) -> str:
        """Add a fault (see docs/emulator.md for the fields) and return its id."""
        fault_id: str = self._call("POST", "faults", json=spec)["id"]
        return fault_id

    def faults(self) -> list[dict[str, Any]]:
        """Every registered fault with ``remaining`` and ``fired``."""
        faults: list[dict[str, Any]] = self._call("GET", "faults")["faults"]
        return faults

    def remove_fault(self, fault_id: str) -> None:
        """Remove one fault."""
        self._call("DELETE", f"faults/{fault_id}")

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._call("DELETE", "faults")

    def counters(self) -> dict[str, Any]:
        """``requests``, ``by_route``, ``faults``, ``faults_by_kind``, ``tasks_created``,
        ``child_tasks_created``, ``auth`` (``exchanges``, ``exchanges_refused``,
        ``unauthorized`` by cause, ``mode``, ``token_ttl``)."""
        counters: dict[str, Any] = self._call("GET", "counters")
        return counters

    def set_behaviour(self, connection_key: str, **behaviour: Any) -> dict[str, Any]:
        """Set ``sync_duration``, ``fail`` (``{"code", "message"}``) and/or ``stuck`` for the
        connection's later runs."""
        result: dict[str, Any] = self._call(
            "PUT", f"connections/{connection_key}/behaviour", json=behaviour
        )
        return result

    def clear_behaviour(self, connection_key: str) -> None:
        """Back to the default behaviour for that connection."""
        self._call("DELETE", f"connections/{connection_key}/behaviour")

    def tokens(self) -> list[str]:
        """Every token the emulator issued (for leak scans)."""
        issued: list[str] = self._call("GET", "tokens")["issued"]
        return issued

    def revoke_tokens(self) -> int:
        """Forget every issued token (the next call with one gets 401); returns how many."""
        revoked: int = self._call("DELETE", "tokens")["revoked"]
        return revoked

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator's clock forward (runs progress as if that time had passed)."""
        now: float = self._call("POST", "clock/advance", json={"seconds": seconds})["now"]
        return now


class RunningEmulator:
    """A started emulator process: its URL, API key, admin client, output and access log."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        url: str,
        api_key: str,
        log_path: Path,
        access_log: Path | None = None,
        **kw: Any,
    ) -> None:
        self.process = process
        self.url = url
        self.api_key = api_key
        self.log_path = log_path
        self.access_log = access_log
        self.admin = EmulatorAdmin(url, **kw)

    @property
    def returncode(self) -> int | None:
        """The exit status once stopped, else None."""
        return self.process.poll()

    def log(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the status."""
        self.admin.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


def emulator_command(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: str = "demo",
    seed_objects: int = 0,
    sync_duration: float | None = None,
    api_keys: Sequence[str] = (),
    auth: str | None = None,
    token_ttl: float | None = None,
    state_file: str | Path | None = None,
    faults_file: str | Path | None = None,
    access_log: str | Path | None = None,
    ssl_certfile: str | Path | None = None,
    ssl_keyfile: str | Path | None = None,
    dialect: str | Path | None = None,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """The command line that starts an emulator with these settings."""
    command = [python, "-m", "immuta_provider.emulator", "--host", host, "--port", str(port)]
    command += ["--seed", seed]
    if seed_objects:
        command += ["--seed-objects", str(seed_objects)]
    if sync_duration is not None:
        command += ["--sync-duration", str(sync_duration)]
    for key in api_keys:
        command += ["--api-key", key]
    if auth is not None:
        command += ["--auth", auth]
    if token_ttl is not None:
        command += ["--token-ttl", str(token_ttl)]
    for flag, value in (
        ("--state-file", state_file),
        ("--faults", faults_file),
        ("--access-log", access_log),
        ("--ssl-certfile", ssl_certfile),
        ("--ssl-keyfile", ssl_keyfile),
        ("--dialect", dialect),
    ):
        if value is not None:
            command += [flag, str(value)]
    return command + list(extra_args)


def _child_env(env: dict[str, str] | None) -> dict[str, str]:
    """The parent's environment, with this package importable even when not installed."""
    import immuta_provider

    child = dict(os.environ if env is None else env)
    source_root = str(Path(immuta_provider.__file__).resolve().parent.parent)
    paths = [source_root, *filter(None, child.get("PYTHONPATH", "").split(os.pathsep))]
    child["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    child.setdefault("PYTHONUNBUFFERED", "1")
    return child


def start_emulator(
    *,
    startup_timeout: float = 60.0,
    verify: bool | str | ssl.SSLContext | None = None,
    env: dict[str, str] | None = None,
    log_dir: str | Path | None = None,
    **settings: Any,
) -> RunningEmulator:
    """Start an emulator process and wait until it answers; the caller must ``stop()`` it.

    ``settings`` are those of ``emulator_command``. ``verify`` is for the admin client over
    HTTPS (default: the certificate file itself, right for a self-signed certificate).
    """
    command = emulator_command(**settings)
    directory = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="emu-"))
    log_path = directory / "emulator.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our own module, no shell
            command, stdout=log_file, stderr=subprocess.STDOUT, env=_child_env(env)
        )
    if verify is None:
        certfile = settings.get("ssl_certfile")
        verify = str(certfile) if certfile is not None else True
    deadline = time.monotonic() + startup_timeout
    url = api_key = None
    try:
        while url is None or api_key is None:
            text = log_path.read_text(errors="replace")
            url_match, key_match = _URL_LINE.search(text), _KEY_LINE.search(text)
            if url_match and key_match:
                url, api_key = url_match.group(1), key_match.group(1)
                break
            if process.poll() is not None:
                raise EmulatorStartError(
                    f"emulator exited with {process.returncode}:\n{text[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise EmulatorStartError(f"emulator did not start in {startup_timeout} s:\n{text}")
            time.sleep(0.02)
        access_log = settings.get("access_log")
        running = RunningEmulator(
            process,
            url,
            api_key,
            log_path,
            Path(access_log) if access_log is not None else None,
            verify=verify,
        )
        _wait_healthy(running, deadline)
        return running
    except BaseException:
        process.kill()
        process.wait()
        raise


def _wait_healthy(running: RunningEmulator, deadline: float) -> None:
    while True:
        try:
            running.admin.health()
            return
        except httpx.HTTPError:
            if running.process.poll() is not None or time.monotonic() > deadline:
                running.stop()
                raise EmulatorStartError(
                    f"emulator never became healthy:\n{running.log()}"
                ) from None
            time.sleep(0.02)


@contextmanager
def run_emulator(**options: Any) -> Iterator[RunningEmulator]:
    """Start an emulator (options of ``start_emulator``), yield it, stop it (SIGTERM, then kill).

    Without ``log_dir``, the process output goes to a temporary directory removed at the end.
    """
    running = start_emulator(**options)
    try:
        yield running
    finally:
        running.stop()
        if options.get("log_dir") is None:  # our own temporary directory
            shutil.rmtree(running.log_path.parent, ignore_errors=True)
