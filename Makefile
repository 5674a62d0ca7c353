# Front door: `make demo` (demo plan into embedded DuckDB, then the scorecard) and
# `make test` (lint, format check, tests). Both create .venv and install what they need,
# at the versions the tests passed with (constraints.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints.txt
# `make test-newer-python`: the newest Python 3.12+ here (pyenv's too, whichever runs).
NEWER_PYTHON ?= $(shell for p in python3.13 python3.12 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3); do $$p -c '' 2>/dev/null && { command -v $$p; break; }; done)
NEWER_DIR ?= $(or $(TMPDIR),/tmp)/kpi-pipeline-newer-python
DEMO_FROM := 2025-06-01
DEMO_TO := 2026-11-25

.PHONY: demo test test-newer-python print-newer-python install install-dev lint format dagster clean

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

$(VENV)/.installed: pyproject.toml setup.py $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . --constraint $(CONSTRAINTS)
	touch $@

$(VENV)/.installed-dev: pyproject.toml setup.py $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]' --constraint $(CONSTRAINTS)
	touch $(VENV)/.installed $@

print-newer-python:
	@echo $(NEWER_PYTHON)

# The wheel (not editable) in a fresh venv of a newer Python, with the same constraints: the
# packaging tests there (KPI_WHEEL_VENV: that venv is the install they check) and the pure core.
# `build` makes the sdist, then the wheel from it: no build/ left in the checkout to go stale.
test-newer-python: $(VENV)/.installed-dev
	@test -n "$(NEWER_PYTHON)" || { echo "no Python 3.12 or newer found"; exit 1; }
	rm -rf $(NEWER_DIR)
	$(BIN)/python -m build --outdir $(NEWER_DIR)/dist .
	$(NEWER_PYTHON) -m venv $(NEWER_DIR)/venv
	$(NEWER_DIR)/venv/bin/python -m pip install --quiet --no-compile --constraint $(CONSTRAINTS) \
		"$$(ls $(NEWER_DIR)/dist/kpi_pipeline-*.whl)[dev]"
	$(NEWER_DIR)/venv/bin/python --version
	KPI_WHEEL_VENV=$(NEWER_DIR)/venv $(NEWER_DIR)/venv/bin/pytest -p no:cacheprovider \
		tests/packaging tests/plan tests/metrics

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

dagster: $(VENV)/.installed
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home} ; mkdir -p $$DAGSTER_HOME ; \
	DAGSTER_HOME=$$DAGSTER_HOME $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf warehouse data .dagster_home
