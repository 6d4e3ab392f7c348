"""A throw-away PostgreSQL server on 127.0.0.1 for the multi-process Airflow tests.

Airflow refuses SQLite for anything but the SequentialExecutor-style single process, so the
reliability tests run a real PostgreSQL: the Debian package's binaries, a fresh cluster in a
temporary directory, a free loopback port, and a Unix socket inside that directory (never the
system one). `initdb` refuses to run as root, so as root the server runs as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _wait_accepting(host: str, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"PostgreSQL did not accept connections on {host}:{port}")


@contextlib.contextmanager
def running_postgres(database: str = "airflow") -> Iterator[PostgresServer]:
    """Start a fresh PostgreSQL cluster on 127.0.0.1, create `database`, stop it all at the end."""
    import psycopg2  # the test dependency that Airflow uses too

    bin_dir = ensure_postgres_installed()
    # Not under pytest's tmp_path: that is mode 0700 and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="immuta-reliability-pg-"))
    data_dir = root / "data"
    socket_dir = root / "socket"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
        shutil.chown(socket_dir, user="postgres")
    port = free_port()
    server = PostgresServer(
        host="127.0.0.1", port=port, user="postgres", database=database, root=root
    )
    started = False
    try:
        subprocess.run(
            _as_server_user(
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
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        server_options = " ".join(
            [
                "-h 127.0.0.1",
                f"-p {port}",
                f"-k {socket_dir}",
                "-c max_connections=300",
                # Durability is irrelevant for a test database; speed on 2 cores is not.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data_dir),
                    "-o",
                    server_options,
                    "-l",
                    str(server.log_file),
                    "-w",
                    "-t",
                    str(SERVER_START_TIMEOUT_SECONDS),
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=SERVER_START_TIMEOUT_SECONDS + 10,
        )
        started = True
        _wait_accepting(server.host, port, time.monotonic() + SERVER_START_TIMEOUT_SECONDS)
        connection = psycopg2.connect(
            host=server.host, port=port, user="postgres", dbname="postgres"
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{database}"')
        finally:
            connection.close()
        yield server
    finally:
        if started:
            subprocess.run(
                _as_server_user(
                    [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop"]
                ),
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)
