"""The ingest engine against real local Spark and Delta: formats, increments, evolution, replay."""

from __future__ import annotations

import gzip
import json
import time
from datetime import date

import pytest
from deltalake import DeltaTable

from manufacturing_ingest.generate import GenerateOptions, generate
from manufacturing_ingest_tests.samples import CSV_HEADER, DAY, sensor_rows

pytestmark = pytest.mark.spark


@pytest.mark.connect
@pytest.mark.parametrize("source, fmt, compress, partition", [
    ("sensor_data", "csv", False, "2026-01-15"),
    ("sensor_data", "csv", True, "2026-01-15"),
    ("sensor_data", "json", False, "2026-01-15"),
    ("equipment_logs", "json", True, "2026-01-15"),
    ("quality_metrics", "parquet", False, "2026-01-15-10:00"),
    ("quality_metrics", "csv", True, "2026-01-15-10:00"),
])
def test_every_format_lands_every_row_typed(lake, source, fmt, compress, partition):
    options = GenerateOptions(files=3, rows_per_file=150, file_format=fmt, compress=compress)
    generate(lake.landing_root, source, DAY, 10 if "-10:00" in partition else None, options)

    report = lake.ingest(source, partition)

    assert report.files_processed == 3 and report.files_failed == 0
    assert report.records == 450
    table = lake.table(source)
    assert table.count() == 450
    assert table.where("_rescued_data is not null").count() == 0
    first = table.orderBy("_source_file").first()
    assert first["_source_file"].startswith(lake.zone.root_uri + "/raw/")
    assert first["_source_file"].endswith(".gz" if compress else fmt if fmt != "json" else "jsonl")
    types = dict(table.dtypes)
    expected = {"sensor_data": ("temperature", "double"), "equipment_logs": ("status_code",
                "bigint"), "quality_metrics": ("passed", "boolean")}[source]
    assert types[expected[0]] == expected[1]
    assert types["_ingested_at"] == "timestamp"


@pytest.mark.connect
def test_incremental_run_takes_only_new_files_and_an_idle_rerun_commits_nothing(lake):
    lake.put("raw/sensor-data/2026/01/15/a.csv", CSV_HEADER + sensor_rows(10))
    first = lake.ingest("sensor_data", "2026-01-15")
    assert (first.files_processed, first.records) == (1, 10)

    lake.put("raw/sensor-data/2026/01/15/b.csv", CSV_HEADER + sensor_rows(5, start=10))
    second = lake.ingest("sensor_data", "2026-01-15")
    assert (second.files_processed, second.files_skipped, second.records) == (1, 1, 5)
    assert lake.table("sensor_data").count() == 15

    version = DeltaTable(lake.table_path("sensor_data")).version()
    idle = lake.ingest("sensor_data", "2026-01-15")
    assert (idle.files_processed, idle.files_skipped, idle.records) == (0, 2, 0)
    assert idle.delta_version is None
    assert DeltaTable(lake.table_path("sensor_data")).version() == version


def test_a_touched_file_changes_nothing_and_new_bytes_replace_its_rows(lake):
    path = lake.put("raw/sensor-data/2026/01/15/a.csv", CSV_HEADER + sensor_rows(4),
                    mtime=time.time() - 60)
    lake.ingest("sensor_data", "2026-01-15")
    path.touch()  # same bytes, new mtime: a new ETag, the same content
    touched = lake.ingest("sensor_data", "2026-01-15")
    assert touched.records == 0 and lake.table("sensor_data").count() == 4
    lake.put("raw/sensor-data/2026/01/15/a.csv", CSV_HEADER + sensor_rows(6, 10))  # corrected
    corrected = lake.ingest("sensor_data", "2026-01-15")
    assert corrected.records == 6
    unchanged = lake.ingest("sensor_data", "2026-01-15")
    assert unchanged.records == 0
    assert lake.table("sensor_data").count() == 6  # the corrected rows, in place of the old


