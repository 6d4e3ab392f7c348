"""Release tests: build, twine check, install the wheel into a clean Airflow."""
