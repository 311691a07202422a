"""From objects put with boto3 to rows in bronze, through throttling, stalls and resets."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.landing.s3 import S3LandingZone
from manufacturing_ingest.orchestration.resources import LakehouseResource, LandingZoneResource
from manufacturing_ingest.orchestration.sensors import landing_sensor
from manufacturing_ingest_tests.samples import numbered_sensor_csv

pytestmark = [pytest.mark.s3, pytest.mark.spark]

TODAY = datetime.now(UTC)


def test_throttling_stalls_and_resets_still_land_every_row_exactly_once(bucket, spark, tmp_path,
                                                                         aws_env, monkeypatch):
    from manufacturing_ingest_tests.s3_server import FaultProxy

    day = f"raw/sensor-data/{TODAY:%Y/%m/%d}"
    for n in range(12):
        bucket.put(f"{day}/part-{n:02d}.csv", numbered_sensor_csv(f"p{n}", 40 + n, TODAY))
    proxy = FaultProxy(aws_env.port, seed=7, slow_down=0.15, delay=0.1, reset=0.1)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        spec = get_source("sensor_data")
        sensor = landing_sensor(spec)
        tick = sensor(dg.build_sensor_context(
            instance=dg.DagsterInstance.ephemeral(),
            resources={"landing": LandingZoneResource(url=bucket.url),
                       "lakehouse": LakehouseResource(url=str(tmp_path / "lakehouse"))}))
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



def test_any_key_s3_accepts_lands_under_its_exact_uri(bucket, spark, tmp_path):
    """A key of S3's full 1,024 bytes (a last segment far beyond a file name's 255) and one of
    multi-byte letters: staged under a short name, they land under their own URIs."""
    day = f"raw/sensor-data/{TODAY:%Y/%m/%d}"
    room = 1024 - len(f"landing/{day}/") - len(".csv")
    names = {"x" * room + ".csv": 7, "温度" * 60 + ".csv": 3}
    for name, rows in names.items():
        bucket.put(f"{day}/{name}", numbered_sensor_csv(name[0], rows, TODAY))
    assert max(len(f"landing/{day}/{n}".encode()) for n in names) == 1024
    spec = get_source("sensor_data")
    lakehouse = Lakehouse(str(tmp_path / "lakehouse"))
    report = BronzeIngestor(spark, spec, S3LandingZone(bucket.url), lakehouse).ingest(
        [f"{TODAY:%Y-%m-%d}"])
    assert report.files_failed == 0 and report.records == 10, report.failures
    table = DeltaTable(lakehouse.table_path(spec)).to_pandas()
    assert table.groupby("_source_file").size().to_dict() == {
        f"{bucket.url}/{day}/{name}": rows for name, rows in names.items()}


def test_a_csv_stored_with_content_encoding_gzip_is_read(bucket, spark, tmp_path):
    """Uploaders that compress on the wire (``aws s3 cp --content-encoding gzip``, browsers)
    store gzip bytes under a plain ``.csv`` key; S3 says so in ``Content-Encoding``."""
    import gzip

    day = f"raw/sensor-data/{TODAY:%Y/%m/%d}"
    bucket.client.put_object(
        Bucket=bucket.name, Key=f"landing/{day}/wire.csv", ContentEncoding="gzip",
        Body=gzip.compress(numbered_sensor_csv("wire", 9, TODAY).encode()))
    spec = get_source("sensor_data")
    lakehouse = Lakehouse(str(tmp_path / "lakehouse"))
    report = BronzeIngestor(spark, spec, S3LandingZone(bucket.url), lakehouse).ingest(
        [f"{TODAY:%Y-%m-%d}"])
    assert report.files_failed == 0 and report.records == 9, report.failures
    ids = DeltaTable(lakehouse.table_path(spec)).to_pandas()["sensor_id"]
    assert sorted(ids) == sorted(f"wire-{k}" for k in range(9))
