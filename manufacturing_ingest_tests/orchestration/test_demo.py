"""`manufacturing-ingest demo` on a clean DAGSTER_HOME: what it did is what the instance (and so
the UI `make dev` opens) holds: materializations of every bronze partition it wrote, a result
of every check, and observations of the raw assets."""

from __future__ import annotations

from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from io import StringIO

import dagster as dg
import pytest

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.cli import main
from manufacturing_ingest.orchestration.demo import VOLUMES
from manufacturing_ingest.orchestration.names import (
    BACKLOG_CHECK,
    PARTITION_CHECKS,
    QUALITY_CHECK,
    bronze_asset_key,
    raw_asset_key,
)
from manufacturing_ingest.orchestration.report import latest_check_results


@pytest.fixture(scope="module")
def demo(tmp_path_factory, spark):
    """One demo run (about a minute), shared by the module's tests: (home, stdout, days)."""
    root = tmp_path_factory.mktemp("demo")
    home = root / "dagster_home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MANUFACTURING_LANDING_URL", str(root / "landing"))
        patch.setenv("MANUFACTURING_LAKEHOUSE_URL", str(root / "lakehouse"))
        patch.setenv("DAGSTER_HOME", str(home))
        patch.chdir(root)
        today = datetime.now(UTC).date()
        days = [today - timedelta(days=2), today - timedelta(days=1)]
        out = StringIO()
        with redirect_stdout(out):
            code = main(["demo"])
        assert code == 0, out.getvalue()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance, out.getvalue(), days


def _partitions(spec, days) -> list[str]:
    first, last = spec.partitions.widen(days[0].isoformat(), days[-1].isoformat())
    partitions = spec.partitions.dagster_partitions()
    return partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))


def test_every_bronze_partition_the_demo_wrote_is_materialized_in_the_instance(demo):
    instance, _, days = demo
    for spec in CATALOG.values():
        expected = set(_partitions(spec, days))
        assert len(expected) == (48 if spec.name == "quality_metrics" else 2)
        assert instance.get_materialized_partitions(bronze_asset_key(spec)) == expected, spec.name
        latest = instance.get_latest_materialization_event(bronze_asset_key(spec))
        files, rows = VOLUMES[spec.name]
        expected_rows = files * rows * (24 if spec.name == "quality_metrics" else 1) * 2
        assert latest.asset_materialization.metadata["records"].value == expected_rows


def test_every_check_has_a_result_and_the_bad_day_fails_quality(demo):
    instance, _, (good, bad) = demo
    for spec in CATALOG.values():
        results = latest_check_results(instance, spec, good.isoformat(), bad.isoformat())
        seen = {(r.check, r.partition) for r in results}
        expected = {(check, key) for key in _partitions(spec, [good, bad])
                    for check in PARTITION_CHECKS} | {(BACKLOG_CHECK, None)}
        assert seen == expected, spec.name
        failed = {(r.check, r.partition, r.severity) for r in results if not r.passed}
        if spec.name == "sensor_data":
            assert failed == {(QUALITY_CHECK, bad.isoformat(), "ERROR")}
        else:
            assert failed == set(), spec.name
        backlog = next(r for r in results if r.check == BACKLOG_CHECK)
        assert backlog.description == "every landed object is ingested"


def test_the_raw_assets_are_observed_with_what_landed(demo):
    instance, _, days = demo
    for spec in CATALOG.values():
        records = instance.fetch_observations(raw_asset_key(spec), limit=10).records
        observed = {r.asset_observation.metadata["day"].value:
                    r.asset_observation.metadata["files"].value for r in records}
        files, _ = VOLUMES[spec.name]
        per_day = files * (24 if spec.name == "quality_metrics" else 1)
        assert observed == {day.isoformat(): per_day for day in days}, spec.name


def test_the_demo_says_where_to_look_and_prints_no_noise(demo):
    _, out, (_, bad) = demo
    sensor = get_source("sensor_data")
    assert f"manufacturing_bronze/sensor_data → Checks: quality failed on {bad}" in out
    assert "http://127.0.0.1:3000" in out and "make dev" in out
    assert f"{sensor.table_name}" in out
    assert "did not yield" not in out and " WARN " not in out
