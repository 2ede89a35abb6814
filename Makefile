# docjobs: make demo | make test | make bench | make chaos | make load | make lint
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: demo test bench chaos load lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's metadata changes.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(BIN)/docjobs demo $(ARGS)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py $(ARGS)

chaos: $(VENV)/.installed-test
	$(BIN)/python bench/chaos.py $(ARGS)

load: $(VENV)/.installed-test
	$(BIN)/python bench/load.py $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check docjobs tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .docjobs .pytest_cache .mypy_cache .ruff_cache
