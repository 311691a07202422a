"""S3 landing zone and landing sensors against a real S3 API server process on loopback."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.landing.s3 import LandingZoneError, S3LandingZone
from manufacturing_ingest.landing.scan import LandingCursor
from manufacturing_ingest.resources import LandingZoneResource
from manufacturing_ingest.sensors import LANDING_SENSORS

pytestmark = pytest.mark.s3

HEADER = "plant_id,line_id,sensor_id,timestamp,temperature,humidity,pressure,vibration\n"
TODAY = datetime.now(UTC)
DAY_PREFIX = f"raw/sensor-data/{TODAY:%Y/%m/%d}"
SENSOR = next(s for s in LANDING_SENSORS if s.name == "sensor_data_landing_sensor")


def csv(*ids: str) -> str:
    return HEADER + "".join(f"P01,L1,{i},{TODAY:%Y-%m-%d}T01:00:00Z,20,40,101,2\n" for i in ids)


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


def test_a_thousand_plus_objects_cross_the_page_boundary_and_none_is_lost(bucket):
    keys = [f"{DAY_PREFIX}/part-{n:05d}.csv" for n in range(1050)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: bucket.put(k, csv(k[-9:-4])), keys))
    zone = S3LandingZone(bucket.url)
    from manufacturing_ingest.landing.scan import scan_landing

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


def test_generate_uploads_sample_files_to_an_s3_landing_zone(bucket, monkeypatch, capsys):
    from manufacturing_ingest.cli import main

    monkeypatch.setenv("MANUFACTURING_LANDING_URL", bucket.url)
    assert main(["generate", "--source", "equipment_logs", "--date", "2026-01-15",
                 "--files", "2", "--rows", "5", "--gzip"]) == 0
    assert f"uploaded 2 files to {bucket.url}" in capsys.readouterr().out
    listed = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix="landing/raw/")
    keys = sorted(item["Key"] for item in listed["Contents"])
    assert len(keys) == 2
    assert all(k.startswith("landing/raw/equipment-logs/2026/01/15/") and k.endswith(".jsonl.gz")
               for k in keys)


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
