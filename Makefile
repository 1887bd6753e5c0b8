# The two commands of the README. Each one installs what it needs first, so a fresh clone works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run demo test lint hostile fuzz

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Main job: bring the local stack up, migrate, create the topics, then archive relays until Ctrl-C.
run: install
	$(BIN)/bigbrotr dev up
	$(BIN)/bigbrotr migrate
	$(BIN)/bigbrotr topics create
	$(BIN)/bigbrotr run

# Two real local relays archived end to end, with a summary; stops by itself.
demo: install
	$(BIN)/bigbrotr dev up
	$(BIN)/bigbrotr demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The hostile-input suite: property tests, a short fuzzing run, the hostile relay end to end.
hostile: install
	$(BIN)/pytest -m hostile

# The long fuzzing run: each target for FUZZ_SECONDS, keeping its corpus in .state/fuzz.
FUZZ_SECONDS ?= 600
fuzz: install
	$(BIN)/python -m tests.fuzz all --seconds $(FUZZ_SECONDS)
