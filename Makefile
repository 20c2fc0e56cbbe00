# One-command entry points. Each sets up .venv from pyproject.toml first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where `make demo` and `make serve` listen: make demo PORT=9000
PORT ?= 8080

.PHONY: demo test lint bench durability serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/exchange demo --data demo-data --port $(PORT)

serve: $(STAMP)
	$(BIN)/exchange serve --data demo-data --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -n 2

bench: $(STAMP)
	$(BIN)/python -m bench

# SIGKILLs of a serving exchange under concurrent writes, then every acknowledged write,
# audit entry and Bundle checked on the data directory (#14.1).
durability: $(STAMP)
	$(BIN)/python -m bench.durability

clean:
	rm -rf $(VENV) demo-data demo-data-keys demo-data-witness .pytest_cache .mypy_cache .ruff_cache .hypothesis
