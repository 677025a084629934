# Two commands for a newcomer: `make run` (the whole embedded stack) and `make test` (the suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench demo faults clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m starter.dev

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy .

# The fault suite (tests/faults, slow scenarios included), then its figures as a table.
faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults -m '' ; status=$$?; \
	$(BIN)/python -m tests.faults.summary; exit $$status

# Not part of CI. ARGS="--sessions 200 --minutes 2 --baseline"; see bench/README.md.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(ARGS)

# Needs `make run` in another terminal; ARGS="--sessions 3 --minutes 2" to change it.
demo: $(STAMP)
	$(BIN)/python -m starter.dev.demo $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
