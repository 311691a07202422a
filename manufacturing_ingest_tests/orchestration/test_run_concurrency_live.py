"""Under the instance config ``make dev`` ships (``dagster.yaml``), a live daemon never runs two
bronze runs of one table at once: one tick asks for two runs of ``quality_metrics``, and the
second waits in the queue until the first is done."""

from __future__ import annotations

import os
import shutil
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.generate import GenerateOptions, generate
from manufacturing_ingest_tests.clock import clear_of_midnight
from manufacturing_ingest_tests.daemon import BIN, Daemon, wait_for

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

REPO = Path(__file__).resolve().parents[2]
SPEC = get_source("quality_metrics")
DEFINITIONS = textwrap.dedent("""
    from manufacturing_ingest.catalog import get_source
    from manufacturing_ingest.orchestration import build_definitions
    from manufacturing_ingest.settings import Settings

    defs = build_definitions(Settings.from_env(), sources=[get_source("quality_metrics")])
""")


def test_two_runs_of_one_table_never_overlap_under_the_shipped_instance(tmp_path, spark_server):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")  # what `make dev` does
    day = (clear_of_midnight(timedelta(minutes=8)) - timedelta(days=1)).date()
    now = datetime.now(UTC).timestamp()
    for hour in (1, 5):  # two hours apart: two ranges, so two runs from one tick
        for path in generate(tmp_path / "landing", "quality_metrics", day, hour,
                             GenerateOptions(files=1, rows_per_file=20)):
            os.utime(path, (now, now))  # landed just now: inside the sensor's lookback
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "MANUFACTURING_LANDING_URL": str(tmp_path / "landing"),
        "MANUFACTURING_LAKEHOUSE_URL": str(tmp_path / "lakehouse"),
        # Each run is its own process on the warm server, as under `make dev`.
        "MANUFACTURING_SPARK_REMOTE": spark_server.url,
    }
    env.pop("MANUFACTURING_ENV", None)
    daemon = Daemon(tmp_path, env, DEFINITIONS)
    daemon.start()
    try:
        instance = dg.DagsterInstance.from_config(str(home))

        def runs():
            return instance.get_run_records(filters=dg.RunsFilter(tags={
                "dagster/asset_partition_range_start": [f"{day}-01:00", f"{day}-05:00"]}))

        wait_for("two sensor runs", lambda: len(runs()) == 2, daemon, timeout=180)
        wait_for("both runs to finish",
                 lambda: all(r.dagster_run.is_finished for r in runs()), daemon, timeout=420)
    finally:
        daemon.stop()

    records = sorted(runs(), key=lambda r: r.start_time or 0)
    assert [r.dagster_run.status for r in records] == [dg.DagsterRunStatus.SUCCESS] * 2, \
        daemon.tail()
    first, second = records
    # The second run started only after the first ended: it was held in the queue (not inside
    # a running step), because both are in the pool of manufacturing_bronze.quality_metrics.
    assert second.start_time >= first.end_time
    assert second.create_timestamp.timestamp() < first.end_time  # it was waiting meanwhile
    materialized = {
        record.event_log_entry.dagster_event.partition
        for run in records
        for record in instance.get_records_for_run(
            run.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    }
    assert materialized == {f"{day}-01:00", f"{day}-05:00"}
