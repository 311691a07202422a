"""Bad input: each case has a clear outcome, and nothing is lost without a trace."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from manufacturing_ingest_tests.samples import CSV_HEADER, SENSOR_HEADER, sensor_lines

pytestmark = pytest.mark.spark

DAY_PREFIX = "raw/sensor-data/2026/01/15"


def outcome(report, name: str):
    (match,) = [o for o in report.outcomes if o.uri.endswith("/" + name)]
    return match


def test_empty_and_header_only_files_commit_zero_rows_with_a_note(lake):
    lake.put(f"{DAY_PREFIX}/empty.csv", b"")
    lake.put(f"{DAY_PREFIX}/header.csv", CSV_HEADER)
    lake.put(f"{DAY_PREFIX}/good.csv", CSV_HEADER + sensor_lines("A"))
    report = lake.ingest("sensor_data", "2026-01-15")
    assert (report.files_processed, report.files_empty, report.records) == (3, 2, 1)
    assert outcome(report, "empty.csv").note == "empty file"
    assert outcome(report, "header.csv").note == "header only"
    assert lake.ingest("sensor_data", "2026-01-15").files_skipped == 3


@pytest.mark.connect
def test_truncated_gzip_and_invalid_utf8_fail_with_reasons_and_good_files_land(lake):
    whole = gzip.compress((CSV_HEADER + sensor_lines(*map(str, range(200)))).encode())
    lake.put(f"{DAY_PREFIX}/cut.csv.gz", whole[:-30])
    lake.put(f"{DAY_PREFIX}/latin1.csv", (CSV_HEADER + sensor_lines("Zürich")).encode("latin-1"))
    lake.put(f"{DAY_PREFIX}/good.csv", CSV_HEADER + sensor_lines("A", "B"))
    report = lake.ingest("sensor_data", "2026-01-15")
    assert (report.files_processed, report.files_failed, report.records) == (1, 2, 2)
    assert "truncated gzip" in outcome(report, "cut.csv.gz").error
    assert "not valid UTF-8 at byte" in outcome(report, "latin1.csv").error


@pytest.mark.connect
def test_a_broken_json_line_is_kept_in_rescued_data(lake):
    good = {"sensor_id": "J1", "timestamp": "2026-01-15T10:00:00Z", "temperature": 20.5}
    lake.put(f"{DAY_PREFIX}/events.jsonl",
             json.dumps(good) + "\n" + '{"sensor_id": "J2", "temperature": 2\n'
             + json.dumps({**good, "sensor_id": "J3"}) + "\n")
    report = lake.ingest("sensor_data", "2026-01-15")
    assert report.records == 3
    broken = lake.table("sensor_data").where("sensor_id is null").collect()
    assert len(broken) == 1
    assert json.loads(broken[0]._rescued_data) == {
        "_corrupt_record": '{"sensor_id": "J2", "temperature": 2'}


@pytest.mark.connect
def test_csv_with_reordered_and_extra_columns_is_matched_by_name(lake):
    lake.put(f"{DAY_PREFIX}/a.csv", CSV_HEADER + sensor_lines("A"))
    lake.put(f"{DAY_PREFIX}/b.csv",
             "Temperature,sensor_id,timestamp,operator_note,plant_id\n"
             "30.25,B,2026-01-15T11:00:00Z,recalibrated,P02\n")
    lake.ingest("sensor_data", "2026-01-15")
    b = lake.table("sensor_data").where("sensor_id = 'B'").first()
    assert (b.temperature, b.plant_id, b.operator_note, b.humidity) == (
        30.25, "P02", "recalibrated", None)
    assert lake.table("sensor_data").where("sensor_id = 'A'").first().operator_note is None


def test_utf8_bom_and_crlf_line_endings(lake):
    text = "\ufeff" + SENSOR_HEADER + "\r\n" + sensor_lines("CR1", "CR2").replace("\n", "\r\n")
    lake.put(f"{DAY_PREFIX}/windows.csv", text.encode("utf-8"))
    report = lake.ingest("sensor_data", "2026-01-15")
    assert report.records == 2
    table = lake.table("sensor_data")
    assert sorted(r.sensor_id for r in table.collect()) == ["CR1", "CR2"]
    assert table.where("plant_id = 'P01' and vibration = 2.5 and _rescued_data is null").count() \
        == 2


@pytest.mark.connect
def test_non_numeric_values_in_numeric_columns_are_rescued(lake):
    lake.put(f"{DAY_PREFIX}/a.csv", CSV_HEADER
             + "P01,P01-L1,N1,2026-01-15T10:00:00Z,N/A,40%,101.3,--\n")
    lake.ingest("sensor_data", "2026-01-15")
    row = lake.table("sensor_data").first()
    assert (row.temperature, row.humidity, row.vibration, row.pressure) == (None, None, None,
                                                                            101.3)
    assert json.loads(row._rescued_data) == {"temperature": "N/A", "humidity": "40%",
                                             "vibration": "--"}


@pytest.mark.parametrize("text, expected", [
    ("2026-01-15T10:00:00Z", datetime(2026, 1, 15, 10, tzinfo=UTC)),
    ("2026-01-15T12:00:00+02:00", datetime(2026, 1, 15, 10, tzinfo=UTC)),
    ("2026-01-15T10:00:00.250", datetime(2026, 1, 15, 10, 0, 0, 250000, tzinfo=UTC)),
    ("2026-01-15 10:00:00", datetime(2026, 1, 15, 10, tzinfo=UTC)),
    ("1768471200000", datetime(2026, 1, 15, 10, tzinfo=UTC)),
    ("1768471200", datetime(2026, 1, 15, 10, tzinfo=UTC)),
])
def test_timestamps_iso_with_and_without_offset_and_epoch(lake, text, expected):
    lake.put(f"{DAY_PREFIX}/t.csv", CSV_HEADER + f"P01,L1,T,{text},1,1,100,1\n")
    lake.ingest("sensor_data", "2026-01-15")
    row = lake.table("sensor_data").first()
    assert row._rescued_data is None
    assert row.timestamp.replace(tzinfo=UTC) == expected


def test_markers_and_in_flight_files_are_ignored_not_failed(lake):
    lake.put(f"{DAY_PREFIX}/_SUCCESS", b"")
    lake.put(f"{DAY_PREFIX}/part-2.csv.tmp", CSV_HEADER + sensor_lines("TMP"))
    lake.put(f"{DAY_PREFIX}/part-1.csv", CSV_HEADER + sensor_lines("OK"))
    report = lake.ingest("sensor_data", "2026-01-15")
    assert (report.files_ignored, report.files_processed, report.files_failed) == (2, 1, 0)
    assert [r.sensor_id for r in lake.table("sensor_data").collect()] == ["OK"]


def test_a_file_of_a_format_the_source_does_not_take_is_reported(lake):
    lake.put(f"{DAY_PREFIX}/notes.txt", "operator notes\n")
    lake.put(f"{DAY_PREFIX}/part-1.csv", CSV_HEADER + sensor_lines("OK"))
    report = lake.ingest("sensor_data", "2026-01-15")
    assert report.files_failed == 1
    assert "unsupported file type 'notes.txt'" in outcome(report, "notes.txt").error


@pytest.mark.parametrize("text, expected", [
    ("86400", datetime(1970, 1, 2, tzinfo=UTC)),
    ("2026-01-15", datetime(2026, 1, 15, tzinfo=UTC)),
])
def test_short_whole_numbers_are_epoch_seconds_not_years(lake, text, expected):
    lake.put(f"{DAY_PREFIX}/t.csv", CSV_HEADER + f"P01,L1,T,{text},1,1,100,1\n")
    lake.ingest("sensor_data", "2026-01-15")
    assert lake.table("sensor_data").first().timestamp.replace(tzinfo=UTC) == expected


@pytest.mark.connect
def test_ledger_row_counts_match_the_table_with_blank_and_whitespace_lines(lake):
    from deltalake import DeltaTable

    good = json.dumps({"sensor_id": "J", "timestamp": "2026-01-15T10:00:00Z"})
    lake.put(f"{DAY_PREFIX}/a.jsonl", f"{good}\n\n   \n{good}\n\n\n{good}")
    lake.put(f"{DAY_PREFIX}/b.csv", CSV_HEADER + "\n" + sensor_lines("B1") + "\r\n"
             + sensor_lines("B2") + "\n\n")
    lake.ingest("sensor_data", "2026-01-15")
    in_table = {r["_source_file"].rsplit("/", 1)[-1]: r["count"]
                for r in lake.table("sensor_data").groupBy("_source_file").count().collect()}
    ledger = DeltaTable(lake.lakehouse.ledger_path).to_pandas()
    committed = ledger[ledger.event == "committed"]
    in_ledger = {uri.rsplit("/", 1)[-1]: rows
                 for uri, rows in zip(committed.object_uri, committed.rows, strict=True)}
    assert in_ledger == in_table
    assert in_table["b.csv"] == 2

