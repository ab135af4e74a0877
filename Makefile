# Two commands do all their own set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The first Python >= 3.11 on PATH; override with `make PYTHON=/path/to/python3.12 ...`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)

.PHONY: install install-dev run once check test lint unit pg bench bench-match bench-transport evaluate clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "make: Python 3.11 or newer is needed" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed

## install: .venv with the daemon (.venv/bin/monitor)
install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## run: the daemon on the shipped config, embedded SQLite, console alerts
run: install
	$(BIN)/monitor run --config config

once: install
	$(BIN)/monitor run --once --config config

check: install
	$(BIN)/monitor check --config config

## pg: make sure a PostgreSQL answers on 127.0.0.1:5432 when one is installed here
pg:
	@bash .ci/ensure-postgres

lint: install-dev
	$(BIN)/ruff check monitor tests migrations
	$(BIN)/ruff format --check monitor tests migrations
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: lint, types, import layers and the whole suite (PostgreSQL and SQLite)
test: install-dev pg lint
	$(BIN)/pytest

## bench-match: matching speed with 10, 1,000 and 10,000 terms (flat is the claim)
bench-match: install-dev
	$(BIN)/python -m tests.bench.bench_match --json bench-results/match.json

## bench: the daemon end to end on a generated corpus served from another process: cold,
## warm (304 / unchanged 200), delivery, peak memory, against a naive pipeline and feedparser
## alone (a fresh PostgreSQL database on 127.0.0.1:5432; BENCH_ARGS="--feeds 10000" and more)
bench: install-dev pg
	$(BIN)/python -m tests.bench.bench --json bench-results/bench.json $(BENCH_ARGS)

## bench-transport: fetch() 304s and bodies per second: httpx's own pool against monitor's aiohttp transport
bench-transport: install-dev
	$(BIN)/python -m tests.bench.bench_transport --json bench-results/transport.json

## evaluate: precision and recall of the shipped watchlists on the labelled sets
evaluate: install-dev
	$(BIN)/python -m tests.evaluate

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
