# Two commands on a fresh machine: `make up` and `make test`. Every target installs what is missing.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .meterhouse/tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: up test lint bench install clean

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv

# --compile-bytecode: every `meterhouse` command imports from .pyc files written once here, even
# where PYTHONDONTWRITEBYTECODE keeps Python from caching them (dbt's imports alone compile ~1.5
# CPU-s of modules otherwise, on every `meterhouse rate run`).
$(VENV)/.synced: pyproject.toml uv.lock Makefile | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

install: $(VENV)/.synced

up: install
	$(BIN)/meterhouse up

# Two test processes (pytest-xdist), a test file each at a time, each with a warehouse and servers
# of its own: much of a test's time is one core busy (query analysis, process starts), so two
# workers keep both cores of a CI machine working. TEST_WORKERS=0 runs in this process alone.
TEST_WORKERS ?= 2

test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy warehouse ingestion api orchestration bench

bench: install
	@# Every benchmark script (a module with a main guard; billing_api.py, merges.py and process.py
	@# are shared code).
	@for script in $$(grep -l '__name__ == "__main__"' bench/*.py); do \
		echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .meterhouse
