# Everything runs from a local .venv that the targets create on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
RUNTIME_STAMP := $(VENV)/.installed

.PHONY: test lint types pytest demo bench bench-converter bench-timeline clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUNTIME_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check ccrm_async tests benchmarks examples
	$(BIN)/ruff format --check ccrm_async tests benchmarks examples

types: $(STAMP)
	$(BIN)/mypy --strict ccrm_async

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint types pytest

demo: $(RUNTIME_STAMP)
	$(BIN)/ccrm-async demo

# `make bench ONLY=1,3 REPEATS=3`: some of the five pull measurements (and not the
# dlt benchmark), more repeats.
bench: $(STAMP)
	$(BIN)/python benchmarks/pull.py $(if $(ONLY),--only $(ONLY)) $(if $(REPEATS),--repeats $(REPEATS))
	$(if $(ONLY),,$(BIN)/python benchmarks/dlt_load.py)

# Where the time goes: per record in the converter (CPU only), and on the event loop.
bench-converter: $(STAMP)
	$(BIN)/python benchmarks/converter.py --profile

bench-timeline: $(STAMP)
	$(BIN)/python benchmarks/timeline.py --profile

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo.sqlite
