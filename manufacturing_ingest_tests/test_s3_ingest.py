"""From objects put with boto3 to rows in bronze, through the sensor, also through faults."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.assets import BRONZE_ASSETS, LANDING_ASSETS
from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.checks import BACKLOG_CHECKS
from manufacturing_ingest.engine.bronze import BronzeIngestor, Lakehouse
from manufacturing_ingest.landing.s3 import S3LandingZone
from manufacturing_ingest.resources import LakehouseResource, LandingZoneResource, SparkResource
from manufacturing_ingest.sensors import LANDING_SENSORS

pytestmark = [pytest.mark.s3, pytest.mark.spark]

TODAY = datetime.now(UTC)
HEADER = "plant_id,line_id,sensor_id,timestamp,temperature,humidity,pressure,vibration\n"


def csv(tag: str, rows: int) -> str:
    return HEADER + "".join(
        f"P01,L1,{tag}-{n},{TODAY:%Y-%m-%d}T01:{n % 60:02d}:00Z,{20 + n % 7},40,101,2\n"
        for n in range(rows))


def test_sensor_tick_starts_the_run_that_lands_the_rows(bucket, spark, tmp_path):
    day = f"raw/sensor-data/{TODAY:%Y/%m/%d}"
    bucket.put(f"{day}/a.csv", csv("a", 30))
    bucket.put(f"{day}/b.csv.gz", gzip.compress(csv("b", 20).encode()))
    bucket.put(f"{day}/_SUCCESS", b"")
    sensor = next(s for s in LANDING_SENSORS if s.name == "sensor_data_landing_sensor")
    resources = {
        "spark": SparkResource(master="local[2]"),
        "landing": LandingZoneResource(url=bucket.url),
        "lakehouse": LakehouseResource(url=str(tmp_path / "lakehouse")),
    }
    result = sensor(dg.build_sensor_context(resources=resources))
    (request,) = result.run_requests
    assert request.partition_key == f"{TODAY:%Y-%m-%d}"

    (bronze,) = [a for a in BRONZE_ASSETS if a.key.path[-1] == "sensor_data"]
    (check,) = [c for c in BACKLOG_CHECKS if bronze.key in {k.asset_key for k in c.check_keys}]
    run = dg.materialize([bronze, check, *LANDING_ASSETS], selection=[bronze.key],
                         partition_key=request.partition_key, resources=resources)
    assert run.success
    table = DeltaTable(str(tmp_path / "lakehouse/manufacturing_bronze/sensor_data")).to_pandas()
    assert len(table) == 50
    assert set(table._source_file) == {f"{bucket.url}/{day}/a.csv", f"{bucket.url}/{day}/b.csv.gz"}
    (evaluation,) = run.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["uncommitted_objects"].value == 0
    assert evaluation.metadata["landed_objects"].value == 2


def test_backlog_check_fails_when_an_object_waits_over_an_hour(bucket, tmp_path):
    from datetime import timedelta

    from manufacturing_ingest.checks import landing_backlog

    bucket.put(f"raw/sensor-data/{TODAY:%Y/%m/%d}/waiting.csv", csv("w", 3))
    zone = S3LandingZone(bucket.url)
    ledger = str(tmp_path / "lakehouse/_manufacturing_ingest/file_ledger")
    now = datetime.now(UTC)
    fresh = landing_backlog(get_source("sensor_data"), zone, ledger, now=now)
    assert (fresh.uncommitted, fresh.oldest_uri) == (1, f"{bucket.url}/raw/sensor-data/"
                                                        f"{TODAY:%Y/%m/%d}/waiting.csv")
    assert fresh.oldest_age_seconds < 120
    later = landing_backlog(get_source("sensor_data"), zone, ledger,
                            now=now + timedelta(minutes=75))
    assert later.oldest_age_seconds > 3600


def test_throttling_stalls_and_resets_still_land_every_row_exactly_once(bucket, spark, tmp_path,
                                                                         aws_env, monkeypatch):
    from manufacturing_ingest_tests.s3_server import FaultProxy

    day = f"raw/sensor-data/{TODAY:%Y/%m/%d}"
    for n in range(12):
        bucket.put(f"{day}/part-{n:02d}.csv", csv(f"p{n}", 40 + n))
    proxy = FaultProxy(aws_env.port, seed=7, slow_down=0.15, delay=0.1, reset=0.1)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        spec = get_source("sensor_data")
        sensor = next(s for s in LANDING_SENSORS if s.name == "sensor_data_landing_sensor")
        tick = sensor(dg.build_sensor_context(
            resources={"landing": LandingZoneResource(url=bucket.url)}))
        (request,) = tick.run_requests
        assert request.tags["manufacturing_ingest/new_objects"] == "12"
        zone = S3LandingZone(bucket.url)
        lakehouse = Lakehouse(str(tmp_path / "lakehouse"))
        report = BronzeIngestor(spark, spec, zone, lakehouse).ingest([f"{TODAY:%Y-%m-%d}"])
        assert report.files_failed == 0 and report.records == sum(40 + n for n in range(12))
        again = BronzeIngestor(spark, spec, S3LandingZone(bucket.url), lakehouse).ingest(
            [f"{TODAY:%Y-%m-%d}"])
        assert again.records == 0 and again.files_skipped == 12
    finally:
        proxy.stop()
    # The faults really happened, to listings and to downloads alike.
    assert proxy.counts["slow_down"] >= 3 and proxy.counts["reset"] >= 2
    assert proxy.counts["delay"] >= 2
    table = DeltaTable(lakehouse.table_path(spec)).to_pandas()
    assert len(table) == sum(40 + n for n in range(12))
    assert table.groupby("_source_file").size().to_dict() == {
        f"{bucket.url}/{day}/part-{n:02d}.csv": 40 + n for n in range(12)}
