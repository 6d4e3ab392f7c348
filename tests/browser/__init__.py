"""Browser tests: Airflow's UI in headless Chromium (see harness.py)."""