@pytest.mark.connect
def test_new_column_is_added_old_rows_read_null_and_the_change_is_recorded(lake):
    lake.put("raw/sensor-data/2026/01/15/a.csv", CSV_HEADER + sensor_rows(3))
    lake.ingest("sensor_data", "2026-01-15")
    lake.put("raw/sensor-data/2026/01/15/b.csv",
             CSV_HEADER.rstrip("\n") + ",Firmware Version\n"
             + "".join(line + ",4.2.1\n" for line in sensor_rows(2, 3).splitlines()))

    report = lake.ingest("sensor_data", "2026-01-15")

    assert report.schema_changes == {"firmware_version": "string"}
    table = lake.table("sensor_data")
    assert "firmware_version" in table.columns
    assert table.where("firmware_version is null").count() == 3
    assert table.where("firmware_version = '4.2.1'").count() == 2
    log = lake.spark.read.format("delta").load(lake.lakehouse.schema_log_path).collect()
    assert [(r.column_name, r.column_type, r.table_version) for r in log] == [
        ("firmware_version", "string", report.delta_version)]
    history = DeltaTable(lake.table_path("sensor_data")).history(1)[0]
    assert json.loads(history["userMetadata"])["added_columns"] == {"firmware_version": "string"}


def test_a_column_missing_from_new_files_reads_null(lake):
    header = CSV_HEADER.replace(",vibration", "")
    lake.put("raw/sensor-data/2026/01/15/a.csv",
             header + "".join(",".join(r.split(",")[:-1]) + "\n"
                              for r in sensor_rows(3).splitlines()))
    report = lake.ingest("sensor_data", "2026-01-15")
    assert report.columns_missing_in_files == ["vibration"]
    assert lake.table("sensor_data").where("vibration is null").count() == 3


@pytest.mark.connect
def test_values_that_do_not_fit_the_column_type_are_rescued_not_nulled(lake):
    lake.put("raw/sensor-data/2026/01/15/a.csv", CSV_HEADER
             + "P01,P01-L1,S1,2026-01-15T10:00:00Z,abc,41,101.2,1.5\n"
             + "P01,P01-L1,S2,not-a-time,20.5,41,101.2,1.5\n"
             + "P01,P01-L1,S3,2026-01-15T10:00:00Z,20.5,41,101.2,1.5\n")
    lake.ingest("sensor_data", "2026-01-15")
    rows = {r.sensor_id: r for r in lake.table("sensor_data").collect()}
    assert rows["S1"].temperature is None
    assert json.loads(rows["S1"]._rescued_data) == {"temperature": "abc"}
    assert rows["S2"].timestamp is None
    assert json.loads(rows["S2"]._rescued_data) == {"timestamp": "not-a-time"}
    assert rows["S3"]._rescued_data is None and rows["S3"].temperature == 20.5


