"""Landing sensors against a real S3 API server process on loopback: ticks, cursors, and the
run a tick starts."""

from __future__ import annotations

import gzip
import json
import sys
from datetime import UTC, datetime, timedelta
from functools import partial

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.orchestration.assets import bronze_asset, landing_assets
from manufacturing_ingest.orchestration.checks import backlog_check
from manufacturing_ingest.orchestration.resources import (
    InProcessStep,
    LakehouseResource,
    LandingZoneResource,
    RemoteJobResource,
    SparkResource,
)
from manufacturing_ingest.orchestration.sensors import (
    landing_sensor,
)
from manufacturing_ingest_tests.clock import clear_of_midnight
from manufacturing_ingest_tests.samples import numbered_sensor_csv, sensor_csv
from manufacturing_ingest_tests.sensor_results import spans

pytestmark = pytest.mark.s3

SPEC = get_source("sensor_data")
SENSOR = landing_sensor(SPEC)
# Set per test by `_today`: the day the sensor's own clock will see.
TODAY = datetime.now(UTC)
csv = partial(sensor_csv, day=TODAY)
DAY_PREFIX = f"raw/sensor-data/{TODAY:%Y/%m/%d}"


@pytest.fixture(autouse=True)
def _today(monkeypatch):
    """Today, taken when the test starts and clear of midnight UTC for its length (the module
    is imported up to half an hour before its tests run)."""
    today = clear_of_midnight()
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "TODAY", today)
    monkeypatch.setattr(module, "csv", partial(sensor_csv, day=today))
    monkeypatch.setattr(module, "DAY_PREFIX", f"raw/sensor-data/{today:%Y/%m/%d}")


def tick(bucket, cursor: str | None = None, lakehouse: str = "/nonexistent/lakehouse"):
    context = dg.build_sensor_context(
        cursor=cursor, instance=dg.DagsterInstance.ephemeral(),
        resources={"landing": LandingZoneResource(url=bucket.url),
                   "lakehouse": LakehouseResource(url=lakehouse)},
    )
    return SENSOR(context)


def new_keys(result) -> int:
    return sum(int(r.tags["manufacturing_ingest/new_objects"]) for r in result.run_requests)


def test_objects_landed_in_the_same_second_are_all_found_once(bucket):
    for n in range(3):
        bucket.put(f"{DAY_PREFIX}/a{n}.csv", csv(f"A{n}"))
    first = tick(bucket)
    assert spans(first) == {(f"{TODAY:%Y-%m-%d}", f"{TODAY:%Y-%m-%d}"): 3}
    assert new_keys(first) == 3
    # What landed is an observation of the raw asset, so the UI shows when files arrived.
    (landed,) = first.asset_events
    assert landed.asset_key == dg.AssetKey(["raw", "sensor_data"])
    assert landed.metadata["files"].value == 3
    assert landed.metadata["bytes"].value == sum(len(csv(f"A{n}").encode()) for n in range(3))
    assert landed.metadata["partitions"].value == f"{TODAY:%Y-%m-%d}"
    for n in range(2):  # very likely the same LastModified second as the ones before
        bucket.put(f"{DAY_PREFIX}/b{n}.csv", csv(f"B{n}"))
    second = tick(bucket, first.cursor)
    assert new_keys(second) == 2
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert len(json.loads(second.cursor)["seen"]) == 5
    idle = tick(bucket, second.cursor)
    assert idle.run_requests == [] or idle.run_requests is None
    assert not idle.asset_events  # nothing new landed, nothing observed
    assert "No new objects" in idle.skip_reason.skip_message
    assert "listed 5 objects" in idle.skip_reason.skip_message


def test_deleting_objects_does_not_replay_and_reupload_with_new_etag_triggers(bucket):
    bucket.put(f"{DAY_PREFIX}/a.csv", csv("A"))
    bucket.put(f"{DAY_PREFIX}/b.csv", csv("B"))
    first = tick(bucket)
    bucket.delete(f"{DAY_PREFIX}/a.csv")
    after_delete = tick(bucket, first.cursor)
    assert not after_delete.run_requests
    bucket.put(f"{DAY_PREFIX}/b.csv", csv("B"))  # same bytes: same ETag, not new
    assert not tick(bucket, after_delete.cursor).run_requests
    bucket.put(f"{DAY_PREFIX}/b.csv", csv("B", "B2"))  # new content: new ETag, new data
    reupload = tick(bucket, after_delete.cursor)
    assert new_keys(reupload) == 1


