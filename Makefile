# repro-tui: one entry point for trying, testing and checking the project.
#
#   make demo         build a demo workspace and open it (needs only Python 3.11+)
#   make test         install the test tools and run the whole suite
#   make check        ruff, mypy and the import contracts
#   make screenshots  regenerate screenshots/ from the real app
#   make bench        time the operations that must stay fast
#
# Installs are quiet and happen once: a stamp file in .venv records them, and only a
# change to pyproject.toml or to the C library the build compiles (or a missing .venv)
# installs again.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -qq
PYTEST_ARGS ?=

STAMP := $(VENV)/.repro-installed
STAMP_TEST := $(VENV)/.repro-installed-test

.PHONY: demo test check screenshots bench venv clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml hatch_build.py workbench/diff/_cells.c | $(BIN)/python
	@echo "Installing repro-tui into $(VENV) ..."
	$(PIP) install -e .
	@touch $@

# The test install is a superset of the plain one: it refreshes both stamps.
$(STAMP_TEST): pyproject.toml hatch_build.py workbench/diff/_cells.c | $(BIN)/python
	@echo "Installing repro-tui and its test tools into $(VENV) ..."
	$(PIP) install -e '.[test]'
	@touch $(STAMP) $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/repro-tui demo

test: $(STAMP_TEST)
	@if [ -x scripts/test-setup.sh ]; then scripts/test-setup.sh; fi
	$(BIN)/pytest -q $(PYTEST_ARGS)

# All three run, so one report shows every problem; the target fails if any did.
check: $(STAMP_TEST)
	@status=0; \
	echo "== ruff"; $(BIN)/ruff check . || status=1; \
	echo "== mypy"; $(BIN)/mypy || status=1; \
	echo "== import contracts"; $(BIN)/lint-imports || status=1; \
	exit $$status

screenshots: $(STAMP_TEST)
	$(BIN)/python scripts/screenshots.py

# Every bench/bench_*.py, one after the other; BENCH_ARGS go to each (e.g. BENCH_ARGS="--runs 3").
BENCH_ARGS ?=
bench: $(STAMP_TEST)
	@set -e; found=0; for script in bench/bench_*.py; do \
		[ -f "$$script" ] || continue; found=1; \
		echo "== $$script"; $(BIN)/python "$$script" $(BENCH_ARGS); \
	done; \
	if [ $$found = 0 ]; then echo "no bench/bench_*.py to run" >&2; exit 1; fi

clean-venv:
	rm -rf $(VENV)
