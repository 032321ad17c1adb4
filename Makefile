# Cartwise: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE_STAMP := $(VENV)/.core-installed
DEV_STAMP := $(VENV)/.dev-installed
PYTEST_WORKERS ?= 2

.PHONY: demo test lint bench install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(CORE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $@ $(CORE_STAMP)

install: $(CORE_STAMP)
install-dev: $(DEV_STAMP)

## make demo: set up and run the main job
demo: $(CORE_STAMP)
	$(BIN)/cartwise run $(DEMO_ARGS)

## make lint: ruff (lint + format check) on the code and the docs' Python blocks, mypy on engine/
lint: $(DEV_STAMP)
	$(BIN)/ruff check engine simulator policies tests
	$(BIN)/ruff format --check engine simulator policies tests README.md docs
	$(BIN)/mypy

## make test: lint, then run the whole test suite (benchmarks run once, untimed)
test: lint
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --benchmark-disable $(PYTEST_ARGS)

## make bench: run the benchmarks at full size and report ratios
bench: $(DEV_STAMP)
	CARTWISE_BENCH_SCALE=large $(BIN)/python -m pytest tests/benchmarks -p no:xdist \
		--benchmark-only --benchmark-columns=min,median,mean,rounds $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .benchmarks reports
