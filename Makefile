# Two commands that work on a fresh machine:
#   make up    -> environment + the whole service (Redis started here, SQLite), API on 127.0.0.1:8000
#   make test  -> environment + the full test suite
VENV ?= .venv
PYTHON ?= python3
# The CPU wheel on machines without a GPU; on a CUDA host, e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: up test test-fast lint soak install install-dev bench clean
SOAK_MINUTES ?= 30
SOAK_SEED ?= 1

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml client/pyproject.toml
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ./client
	$(PY) -m pip install -q -e '.[worker,postgres,redis-server]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

up: $(VENV)/.installed
	$(VENV)/bin/rerankq up

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# The in-process tier: no Redis, no worker, no model; an answer in well under a minute.
test-fast: $(VENV)/.installed-dev
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Randomized chaos soak on its own stack (PostgreSQL, Redis AOF, 2 workers, 2 APIs); CI runs 1 minute of it.
soak: $(VENV)/.installed-dev
	$(VENV)/bin/rerankq soak --minutes $(SOAK_MINUTES) --seed $(SOAK_SEED)

bench: $(VENV)/.installed-dev
	$(VENV)/bin/rerankq bench

clean:
	rm -rf $(VENV) data tests/artifacts
