# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/ftprep: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/ftprep
	$(BIN)/ftprep run configs/demo.yaml

test: $(BIN)/ftprep
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(BIN)/ftprep
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) out