def test_late_objects_in_older_prefixes_are_found_within_the_lookback(bucket):
    bucket.put(f"{DAY_PREFIX}/a.csv", csv("A"))
    first = tick(bucket)
    yesterday = TODAY - timedelta(days=1)
    bucket.put(f"raw/sensor-data/{yesterday:%Y/%m/%d}/late.csv", csv("L"))
    bucket.put(f"raw/sensor-data/{TODAY - timedelta(days=5):%Y/%m/%d}/old.csv", csv("O"))
    bucket.put("raw/sensor-data/undated.csv", csv("U"))
    late = tick(bucket, first.cursor)
    # The undated key's partition is its LastModified day (today); the 5-day-old prefix is
    # outside the lookback and is left to the next sweep (test_sweep.py). Yesterday and today
    # are one range run.
    assert spans(late) == {(f"{yesterday:%Y-%m-%d}", f"{TODAY:%Y-%m-%d}"): 2}


def test_markers_in_flight_files_and_folder_keys_are_ignored(bucket):
    bucket.put(f"{DAY_PREFIX}/_SUCCESS", b"")
    bucket.put(f"{DAY_PREFIX}/part-1.csv.tmp", csv("T"))
    bucket.put(f"{DAY_PREFIX}/", b"")
    result = tick(bucket)
    assert not result.run_requests
    assert "3 markers or in-flight files ignored" in result.skip_reason.skip_message


@pytest.mark.spark
def test_sensor_tick_starts_the_run_that_lands_the_rows(bucket, spark, tmp_path):
    yesterday = TODAY - timedelta(days=1)  # readings at 01:xx: in the past at any hour
    day = f"raw/sensor-data/{yesterday:%Y/%m/%d}"
    bucket.put(f"{day}/a.csv", numbered_sensor_csv("a", 30, yesterday))
    bucket.put(f"{day}/b.csv.gz", gzip.compress(numbered_sensor_csv("b", 20, yesterday).encode()))
    bucket.put(f"{day}/_SUCCESS", b"")
    resources = {
        "spark": SparkResource(master="local[2]"), "step_launcher": InProcessStep(),
        "remote_job": RemoteJobResource(),
        "landing": LandingZoneResource(url=bucket.url),
        "lakehouse": LakehouseResource(url=str(tmp_path / "lakehouse")),
    }
    result = SENSOR(dg.build_sensor_context(resources=resources,
                                             instance=dg.DagsterInstance.ephemeral()))
    (request,) = result.run_requests
    assert spans(result) == {(f"{yesterday:%Y-%m-%d}", f"{yesterday:%Y-%m-%d}"): 2}

    bronze, check = bronze_asset(SPEC), backlog_check(SPEC)
    run = dg.materialize([bronze, check, *landing_assets(CATALOG.values())],
                         selection=[bronze.key], tags=request.tags, resources=resources)
    assert run.success
    table = DeltaTable(str(tmp_path / "lakehouse/manufacturing_bronze/sensor_data")).to_pandas()
    assert len(table) == 50
    assert set(table._source_file) == {f"{bucket.url}/{day}/a.csv", f"{bucket.url}/{day}/b.csv.gz"}
    evaluations = {e.check_name: e for e in run.get_asset_check_evaluations()}
    assert set(evaluations) == {"landing_backlog", "quality", "schema_drift"}
    assert all(e.passed for e in evaluations.values())
    evaluation = evaluations["landing_backlog"]
    assert evaluation.metadata["uncommitted_objects"].value == 0
    assert evaluation.metadata["landed_objects"].value == 2



