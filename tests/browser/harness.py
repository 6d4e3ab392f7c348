"""The browser tests' harness: a real ``airflow api-server`` and Debian's headless Chromium.

The API server runs from this repository's ``.venv`` (Airflow 3.3 with this provider installed
editable), with its own ``AIRFLOW_HOME`` in a temporary directory, SQLite, the simple auth
manager with one known admin user, and ``[core] test_connection = Enabled``. It listens on
127.0.0.1 on a free port and is stopped (its whole process group) when the module's tests end.

Chromium is Debian's ``/usr/bin/chromium``, installed by ``scripts/install-chromium.sh``
(``make browser-deps``). Playwright drives it through ``executable_path``; Playwright's own
browser download is never used. Where Chromium is missing, the tests are skipped with a reason
that says so; everything else that goes wrong is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-chromium.sh"
# Flags that let Chromium start as root in a container with no network beyond loopback: without
# the background-networking ones it keeps trying (and failing) to reach Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_USER = "admin"
ADMIN_PASSWORD = "browser-test-admin-password"  # a throw-away local test user
MIGRATE_TIMEOUT_SECONDS = 120
SERVER_START_TIMEOUT_SECONDS = 90
SERVER_STOP_TIMEOUT_SECONDS = 15


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _airflow_executable() -> str:
    # The interpreter running pytest is the .venv one; its `airflow` script sits beside it.
    candidate = Path(sys.executable).with_name("airflow")
    if not candidate.exists():
        raise RuntimeError(f"`airflow` not found next to {sys.executable}; run `make install`")
    return str(candidate)


@dataclass(frozen=True)
class AirflowApiServer:
    """A running ``airflow api-server``: where it is and how to log in."""

    url: str
    home: Path
    username: str
    password: str
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        """The end of the server's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


def _airflow_environment(home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # An outer Airflow configuration or connection must not leak into this server.
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    passwords_file = home / "simple_auth_manager_passwords.json"
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    return env


def _wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], server: AirflowApiServer
) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"airflow api-server exited with {process.returncode} before it answered:\n"
                f"{server.log_tail()}"
            )
        try:
            response = httpx.get(f"{url}/api/v2/monitor/health", timeout=2.0)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}"
        except httpx.TransportError as exc:
            last_error = repr(exc)
        time.sleep(0.3)
    raise RuntimeError(
        f"airflow api-server did not answer within {SERVER_START_TIMEOUT_SECONDS}s "
        f"({last_error}):\n{server.log_tail()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and every worker it forked (they share its process group)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=SERVER_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SERVER_STOP_TIMEOUT_SECONDS)


@contextlib.contextmanager
def run_airflow_api_server(home: Path) -> Iterator[AirflowApiServer]:
    """Migrate a fresh metadata DB in ``home`` and run ``airflow api-server`` until exit."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    env = _airflow_environment(home)
    # A passwords file written before start-up fixes the admin's password (otherwise the simple
    # auth manager generates one and prints it).
    Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).write_text(
        json.dumps({ADMIN_USER: ADMIN_PASSWORD})
    )
    airflow = _airflow_executable()
    migrate = subprocess.run(
        [airflow, "db", "migrate"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT_SECONDS,
        check=False,
    )
    if migrate.returncode != 0:
        raise RuntimeError(
            f"`airflow db migrate` failed ({migrate.returncode}):\n"
            f"{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}"
        )

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = home / "api-server.log"
    server = AirflowApiServer(
        url=url, home=home, username=ADMIN_USER, password=ADMIN_PASSWORD, log_path=log_path
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            # Only the core API and UI; one worker is plenty for one browser.
            [
                airflow,
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--apps",
                "core",
                "--workers",
                "1",
            ],
            env=env,
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_until_healthy(url, process, server)
            yield server
        finally:
            _stop(process)
