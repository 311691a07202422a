"""`manufacturing-ingest demo` on a clean DAGSTER_HOME: what it did is what the instance (and so
the UI `make dev` opens) holds: materializations of every bronze partition it wrote, a result
of every check, and observations of the raw assets."""

from __future__ import annotations

import json
import os
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import dagster as dg
import pytest

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.cli import main
from manufacturing_ingest.orchestration.alerts import alert_sensor
from manufacturing_ingest.orchestration.demo import VOLUMES
from manufacturing_ingest.orchestration.names import (
    BACKLOG_CHECK,
    PARTITION_CHECKS,
    QUALITY_CHECK,
    bronze_asset_key,
    raw_asset_key,
)
from manufacturing_ingest.orchestration.report import latest_check_results
from manufacturing_ingest.orchestration.resources import AlertSinksResource

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, spark):
    """One demo run (half a minute), shared by the module's tests:
    (instance, stdout, stderr, days)."""
    root = tmp_path_factory.mktemp("demo")
    home = root / "dagster_home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MANUFACTURING_LANDING_URL", str(root / "landing"))
        patch.setenv("MANUFACTURING_LAKEHOUSE_URL", str(root / "lakehouse"))
        patch.setenv("DAGSTER_HOME", str(home))
        (root / "dagster.yaml").write_bytes((REPO / "dagster.yaml").read_bytes())
        patch.chdir(root)  # as `make demo` runs it: beside the project's dagster.yaml
        today = datetime.now(UTC).date()
        days = [today - timedelta(days=2), today - timedelta(days=1)]
        for name in [n for n in os.environ if n.startswith("MANUFACTURING_ALERT")]:
            patch.delenv(name)  # the log line only: no webhook or mail from a test
        out, err = StringIO(), StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["demo"])
        assert code == 0, out.getvalue() + err.getvalue()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance, out.getvalue(), err.getvalue(), days


def _partitions(spec, days) -> list[str]:
    first, last = spec.partitions.widen(days[0].isoformat(), days[-1].isoformat())
    partitions = spec.partitions.dagster_partitions()
    return partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))


def test_every_bronze_partition_the_demo_wrote_is_materialized_in_the_instance(demo):
    instance, _, _, days = demo
    for spec in CATALOG.values():
        expected = set(_partitions(spec, days))
        assert len(expected) == (48 if spec.name == "quality_metrics" else 2)
        assert instance.get_materialized_partitions(bronze_asset_key(spec)) == expected, spec.name
        latest = instance.get_latest_materialization_event(bronze_asset_key(spec))
        files, rows = VOLUMES[spec.name]
        expected_rows = files * rows * (24 if spec.name == "quality_metrics" else 1) * 2
        assert latest.asset_materialization.metadata["records"].value == expected_rows


def test_every_check_has_a_result_and_the_bad_day_fails_quality(demo):
    instance, _, _, (good, bad) = demo
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
    instance, _, _, days = demo
    for spec in CATALOG.values():
        records = instance.fetch_observations(raw_asset_key(spec), limit=10).records
        observed = {r.asset_observation.metadata["partitions"].value:
                    r.asset_observation.metadata["files"].value for r in records}
        files, _ = VOLUMES[spec.name]
        per_day = files * (24 if spec.name == "quality_metrics" else 1)
        assert observed == {", ".join(_partitions(spec, [day])): per_day for day in days}, \
            spec.name


def test_the_demo_says_where_to_look_and_prints_no_noise(demo):
    _, out, err, (_, bad) = demo
    sensor = get_source("sensor_data")
    assert f"manufacturing_bronze/sensor_data → Checks: quality failed on {bad}" in out
    assert "http://127.0.0.1:3000" in out and "make dev" in out
    assert f"{sensor.table_name}" in out
    assert "did not yield" not in out and " WARN " not in out
    # The instance is the project's (dagster.yaml copied in): no telemetry banner either.
    assert "Telemetry" not in out + err
    home = Path(demo[0].root_directory)
    assert (home / "dagster.yaml").read_text() == (REPO / "dagster.yaml").read_text()


def test_the_bad_days_alert_reaches_the_log_sink_once(demo):
    _, out, err, (_, bad) = demo
    lines = [json.loads(line[line.index("{"):]) for line in err.splitlines()
             if '"alert_id"' in line]
    assert [(a["asset"], a["check"], a["partition"], a["severity"]) for a in lines] == [
        ("manufacturing_bronze/sensor_data", QUALITY_CHECK, bad.isoformat(), "error")], err[-3000:]
    assert "1 new alerts" in out and "delivered 1 to log" in out

    # The daemon's first tick under `make dev` (no cursor yet) finds the alert already sent.
    first_tick = alert_sensor(list(CATALOG.values()))(dg.build_sensor_context(
        instance=demo[0], resources={"alerts": AlertSinksResource()}))
    assert "0 new alerts" in first_tick.skip_reason.skip_message, first_tick.skip_reason
