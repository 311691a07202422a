"""The quality and schema_drift checks, evaluated per partition in the bronze asset's own run."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.generate import GenerateOptions, generate
from manufacturing_ingest.orchestration.assets import bronze_asset, landing_assets
from manufacturing_ingest.orchestration.resources import (
    InProcessStep,
    LakehouseResource,
    LandingZoneResource,
    RemoteJobResource,
    SparkResource,
)
from manufacturing_ingest_tests.quality.test_rules import sensor_file, sensor_row

SENSOR = get_source("sensor_data")
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def test_every_bronze_asset_declares_its_batch_checks():
    from manufacturing_ingest.definitions import defs

    graph = defs.resolve_asset_graph()
    for spec in CATALOG.values():
        names = {k.name for k in graph.asset_check_keys
                 if k.asset_key == dg.AssetKey(spec.asset_key_path)}
        assert names == {"quality", "schema_drift", "landing_backlog"}


def materialize(lake, instance, *, partition: str | None = None,
                partition_range: tuple[str, str] | None = None) -> dg.ExecuteInProcessResult:
    sensor = bronze_asset(SENSOR)
    tags = ({RANGE_START: partition_range[0], RANGE_END: partition_range[1]}
            if partition_range else None)
    result = dg.materialize(
        [sensor, *landing_assets(CATALOG.values())],
        selection=[sensor.key], partition_key=partition, tags=tags, instance=instance,
        resources={
            "spark": SparkResource(master="local[1]"), "step_launcher": InProcessStep(),
        "remote_job": RemoteJobResource(),
            "landing": LandingZoneResource(url=str(lake.landing_root)),
            "lakehouse": LakehouseResource(url=lake.lakehouse.root),
        },
    )
    assert result.success
    # The step delivers every check output Dagster expects: no "did not yield or return
    # expected outputs {…_quality, …_schema_drift}" line in a healthy run.
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert not [m for m in messages if "did not yield" in m], messages
    return result


def evaluations(result: dg.ExecuteInProcessResult, check: str) -> dict[str, object]:
    return {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == check}


def bad_day(lake, day: str, bad: int, extra_column: bool = False,
            name: str = "readings.csv") -> None:
    """100 readings on ``day``, the first ``bad`` of them hotter than any sensor can read."""
    rows = [sensor_row(i, timestamp=f"{day}T11:{i // 60:02d}:{i % 60:02d}Z",
                       temperature="151" if i < bad else "21.5") for i in range(100)]
    text = sensor_file(rows)
    if extra_column:
        text = "\n".join(line + (",firmware_version" if n == 0 else ",4.2.1")
                         for n, line in enumerate(text.splitlines())) + "\n"
    lake.put(f"raw/sensor-data/{day.replace('-', '/')}/{name}", text)


@pytest.mark.spark
def test_good_data_passes_and_a_rerun_checks_nothing(lake):
    instance = dg.DagsterInstance.ephemeral()
    generate(lake.landing_root, "sensor_data", date(2026, 1, 15),
             options=GenerateOptions(files=2, rows_per_file=100, anomaly_rate=0))
    first = materialize(lake, instance, partition="2026-01-15")
    check = evaluations(first, "quality")["2026-01-15"]
    assert check.passed and check.metadata["rows_checked"].value == 200
    assert check.metadata["error_rate"].value == 0 and check.metadata["delta_version"].value == 0
    assert check.metadata["failing_rows_by_rule"].value["temperature_range"] == 0
    assert evaluations(first, "schema_drift")["2026-01-15"].passed

    rerun = evaluations(materialize(lake, instance, partition="2026-01-15"), "quality")
    assert rerun["2026-01-15"].passed
    assert rerun["2026-01-15"].description.startswith("nothing to check")
    assert rerun["2026-01-15"].metadata["rows_checked"].value == 0


@pytest.mark.spark
def test_a_batch_committed_by_a_run_that_stopped_before_its_checks_is_checked_next(
        lake, monkeypatch):
    from manufacturing_ingest.orchestration import bronze

    bad_day(lake, "2026-01-15", bad=7)
    instance = dg.DagsterInstance.ephemeral()
    evaluate = bronze.evaluate_batch

    def crash(*args, **kwargs):
        raise RuntimeError("the run worker died after the commit")

    monkeypatch.setattr(bronze, "evaluate_batch", crash)
    with pytest.raises(RuntimeError, match="died after the commit"):
        materialize(lake, instance, partition="2026-01-15")
    assert lake.table("sensor_data").count() == 100  # committed, never checked
    monkeypatch.setattr(bronze, "evaluate_batch", evaluate)

    # The next run has nothing new, and checks the batch the stopped run left unchecked.
    check = evaluations(materialize(lake, instance, partition="2026-01-15"),
                        "quality")["2026-01-15"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["rows_checked"].value == 100
    assert check.metadata["failing_rows"].value == 7 and check.metadata["delta_version"].value == 0
    assert "committed by an earlier run that stopped before checking it" in check.description

    # Once checked, it is not checked again; the result says which batch is the last checked.
    again = evaluations(materialize(lake, instance, partition="2026-01-15"),
                        "quality")["2026-01-15"]
    assert again.passed and again.description.startswith("nothing to check")
    assert again.metadata["last_checked_delta_version"].value == 0
    after = evaluations(materialize(lake, instance, partition="2026-01-15"),
                        "quality")["2026-01-15"]
    assert after.metadata["rows_checked"].value == 0


@pytest.mark.spark
def test_severity_follows_the_error_rate_per_partition_of_a_range_run(lake):
    bad_day(lake, "2026-01-15", bad=0)
    bad_day(lake, "2026-01-16", bad=4)
    bad_day(lake, "2026-01-17", bad=6)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(lake, instance, partition_range=("2026-01-15", "2026-01-18"))
    quality = evaluations(result, "quality")
    assert {k: e.passed for k, e in quality.items()} == {
        "2026-01-15": True, "2026-01-16": False, "2026-01-17": False, "2026-01-18": True}
    assert quality["2026-01-16"].severity == dg.AssetCheckSeverity.WARN
    assert quality["2026-01-17"].severity == dg.AssetCheckSeverity.ERROR
    warn = quality["2026-01-16"].metadata
    assert warn["failing_rows"].value == 4 and warn["error_rate"].value == 0.04
    examples = warn["failing_examples"].value["temperature_range"]
    assert len(examples) == 4 and examples[0]["_source_file"].endswith("/16/readings.csv")
    assert quality["2026-01-18"].description.startswith("nothing to check")

    # The instance keeps each partition's own result.
    key = dg.AssetCheckKey(dg.AssetKey(SENSOR.asset_key_path), "quality")
    statuses = {info.partition_key: info.latest_execution_status.value
                for info in instance.event_log_storage.get_asset_check_partition_info([key])}
    assert statuses == {"2026-01-15": "SUCCEEDED", "2026-01-16": "FAILED",
                        "2026-01-17": "FAILED", "2026-01-18": "SUCCEEDED"}


@pytest.mark.spark
def test_a_file_with_a_new_column_raises_schema_drift_with_the_diff(lake):
    instance = dg.DagsterInstance.ephemeral()
    bad_day(lake, "2026-01-15", bad=0)
    assert evaluations(materialize(lake, instance, partition="2026-01-15"),
                       "schema_drift")["2026-01-15"].passed
    bad_day(lake, "2026-01-15", bad=0, extra_column=True, name="with-firmware.csv")
    drift = evaluations(materialize(lake, instance, partition="2026-01-15"), "schema_drift")
    check = drift["2026-01-15"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["added_columns"].value == {"firmware_version": "string"}
    before = check.metadata["columns_before"].value
    after = check.metadata["columns_after"].value
    assert set(after) - set(before) == {"firmware_version"}
    assert before["temperature"] == after["temperature"] == "double"
    assert check.metadata["delta_version"].value == 1
