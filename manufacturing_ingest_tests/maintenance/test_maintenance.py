"""Table maintenance on real local Spark and Delta: compaction, concurrency, VACUUM retention."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.ledger import read_events
from manufacturing_ingest.engine.maintenance import (
    MaintenanceOptions,
    compact_partitions,
    maintain_bookkeeping,
    maintain_source,
    optimize,
    vacuum,
)
from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest_tests.samples import numbered_sensor_csv

pytestmark = pytest.mark.spark

SENSOR = get_source("sensor_data")
DAY1, DAY2 = date(2026, 1, 14), date(2026, 1, 15)
# A day after both partitions: they are closed.
LATER = datetime(2026, 1, 20, 3, tzinfo=UTC)
# Every test partition is small: 1 MB targets make each batch file "small".
OPTIONS = MaintenanceOptions(target_file_bytes=1 << 20, lookback=timedelta(days=30),
                             listing_parallelism=4)


def land(lake, day: date, tag: str, rows: int = 20) -> None:
    lake.put(f"raw/sensor-data/{day:%Y/%m/%d}/{tag}.csv", numbered_sensor_csv(tag, rows, day))


def partition_files(path: str, day: date) -> list[str]:
    """Data files of one partition in the current snapshot, as delta-rs sees them."""
    actions = pa.table(DeltaTable(path).get_add_actions(flatten=True)).to_pydict()
    column = next(k for k in actions if k.endswith("_partition_date"))
    return [p for p, d in zip(actions["path"], actions[column], strict=True)
            if str(d) == day.isoformat()]


def bronze_rows(path: str, version: int | None = None) -> list[tuple]:
    table = DeltaTable(path, version=version).to_pyarrow_table(
        columns=["sensor_id", "timestamp", "temperature", "_source_file", "_partition_date"])
    return sorted(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))


def appended_small_files(lake, day: date, count: int) -> None:
    """``count`` more small files in ``day``'s partition, by direct appends of its rows."""
    rows = lake.table("sensor_data").where(f"_partition_date = '{day}'").limit(5).collect()
    frame = lake.spark.createDataFrame(rows, lake.table("sensor_data").schema)
    for _ in range(count):
        frame.coalesce(1).write.format("delta").mode("append").save(
            lake.table_path("sensor_data"))


def test_fifty_small_files_compact_to_a_few_with_the_same_rows_and_ledger(lake):
    # One data file per landed file (Spark would pack small files into a few splits), so five
    # engine runs of ten files leave fifty small files, as a day of frequent appends does; a
    # run per file costs ~10 s here, too slow for a test.
    lake.spark.conf.set("spark.sql.files.openCostInBytes", str(128 << 20))
    try:
        for run in range(5):
            for i in range(10):
                land(lake, DAY2, f"batch{run}-{i}")
            assert lake.ingest("sensor_data", "2026-01-15").files_processed == 10
    finally:
        lake.spark.conf.unset("spark.sql.files.openCostInBytes")
    path = lake.table_path("sensor_data")
    before_rows, before_version = bronze_rows(path), DeltaTable(path).version()
    events_before = read_events(lake.lakehouse.ledger_path, "sensor_data", ["2026-01-15"])
    ledger_files_before = len(DeltaTable(lake.lakehouse.ledger_path).file_uris())
    files_before = len(partition_files(path, DAY2))
    assert files_before >= 40 and len(before_rows) == 1000

    report = maintain_source(lake.spark, SENSOR, lake.lakehouse, OPTIONS, now=LATER)
    books = maintain_bookkeeping(lake.spark, lake.lakehouse, OPTIONS)

    (compaction,) = report.compactions
    assert compaction.compacted and compaction.before.partition == "2026-01-15"
    assert compaction.before.files == compaction.before.small_files == files_before
    print(f"sensor_data 2026-01-15: {files_before} files before, {compaction.after.files} after; "
          f"ledger {ledger_files_before} files before")
    files_after = partition_files(path, DAY2)
    assert len(files_after) <= 2 and compaction.after.files == len(files_after)
    assert bronze_rows(path) == before_rows
    # The default retention (168 h) keeps every replaced file: the old version still reads.
    assert report.vacuum.files_deleted == 0
    assert bronze_rows(path, before_version) == before_rows

    # The ledger: every event kept, in fewer files; it still answers every file.
    ledger, _schema_log = books
    assert ledger.compactions and all(c.after.files <= 2 for c in ledger.compactions)
    assert len(DeltaTable(lake.lakehouse.ledger_path).file_uris()) < ledger_files_before
    events_after = read_events(lake.lakehouse.ledger_path, "sensor_data", ["2026-01-15"])
    assert sorted(map(repr, events_after)) == sorted(map(repr, events_before))

    # Exactly once after OPTIMIZE and VACUUM commits in the history: nothing is new, and the
    # protocol still finds its last batch among commits that carry no userMetadata.
    operations = [c["operation"] for c in delta.commits_after(lake.spark, path, before_version)]
    assert "OPTIMIZE" in operations
    assert delta.table_state(lake.spark, path)[1] == 4
    again = lake.ingest("sensor_data", "2026-01-15")
    assert (again.files_processed, again.files_skipped, again.records) == (0, 50, 0)
    land(lake, DAY2, "late")
    late = lake.ingest("sensor_data", "2026-01-15")
    assert (late.files_processed, late.records) == (1, 20)
    history = DeltaTable(path).history(1)[0]
    assert '"batch_version": 5' in history["userMetadata"]
    assert len(bronze_rows(path)) == 1020


