# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/ftprep: pyproject.toml pipeline/__init__.py  # the version lives in the latter
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/ftprep
	$(BIN)/ftprep run sample_data/demo.yaml

test: $(BIN)/ftprep
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/mypy
	$(BIN)/pytest

# Ratios against floors measured in the same run; heavy, so never part of `make test`.
bench: $(BIN)/ftprep
	$(BIN)/python bench/run.py
	$(BIN)/python bench/dedupe_bench.py --repeat 2
	$(BIN)/python bench/check_bench.py --repeat 2

clean:
	rm -rf $(VENV) out
