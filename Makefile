# Two commands on a fresh clone: `make demo` and `make test`.
# Each creates the local virtualenv (.venv) and the local npm folder (.npm) it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo` needs only the package and its embedded engine, not the development tools.
DEMO_STAMP := $(VENV)/.demo-installed
DYNALITE := .npm/node_modules/.bin/dynalite
DYNALITE_VERSION := 4.0.0

.PHONY: install demo test check lint format typecheck unit bench docs docs-serve clean generate

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "error: Python 3.11+ is needed as $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[engine]'
	@touch $@

$(DYNALITE):
	@command -v npm >/dev/null 2>&1 \
		|| { echo "error: node and npm are needed for the dynalite engine tests (apt-get install nodejs npm)"; exit 1; }
	npm install --prefix .npm --no-audit --no-fund --silent dynalite@$(DYNALITE_VERSION)

install: $(STAMP) $(DYNALITE)

demo: $(DEMO_STAMP)
	$(BIN)/portchops demo

test: install lint typecheck docs unit

unit: install
	$(BIN)/pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

# The sync API (repository.py, repositories.py, transactions.py, ops/paging.py,
# entities/collection.py) is generated
# from the async one; tests/test_generated.py fails when it is stale.
generate: $(STAMP)
	$(BIN)/python tools/unasync.py

bench: install
	$(BIN)/python -m benchmarks

docs: $(STAMP)
	@if [ -f mkdocs.yml ]; then NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet; else echo "docs: no mkdocs.yml yet"; fi

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve -a 127.0.0.1:8000

clean:
	rm -rf $(VENV) .npm site .mypy_cache .ruff_cache .pytest_cache .hypothesis
