"""CSV doubles parsed by Spark's CSV reader give exactly what the text rules give.

Rows that parse take the fast path; a row that does not (a value of the wrong type, or a
malformed line) is split again from its line and parsed as text. Whichever path a row takes,
the table must hold the same values and the same ``_rescued_data``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from manufacturing_ingest_tests.samples import CSV_HEADER

pytestmark = pytest.mark.spark

DAY_PREFIX = "raw/sensor-data/2026/01/15"
TEN = "2026-01-15T10:00:00Z"


def by_sensor(lake) -> dict:
    return {r.sensor_id: r for r in lake.table("sensor_data").collect()}


def rescued(row) -> dict | None:
    return None if row._rescued_data is None else json.loads(row._rescued_data)


def text_rule(spark, value: str) -> float | None:
    """What the text path makes of ``value`` for a double column (the engine's own rule: an
    infinity, written or from overflow, is no value)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from manufacturing_ingest.engine.types import parse_value

    return spark.range(1).select(
        parse_value(F.lit(value), T.StringType(), "double").alias("d")).first().d


def test_a_file_where_every_row_needs_rescue_keeps_every_row(lake):
    lines = "".join(f"P01,L1,S{i:04d},{TEN},N/A,{i % 100},100.5,1.25\n" for i in range(500))
    lake.put(f"{DAY_PREFIX}/all-bad.csv", CSV_HEADER + lines)
    report = lake.ingest("sensor_data", "2026-01-15")
    assert report.files_failed == 0
    rows = lake.table("sensor_data").collect()
    assert len(rows) == 500
    assert {rescued(r)["temperature"] for r in rows} == {"N/A"}
    assert all(len(rescued(r)) == 1 for r in rows)  # only the value that did not convert
    assert all(r.temperature is None for r in rows)
    assert sorted(r.humidity for r in rows) == sorted(float(i % 100) for i in range(500))
    assert {(r.pressure, r.vibration) for r in rows} == {(100.5, 1.25)}


def test_a_file_of_epoch_timestamps_parses_without_rescue(lake):
    seconds = int(datetime(2026, 1, 15, 10, tzinfo=UTC).timestamp())
    lines = "".join(f"P01,L1,E{i:03d},{seconds + i},20.5,40,101.3,0.5\n" for i in range(100))
    lines += "".join(f"P01,L1,M{i:03d},{(seconds + i) * 1000 + 250},20.5,40,101.3,0.5\n"
                     for i in range(100))
    lake.put(f"{DAY_PREFIX}/epochs.csv", CSV_HEADER + lines)
    lake.ingest("sensor_data", "2026-01-15")
    rows = by_sensor(lake)
    assert len(rows) == 200
    assert all(r._rescued_data is None for r in rows.values())
    assert rows["E007"].timestamp.replace(tzinfo=UTC) == datetime(2026, 1, 15, 10, 0, 7,
                                                                   tzinfo=UTC)
    assert rows["M007"].timestamp.replace(tzinfo=UTC) == datetime(2026, 1, 15, 10, 0, 7,
                                                                   250000, tzinfo=UTC)
    assert {r.temperature for r in rows.values()} == {20.5}


# Spellings where Spark's CSV double parser and a cast from text could part ways.
ODD_DOUBLES = ["inf", "-Inf", "Infinity", "NaN", "nan", " 1.5 ", "1e3", "+2", "0x1p3", "1d",
               "1,5", "٣", "", "1.7976931348623157E309"]


