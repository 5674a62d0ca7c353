# Front door: `make demo` (demo plan into embedded DuckDB, then the scorecard) and
# `make test` (lint, format check, tests). Both create .venv and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_FROM := 2025-06-01
DEMO_TO := 2026-11-25

.PHONY: demo test install install-dev lint format dagster clean

demo: $(VENV)/.installed
	$(BIN)/kpi-pipeline validate plan_config/demo.yaml
	$(BIN)/kpi-pipeline demo-data --out data/demo --start $(DEMO_FROM) --end $(DEMO_TO)
	$(BIN)/kpi-pipeline run --plan plan_config/demo.yaml --from $(DEMO_FROM) --to $(DEMO_TO)
	$(BIN)/kpi-pipeline scorecard --plan plan_config/demo.yaml

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

dagster: $(VENV)/.installed
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home} ; mkdir -p $$DAGSTER_HOME ; \
	DAGSTER_HOME=$$DAGSTER_HOME $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf warehouse data .dagster_home
