"""Catalog bronze tables that Databricks' Predictive Optimization maintains are left to it.

Predictive Optimization exists only on Databricks, for Unity Catalog managed tables: no local
table can have it. What runs here on real local Spark and Delta is everything else: the decision
on the fields of ``DESCRIBE TABLE EXTENDED`` as Databricks documents them (``Type``, and
``Predictive Optimization``: ``ENABLE``/``DISABLE``, often "inherited from" a catalog or the
metastore), read from a real catalog table of the session catalog (``spark_catalog``, as
``MANUFACTURING_CATALOG`` makes the bronze tables) with that one field added where a test says
so; and what the job, the CLI and the report do with the answer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.maintenance import (
    MaintenanceOptions,
    Skipped,
    describe_table,
    detailed_fields,
    left_to_predictive_optimization,
    maintain_bookkeeping,
    maintain_source,
    predictive_optimization_state,
)
from manufacturing_ingest.settings import ConfigurationError, PredictiveOptimization, Settings
from manufacturing_ingest_tests.samples import numbered_sensor_csv

SENSOR = get_source("sensor_data")
DAY = date(2026, 1, 15)
LATER = datetime(2026, 1, 20, 3, tzinfo=UTC)
TABLE = "spark_catalog.manufacturing_bronze.sensor_data"
# What Databricks shows for a managed table whose catalog has Predictive Optimization enabled.
ENABLED = "ENABLE (inherited from CATALOG spark_catalog)"


def options(mode: PredictiveOptimization = PredictiveOptimization.AUTO, **changes
            ) -> MaintenanceOptions:
    return MaintenanceOptions(target_file_bytes=1 << 20, lookback=timedelta(days=3650),
                              listing_parallelism=4, predictive_optimization=mode, **changes)


def as_databricks_shows_it(state: str):
    """``describe_table`` of the real table, with the field Databricks adds set to ``state``."""
    def describe(spark, table):
        return {**describe_table(spark, table), "Predictive Optimization": state}
    return describe


def never_asked(spark, table):
    raise AssertionError("the table's fields were read")


# DESCRIBE TABLE EXTENDED rows as Databricks prints them: the columns, the partition columns,
# then the detailed fields (a column named "Type" must not pass for the table's type).
def rows(type_: str, state: str | None) -> list[tuple[str, str]]:
    detail = [("Catalog", "main"), ("Database", "manufacturing_bronze"),
              ("Table", "sensor_data"), ("Type", type_), ("Location", "s3://uc/tables/abc"),
              ("Provider", "delta"), ("Owner", "bronze-sp")]
    if state is not None:
        detail.append(("Predictive Optimization", state))
    return [("Type", "string"), ("sensor_id", "string"), ("_partition_date", "date"),
            ("", ""), ("# Partition Information", ""), ("# col_name", "data_type"),
            ("_partition_date", "date"), ("", ""), ("# Detailed Table Information", ""),
            *detail]


@pytest.mark.parametrize("type_, state, left", [
    ("MANAGED", "ENABLE (inherited from METASTORE metastore_aws_eu_west_1)", True),
    ("MANAGED", "ENABLE", True),
    ("MANAGED", "DISABLE (inherited from CATALOG main)", False),
    ("MANAGED", "DISABLE", False),
    ("MANAGED", None, False),  # no such field: not Databricks, nothing runs it
    ("EXTERNAL", "ENABLE (inherited from CATALOG main)", False),  # managed tables only
])
def test_the_decision_follows_the_fields_databricks_shows(type_, state, left):
    fields = detailed_fields(rows(type_, state))
    assert fields["Type"] == type_ and fields["Location"] == "s3://uc/tables/abc"
    assert predictive_optimization_state(fields) == (state if left else None)
    assert predictive_optimization_state(detailed_fields(rows("VIEW", None))) is None


@pytest.fixture
def catalog_lake(lake, spark, tmp_path):
    """``lake`` with its bronze tables in the session catalog (``MANUFACTURING_CATALOG=
    spark_catalog``), one closed day of three small files in sensor_data."""
    spark.sql("CREATE SCHEMA spark_catalog.manufacturing_bronze "
              f"LOCATION '{tmp_path / 'catalog' / 'manufacturing_bronze'}'")
    try:
        lakehouse = Lakehouse(lake.lakehouse.root, catalog="spark_catalog")
        for i in range(3):
            lake.put(f"raw/sensor-data/{DAY:%Y/%m/%d}/f{i}.csv",
                     numbered_sensor_csv(f"f{i}", 10, DAY))
            BronzeIngestor(spark, SENSOR, lake.zone, lakehouse).ingest([DAY.isoformat()])
        lake.catalog_lakehouse = lakehouse
        yield lake
    finally:
        spark.sql("DROP SCHEMA IF EXISTS spark_catalog.manufacturing_bronze CASCADE")


def operations(spark, table) -> list[str]:
    return [c["operation"] for c in delta.commits_after(spark, table, -1)]


@pytest.mark.spark
def test_a_catalog_table_with_predictive_optimization_is_left_to_it(catalog_lake, spark):
    table = delta.TableRef.named(TABLE)
    lakehouse = catalog_lake.catalog_lakehouse
    # The real table: a managed table of the session catalog, without the Databricks field.
    fields = describe_table(spark, table)
    assert fields["Type"] == "MANAGED" and "Predictive Optimization" not in fields
    assert left_to_predictive_optimization(spark, table, options()) is None
    before = operations(spark, table)

    steps = []
    report = maintain_source(spark, SENSOR, lakehouse, options(), now=LATER,
                             on_step=steps.append, describe=as_databricks_shows_it(ENABLED))

    assert isinstance(report.skipped, Skipped) and steps == [report.skipped]
    assert report.compactions == [] and report.vacuum is None
    assert report.skipped.summary == ("skipped: managed by Predictive Optimization "
                                      f"(Predictive Optimization: {ENABLED})")
    assert report.skipped.message().startswith(
        f"{TABLE}: skipped: managed by Predictive Optimization (Predictive Optimization: "
        f"{ENABLED}); OPTIMIZE and VACUUM are left to Databricks")
    assert operations(spark, table) == before  # no OPTIMIZE, no VACUUM commit
    assert spark.table(TABLE).count() == 30

    # Disabled on the table: this job's, as is every table with MANUFACTURING_..._=off.
    off = maintain_source(spark, SENSOR, lakehouse, options(PredictiveOptimization.OFF),
                          now=LATER, describe=as_databricks_shows_it(ENABLED))
    assert off.skipped is None and off.compactions[0].compacted and off.vacuum is not None
    assert operations(spark, table)[:2] == ["VACUUM END", "VACUUM START"]
    assert "OPTIMIZE" in operations(spark, table)
    disabled = maintain_source(spark, SENSOR, lakehouse, options(), now=LATER,
                               describe=as_databricks_shows_it("DISABLE"))
    assert disabled.skipped is None and disabled.vacuum is not None


@pytest.mark.spark
def test_on_skips_catalog_tables_without_asking_and_path_tables_are_always_maintained(
        catalog_lake, spark):
    on = options(PredictiveOptimization.ON)
    report = maintain_source(spark, SENSOR, catalog_lake.catalog_lakehouse, on, now=LATER,
                             describe=never_asked)
    assert report.skipped.reason == "MANUFACTURING_PREDICTIVE_OPTIMIZATION=on"
    # The ledger and the schema log are path tables: never Predictive Optimization's.
    ledger, _ = maintain_bookkeeping(spark, catalog_lake.lakehouse, on)
    assert ledger.skipped is None and ledger.vacuum is not None
    assert left_to_predictive_optimization(spark, catalog_lake.lakehouse.ledger_path, on,
                                           never_asked) is None


@pytest.mark.spark
def test_the_skip_says_when_predictive_optimization_keeps_files_for_less_long(catalog_lake,
                                                                             spark):
    lakehouse = catalog_lake.catalog_lakehouse
    month = options(vacuum_retention=timedelta(hours=720), zorder=True)
    report = maintain_source(spark, SENSOR, lakehouse, month, now=LATER,
                             describe=as_databricks_shows_it(ENABLED))
    shorter, no_zorder = report.skipped.notes
    assert shorter.startswith("its VACUUM keeps replaced files for "
                              "delta.deletedFileRetentionDuration (interval 1 weeks), less than "
                              "the 720 hours of MANUFACTURING_VACUUM_RETENTION_HOURS")
    assert "does not Z-ORDER" in no_zorder and shorter in report.skipped.message()
    spark.sql(f"ALTER TABLE {TABLE} SET TBLPROPERTIES "
              "('delta.deletedFileRetentionDuration' = 'interval 30 days')")
    kept = maintain_source(spark, SENSOR, lakehouse, month, now=LATER,
                           describe=as_databricks_shows_it(ENABLED))
    assert kept.skipped.notes == (no_zorder,)
    assert maintain_source(spark, SENSOR, lakehouse, options(), now=LATER,
                           describe=as_databricks_shows_it(ENABLED)).skipped.notes == ()


@pytest.mark.spark
def test_the_job_reports_the_skip_in_its_log_and_metadata(catalog_lake, spark):
    from manufacturing_ingest.orchestration import build_definitions

    settings = Settings.from_env({"MANUFACTURING_LANDING_URL": str(catalog_lake.landing_root),
                                  "MANUFACTURING_LAKEHOUSE_URL": catalog_lake.lakehouse.root,
                                  "MANUFACTURING_CATALOG": "spark_catalog",
                                  "MANUFACTURING_PREDICTIVE_OPTIMIZATION": "on"})
    job = build_definitions(settings).get_job_def("table_maintenance")
    assert job.run_config["ops"]["maintain_tables"]["config"]["predictive_optimization"] == "on"
    # The job's own config, from the settings, as its schedule runs it.
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(instance=instance)

    assert result.success
    assert not [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    summary = {k: v.value for k, v in output.step_output_data.metadata.items()}
    assert summary["sensor_data_maintenance"] == (
        "skipped: managed by Predictive Optimization (MANUFACTURING_PREDICTIVE_OPTIMIZATION=on)")
    assert "sensor_data_files_before" not in summary
    assert summary["file_ledger_files_after"] >= 1  # the bookkeeping is still maintained
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(f"{TABLE}: skipped: managed by Predictive Optimization" in m for m in logged)
    assert "OPTIMIZE" not in operations(spark, delta.TableRef.named(TABLE))


@pytest.mark.spark
def test_the_cli_prints_the_skip_instead_of_maintaining(catalog_lake, monkeypatch, capsys):
    from manufacturing_ingest.cli import main

    for name, value in {"MANUFACTURING_LANDING_URL": str(catalog_lake.landing_root),
                        "MANUFACTURING_LAKEHOUSE_URL": catalog_lake.lakehouse.root,
                        "MANUFACTURING_CATALOG": "spark_catalog",
                        "MANUFACTURING_PREDICTIVE_OPTIMIZATION": "on"}.items():
        monkeypatch.setenv(name, value)
    assert main(["maintain", "--source", "sensor_data", "--since", "2026-01-01"]) == 0
    out = capsys.readouterr().out
    assert f"{TABLE}: skipped: managed by Predictive Optimization" in out
    assert "no table yet" not in out and "compacted" not in out


@pytest.mark.parametrize("environ, says", [
    ({"MANUFACTURING_PREDICTIVE_OPTIMIZATION": "always"},
     "MANUFACTURING_PREDICTIVE_OPTIMIZATION='always' is not one of auto, on, off"),
    ({"MANUFACTURING_PREDICTIVE_OPTIMIZATION": "on"},
     "MANUFACTURING_PREDICTIVE_OPTIMIZATION=on concerns catalog tables only"),
])
def test_predictive_optimization_settings_that_cannot_work_are_refused(environ, says):
    with pytest.raises(ConfigurationError, match=says) as raised:
        Settings.from_env(environ)
    assert "\n" not in str(raised.value)
    maintenance = Settings.from_env({"MANUFACTURING_CATALOG": "main"}).maintenance
    assert maintenance.predictive_optimization is PredictiveOptimization.AUTO
    assert Settings.from_env({"MANUFACTURING_CATALOG": "main",
                              "MANUFACTURING_PREDICTIVE_OPTIMIZATION": "OFF"}
                             ).maintenance.predictive_optimization is PredictiveOptimization.OFF
