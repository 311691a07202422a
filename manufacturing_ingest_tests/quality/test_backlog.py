"""The backlog: landed objects not yet in bronze, against a real S3 API server."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.landing.s3 import S3LandingZone
from manufacturing_ingest.quality.backlog import landing_backlog
from manufacturing_ingest_tests.clock import clear_of_midnight
from manufacturing_ingest_tests.samples import numbered_sensor_csv

pytestmark = pytest.mark.s3

TODAY = datetime.now(UTC)  # set per test by `_today`


@pytest.fixture(autouse=True)
def _today(monkeypatch):
    """Today, taken when the test starts and clear of midnight UTC for its length."""
    monkeypatch.setattr(sys.modules[__name__], "TODAY", clear_of_midnight())


def test_backlog_check_fails_when_an_object_waits_over_an_hour(bucket, tmp_path):
    bucket.put(f"raw/sensor-data/{TODAY:%Y/%m/%d}/waiting.csv", numbered_sensor_csv("w", 3, TODAY))
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



def test_backlog_counts_objects_under_folders_that_are_no_date(bucket, tmp_path):
    bucket.put("raw/sensor-data/2026/02/30/a.csv", numbered_sensor_csv("f", 2, TODAY))
    bucket.put("raw/sensor-data/2026/11/20.csv", numbered_sensor_csv("d", 2, TODAY))
    backlog = landing_backlog(get_source("sensor_data"), S3LandingZone(bucket.url),
                              str(tmp_path / "lakehouse/_manufacturing_ingest/file_ledger"))
    assert (backlog.uncommitted, backlog.listed) == (2, 2)
