"""Landing sensors against a real S3 API server process on loopback: ticks, cursors, and the
run a tick starts."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from functools import partial

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.orchestration.assets import bronze_asset, landing_assets
from manufacturing_ingest.orchestration.checks import backlog_check
from manufacturing_ingest.orchestration.resources import (
    LakehouseResource,
    LandingZoneResource,
    SparkResource,
)
from manufacturing_ingest.orchestration.sensors import landing_sensor
from manufacturing_ingest_tests.samples import numbered_sensor_csv, sensor_csv

pytestmark = pytest.mark.s3

TODAY = datetime.now(UTC)
csv = partial(sensor_csv, day=TODAY)
DAY_PREFIX = f"raw/sensor-data/{TODAY:%Y/%m/%d}"
SPEC = get_source("sensor_data")
SENSOR = landing_sensor(SPEC)


def tick(bucket, cursor: str | None = None):
    context = dg.build_sensor_context(
        cursor=cursor, resources={"landing": LandingZoneResource(url=bucket.url)}
    )
    return SENSOR(context)


def new_keys(result) -> int:
    return sum(int(r.tags["manufacturing_ingest/new_objects"]) for r in result.run_requests)


def test_objects_landed_in_the_same_second_are_all_found_once(bucket):
    for n in range(3):
        bucket.put(f"{DAY_PREFIX}/a{n}.csv", csv(f"A{n}"))
    first = tick(bucket)
    assert [r.partition_key for r in first.run_requests] == [f"{TODAY:%Y-%m-%d}"]
    assert new_keys(first) == 3
    for n in range(2):  # very likely the same LastModified second as the ones before
        bucket.put(f"{DAY_PREFIX}/b{n}.csv", csv(f"B{n}"))
    second = tick(bucket, first.cursor)
    assert new_keys(second) == 2
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert len(json.loads(second.cursor)["seen"]) == 5
    idle = tick(bucket, second.cursor)
    assert idle.run_requests == [] or idle.run_requests is None
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
    partitions = {r.partition_key: int(r.tags["manufacturing_ingest/new_objects"])
                  for r in late.run_requests}
    # The undated key's partition is its LastModified day (today); the 5-day-old prefix is
    # outside the lookback and is left to a backfill.
    assert partitions == {f"{yesterday:%Y-%m-%d}": 1, f"{TODAY:%Y-%m-%d}": 1}


def test_markers_in_flight_files_and_folder_keys_are_ignored(bucket):
    bucket.put(f"{DAY_PREFIX}/_SUCCESS", b"")
    bucket.put(f"{DAY_PREFIX}/part-1.csv.tmp", csv("T"))
    bucket.put(f"{DAY_PREFIX}/", b"")
    result = tick(bucket)
    assert not result.run_requests
    assert "3 markers or in-flight files ignored" in result.skip_reason.skip_message


@pytest.mark.spark
def test_sensor_tick_starts_the_run_that_lands_the_rows(bucket, spark, tmp_path):
    day = f"raw/sensor-data/{TODAY:%Y/%m/%d}"
    bucket.put(f"{day}/a.csv", numbered_sensor_csv("a", 30, TODAY))
    bucket.put(f"{day}/b.csv.gz", gzip.compress(numbered_sensor_csv("b", 20, TODAY).encode()))
    bucket.put(f"{day}/_SUCCESS", b"")
    resources = {
        "spark": SparkResource(master="local[2]"),
        "landing": LandingZoneResource(url=bucket.url),
        "lakehouse": LakehouseResource(url=str(tmp_path / "lakehouse")),
    }
    result = SENSOR(dg.build_sensor_context(resources=resources))
    (request,) = result.run_requests
    assert request.partition_key == f"{TODAY:%Y-%m-%d}"

    bronze, check = bronze_asset(SPEC), backlog_check(SPEC)
    run = dg.materialize([bronze, check, *landing_assets(CATALOG.values())],
                         selection=[bronze.key],
                         partition_key=request.partition_key, resources=resources)
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
    assert {r.partition_key: int(r.tags["manufacturing_ingest/new_objects"])
            for r in result.run_requests} == {f"{TODAY:%Y-%m-%d}": 3}
    assert not tick(bucket, result.cursor).run_requests  # found once
