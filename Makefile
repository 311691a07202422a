# The two Quickstart commands: `make demo` and `make test`. Both set up what they need first.
.PHONY: setup demo test check dev lint docs-images

setup:
	./scripts/setup

# Two sample days into .data/landing, ingested into .data/lakehouse and checked; recorded in the
# instance under .dagster_home, which `make dev` opens (the UI shows what the demo did).
demo: setup
	.venv/bin/manufacturing-ingest demo

# The whole suite on two pytest-xdist workers (live deployments wait on daemon ticks while the
# other worker runs Spark; conftest orders and groups the tests for that), then the tests marked
# `connect` again on a Spark Connect session (no JVM access, as on Databricks shared clusters and
# Databricks Connect). CI runs exactly this. The S3A jars (hadoop-aws, the AWS SDK) are for the
# test of an s3:// lakehouse written SSE-KMS (engine/test_encryption.py).
test:
	./scripts/setup --test-tools
	.venv/bin/manufacturing-ingest fetch-jars --s3a >/dev/null
	.venv/bin/pytest -n 2 --dist loadgroup
	.venv/bin/pytest --spark-connect -m connect

# The Dagster UI on http://127.0.0.1:3000 with a persistent instance under .dagster_home,
# configured by dagster.yaml (run concurrency limits). Runs use one long-lived local Spark
# Connect server (a warm JVM shared by every run; see BENCHMARKS.md, "Per run"), stopped with
# the UI. `make dev SPARK=local` has each run start its own JVM instead. `make dev STREAM=all`
# (or STREAM=<source>) also runs `manufacturing-ingest stream` beside the UI, on the same
# Spark, its log in .dagster_home/stream.log; it stops with the UI. The UI can start one too:
# Jobs → bronze_stream → Launch, and Terminate to stop it.
SPARK ?= connect
STREAM ?=
DEV_SPARK_PORT ?= 15002
DEV_ENV = DAGSTER_HOME=$(CURDIR)/.dagster_home
ifeq ($(SPARK),connect)
DEV_ENV += MANUFACTURING_SPARK_REMOTE=sc://127.0.0.1:$(DEV_SPARK_PORT)
endif
# The stream connects once the Spark Connect server listens (its JVM takes a few seconds).
export WAIT_FOR_SPARK = import socket, sys, time; any(socket.socket().connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 or time.sleep(1) for _ in range(120))

dev: setup
	mkdir -p .dagster_home .data/landing
	cp dagster.yaml .dagster_home/dagster.yaml
	pids=""; trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	if [ "$(SPARK)" = connect ]; then \
		MANUFACTURING_SPARK_REMOTE= .venv/bin/manufacturing-ingest spark-server \
			--port $(DEV_SPARK_PORT) > .dagster_home/spark-server.log 2>&1 & pids="$$!"; \
	fi; \
	if [ -n "$(STREAM)" ]; then \
		{ [ "$(SPARK)" != connect ] || .venv/bin/python -c "$$WAIT_FOR_SPARK" $(DEV_SPARK_PORT); \
		  $(DEV_ENV) exec .venv/bin/manufacturing-ingest stream --source $(STREAM); } \
			> .dagster_home/stream.log 2>&1 & pids="$$pids $$!"; \
	fi; \
	$(DEV_ENV) .venv/bin/dagster dev -h 127.0.0.1 -p 3000

lint: setup
	.venv/bin/ruff check manufacturing_ingest manufacturing_ingest_tests benchmarks

# Before each commit (a few minutes): ruff, the definitions as `dagster dev` loads them, and the
# tests that need no JVM and no server (`-m unit`; conftest marks the rest spark / s3 / e2e).
check: lint
	home=$$(mktemp -d) && printf 'telemetry:\n  enabled: false\n' > $$home/dagster.yaml && \
		VIRTUAL_ENV=$(CURDIR)/.venv DAGSTER_HOME=$$home .venv/bin/dg check defs
	.venv/bin/pytest -m unit -q

# The README's screenshots (docs/images/): the demo's browser test, on a fresh demo, writes them
# anew (stamped; `make check` fails when the committed ones are older than the test's steps).
docs-images:
	./scripts/setup --test-tools
	MANUFACTURING_UPDATE_DOCS_IMAGES=1 .venv/bin/pytest manufacturing_ingest_tests/ui/test_demo_ui.py
