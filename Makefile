# Everything runs from a local .venv that the targets create on first use.
# The venv's Python: the newest python3.N >= 3.11 on the PATH that runs (a
# pyenv shim of a version not installed does not), else python3 if it is
# >= 3.11. `make PYTHON=/path/to/python3.12 test` (or PYTHON in the
# environment) chooses another.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell \
	for candidate in python3.20 python3.19 python3.18 python3.17 python3.16 python3.15 \
		python3.14 python3.13 python3.12 python3.11 python3; do \
		if $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; \
		then echo $$candidate; break; fi; \
	done)
endif
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
RUNTIME_STAMP := $(VENV)/.installed

.PHONY: test lint types pytest demo bench bench-converter bench-timeline clean python

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "make: no Python >= 3.11 on the PATH;" \
		"install one, or run make PYTHON=/path/to/python3.11-or-newer" >&2; exit 1; }
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

python:
	@echo $(PYTHON)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo.sqlite
