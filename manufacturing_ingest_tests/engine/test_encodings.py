"""Files as real exporters write them: PowerShell 5.1's BOM'd, CRLF, pretty-printed JSON (an
array, or one object), Windows' UTF-16 with a BOM, an old PLC's CR-only lines, an old Windows
client's Windows-1252. Each lands with exactly its values (read back with ``deltalake``), or
fails with a reason that names the encoding and the setting that reads it."""

from __future__ import annotations

import dataclasses
import json

import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.report import Outcome
from manufacturing_ingest_tests.hostile_corpus import DAY, HEADER, SENSOR_DAY

pytestmark = pytest.mark.spark

SPEC = get_source("sensor_data")


def _reading(sid: str, temp: float) -> dict:
    return {"plant_id": "P07", "line_id": "L2", "sensor_id": sid,
            "timestamp": "2026-11-20T10:00:00Z", "temperature": temp, "humidity": 40.0}


def _csv_row(sid: str, plant: str = "P07") -> str:
    return f"{plant},L2,{sid},2026-11-20T10:00:00Z,21.5,40,101.3,2.5"


FILES = {
    # PowerShell 5.1: ConvertTo-Json | Out-File -Encoding UTF8 (a BOM, CRLF, indented).
    "ps-array.json": b"\xef\xbb\xbf" + json.dumps(
        [_reading("PSA1", 20.5), _reading("PSA2", 21.5)], indent=4).replace(
        "\n", "\r\n").encode(),
    "ps-object.json": b"\xef\xbb\xbf" + json.dumps(_reading("PSO", 22.5), indent=4).replace(
        "\n", "\r\n").encode(),
    "pretty-object.json": json.dumps(_reading("PO", 23.5), indent=2).encode(),
    # Windows "Unicode" text: UTF-16 LE with a BOM, CRLF.
    "utf16.csv": ("\ufeff" + HEADER + "\r\n" + _csv_row("U16", "Pläntß") + "\r\n")
    .encode("utf-16-le"),
    # An old PLC / classic Mac OS export: lines end with a bare CR.
    "cr-only.csv": ("\r".join([HEADER, _csv_row("CR1"), _csv_row("CR2")]) + "\r").encode(),
    # UTF-8 with a BOM before CSV: read as it is.
    "bom.csv": ("\ufeff" + HEADER + "\n" + _csv_row("BOM") + "\n").encode(),
}
WINDOWS_1252 = ("\n".join([HEADER, _csv_row("W1", "Prüfstand"), _csv_row("W2", "Größe")])
                + "\n").encode("cp1252")


@pytest.fixture(scope="module")
def landed(tmp_path_factory, spark):
    """The files above and a Windows-1252 export, ingested once: (lake, report, rows)."""
    from manufacturing_ingest_tests.conftest import Lake

    lake = Lake(tmp_path_factory.mktemp("encodings"), spark)
    for name, data in FILES.items():
        lake.put(f"{SENSOR_DAY}/{name}", data)
    lake.put(f"{SENSOR_DAY}/cp1252.csv", WINDOWS_1252)
    report = lake.ingest("sensor_data", DAY)
    rows = DeltaTable(lake.table_path("sensor_data")).to_pyarrow_table().to_pylist()
    return lake, report, rows


def _mine(lake, rows, name):
    return [r for r in rows if r["_source_file"] == lake.zone.uri_for(f"{SENSOR_DAY}/{name}")]


@pytest.mark.parametrize("name, ids", [
    ("ps-array.json", ["PSA1", "PSA2"]), ("ps-object.json", ["PSO"]),
    ("pretty-object.json", ["PO"]), ("utf16.csv", ["U16"]), ("cr-only.csv", ["CR1", "CR2"]),
    ("bom.csv", ["BOM"]),
])
def test_each_export_lands_with_exactly_its_rows(landed, name, ids):
    lake, report, rows = landed
    mine = _mine(lake, rows, name)
    assert sorted(r["sensor_id"] for r in mine) == ids
    assert all(r["plant_id"] in ("P07", "Pläntß") and r["_rescued_data"] is None for r in mine)
    assert all(r["temperature"] is not None for r in mine)
    (outcome,) = [o for o in report.outcomes if o.uri.endswith(f"/{name}")]
    assert outcome.status is Outcome.COMMITTED and outcome.rows == len(ids)


def test_utf16_letters_survive(landed):
    lake, _, rows = landed
    (row,) = _mine(lake, rows, "utf16.csv")
    assert row["plant_id"] == "Pläntß"


def test_windows_1252_fails_naming_the_setting_then_lands_with_it(landed, spark):
    lake, report, _ = landed
    (outcome,) = [o for o in report.outcomes if o.uri.endswith("/cp1252.csv")]
    assert outcome.status is Outcome.FAILED
    assert "not valid UTF-8" in outcome.error
    assert "MANUFACTURING_ENCODING_<SOURCE>" in outcome.error and "cp1252" in outcome.error

    # The operator sets the source's encoding (MANUFACTURING_ENCODING_SENSOR_DATA=cp1252) and
    # reprocesses the day: the file's letters land as they were meant.
    spec = dataclasses.replace(SPEC, encoding="cp1252")
    again = BronzeIngestor(spark, spec, lake.zone, lake.lakehouse).ingest([DAY], reprocess=True)
    assert again.files_failed == 0
    rows = DeltaTable(lake.table_path("sensor_data")).to_pyarrow_table().to_pylist()
    plants = sorted(r["plant_id"] for r in _mine(lake, rows, "cp1252.csv"))
    assert plants == ["Größe", "Prüfstand"]
    # The UTF-8 files of the day are unchanged by it (a BOM or UTF-16 says their encoding).
    assert sorted(r["sensor_id"] for r in _mine(lake, rows, "utf16.csv")) == ["U16"]
    assert len(rows) == 10


EXCEL = {
    # "CSV UTF-8" from Excel with the list separator line it adds for other locales.
    "sep-line.csv": "sep=,\r\n" + HEADER + "\r\n" + _csv_row("XS1") + "\r\n",
    # A semicolon export whose data lines all end with the delimiter (an empty last cell).
    "trailing.csv": HEADER.replace(",", ";") + "\n"
    + "".join(_csv_row(s).replace(",", ";") + ";\n" for s in ("XT1", "XT2")),
    # Two sheets pasted into one file: the header again in the middle.
    "pasted.csv": "sep=,\n" + HEADER + "\n" + _csv_row("XP1") + "\n" + HEADER + "\n"
    + _csv_row("XP2") + "\n",
}


def test_excel_exports_land_without_their_sep_line_trailing_delimiter_or_repeated_header(
        tmp_path, spark):
    from manufacturing_ingest_tests.conftest import Lake

    lake = Lake(tmp_path, spark)
    for name, text in EXCEL.items():
        lake.put(f"{SENSOR_DAY}/{name}", text)
    report = lake.ingest("sensor_data", DAY)
    assert report.files_failed == 0, report.failures
    rows = DeltaTable(lake.table_path("sensor_data")).to_pyarrow_table().to_pylist()
    assert sorted(r["sensor_id"] for r in rows) == ["XP1", "XP2", "XS1", "XT1", "XT2"]
    assert all(r["_rescued_data"] is None and r["temperature"] == 21.5 for r in rows)
    columns = list(rows[0])
    assert not any(c.startswith(("sep", "unnamed", "_c")) for c in columns), columns
