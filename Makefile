# Clean room: simulation-mode demo and tests need nothing but Python 3.11.
# Gramine targets (enclave-venv, gramine-*, measurement) live in manifests/gramine.mk.

PYTHON_BIN ?= python3.11
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
STAMP := $(VENV)/.stamp

.PHONY: help demo test lint typecheck tcb-size bench bench-smoke soak clean

help:
	@echo "make demo        two-party demo in simulation mode (creates $(VENV))"
	@echo "make test        the test suite (creates $(VENV))"
	@echo "make lint        ruff"
	@echo "make typecheck   mypy --strict on the trusted code (enclave/, protocol/)"
	@echo "make tcb-size    line count of the trusted code (what the manifest measures)"
	@echo "make bench       benchmarks vs DuckDB/Polars (BENCH_ROWS=1000000)"
	@echo "make soak        concurrent parties + an enclave SIGKILL against a real host (SOAK_SECONDS=60)"
	@echo "make gramine-check / gramine-direct / gramine-sgx / measurement: see README"

# The venv is rebuilt whenever the pinned requirements or the project metadata change.
$(STAMP): requirements/enclave.txt requirements/dev.txt requirements/dp-oracle.txt pyproject.toml
	@command -v $(PYTHON_BIN) >/dev/null || { echo "$(PYTHON_BIN) not found: install Python 3.11 (Debian: apt-get install python3 python3-venv)"; exit 1; }
	$(PYTHON_BIN) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

demo: $(STAMP)
	$(PYTHON) -m cleanroom.demo $(DEMO_ARGS)

test: $(STAMP)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PYTHON) -m ruff check .

typecheck: $(STAMP)
	$(PYTHON) -m mypy

tcb-size: $(STAMP)
	$(PYTHON) -m manifests.check --tcb-size

BENCH_ROWS ?= 1000000
$(VENV)/.stamp-bench: $(STAMP) requirements/bench.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements/bench.txt
	@touch $@

bench: $(VENV)/.stamp-bench
	$(PYTHON) -m benchmarks.run --rows $(BENCH_ROWS)

bench-smoke: $(STAMP)
	$(PYTHON) -m benchmarks.smoke

SOAK_SECONDS ?= 60
soak: $(STAMP)
	$(PYTHON) -m benchmarks.soak --seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) .venv-enclave demo-work .pytest_cache .ruff_cache build *.egg-info

include manifests/gramine.mk