def test_objects_under_folders_that_are_no_date_are_requested_by_last_modified(bucket):
    bucket.put("raw/sensor-data/2026/02/30/a.csv", csv("FEB30"))  # no such day
    bucket.put(f"raw/sensor-data/{TODAY:%Y/%m}/{TODAY:%d}.csv", csv("DAYFILE"))  # a day-level file
    bucket.put("raw/sensor-data/2026/13/01/m.csv", csv("MONTH13"))  # no such month
    result = tick(bucket)
    # Their partition falls back to LastModified (today), where the run will find them.
    assert spans(result) == {(f"{TODAY:%Y-%m-%d}", f"{TODAY:%Y-%m-%d}"): 3}
    assert not tick(bucket, result.cursor).run_requests  # found once


def _land_yesterday(lake, source: str, files: int, rows: int) -> str:
    """Generate yesterday's files for ``source``, landed just now (inside the lookback)."""
    import os

    from manufacturing_ingest.generate import GenerateOptions, generate

    day = (TODAY - timedelta(days=1)).date()
    now = datetime.now(UTC).timestamp()
    for path in generate(lake.landing_root, source, day,
                         options=GenerateOptions(files=files, rows_per_file=rows)):
        os.utime(path, (now, now))
    return day.isoformat()


def _local_tick(lake, spec, cursor: str | None = None):
    resources = {"landing": LandingZoneResource(url=str(lake.landing_root)),
                 "lakehouse": LakehouseResource(url=lake.lakehouse.root)}
    context = dg.build_sensor_context(cursor=cursor, resources=resources,
                                      instance=dg.DagsterInstance.ephemeral())
    return landing_sensor(spec)(context)


@pytest.mark.spark
def test_objects_already_committed_start_no_runs(lake):
    """``make demo`` then ``make dev``: the sensors find the demo's files, all ingested."""
    for source in CATALOG:
        day = _land_yesterday(lake, source, files=2, rows=50)
        spec = get_source(source)
        lake.ingest(source, *spec.partitions.keys_between(*spec.partitions.widen(day)))

    for spec in CATALOG.values():
        result = _local_tick(lake, spec)
        assert not result.run_requests, spec.name
        landed = 48 if spec.name == "quality_metrics" else 2  # 2 files per hour if hourly
        assert f"{landed} new objects, {landed} already committed: 0 run(s)" in \
            result.skip_reason.skip_message
        # The first tick's sweep of the whole prefix finds the same files, all committed.
        assert f"Sweep complete: {landed} objects" in result.skip_reason.skip_message

    # A new file beside them is the only thing asked for.
    sensor_day = (TODAY - timedelta(days=1)).date()
    lake.put(f"raw/sensor-data/{sensor_day:%Y/%m/%d}/extra.csv",
             numbered_sensor_csv("x", 5, sensor_day))
    assert spans(_local_tick(lake, SPEC)) == {(sensor_day.isoformat(), sensor_day.isoformat()): 1}


@pytest.mark.spark
def test_a_day_of_hourly_files_is_one_run_that_lands_every_hour(lake):
    spec = get_source("quality_metrics")
    day = _land_yesterday(lake, "quality_metrics", files=1, rows=20)
    result = _local_tick(lake, spec)
    (request,) = result.run_requests
    assert spans(result) == {(f"{day}-00:00", f"{day}-23:00"): 24}

    resources = {"spark": SparkResource(master="local[2]"), "step_launcher": InProcessStep(),
        "remote_job": RemoteJobResource(),
                 "landing": LandingZoneResource(url=str(lake.landing_root)),
                 "lakehouse": LakehouseResource(url=lake.lakehouse.root)}
    bronze = bronze_asset(spec)
    run = dg.materialize([bronze, *landing_assets(CATALOG.values())], selection=[bronze.key],
                         tags=request.tags, resources=resources)
    assert run.success
    materialized = {e.partition for e in run.get_asset_materialization_events()}
    assert materialized == {f"{day}-{hour:02d}:00" for hour in range(24)}
    table = DeltaTable(lake.table_path("quality_metrics")).to_pandas()
    assert len(table) == 24 * 20 and table._source_file.nunique() == 24
