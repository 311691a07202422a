"""Hostile input, one case per class of trouble real plants and careless uploaders produce.

Every case lands its files with ``hostile_corpus``, ingests, and reads the table back with
``deltalake`` (delta-rs, an engine that did not write it): exact rows per ``_source_file``, no
row from outside the landing root, no silent null where a value was given, the rest of the batch
committed, and each file's outcome and reason.
"""

from __future__ import annotations

import json

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from manufacturing_ingest.engine import ingest as ingest_module
from manufacturing_ingest.engine.report import Outcome
from manufacturing_ingest_tests import hostile_corpus as corpus
from manufacturing_ingest_tests.samples import sensor_csv, sensor_lines

pytestmark = pytest.mark.spark


def _with_concurrent_writer(case, lake, monkeypatch) -> None:
    """Run ``case.during`` once, at the moment the case names, as a writer would."""
    done: list[bool] = []

    def once() -> None:
        if not done:
            done.append(True)
            case.during(lake.landing_root)

    if case.during_stage == "after_inspection":
        inspect = ingest_module.inspect_file

        def inspect_then_write(*args, **kwargs):
            result = inspect(*args, **kwargs)
            once()
            return result

        monkeypatch.setattr(ingest_module, "inspect_file", inspect_then_write)
    else:
        listing = lake.zone.partition_objects

        def list_then_write(*args, **kwargs):
            result = listing(*args, **kwargs)
            once()
            return result

        monkeypatch.setattr(lake.zone, "partition_objects", list_then_write)


def _cells(row: dict) -> list[str]:
    texts = [str(v) for v in row.values() if v is not None]
    rescued = row.get("_rescued_data")
    if rescued:
        texts += [str(v) for v in json.loads(rescued).values()]
    return texts


@pytest.mark.parametrize("make_case", corpus.ALL_CASES, ids=lambda f: f.__name__)
def test_hostile_file_is_ingested_exactly_or_reported(make_case, lake, monkeypatch):
    case = make_case(lake.landing_root)
    if case.during:
        _with_concurrent_writer(case, lake, monkeypatch)
    outcomes = {}
    for _ in range(case.runs):
        report = lake.ingest(case.source, *case.partitions, env=case.env)
        outcomes.update({o.uri: o for o in report.outcomes if o.status is not Outcome.SKIPPED})

    path = lake.table_path(case.source)
    table = DeltaTable(path).to_pyarrow_table() if case.table_rows else None
    rows = table.to_pylist() if table else []
    if case.table_rows is not None:
        assert len(rows) == case.table_rows
    columns = table.column_names if table else []
    assert set(case.columns) <= set(columns), columns
    assert not set(case.no_columns) & set(columns), columns
    for cell in (c for row in rows for c in _cells(row)):
        assert not any(bad in cell for bad in case.forbidden), cell
    for expect in case.files:
        uri = lake.zone.uri_for(expect.key)
        outcome = outcomes.get(uri)
        if expect.status == "absent":
            assert outcome is None, outcome
            continue
        assert outcome is not None, f"{expect.key} is neither ingested nor reported"
        assert outcome.status.value == expect.status, (expect.key, outcome)
        said = f"{outcome.error or ''} {outcome.note or ''}".lower()
        assert expect.reason is None or expect.reason.lower() in said, (expect.key, said)
        if expect.partition:
            assert outcome.partition_key == expect.partition
        mine = [row for row in rows if row["_source_file"] == uri]
        if expect.rows is not None:
            assert len(mine) == expect.rows, expect.key
        cells = [c for row in mine for c in _cells(row)]
        for value in expect.must_keep:
            assert any(value in c for c in cells), (expect.key, value)
        for value in expect.rescued:
            rescued = [str(v) for row in mine if row["_rescued_data"]
                       for v in json.loads(row["_rescued_data"]).values()]
            assert any(value in r for r in rescued), (expect.key, value, rescued)
        for predicate, count in expect.sql:
            got = (lake.table(case.source).where(F.col("_source_file") == uri)
                   .where(predicate.replace("{uri}", uri)).count())
            assert got == count, (expect.key, predicate)


def test_a_file_appended_while_spark_writes_it_is_taken_out_and_read_once_later(lake):
    from manufacturing_ingest.catalog import get_source
    from manufacturing_ingest.engine.ingest import BronzeIngestor
    from manufacturing_ingest.engine.progress import Phase

    path = lake.put("raw/sensor-data/2026/01/15/growing.csv", sensor_csv("A1", "A2"))

    def append_when_the_write_starts(event) -> None:
        if event.phase is Phase.CLAIMED:  # the writer adds lines while Spark reads the file
            with path.open("a") as out:
                out.write(sensor_lines("A3", "A4"))

    first = BronzeIngestor(lake.spark, get_source("sensor_data"), lake.zone, lake.lakehouse,
                           progress=append_when_the_write_starts).ingest(["2026-01-15"])

    (outcome,) = first.outcomes
    assert outcome.status is Outcome.FAILED and "changed while Spark read it" in outcome.error
    assert DeltaTable(lake.table_path("sensor_data")).to_pyarrow_table().num_rows == 0
    second = lake.ingest("sensor_data", "2026-01-15")
    assert (second.files_processed, second.records) == (1, 4)
    ids = sorted(r["sensor_id"] for r in
                 DeltaTable(lake.table_path("sensor_data")).to_pyarrow_table().to_pylist())
    assert ids == ["A1", "A2", "A3", "A4"]
