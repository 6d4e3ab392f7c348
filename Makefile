# Two entry points a new machine needs: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
LOCK := requirements/airflow-3.3.txt
LINT_PATHS := $(wildcard src tests example_dags benchmarks scripts)

.PHONY: install test lint typecheck unit demo clean docs browser-deps

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

test: install lint typecheck docs browser-deps
	$(BIN)/pytest -q

demo: install
	$(BIN)/python -m scripts.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
