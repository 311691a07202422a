"""Files under a valid date folder outside the assets' partitions (before their first day, or in
the future) are never silently left behind: the landing sensor's sweep finds them, the
``landing_backlog`` check fails on them at once with what to do, ``ingest`` refuses their day
with the same advice, and ``MANUFACTURING_PARTITIONS_START`` moves the first day back so older
history loads."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.errors import ConfigurationError, InvalidPartitionError
from manufacturing_ingest.landing import LocalLandingZone
from manufacturing_ingest.landing.sweep import SweepFindings
from manufacturing_ingest.orchestration.resources import LakehouseResource, LandingZoneResource
from manufacturing_ingest.orchestration.runs import partition_keys
from manufacturing_ingest.orchestration.sensors import landing_sensor
from manufacturing_ingest.partitioning import PARTITIONS_START_VAR, partitions_start
from manufacturing_ingest.quality.backlog import landing_backlog
from manufacturing_ingest_tests.samples import numbered_sensor_csv

SPEC = get_source("sensor_data")
BEFORE = "raw/sensor-data/2024/12/31/plc-export.csv"
FUTURE = "raw/sensor-data/2099/01/01/clock-reset.csv"
NOW = datetime.now(UTC)
TODAY = f"raw/sensor-data/{NOW:%Y/%m/%d}/today.csv"


@pytest.fixture
def landed(tmp_path):
    root = tmp_path / "landing"
    for key in (BEFORE, FUTURE, TODAY):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(numbered_sensor_csv("x", 2))
    return root


def _tick(root, tmp_path, instance):
    sensor = landing_sensor(SPEC)
    return sensor(dg.build_sensor_context(instance=instance, resources={
        "landing": LandingZoneResource(url=str(root)),
        "lakehouse": LakehouseResource(url=str(tmp_path / "lakehouse"))}))


def _backlog(root, tmp_path, instance):
    findings = SweepFindings.load(instance.run_storage, SPEC.name)
    return landing_backlog(SPEC, LocalLandingZone(root),
                           str(tmp_path / "lakehouse/_manufacturing_ingest/file_ledger"),
                           swept=findings.objects())


def test_the_sweep_finds_them_and_the_backlog_check_fails_on_them_at_once(landed, tmp_path):
    with dg.DagsterInstance.ephemeral() as instance:
        tick = _tick(landed, tmp_path, instance)
        # Today's file is requested; the two outside the partitions are not (they cannot be).
        assert [r.tags["dagster/asset_partition_range_start"] for r in tick.run_requests] == [
            f"{NOW:%Y-%m-%d}"]
        backlog = _backlog(landed, tmp_path, instance)
    assert backlog.outside == 2
    assert backlog.exceeds(SPEC.backlog_limit)  # at once: waiting will not bring them in
    assert backlog.outside_example.startswith(LocalLandingZone(landed).uri_for(BEFORE))
    assert f"set {PARTITIONS_START_VAR}=2024-12-31" in backlog.outside_example


def test_ingest_refuses_their_day_and_says_what_to_do():
    with pytest.raises(InvalidPartitionError, match=f"set {PARTITIONS_START_VAR}=2024-12-31"):
        partition_keys(SPEC, "2024-12-31", "2024-12-31")
    with pytest.raises(InvalidPartitionError, match="date folder in the future"):
        partition_keys(SPEC, "2099-01-01", "2099-01-01")


def test_moving_the_first_day_back_loads_older_history(landed, tmp_path, monkeypatch):
    monkeypatch.setenv(PARTITIONS_START_VAR, "2024-12-01")
    assert partitions_start().isoformat() == "2024-12-01"
    assert partition_keys(SPEC, "2024-12-31", "2024-12-31") == ["2024-12-31"]
    assert get_source("quality_metrics").partitions.dagster_partitions() \
        .get_first_partition_key() == "2024-12-01-00:00"
    with dg.DagsterInstance.ephemeral() as instance:
        tick = _tick(landed, tmp_path, instance)
        assert sorted(r.tags["dagster/asset_partition_range_start"]
                      for r in tick.run_requests) == ["2024-12-31", f"{NOW:%Y-%m-%d}"]
        backlog = _backlog(landed, tmp_path, instance)
    assert backlog.outside == 1 and "in the future" in backlog.outside_example


@pytest.mark.parametrize("value, said", [("2024-13-01", "is not a date"),
                                         ("yesterday", "is not a date"),
                                         ("2999-01-01", "in the future")])
def test_a_wrong_first_day_is_a_clear_error(monkeypatch, value, said):
    monkeypatch.setenv(PARTITIONS_START_VAR, value)
    with pytest.raises(ConfigurationError, match=said):
        partitions_start()
