"""The local landing zone and partition-from-path rules: no Spark needed."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.landing import LocalLandingZone, is_ignored, partition_key_of
from manufacturing_ingest.landing.base import LandedObject


@pytest.mark.parametrize("key, ignored", [
    ("raw/sensor-data/2026/01/15/_SUCCESS", True),
    ("raw/sensor-data/2026/01/15/part-1.csv.tmp", True),
    ("raw/sensor-data/2026/01/15/.part-1.csv.crc", True),
    ("raw/sensor-data/2026/01/15/", True),
    ("raw/sensor-data/2026/01/15/part-1.csv", False),
    ("raw/sensor-data/2026/01/15/part-1.csv.gz", False),
])
def test_markers_and_in_flight_files_are_not_data(key, ignored):
    assert is_ignored(key) is ignored


def _obj(key: str, when: datetime) -> LandedObject:
    return LandedObject(key=key, uri=f"file:///x/{key}", etag="e", size=1, last_modified=when)


def test_partition_comes_from_the_path_else_from_last_modified():
    late_evening = datetime(2026, 1, 16, 23, 30, tzinfo=UTC)
    sensor, quality = get_source("sensor_data"), get_source("quality_metrics")
    assert partition_key_of(sensor, _obj("raw/sensor-data/2026/01/15/a.csv", late_evening)) \
        == "2026-01-15"
    assert partition_key_of(quality, _obj("raw/quality-metrics/2026/01/15/07/a.parquet",
                                          late_evening)) == "2026-01-15-07:00"
    assert partition_key_of(sensor, _obj("raw/sensor-data/loose.csv", late_evening)) \
        == "2026-01-16"
    assert partition_key_of(quality, _obj("raw/quality-metrics/2026/01/15/a.csv", late_evening)) \
        == "2026-01-16-23:00"


def test_partition_listing_finds_dated_and_undated_objects_only(tmp_path: Path):
    zone = LocalLandingZone(tmp_path)
    for key in ["raw/sensor-data/2026/01/15/a.csv", "raw/sensor-data/2026/01/15/sub/b.csv",
                "raw/sensor-data/2026/01/16/c.csv", "raw/sensor-data/undated.csv"]:
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_text("x\n")
    stamp = datetime(2026, 1, 15, 12, tzinfo=UTC).timestamp()
    os.utime(tmp_path / "raw/sensor-data/undated.csv", (stamp, stamp))
    keys = [o.key for o in zone.partition_objects(get_source("sensor_data"), ["2026-01-15"])]
    assert keys == ["raw/sensor-data/2026/01/15/a.csv", "raw/sensor-data/2026/01/15/sub/b.csv",
                    "raw/sensor-data/undated.csv"]