@pytest.mark.connect
def test_unreadable_file_fails_with_its_error_is_held_and_lands_once_sent_again(lake):
    lake.put("raw/sensor-data/2026/01/15/good.csv", CSV_HEADER + sensor_rows(6))
    whole = gzip.compress((CSV_HEADER + sensor_rows(50)).encode())
    bad = lake.put("raw/sensor-data/2026/01/15/bad.csv.gz", whole[: len(whole) // 2])

    first = lake.ingest("sensor_data", "2026-01-15")

    assert (first.files_processed, first.files_failed, first.records) == (1, 1, 6)
    (failure,) = first.failures
    assert failure.uri.endswith("bad.csv.gz") and "truncated gzip" in failure.error
    # Its bytes cannot be ingested: held until they change (no second failure, no alert).
    retry = lake.ingest("sensor_data", "2026-01-15")
    assert (retry.files_failed, retry.files_held, retry.files_skipped) == (0, 1, 1)

    bad.write_bytes(whole)  # the plant re-sends the file
    fixed = lake.ingest("sensor_data", "2026-01-15")
    assert (fixed.files_processed, fixed.files_failed, fixed.records) == (1, 0, 50)
    assert lake.table("sensor_data").count() == 56


@pytest.mark.connect
def test_reprocess_rebuilds_one_partition_with_the_same_rows(lake):
    generate(lake.landing_root, "sensor_data", DAY, options=GenerateOptions(files=3,
                                                                            rows_per_file=40))
    generate(lake.landing_root, "sensor_data", date(2026, 1, 16),
             options=GenerateOptions(files=1, rows_per_file=10))
    lake.ingest("sensor_data", "2026-01-15")
    lake.ingest("sensor_data", "2026-01-16")
    before = DeltaTable(lake.table_path("sensor_data")).version()

    report = lake.ingest("sensor_data", "2026-01-15", reprocess=True)

    assert report.mode == "reprocess" and report.records == 120
    assert report.delta_version == before + 1
    table = lake.table("sensor_data")
    assert table.where("_partition_date = '2026-01-15'").count() == 120
    assert table.where("_partition_date = '2026-01-16'").count() == 10
    assert DeltaTable(lake.table_path("sensor_data")).history(1)[0]["operation"] == "WRITE"


@pytest.mark.connect
def test_range_run_spreads_rows_over_their_own_partitions(lake):
    for hour in (9, 10, 11):
        generate(lake.landing_root, "quality_metrics", DAY, hour,
                 GenerateOptions(files=1, rows_per_file=20 + hour))
    report = lake.ingest("quality_metrics", "2026-01-15-09:00", "2026-01-15-10:00",
                         "2026-01-15-11:00")
    assert report.records == 29 + 30 + 31
    counts = {r[0].hour: r[1] for r in lake.table("quality_metrics")
              .groupBy("_partition_hour").count().collect()}
    assert counts == {9: 29, 10: 30, 11: 31}


def test_tables_read_back_with_an_engine_that_did_not_write_them(lake):
    generate(lake.landing_root, "equipment_logs", DAY,
             options=GenerateOptions(files=2, rows_per_file=25, extra_columns=True))
    lake.ingest("equipment_logs", "2026-01-15")
    frame = DeltaTable(lake.table_path("equipment_logs")).to_pandas()
    assert len(frame) == 50
    assert {"event_id", "controller_temp_c", "_source_file", "_ingested_at", "_rescued_data",
            "_partition_date"} <= set(frame.columns)
    assert frame["event_id"].is_unique
    assert str(frame["timestamp"].dtype).startswith("datetime64")
    ledger = DeltaTable(lake.lakehouse.ledger_path).to_pandas()
    committed = ledger[ledger.event == "committed"]
    assert sorted(committed.rows) == [25, 25]


def test_statistics_are_kept_for_the_columns_queries_filter_on(lake):
    lake.put("raw/sensor-data/2026/01/15/a.csv", CSV_HEADER + sensor_rows(3))
    lake.ingest("sensor_data", "2026-01-15")
    properties = DeltaTable(lake.table_path("sensor_data")).metadata().configuration
    assert properties["delta.dataSkippingStatsColumns"] == \
        "sensor_id,timestamp,_ingested_at"


def test_reprocess_of_an_hour_leaves_the_other_hours_alone(lake):
    for hour in (9, 10):
        generate(lake.landing_root, "quality_metrics", DAY, hour,
                 GenerateOptions(files=2, rows_per_file=15))
    lake.ingest("quality_metrics", "2026-01-15-09:00", "2026-01-15-10:00")
    report = lake.ingest("quality_metrics", "2026-01-15-10:00", reprocess=True)
    assert report.records == 30
    counts = {r[0].hour: r[1] for r in lake.table("quality_metrics")
              .groupBy("_partition_hour").count().collect()}
    assert counts == {9: 30, 10: 30}

