# The two commands of the README. Each one installs what it needs first, so a fresh clone works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Main job: until the pipeline processes exist it brings the stack up, prepares it, and reports.
run: install
	$(BIN)/bigbrotr dev up
	$(BIN)/bigbrotr migrate
	$(BIN)/bigbrotr topics create
	$(BIN)/bigbrotr dev status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest
