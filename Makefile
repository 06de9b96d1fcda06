# One entry point for people and CI: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint

$(BIN)/soa: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/soa
	PATH="$(abspath $(BIN)):$$PATH" bash examples/demo.sh

test: $(BIN)/soa
	$(BIN)/python -m pytest

lint: $(BIN)/soa
	$(BIN)/ruff check engine tests benchmarks examples
	$(BIN)/mypy
