"""The Auto Loader reader: its options per format, and its micro-batch commit on real Delta.

The ``cloudFiles`` stream itself cannot run off Databricks: Auto Loader is not part of
open-source Spark (the first test shows the local session refusing the format). What runs here
is everything around it: the options each format's stream is started with, and the
``foreachBatch`` commit, fed the same columns a ``cloudFiles`` micro-batch carries (the file's
columns, ``_rescued_data`` and Spark's ``_metadata``), read from files with local Spark.
"""

from __future__ import annotations

import itertools
import os
import re
from datetime import UTC, datetime
from fnmatch import fnmatchcase

import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.databricks.autoloader import (
    AutoLoaderIngestor,
    AutoLoaderLayout,
    MicroBatchCommit,
    reader_options,
    schema_hints,
    with_lineage,
)
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.ledger import FileLedger, file_states
from manufacturing_ingest.landing import LandedObject
from manufacturing_ingest_tests.samples import numbered_sensor_csv


def _expand(glob: str) -> list[str]:
    """A Hadoop glob with one ``{a,b}`` group as the fnmatch patterns it stands for."""
    match = re.search(r"\{([^}]*)\}", glob)
    if not match:
        return [glob]
    return [glob[: match.start()] + part + glob[match.end():] for part in match[1].split(",")]


def _landed(name: str) -> LandedObject:
    return LandedObject(key=f"raw/x/2026/01/15/{name}", uri="", etag="e", size=1,
                        last_modified=datetime(2026, 1, 15, tzinfo=UTC))


@pytest.mark.parametrize("source, file_format", [
    (name, fmt) for name, spec in CATALOG.items() for fmt in spec.formats
])
def test_each_format_gets_the_options_of_a_bronze_stream(source, file_format):
    spec = get_source(source)
    layout = AutoLoaderLayout("s3://plant-lakehouse/lakehouse")
    options = reader_options(spec, file_format, layout.schema_location(spec, file_format))
    assert options["cloudFiles.format"] == file_format
    assert options["cloudFiles.schemaLocation"] == (
        f"s3://plant-lakehouse/lakehouse/_manufacturing_ingest/autoloader/{source}/"
        f"{file_format}/schema")
    assert layout.checkpoint(spec, file_format).endswith(f"/{source}/{file_format}/checkpoint")
    assert options["cloudFiles.schemaEvolutionMode"] == "addNewColumns"
    assert options["rescuedDataColumn"] == "_rescued_data"
    # Every declared column is typed by a hint; Spark's own guesses never decide a type.
    hints = dict(h.split(" ", 1) for h in schema_hints(spec).split(", "))
    assert {name.strip("`") for name in hints} == set(spec.columns)
    assert hints["`" + spec.event_time_column + "`"] == "TIMESTAMP"
    if file_format == "csv":
        assert options["header"] == "true" and options["multiLine"] == "true"
        assert options["cloudFiles.inferColumnTypes"] == "false"
    elif file_format == "json":
        assert options["multiLine"] == "false"
        assert options["cloudFiles.inferColumnTypes"] == "false"
    else:
        assert "header" not in options and "cloudFiles.inferColumnTypes" not in options
    # The glob takes exactly the names the portable engine reads as this format.
    names = ["a.csv", "a.CSV", "a.csv.gz", "a.json", "a.jsonl", "a.json.gz", "a.ndjson",
             "a.parquet", "a.txt", "a.csv.tmp"]
    patterns = _expand(options["pathGlobFilter"])
    taken = {n for n in names if any(fnmatchcase(n, p) for p in patterns)}
    assert taken == {n for n in names if _landed(n).file_format == file_format}


@pytest.mark.connect
@pytest.mark.spark
def test_cloud_files_is_a_databricks_format_the_local_session_does_not_have(spark, tmp_path):
    with pytest.raises(Exception, match="cloudFiles"):
        spark.readStream.format("cloudFiles").option("cloudFiles.format", "csv") \
            .schema("a STRING").load(str(tmp_path)).writeStream.format("noop").start()


@pytest.mark.connect
@pytest.mark.spark
def test_a_micro_batch_commits_once_and_the_ledger_records_its_files(lake, spark):
    spec = get_source("sensor_data")
    dated = lake.put("raw/sensor-data/2026/01/15/a.csv", numbered_sensor_csv("a", 7))
    undated = lake.put("raw/sensor-data/late/b.csv", numbered_sensor_csv("b", 3),
                       mtime=datetime(2026, 1, 16, 8, tzinfo=UTC).timestamp())
    raw = (spark.read.option("header", "true").schema(
        ", ".join(f"`{n}` STRING" for n in spec.columns) + ", _rescued_data STRING")
        .csv([str(dated), str(undated)]))
    stamp = datetime(2026, 1, 16, 9, 30, tzinfo=UTC)
    batch = with_lineage(raw, spec, stamp)
    table = lake.table_path("sensor_data")
    ledger = FileLedger(spark, lake.lakehouse.ledger_path)
    seen = []
    commit = MicroBatchCommit(spark, spec, "csv", table, ledger,
                              lake.landing_root.as_uri(), "run-1", on_commit=seen.extend)

    commit(batch, 0)
    commit(batch, 0)  # a micro-batch replayed after a crash: Delta skips it (txnVersion)

    rows = DeltaTable(table).to_pandas()
    assert len(rows) == 10
    assert rows.groupby("_source_file").size().to_dict() == {dated.as_uri(): 7,
                                                             undated.as_uri(): 3}
    by_file = {uri: group["_partition_date"].iloc[0] for uri, group in
               rows.groupby("_source_file")}
    assert str(by_file[dated.as_uri()]) == "2026-01-15"  # from the path
    assert str(by_file[undated.as_uri()]) == "2026-01-16"  # from the modification time
    assert {c["userMetadata"].get("stream") for c in delta.commits_after(spark, table, -1)} \
        == {"manufacturing_ingest/sensor_data/autoloader/csv"}
    # The portable engine's table state ignores these commits (no batch_version of its own).
    assert delta.table_state(spark, table)[1] == -1

    states = file_states(ledger.events("sensor_data"))
    committed = {s.object_key: (s.status.value, s.rows, s.partition_key) for s in states.values()}
    assert committed == {"raw/sensor-data/2026/01/15/a.csv": ("committed", 7, "2026-01-15"),
                         "raw/sensor-data/late/b.csv": ("committed", 3, "2026-01-16")}
    assert {e.object_key for e in seen} == set(committed)
    assert all(e.size == os.path.getsize(lake.landing_root / e.object_key)
               for e in itertools.islice(seen, 2))

    # What the run reports (and the quality check reads back: the run's stamp and partitions).
    ingestor = AutoLoaderIngestor(spark, spec, lake.landing_root.as_uri(), lake.lakehouse)
    report = ingestor.report(seen, ["2026-01-15"], stamp, seconds=4.0)
    assert report.partition_keys == ["2026-01-15", "2026-01-16"]
    assert (report.records, report.files_processed, report.mode) == (10, 2, "autoloader")
    assert report.delta_version == delta.table_version(spark, table)
    assert set(rows["_ingested_at"].dt.tz_localize(None)) == {stamp.replace(tzinfo=None)}
