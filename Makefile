# Two commands for a newcomer: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format typecheck openapi bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/vigil migrate
	@echo
	@echo "Vigil serves on http://$(HOST):$(PORT) (database: $${VIGIL_DATABASE_URL:-sqlite:///./vigil.db})."
	@echo "Create a first admin key in another terminal with:"
	@echo "    $(BIN)/vigil keys create --role admin"
	@echo "then a clinic and its keys:  $(BIN)/vigil clinics create 'My clinic'"
	@echo "                             $(BIN)/vigil keys create --role nurse --clinic <clinic id>"
	@echo
	$(BIN)/vigil serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check app tests benchmarks migrations
	$(BIN)/ruff format --check app tests benchmarks migrations

typecheck: install
	$(BIN)/mypy app

test: lint typecheck
	$(BIN)/pytest

format: install
	$(BIN)/ruff check --fix app tests benchmarks migrations
	$(BIN)/ruff format app tests benchmarks migrations

openapi: install
	$(BIN)/vigil openapi > openapi.json

bench: install
	$(BIN)/python -m benchmarks.load

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache
