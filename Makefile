# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench bench-quick clean

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
# bench/scale.py: ftprep run against bench/floor.py (300 MB chat, 1M-row CSV, 100k-row XLSX;
# results in bench/results/); bench-quick: the same on about 100 MB, for everyday use.
bench: $(BIN)/ftprep
	$(BIN)/python bench/scale.py --mb 300 --csv-rows 1000000 --repeat 2
	$(BIN)/python bench/run.py
	$(BIN)/python bench/dedupe_bench.py --repeat 2
	$(BIN)/python bench/check_bench.py --repeat 2

bench-quick: $(BIN)/ftprep
	$(BIN)/python bench/scale.py --mb 100 --csv-rows 300000 --xlsx-rows 30000 --repeat 1

clean:
	rm -rf $(VENV) out
