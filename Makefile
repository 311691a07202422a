# The two Quickstart commands: `make demo` and `make test`. Both set up what they need first.
.PHONY: setup demo test dev lint

setup:
	./scripts/setup

# Generate a sample day into .data/landing, ingest it into .data/lakehouse, print rows per table.
demo: setup
	.venv/bin/manufacturing-ingest demo

# The whole suite: real local Spark + Delta, subprocess crash tests; then the engine's tests
# again on a Spark Connect session (no JVM access, as on Databricks shared clusters).
# CI runs exactly this.
ENGINE_TESTS = $(addprefix manufacturing_ingest_tests/engine/,test_ingest.py \
	test_exactly_once.py test_bad_input.py test_direct_read.py test_portable.py \
	test_autoloader.py)
test: setup
	.venv/bin/pytest
	.venv/bin/pytest --spark-connect $(ENGINE_TESTS)

# The Dagster UI on http://127.0.0.1:3000 with a persistent instance under .dagster_home,
# configured by dagster.yaml (run concurrency limits).
dev: setup
	mkdir -p .dagster_home .data/landing
	cp dagster.yaml .dagster_home/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.dagster_home .venv/bin/dagster dev -h 127.0.0.1 -p 3000

lint: setup
	.venv/bin/ruff check manufacturing_ingest manufacturing_ingest_tests benchmarks
