# docjobs: make demo | make test | make test-fast | make bench | make scale | make chaos | make load | make lint
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: demo test test-fast bench scale chaos load lint clean compose-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's metadata changes. docjobs-devkit (devkit/: the test servers,
# the Inngest emulator, the demo) is its own distribution, so the docjobs wheel ships none of it.
$(VENV)/.installed-demo: pyproject.toml devkit/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e . -e ./devkit
	touch $@

$(VENV)/.installed-test: pyproject.toml devkit/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]' -e ./devkit
	touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(BIN)/docjobs demo $(ARGS)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(ARGS)

# The unit tests alone: no servers, seconds.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m unit $(ARGS)

# The real Dockerfile and docker-compose.yml, built and started with podman
# (containers/setup-podman.sh prepares the machine); a document is sealed through the stack.
compose-test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/containers $(ARGS)

# The bench's baselines (pgqueuer) and process figures (psutil) are the `bench` extra.
$(VENV)/.installed-bench: pyproject.toml devkit/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]' -e ./devkit
	touch $@ $(VENV)/.installed-test $(VENV)/.installed-demo

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/run.py $(ARGS)

# Drain rate and connections as worker and web processes share one PostgreSQL (and Redis).
scale: $(VENV)/.installed-test
	$(BIN)/python bench/scale.py $(ARGS)

chaos: $(VENV)/.installed-test
	$(BIN)/python bench/chaos.py $(ARGS)

load: $(VENV)/.installed-test
	$(BIN)/python bench/load.py $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check docjobs devkit tests bench
	$(BIN)/ruff format --check docjobs devkit tests bench
	$(BIN)/mypy
	$(BIN)/mypy devkit/docjobs_devkit

clean:
	rm -rf $(VENV) .docjobs .pytest_cache .mypy_cache .ruff_cache
