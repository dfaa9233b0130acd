# Two commands on a fresh machine: `make run` (the app at http://127.0.0.1:7860) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The floors venv is installed again only when pyproject.toml or the floors change.
FLOORS_STAMP := .venv-floors/.installed
# Test processes (pytest-xdist; whole files per process, so a file's servers start once). 1, the default, runs
# them in order: on 2 cores, 2 processes saved half a minute of 20 and slowed browser tests past their waits.
TEST_WORKERS ?= 1
PARALLEL = $(if $(filter 1,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
# Queues a worker takes jobs from: both lanes by default; `make worker QUEUES=long` serves one lane.
QUEUES ?= $${FEWSHOT_QUICK_QUEUE:-quick},$${FEWSHOT_LONG_QUEUE:-long}

.PHONY: run test test-floors lint weights worker install

run: $(STAMP)
	$(BIN)/python -m webapp

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

# CI: the unit tests once more, on exactly the dependency floors pyproject.toml declares (.ci/floors.txt).
test-floors: $(FLOORS_STAMP)
	.venv-floors/bin/python -m pytest -q $(PARALLEL) tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

weights: $(STAMP)
	$(BIN)/python -m engine weights

worker: $(STAMP)
	$(BIN)/celery -A tasks worker -Q $(QUEUES) --concurrency 1 --loglevel INFO

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

$(FLOORS_STAMP): pyproject.toml .ci/floors.txt
	test -x .venv-floors/bin/python || $(PYTHON) -m venv .venv-floors
	.venv-floors/bin/python -m pip install -q -c .ci/floors.txt -e ".[dev]"
	touch $@
