"""Session set-up of the version suite: one migrated Airflow metadata database (SQLite)."""

from __future__ import annotations

import pytest

from tests.integration.airflow_env import AirflowEnvironment


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnvironment:
    """Airflow homes (SQLite, no examples): migrated once, copied for each DAG run."""
    environment = AirflowEnvironment(tmp_path_factory.mktemp("airflow"))
    environment.migrate()
    return environment
