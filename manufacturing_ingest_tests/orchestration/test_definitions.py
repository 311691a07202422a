"""The Dagster surface: keys, partitions, lineage, and a real materialization with metadata."""

from __future__ import annotations

import importlib
import subprocess
import sys
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

BRONZE_KEYS = {
    dg.AssetKey(["manufacturing_bronze", "sensor_data"]),
    dg.AssetKey(["manufacturing_bronze", "equipment_logs"]),
    dg.AssetKey(["manufacturing_bronze", "quality_metrics"]),
}


def test_definitions_validate_from_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m",
         "manufacturing_ingest.definitions"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_asset_keys_partitions_and_lineage_are_the_contract():
    defs = importlib.import_module("manufacturing_ingest.definitions").defs
    graph = defs.resolve_asset_graph()
    assert BRONZE_KEYS <= set(graph.get_all_asset_keys())
    for key in BRONZE_KEYS:
        node = graph.get(key)
        upstream = {k.to_user_string() for k in node.parent_keys}
        assert upstream == {f"raw/{key.path[-1]}"}
        partitions = node.partitions_def
        assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
        assert partitions.timezone == "UTC"
        expected_cron = "0 * * * *" if key.path[-1] == "quality_metrics" else "0 0 * * *"
        assert partitions.cron_schedule == expected_cron
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_names_the_instance_keeps_are_stable():
    # Runs, check results, sensor cursors and schedules in an instance refer to these names;
    # renaming one orphans what the instance holds (orchestration/names.py spells them).
    defs = importlib.import_module("manufacturing_ingest.definitions").defs
    graph = defs.resolve_asset_graph()
    sources = ("sensor_data", "equipment_logs", "quality_metrics")
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        *(f"manufacturing_bronze/{s}" for s in sources), *(f"raw/{s}" for s in sources)}
    assert {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys} == {
        (f"manufacturing_bronze/{s}", check)
        for s in sources for check in ("quality", "schema_drift", "landing_backlog")}
    assert {a.node_def.name for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)} \
        == {f"manufacturing_bronze__{s}" for s in sources}
    assert {s.name for s in defs.sensors or []} == {
        "alert_sensor", *(f"{s}_landing_sensor" for s in sources)}
    assert {j.name for j in defs.jobs or []} == {"landing_backlog_checks", "table_maintenance",
                                                 "bronze_stream"}
    assert {s.name for s in defs.schedules or []} == {"landing_backlog_checks_schedule",
                                                     "table_maintenance_schedule"}
    assert {n.name for n in defs.get_job_def("table_maintenance").nodes} == {"maintain_tables"}
    assert {n.name for n in defs.get_job_def("bronze_stream").nodes} == {
        "stream_landing_to_bronze"}


def test_resource_keys_are_the_same_in_every_environment(monkeypatch):
    from manufacturing_ingest.orchestration.resources import resources_for
    from manufacturing_ingest.settings import Settings
    from manufacturing_ingest_tests.orchestration.test_environments import ENVIRONMENTS

    keys = {env: set(resources_for(Settings.from_env(environ)))
            for env, environ in ENVIRONMENTS.items()}
    assert all(k == {"spark", "step_launcher", "remote_job", "landing", "lakehouse", "alerts"}
               for k in keys.values())


@pytest.mark.spark
def test_materializing_a_partition_reports_monitoring_metadata(lake):
    generate(lake.landing_root, "sensor_data", date(2026, 1, 15),
             options=GenerateOptions(files=2, rows_per_file=30, anomaly_rate=0.1))
    sensor = bronze_asset(get_source("sensor_data"))
    result = dg.materialize(
        [sensor, *landing_assets(CATALOG.values())],
        selection=[sensor.key],
        partition_key="2026-01-15",
        resources={
            "spark": SparkResource(master="local[2]"), "step_launcher": InProcessStep(),
        "remote_job": RemoteJobResource(),
            "landing": LandingZoneResource(url=str(lake.landing_root)),
            "lakehouse": LakehouseResource(url=lake.lakehouse.root),
        },
    )
    assert result.success
    (event,) = result.asset_materializations_for_node("manufacturing_bronze__sensor_data")
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert metadata["records"] == 60 and metadata["files_processed"] == 2
    assert metadata["files_failed"] == 0 and metadata["delta_version"] == 0
    assert metadata["records_per_second"] > 0
    assert metadata["landing_to_commit_seconds_max"] > 0
    assert metadata["table_location"].endswith("manufacturing_bronze/sensor_data")
    assert event.partition == "2026-01-15"
    assert lake.table("sensor_data").count() == 60



def test_a_range_runs_metadata_says_what_each_partition_received():
    """Dagster puts a range run's metadata on every partition it materializes; the metadata
    says so (``run_partitions``) and gives each partition's own rows."""
    from manufacturing_ingest.engine.delta import TableRef
    from manufacturing_ingest.engine.report import FileOutcome, IngestMode, IngestReport, Outcome
    from manufacturing_ingest.orchestration.bronze import report_metadata

    def outcome(day: str, rows: int, status: Outcome = Outcome.COMMITTED) -> FileOutcome:
        return FileOutcome(f"file:///landing/{day}/{rows}.csv", day, status, rows=rows)

    report = IngestReport("sensor_data", ["2026-01-15", "2026-01-16", "2026-01-17"],
                          IngestMode.INCREMENTAL, TableRef.at("/lake/sensor_data"), outcomes=[
                              outcome("2026-01-15", 10), outcome("2026-01-15", 5),
                              outcome("2026-01-16", 7), outcome("2026-01-17", 9, Outcome.FAILED),
                              outcome("2026-01-17", 4, Outcome.SKIPPED)])
    metadata = report_metadata(report)
    assert metadata["records"] == 22 and metadata["run_partitions"] == 3
    assert metadata["records_by_partition"].value == {"2026-01-15": 15, "2026-01-16": 7}

    one_day = IngestReport("sensor_data", ["2026-01-15"], IngestMode.INCREMENTAL,
                           TableRef.at("/lake/sensor_data"), outcomes=[outcome("2026-01-15", 10)])
    assert "run_partitions" not in report_metadata(one_day)
