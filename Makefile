# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench bench-quick bench-legacy clean

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

# ftprep run against OpenAI's legacy `openai tools fine_tunes.prepare_data` (openai 0.28.1) on the
# 300k-row CSV, side by side (bench/legacy.py). Not part of `bench`: it installs the legacy tool
# and the pandas of its day from PyPI into bench/.legacy-venv.
LEGACY_VENV := bench/.legacy-venv

$(LEGACY_VENV)/bin/openai:
	$(PYTHON) -m venv $(LEGACY_VENV)
	$(LEGACY_VENV)/bin/pip install --quiet 'openai==0.28.1' 'pandas==2.1.1' 'numpy==1.26.4' 'openpyxl==3.1.2'

bench-legacy: $(BIN)/ftprep $(LEGACY_VENV)/bin/openai
	$(BIN)/python bench/legacy.py --venv $(LEGACY_VENV)

clean:
	rm -rf $(VENV) out
