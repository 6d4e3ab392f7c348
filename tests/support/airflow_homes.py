"""Throw-away Airflow installations for tests that run Airflow in child processes.

The metadata database is migrated once into a template ``AIRFLOW_HOME`` (SQLite, no example
DAGs). Each run gets its own copy of that home, so several ``dag.test()`` runs can go at the same
time (SQLite does not like concurrent writers), and each child gets its own, explicit
environment: the pytest process's Airflow configuration (or lack of one) never leaks in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")


class AirflowHomes:
    """Airflow homes under ``root``: one migrated template and a copy per run.

    :param root: A scratch directory for this session.
    :param settings: Airflow settings (environment variables) every child gets.
    :param dags_folder: The DAGS_FOLDER of a child that is not given one (default: its home's
        ``dags``).
    """

    def __init__(
        self,
        root: Path,
        *,
        settings: Mapping[str, str] | None = None,
        dags_folder: Path | None = None,
    ) -> None:
        self.root = root
        self.template = root / "home-template"
        self.settings = dict(settings or {})
        self.dags_folder = dags_folder
        self._lock = threading.Lock()
        self._migrated = False
        self._runs = 0

    def env(
        self,
        home: Path,
        *,
        dags_folder: Path | None = None,
        connections: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The complete environment of an Airflow child process using ``home``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or self.dags_folder or home / "dags"),
                **self.settings,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")])
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for conn_id, value in (connections or {}).items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        env.update(extra or {})
        return env

    def migrate(self) -> float:
        """``airflow db migrate`` into the template home, once; returns the seconds it took
        (0 when it was done already)."""
        with self._lock:
            if self._migrated:
                return 0.0
            self.template.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            done = subprocess.run(
                [AIRFLOW, "db", "migrate"],
                env=self.env(self.template),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"airflow db migrate failed:\n{done.stdout}\n{done.stderr}")
            self._migrated = True
            return time.monotonic() - started

    def new_home(self, name: str) -> Path:
        """A fresh copy of the migrated template home (migrating first if needed)."""
        self.migrate()
        with self._lock:
            self._runs += 1
            home = self.root / f"{name}-{self._runs}"
        shutil.copytree(self.template, home)
        return home


def wait_or_kill(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for ``process`` up to ``timeout`` seconds, killing it then; its return code."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return process.returncode
