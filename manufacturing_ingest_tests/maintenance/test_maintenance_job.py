"""The maintenance job in the Dagster definitions, run in-process; the CLI's maintain/history."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from manufacturing_ingest.cli import main
from manufacturing_ingest.orchestration import build_definitions
from manufacturing_ingest.settings import Settings
from manufacturing_ingest_tests.samples import numbered_sensor_csv

DAY = date(2026, 1, 15)


def test_the_job_and_its_daily_schedule_are_in_the_definitions():
    defs = build_definitions(Settings.from_env({}))
    job = defs.get_job_def("table_maintenance")
    schedule = defs.get_schedule_def("table_maintenance_schedule")
    assert schedule.job_name == job.name and schedule.cron_schedule == "30 2 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert job.run_config["ops"]["maintain_tables"]["config"]["vacuum_retention_hours"] == 168


def lake_env(lake) -> dict[str, str]:
    return {"MANUFACTURING_LANDING_URL": str(lake.landing_root),
            "MANUFACTURING_LAKEHOUSE_URL": lake.lakehouse.root}


def small_day(lake, files: int = 3) -> None:
    for i in range(files):
        lake.put(f"raw/sensor-data/2026/01/15/f{i}.csv", numbered_sensor_csv(f"f{i}", 10, DAY))
        lake.ingest("sensor_data", "2026-01-15")


@pytest.mark.spark
def test_running_the_job_reports_file_figures_per_partition(lake):
    small_day(lake)
    defs = build_definitions(Settings.from_env(lake_env(lake)))
    job = defs.get_job_def("table_maintenance")
    config = {"sources": ["sensor_data"], "target_file_mb": 1, "lookback_days": 3650,
              "listing_parallelism": 4}
    result = job.execute_in_process(run_config={"ops": {"maintain_tables": {"config": config}}},
                                    instance=dg.DagsterInstance.ephemeral())
    assert result.success
    (observation,) = [e.event_specific_data.asset_observation
                      for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert observation.asset_key == dg.AssetKey(["manufacturing_bronze", "sensor_data"])
    assert observation.partition == "2026-01-15"
    metadata = {k: v.value for k, v in observation.metadata.items()}
    assert metadata["file_count_before"] == 3 and metadata["file_count"] == 1
    assert metadata["small_file_count"] == 1 and metadata["compacted"] is True
    assert 0 < metadata["mean_file_size_mb"] < 1
    outputs = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    summary = {k: v.value for k, v in outputs[0].step_output_data.metadata.items()}
    assert summary["sensor_data_files_before"] == 3 and summary["sensor_data_files_after"] == 1
    assert summary["file_ledger_files_after"] < summary["file_ledger_files_before"]


@pytest.mark.spark
def test_the_cli_maintains_now_and_history_shows_files_per_partition(lake, monkeypatch,
                                                                     capsys):
    small_day(lake)
    for name, value in {**lake_env(lake), "MANUFACTURING_OPTIMIZE_TARGET_FILE_MB": "1"}.items():
        monkeypatch.setenv(name, value)

    assert main(["maintain", "--since", "2026-01-01", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "2026-01-15: 3 files (3 small)" in dry and "would compact" in dry
    assert "VACUUM would delete 0 files" in dry

    assert main(["maintain", "--source", "sensor_data", "--since", "2026-01-01"]) == 0
    out = capsys.readouterr().out
    assert "manufacturing_bronze/sensor_data 2026-01-15: compacted 3 files to 1" in out

    assert main(["history", "sensor_data"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:1] == ["0"] for line in lines)  # the commit lines are still there
    assert any("OPTIMIZE" in line for line in lines)
    (stats,) = [line for line in lines if line.startswith("2026-01-15 ")]
    assert stats.split()[1:3] == ["1", "1"]  # one file, and it is small (under 256 KB)
