"""`manufacturing-ingest demo` on a clean DAGSTER_HOME: what it did is what the instance (and so
the UI `make dev` opens) holds: materializations of every bronze partition it wrote, a result
of every check, observations of the raw assets, and the run the landing sensor's sweep asked for
the late file. (``ui/test_demo_ui.py`` opens that instance in the browser.)"""

from __future__ import annotations

import json
from collections import Counter

import dagster as dg
from deltalake import DeltaTable

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.orchestration.alerts import alert_sensor
from manufacturing_ingest.orchestration.demo import LATE_SOURCE, VOLUMES
from manufacturing_ingest.orchestration.names import (
    BACKLOG_CHECK,
    PARTITION_CHECKS,
    QUALITY_CHECK,
    RANGE_START_TAG,
    bronze_asset_key,
    raw_asset_key,
)
from manufacturing_ingest.orchestration.report import latest_check_results
from manufacturing_ingest.orchestration.resources import AlertSinksResource
from manufacturing_ingest_tests.ui.conftest import REPO


def _partitions(spec, days) -> list[str]:
    first, last = spec.partitions.widen(days[0].isoformat(), days[-1].isoformat())
    partitions = spec.partitions.dagster_partitions()
    return partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))


def _rows_per_day(spec) -> int:
    files, rows = VOLUMES[spec.name]
    return files * rows * (24 if spec.name == "quality_metrics" else 1)


def test_every_bronze_partition_the_demo_wrote_is_materialized_in_the_instance(demo):
    for spec in CATALOG.values():
        expected = set(_partitions(spec, demo.days))
        assert len(expected) == (48 if spec.name == "quality_metrics" else 2)
        assert demo.instance.get_materialized_partitions(bronze_asset_key(spec)) == expected, \
            spec.name
        if spec.name == LATE_SOURCE:
            continue  # its latest materialization is the late file's run (below)
        # Each day by its own run: the latest materialization holds the second day's rows.
        latest = demo.instance.get_latest_materialization_event(bronze_asset_key(spec))
        assert latest.asset_materialization.metadata["records"].value == _rows_per_day(spec)


def test_the_late_file_is_found_by_the_sweep_and_its_rows_land_once_under_its_day(demo):
    spec = get_source(LATE_SOURCE)
    good, bad = demo.days
    _, rows = VOLUMES[spec.name]
    runs = demo.instance.get_run_records(filters=dg.RunsFilter(tags={
        "dagster/sensor_name": f"{spec.name}_landing_sensor"}))
    (run,) = [r.dagster_run for r in runs]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags[RANGE_START_TAG] == good.isoformat()
    assert run.tags["dagster/run_key"].startswith(f"{spec.name}:{good.isoformat()}:")
    latest = demo.instance.get_latest_materialization_event(bronze_asset_key(spec))
    assert latest.run_id == run.run_id
    metadata = {k: v.value for k, v in latest.asset_materialization.metadata.items()}
    assert (metadata["records"], metadata["files_processed"]) == (rows, 1)
    # The table: the late file's rows under its own day, and each file's rows once.
    table = DeltaTable(str(demo.root / "lakehouse" / "manufacturing_bronze" / spec.name))
    columns = [spec.partition_column, "_source_file"]
    data = table.to_pyarrow_table(columns=columns).to_pylist()
    by_day = Counter(str(row[spec.partition_column]) for row in data)
    assert by_day == {good.isoformat(): _rows_per_day(spec) + rows,
                      bad.isoformat(): _rows_per_day(spec)}
    late = [f for f in Counter(row["_source_file"] for row in data) if "-late." in f]
    assert len(late) == 1 and f"/{good:%Y/%m/%d}/" in late[0], late
    assert f"late file: {demo.root.as_uri()}/landing/" in demo.out
    assert f"{late[0].rpartition('/')[2]} landed after {good} was ingested" in demo.out
    assert f"run {run.run_id[:8]} took its {rows} rows" in demo.out


def test_every_check_has_a_result_and_the_bad_day_fails_quality(demo):
    good, bad = demo.days
    for spec in CATALOG.values():
        results = latest_check_results(demo.instance, spec, good.isoformat(), bad.isoformat())
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
    good, _ = demo.days
    for spec in CATALOG.values():
        records = demo.instance.fetch_observations(raw_asset_key(spec), limit=10).records
        observed = sorted((r.asset_observation.metadata["partitions"].value,
                           r.asset_observation.metadata["files"].value) for r in records)
        files, _ = VOLUMES[spec.name]
        per_day = files * (24 if spec.name == "quality_metrics" else 1)
        expected = [(", ".join(_partitions(spec, [day])), per_day) for day in demo.days]
        if spec.name == LATE_SOURCE:
            expected.append((good.isoformat(), 1))
        assert observed == sorted(expected), spec.name


def test_the_demo_says_where_to_look_and_prints_no_noise(demo):
    _, bad = demo.days
    sensor = get_source("sensor_data")
    assert f"manufacturing_bronze/sensor_data → Checks: quality failed on {bad}" in demo.out
    assert "http://127.0.0.1:3000" in demo.out and "make dev" in demo.out
    assert f"{sensor.table_name}" in demo.out
    assert "did not yield" not in demo.out and " WARN " not in demo.out
    # The instance is the project's (dagster.yaml copied in): no telemetry banner either.
    assert "Telemetry" not in demo.out + demo.err
    home = demo.root / "dagster_home"
    assert (home / "dagster.yaml").read_text() == (REPO / "dagster.yaml").read_text()


def test_the_bad_days_alert_reaches_the_log_sink_once(demo):
    _, bad = demo.days
    lines = [json.loads(line[line.index("{"):]) for line in demo.err.splitlines()
             if '"alert_id"' in line]
    assert [(a["asset"], a["check"], a["partition"], a["severity"]) for a in lines] == [
        ("manufacturing_bronze/sensor_data", QUALITY_CHECK, bad.isoformat(), "error")], \
        demo.err[-3000:]
    assert "1 new alerts" in demo.out and "delivered 1 to log" in demo.out

    # The daemon's first tick under `make dev` (no cursor yet) finds the alert already sent.
    first_tick = alert_sensor(list(CATALOG.values()))(dg.build_sensor_context(
        instance=demo.instance, resources={"alerts": AlertSinksResource()}))
    assert "0 new alerts" in first_tick.skip_reason.skip_message, first_tick.skip_reason
