# The few commands people type. `make run` and `make test` are all a newcomer needs:
# both create .venv on first use and reinstall only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=
SCHEMATHESIS_ARGS ?=
POSTGRES_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
TYPED := service auth adapters fhir_profiles tests bench

.DEFAULT_GOAL := help
.PHONY: help install run test test-postgres lint typecheck importlint dbcheck openapi openapi-check schemathesis bench bench-delivery check

help:
	@echo "make run            run the service on http://127.0.0.1:8000 (SQLite wraparound.db by default)"
	@echo "make test           run the tests (SQLite; set WRAPAROUND_TEST_DATABASE_URL for PostgreSQL)"
	@echo "make test-postgres  run the tests on $(POSTGRES_TEST_URL)"
	@echo "make lint | typecheck | importlint | dbcheck | openapi-check   the CI checks"
	@echo "make openapi        regenerate openapi/openapi.json after changing routes"
	@echo "make schemathesis   the bounded schemathesis run CI makes against a live server (two identities)"
	@echo "make bench          hub vs ceiling vs fhirstarter, both databases (BENCH_ARGS=\"--quick\" etc.;"
	@echo "                    python bench/run.py --help); make bench-delivery: the delivery worker"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing wraparound and its dev tools into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# Development mode: without WRAPAROUND_SECRET_KEY the hub keeps a generated key in wraparound.secret-key.
run: $(STAMP)
	WRAPAROUND_DEVELOPMENT=$${WRAPAROUND_DEVELOPMENT:-1} $(BIN)/wraparound serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	WRAPAROUND_TEST_DATABASE_URL=$(POSTGRES_TEST_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy --explicit-package-bases $(TYPED)

importlint: $(STAMP)
	$(BIN)/lint-imports

# Models vs migrations, on a throwaway SQLite file (set WRAPAROUND_DATABASE_URL to check another database).
dbcheck: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  WRAPAROUND_DATABASE_URL=$${WRAPAROUND_DATABASE_URL:-sqlite:///$$tmp/check.db} $(BIN)/wraparound db check

openapi: $(STAMP)
	$(BIN)/wraparound openapi

openapi-check: $(STAMP)
	$(BIN)/wraparound openapi --check

# Schemathesis against the live hub, as a clinic and as a partner, bounded (~3 min; issue 10).
schemathesis: $(STAMP)
	$(BIN)/python tests/contract/run_schemathesis.py $(SCHEMATHESIS_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-delivery: $(STAMP)
	$(BIN)/python bench/delivery.py $(BENCH_ARGS)

# Everything CI runs except the PostgreSQL suite (.ci/run is the real thing).
check: lint typecheck importlint dbcheck openapi-check test
