# Every target bootstraps its own virtualenv from pyproject.toml on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-unit lint docs bench bench-check cluster-smoke servers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,bench,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/raycache demo

# Every test: unit (no Ray), cluster (a real Ray) and reliability (chaos, faults, fuzzing).
test: $(STAMP) lint docs
	$(BIN)/python -m pytest

# The unit tests and the doctests alone, without Ray: a minute or two.
test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit raycache

lint: $(STAMP)
	$(BIN)/ruff check raycache tests benchmarks examples scripts
	$(BIN)/ruff format --check raycache tests benchmarks examples scripts
	$(BIN)/mypy

# The documentation site, from docs/ and the docstrings, into build/site; warnings fail it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Redis and memcached are baselines: installed here if missing (as root, with apt-get), and
# when that fails the benchmark skips them and says so.
servers:
	-@if ! command -v redis-server >/dev/null || ! command -v memcached >/dev/null; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server memcached \
				>/dev/null || echo "could not install redis-server and memcached"; \
		fi; \
	fi

bench: $(STAMP) servers
	$(BIN)/python -m benchmarks

# The speed-regression guard: the quick benchmarks against benchmarks/baseline.json.
bench-check: $(STAMP) servers
	$(BIN)/python -m benchmarks --quick --check --out build/bench-check

# `ray up cluster.yaml` on this machine: its node types under the autoscaler, the demo
# submitted as a Ray job twice, workers added and removed; a few minutes.
cluster-smoke: $(STAMP)
	$(BIN)/python -m scripts.cluster_smoke

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
