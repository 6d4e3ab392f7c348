"""Helpers shared by the test suites (unit, integration, reliability).

* :mod:`tests.support.airflow_versions`: what differs between Airflow 3.x and 2.11.
* :mod:`tests.support.airflow_homes`: throw-away ``AIRFLOW_HOME`` directories for Airflow child
  processes (one migrated template, a copy per run) and their environment.
* :mod:`tests.support.connections`: an ``immuta`` Airflow connection as users define it.

Nothing here imports Airflow at module level, so unit tests may import any of it.
"""