@pytest.mark.parametrize("newline", ["\n", "mixed"])
def test_a_mix_of_clean_retyped_and_malformed_rows_matches_the_text_rules(lake, spark,
                                                                          newline):
    lines = [f"P01,L1,OK{i},{TEN},21.5,40,101.3,0.5" for i in range(3)]
    lines += [f'P01,L1,ODD{i},{TEN},"{v}",40,101.3,0.5' for i, v in enumerate(ODD_DOUBLES)]
    lines += [
        f"P01,L1,LONG,{TEN},1,2,3,4,5",  # too many fields: values kept, line rescued
        "P01,L1,SHORT",  # too few: line rescued
        f'P01,L1,QUOTED,{TEN},"N/A",40,101.3,"0.5"',
        f'P01,"L1\nsecond line",NEWLINE,{TEN},oops,40,101.3,0.5',  # quoted line break
        "P01,L1,EPOCH,1768471200,22.5,x,101.3,0.5",
    ]
    ends = (["\n"] * len(lines) if newline == "\n"
            else ["\r\n" if i % 2 else "\n" for i in range(len(lines))])
    body = CSV_HEADER + "".join(line + end for line, end in zip(lines, ends, strict=True))
    lake.put(f"{DAY_PREFIX}/mix.csv", body)
    report = lake.ingest("sensor_data", "2026-01-15")
    assert report.files_failed == 0
    rows = by_sensor(lake)
    assert len(lake.table("sensor_data").collect()) == len(lines)

    for i in range(3):
        assert (rows[f"OK{i}"].temperature, rescued(rows[f"OK{i}"])) == (21.5, None)
    for i, value in enumerate(ODD_DOUBLES):
        row, expected = rows[f"ODD{i}"], text_rule(spark, value)
        if expected is None:
            assert row.temperature is None
            # An infinity Spark's CSV parser read itself ("Infinity", "-Inf", an overflow) has
            # no text left: it is rescued as Spark read it (README); anything else verbatim.
            as_read = {"temperature": "Infinity" if float(value) > 0 else "-Infinity"} if (
                value.strip().lower().lstrip("+-") in ("inf", "infinity")
                or value.strip().endswith("E309")) else None
            assert rescued(row) in ({"temperature": value} if value else None, as_read), value
        else:
            assert row.temperature == expected or (expected != expected
                                                   and row.temperature != row.temperature)
            assert rescued(row) is None, value
        assert (row.humidity, row.pressure, row.vibration) == (40.0, 101.3, 0.5)

    long = rows["LONG"]
    assert (long.temperature, long.humidity, long.pressure, long.vibration) == (1, 2, 3, 4)
    assert rescued(long) == {"_corrupt_record": f"P01,L1,LONG,{TEN},1,2,3,4,5"}
    assert rescued(rows["SHORT"]) == {"_corrupt_record": "P01,L1,SHORT"}
    assert rows["SHORT"].temperature is None
    assert rescued(rows["QUOTED"]) == {"temperature": "N/A"}
    assert rows["QUOTED"].vibration == 0.5
    newline_row = rows["NEWLINE"]
    assert newline_row.line_id.replace("\r", "") == "L1\nsecond line"
    assert rescued(newline_row) == {"temperature": "oops"}
    assert newline_row.humidity == 40.0
    epoch = rows["EPOCH"]
    assert epoch.timestamp.replace(tzinfo=UTC) == datetime(2026, 1, 15, 10, tzinfo=UTC)
    assert (epoch.temperature, epoch.humidity) == (22.5, None)
    assert rescued(epoch) == {"humidity": "x"}


# -- JSON lines: the keys come from every line, not from a sample -----------------------------

def json_line(sensor_id: str, **extra) -> str:
    return json.dumps({"plant_id": "P01", "line_id": "L1", "sensor_id": sensor_id,
                       "timestamp": TEN, "temperature": 20.5, **extra}) + "\n"


def test_a_key_on_the_last_line_of_a_json_lines_batch_becomes_a_column(lake):
    lake.put(f"{DAY_PREFIX}/a.jsonl", "".join(json_line(f"A{i}") for i in range(300)))
    lake.put(f"{DAY_PREFIX}/b.jsonl", "".join(json_line(f"B{i}") for i in range(299))
             + json_line("LAST", Firmware="v2", Temperature_Offset=0.5))
    report = lake.ingest("sensor_data", "2026-01-15")
    assert report.files_failed == 0
    rows = by_sensor(lake)
    assert len(rows) == 600
    assert (rows["LAST"].firmware, rows["LAST"].temperature_offset) == ("v2", "0.5")
    assert rows["A0"].firmware is None and rows["A0"]._rescued_data is None


def test_a_one_line_json_array_in_a_json_lines_file_keeps_its_rows_and_keys(lake):
    array = json.dumps([{"sensor_id": "ARR1", "timestamp": TEN, "temperature": 1.5},
                        {"sensor_id": "ARR2", "timestamp": TEN, "site": "north"}])
    lake.put(f"{DAY_PREFIX}/mixed.jsonl", json_line("OBJ") + array + "\n")
    report = lake.ingest("sensor_data", "2026-01-15")
    assert report.files_failed == 0
    rows = by_sensor(lake)
    assert set(rows) == {"OBJ", "ARR1", "ARR2"}
    assert (rows["ARR1"].temperature, rows["ARR2"].site) == (1.5, "north")
