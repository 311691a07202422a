"""The S3 landing zone against a real S3 API server process: paging, errors that need a person."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial

import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.errors import LandingZoneError
from manufacturing_ingest.landing.s3 import S3LandingZone
from manufacturing_ingest.landing.scan import LandingCursor, scan_landing
from manufacturing_ingest_tests.samples import sensor_csv

pytestmark = pytest.mark.s3

TODAY = datetime.now(UTC)
csv = partial(sensor_csv, day=TODAY)
DAY_PREFIX = f"raw/sensor-data/{TODAY:%Y/%m/%d}"


def test_a_thousand_plus_objects_cross_the_page_boundary_and_none_is_lost(bucket):
    keys = [f"{DAY_PREFIX}/part-{n:05d}.csv" for n in range(1050)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: bucket.put(k, csv(k[-9:-4])), keys))
    zone = S3LandingZone(bucket.url)
    scan = scan_landing(get_source("sensor_data"), zone, LandingCursor())
    assert sorted(o.key for o in scan.new_objects) == keys
    assert scan.list_requests >= 3  # two pages of the day prefix, plus the undated level
    again = scan_landing(get_source("sensor_data"), zone, scan.cursor)
    assert again.new_objects == []


def test_not_transient_errors_fail_loudly_with_the_fix(bucket, monkeypatch):
    missing = S3LandingZone(f"s3://{bucket.name}-missing/landing")
    with pytest.raises(LandingZoneError, match="bucket does not exist"):
        list(missing.list_flat("raw/"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(LandingZoneError, match="no AWS credentials found"):
        list(S3LandingZone(bucket.url).list_flat("raw/"))


def test_invalid_landing_url_is_refused():
    with pytest.raises(LandingZoneError, match="not an s3://bucket"):
        S3LandingZone("s3:///nobucket")


def test_rejected_credentials_fail_loudly_with_the_fix(tmp_path, monkeypatch, aws_env):
    from manufacturing_ingest_tests.s3_server import MotoServer

    # This server checks credentials against its own IAM, where "testing" does not exist.
    strict = MotoServer(tmp_path / "moto-strict.log", env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", strict.endpoint)
        zone = S3LandingZone("s3://any-bucket/landing")
        with pytest.raises(LandingZoneError) as caught:
            list(zone.list_flat("raw/"))
        assert "the AWS access key id is not valid; check the credential chain" in str(
            caught.value)
        assert "s3://any-bucket/landing/raw/" in str(caught.value)
    finally:
        strict.stop()



def test_direct_reads_fetch_only_the_byte_ranges_asked_for_of_the_listed_version(bucket):
    """The cluster's reader takes a file's head (or a Parquet footer) with a ranged GET, and Spark
    reads the rest at ``s3://bucket/<key>`` itself."""
    body = csv("A", "B", "C")
    bucket.put(f"{DAY_PREFIX}/a b.csv", body)
    zone = S3LandingZone(bucket.url)
    (obj,) = zone.list_flat(DAY_PREFIX)
    data = body.encode()
    assert zone.read_range(obj, 0, 20) == data[:20]
    assert zone.read_range(obj, -8, 8) == data[-8:]
    assert zone.read_range(obj, 0, 10 * len(data)) == data
    assert zone.spark_location(obj) == f"s3://{bucket.name}/landing/{DAY_PREFIX}/a b.csv"
    # Re-uploaded since the listing: the listed version is gone, which the read says.
    bucket.put(f"{DAY_PREFIX}/a b.csv", body + csv("D"))
    with pytest.raises(FileNotFoundError, match="changed or was deleted since it was listed"):
        zone.read_range(obj, 0, 20)