def test_an_append_commits_while_another_partition_is_compacted(lake):
    land(lake, DAY1, "closed")
    lake.ingest("sensor_data", "2026-01-14")
    appended_small_files(lake, DAY1, 15)
    land(lake, DAY2, "open")
    path = lake.table_path("sensor_data")
    start = threading.Barrier(2)
    spans: dict[str, tuple[float, float]] = {}
    results: dict[str, object] = {}

    def compact():
        start.wait()
        began = time.monotonic()
        results["compaction"] = compact_partitions(
            lake.spark, SENSOR, path, OPTIONS, now=datetime(2026, 1, 15, 12, tzinfo=UTC))
        spans["compaction"] = (began, time.monotonic())

    def append():
        start.wait()
        time.sleep(0.5)  # OPTIMIZE has read its snapshot: the append lands inside its window
        began = time.monotonic()
        ingestor = BronzeIngestor(lake.spark, SENSOR, lake.zone, lake.lakehouse)
        results["append"] = ingestor.ingest(["2026-01-15"])
        spans["append"] = (began, time.monotonic())

    threads = [threading.Thread(target=compact), threading.Thread(target=append)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    (compaction,) = results["compaction"]
    assert compaction.compacted and compaction.before.files == 16 and compaction.after.files == 1
    assert results["append"].files_processed == 1 and results["append"].records == 20
    (c_start, c_end), (a_start, a_end) = spans["compaction"], spans["append"]
    assert a_start < c_end and c_start < a_end, "the two ran one after the other"
    operations = [c["operation"] for c in delta.commits_after(lake.spark, path, 15)]
    assert "OPTIMIZE" in operations and "WRITE" in operations
    assert len(partition_files(path, DAY1)) == 1
    assert len(bronze_rows(path)) == 20 + 15 * 5 + 20


def test_vacuum_deletes_replaced_files_outside_the_retention_and_keeps_current_ones(lake):
    # Files within the retention: see the fifty-files test (168 h keeps every replaced file and
    # the version before OPTIMIZE still reads). Here the retention is ~0: replaced files go.
    for day in (DAY1, DAY2):
        land(lake, day, f"first-{day}")
        lake.ingest("sensor_data", day.isoformat())
        appended_small_files(lake, day, 5)
    path = lake.table_path("sensor_data")
    before = DeltaTable(path).version()
    rows = bronze_rows(path)
    for day in (DAY1, DAY2):
        optimize(lake.spark, path, OPTIONS, f"_partition_date = '{day}'")
    time.sleep(2)
    short = MaintenanceOptions(vacuum_retention=timedelta(seconds=1),
                               allow_short_retention=True, listing_parallelism=4)
    result = vacuum(lake.spark, path, short)

    on_disk = {day: list((Path(path) / f"_partition_date={day}").glob("*.parquet"))
               for day in (DAY1, DAY2)}
    assert (len(on_disk[DAY1]), len(on_disk[DAY2])) == (1, 1)
    assert result.files_deleted >= 12  # local file systems also delete each file's .crc
    assert bronze_rows(path) == rows
    with pytest.raises(Exception, match="(?i)not.*found|does not exist|FileNotFound"):
        (lake.spark.read.format("delta").option("versionAsOf", before).load(path)
         .where("_partition_date = '2026-01-14'").collect())


def test_a_retention_below_deltas_safety_check_is_refused_unless_allowed():
    with pytest.raises(ConfigurationError, match="MANUFACTURING_VACUUM_ALLOW_SHORT_RETENTION"):
        MaintenanceOptions(vacuum_retention=timedelta(hours=24))
    assert MaintenanceOptions(vacuum_retention=timedelta(hours=24),
                              allow_short_retention=True).vacuum_retention.days == 1
