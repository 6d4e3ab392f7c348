"""A throw-away PostgreSQL server on 127.0.0.1 for the multi-process Airflow tests.

Airflow refuses SQLite for anything but the SequentialExecutor-style single process, so the
reliability tests run a real PostgreSQL: the Debian package's binaries, a fresh cluster in a
temporary directory, a free loopback port, and a Unix socket inside that directory (never the
system one). `initdb` refuses to run as root, so as root the server runs as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APT_TIMEOUT_SECONDS = 900
SERVER_START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _find_bin_dir() -> Path | None:
    # Prefer Debian's versioned directories: /usr/bin has only wrappers without initdb.
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: (
            int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


def ensure_postgres_installed() -> Path:
    """Return the directory holding initdb/pg_ctl, installing Debian's `postgresql` if needed.

    Idempotent: apt-get runs only when the binaries are missing, and only as root.
    """
    bin_dir = _find_bin_dir()
    if bin_dir is not None:
        return bin_dir
    if os.geteuid() != 0:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) are missing and this is not root: "
            "install the Debian package `postgresql` first"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env, timeout=APT_TIMEOUT_SECONDS)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
        check=True,
        env=env,
        timeout=APT_TIMEOUT_SECONDS,
    )
    bin_dir = _find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("installed `postgresql` but found no initdb under /usr/lib/postgresql")
    return bin_dir


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens and how to reach the database made for Airflow."""

    host: str
    port: int
    user: str
    database: str
    root: Path

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.database}"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"


def _server_user_ids() -> tuple[int, int] | None:
    """(uid, gid) of `postgres` when running as root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _become_server_user(ids: tuple[int, int] | None) -> Callable[[], None]:
    def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
        if ids is not None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
        # After the uid change (which clears it): die with the pytest process, so that an
        # interrupted run leaves no server behind.
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)

    return preexec


@contextlib.contextmanager
def running_postgres(database: str = "airflow") -> Iterator[PostgresServer]:
    """Start a fresh PostgreSQL cluster on 127.0.0.1, create `database`, stop it all at the end.

    The server is a direct child process (no pg_ctl daemon): it is stopped at the end and it dies
    with the test process if that is killed.
    """
    bin_dir = ensure_postgres_installed()
    ids = _server_user_ids()
    # Not under pytest's tmp_path: that is mode 0700 and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="immuta-reliability-pg-"))
    data_dir = root / "data"
    socket_dir = root / "socket"
    socket_dir.mkdir()
    if ids is not None:
        os.chown(root, *ids)
        os.chown(socket_dir, *ids)
    port = free_port()
    server = PostgresServer(
        host="127.0.0.1", port=port, user="postgres", database=database, root=root
    )
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            preexec_fn=_become_server_user(ids),
            check=True,
            capture_output=True,
            timeout=120,
        )
        with server.log_file.open("ab") as log:
            process = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data_dir),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-k",
                    str(socket_dir),
                    "-c",
                    "max_connections=300",
                    # Durability is irrelevant for a test database; speed on 2 cores is not.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_become_server_user(ids),
            )
        connection = _connect_when_ready(server, process)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{database}"')
        finally:
            connection.close()
        yield server
    finally:
        if process is not None:
            process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _connect_when_ready(server: PostgresServer, process: subprocess.Popen[bytes]) -> Any:
    import psycopg2  # the driver Airflow uses here too

    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"PostgreSQL exited with {process.returncode}:\n"
                + server.log_file.read_text(errors="replace")[-3000:]
            )
        try:
            return psycopg2.connect(
                host=server.host,
                port=server.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=5,
            )
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
