# Two entry points a new machine needs: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
LOCK := requirements/airflow-3.3.txt
AF2_VENV := .venv-af2
AF3_LINES := 3.0 3.1 3.2
LINT_PATHS := $(wildcard src tests example_dags benchmarks scripts)

.PHONY: install test lint typecheck unit demo clean docs browser-deps bench test-airflow-2.11 \
	test-3.3-dags test-3.3-rest test-3.3-alone test-airflow-3.0-3.2

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)

$(VENV)/.installed: $(BIN)/uv $(LOCK) pyproject.toml
	$(BIN)/uv pip install -q --python $(BIN)/python -r $(LOCK)
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy --strict src

unit: install
	$(BIN)/pytest tests/unit -q

# The docs site (mkdocs.yml) with warnings as errors; its pins are compiled against $(LOCK).
$(VENV)/.docs-installed: $(VENV)/.installed requirements/docs.txt
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements/docs.txt
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Debian's Chromium for tests/browser; where it cannot be installed those tests skip, saying why.
browser-deps:
	bash scripts/install-chromium.sh || echo "WARNING: Chromium not installed; tests/browser will be SKIPPED"

# The checks, then four test streams at once (make -j4), then the scenarios that kill Airflow
# processes on their own. Most of the suite waits on Airflow child processes and the emulator's
# clock, so one stream at a time left a 2-core machine half idle (41 min in a row from a fresh
# clone). The process-kill scenarios time a real cluster against 30-40 s deadlines: under the
# streams' load they lost their margin, so they run alone. Every venv is installed first.
TEST_STREAMS := test-3.3-dags test-3.3-rest test-airflow-2.11 test-airflow-3.0-3.2
LINE_VENVS := $(AF2_VENV)/.installed $(foreach line,$(AF3_LINES),.venv-af$(line)/.installed)

test: install lint typecheck docs browser-deps $(LINE_VENVS)
	$(MAKE) -j4 --output-sync=target $(TEST_STREAMS)
	$(MAKE) test-3.3-alone

# Airflow 3.3: the whole suite, in three parts: the modules that run DAGs in Airflow child
# processes, the process-kill scenarios, and everything else (--ignore, so a new test folder is
# never left out).
STREAM_DAGS := tests/integration tests/browser tests/packaging
STREAM_ALONE := tests/reliability/test_multiprocess_airflow.py

test-3.3-dags: install
	$(BIN)/pytest -q -p no:cacheprovider --durations=10 $(STREAM_DAGS)

test-3.3-rest: install
	$(BIN)/pytest -q -p no:cacheprovider --durations=10 \
		$(addprefix --ignore=,$(STREAM_DAGS) $(STREAM_ALONE)) tests

test-3.3-alone: install
	$(BIN)/pytest -q -p no:cacheprovider $(STREAM_ALONE)

test-airflow-3.0-3.2:
	$(MAKE) $(addprefix test-airflow-,$(AF3_LINES))

# Airflow 2.11 (docs/installation.md): the Airflow unit tests and the integration suite again, in
# a venv of their own from requirements/airflow-2.11.txt (none of them needs the 3.3-only pins).
AF2_LOCK := requirements/airflow-2.11.txt

$(AF2_VENV)/.installed: $(BIN)/uv $(AF2_LOCK) pyproject.toml
	$(BIN)/uv venv -q --allow-existing --python $(PYTHON) $(AF2_VENV)
	$(BIN)/uv pip install -q --python $(AF2_VENV)/bin/python -r $(AF2_LOCK)
	$(BIN)/uv pip install -q --python $(AF2_VENV)/bin/python --no-deps -e .
	touch $@

test-airflow-2.11: $(AF2_VENV)/.installed
	$(AF2_VENV)/bin/pytest -q -p no:cacheprovider tests/unit/airflow tests/integration tests/versions

# Airflow 3.0, 3.1 and 3.2 (docs/installation.md): the Airflow unit tests and the version suite
# (tests/versions) in a venv each, .venv-af3.N from requirements/airflow-3.N.txt.
.PRECIOUS: .venv-af%/.installed

.venv-af%/.installed: $(BIN)/uv requirements/airflow-%.txt pyproject.toml
	$(BIN)/uv venv -q --allow-existing --python $(PYTHON) .venv-af$*
	$(BIN)/uv pip install -q --python .venv-af$*/bin/python -r requirements/airflow-$*.txt
	$(BIN)/uv pip install -q --python .venv-af$*/bin/python --no-deps -e .
	touch $@

test-airflow-%: .venv-af%/.installed
	.venv-af$*/bin/pytest -q -p no:cacheprovider tests/unit/airflow tests/versions

# Benchmarks (benchmarks/README.md): a separate venv with the peer providers we compare against,
# so that `make test` never depends on them. Prints a table, writes benchmarks/results/latest.json.
BENCH_VENV := .venv-bench
BENCH_LOCK := requirements/bench.txt

$(BENCH_VENV)/.installed: $(BIN)/uv $(BENCH_LOCK) pyproject.toml
	$(BIN)/uv venv -q --allow-existing --python $(PYTHON) $(BENCH_VENV)
	$(BIN)/uv pip install -q --python $(BENCH_VENV)/bin/python -r $(BENCH_LOCK)
	$(BIN)/uv pip install -q --python $(BENCH_VENV)/bin/python --no-deps -e .
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m benchmarks $(BENCH_ARGS)

demo: install
	$(BIN)/python -m scripts.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
