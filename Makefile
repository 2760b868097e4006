# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# `mlflow run --env-manager local` needs the venv active.
ACTIVATE := PATH=$(CURDIR)/$(BIN):$$PATH VIRTUAL_ENV=$(CURDIR)/$(VENV)
export MLFLOW_DISABLE_TELEMETRY := true
export PYTHONUNBUFFERED := 1

# Exact versions for this machine's venv (pyproject.toml holds ranges; see constraints/local.txt).
CONSTRAINTS := constraints/local.txt

.PHONY: demo test test-runtimes constraints install install-dev bench clean reset mlflow-ui dashboard

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $@ $(VENV)/.core

install: $(VENV)/.core
install-dev: $(VENV)/.dev

## demo: install, then run the main job (the whole loop) on embedded defaults
# The MLproject run is tracked in the same local store as the stages (nothing outside .driftgate/).
demo: $(VENV)/.core
	@mkdir -p .driftgate
	$(ACTIVATE) MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/.driftgate/mlflow.db \
	  $(BIN)/mlflow run . -e main --env-manager local \
	  --experiment-name "$$($(BIN)/driftgate init --env demo)"

## test: install with dev extras and run the whole suite
test: $(VENV)/.dev
	$(ACTIVATE) $(BIN)/python -m pytest -q

bench: $(VENV)/.dev
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[bench]'
	$(ACTIVATE) $(BIN)/python benchmarks/monitor_bench.py

## test-runtimes: the Databricks-path tests on each supported runtime's exact packages
# (constraints/runtimes/*.txt; needs network and the runtimes' Pythons). Not part of `make test`.
test-runtimes: $(VENV)/.dev
	HOST_PY=$(CURDIR)/$(BIN)/python .ci/test-runtimes

## constraints: re-pin constraints/local.txt to what .venv holds now (after a deliberate upgrade)
constraints: $(VENV)/.dev
	{ sed -n '1,3p' $(CONSTRAINTS); $(BIN)/python -m pip freeze --exclude-editable | grep -iv '^driftgate'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

## dashboard: the HTML page over the local tables (after `make demo`), and its screenshot in docs/
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser)
dashboard: $(VENV)/.core
	$(BIN)/python -m driftgate.cli dashboard --env demo --out .driftgate/dashboard.html
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
	  --disable-sync --no-first-run --user-data-dir=$$(mktemp -d) --hide-scrollbars --window-size=1000,2750 \
	  --screenshot=docs/dashboard.png file://$(CURDIR)/.driftgate/dashboard.html

mlflow-ui: $(VENV)/.core
	$(BIN)/mlflow ui --backend-store-uri sqlite:///.driftgate/mlflow.db --port 5000

## reset: forget the local workspace (tables, MLflow, cursors)
reset:
	rm -rf .driftgate

clean: reset
	rm -rf $(VENV) build/runtimes
