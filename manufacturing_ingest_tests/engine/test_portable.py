"""The engine needs no JVM access: what it used to ask Delta's and Hadoop's classes for, it now
works out from public APIs. These tests pin the cases where that could differ."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.read import spark_uri
from manufacturing_ingest_tests.samples import numbered_sensor_csv

# The whole module runs on Spark Connect too (`make test`'s second pass).
pytestmark = [pytest.mark.spark, pytest.mark.connect]

# Names Spark reads as they are (the engine links names with glob characters or ':' to plain
# ones first) but whose URIs differ from the path: spaces, percent signs, reserved and non-ASCII
# characters, and Unicode spaces Java encodes where it leaves other non-ASCII letters alone.
ODD_NAMES = [
    "plain.csv", "with space.csv", "100%.csv", "a+b&c=d$e,f;g@h.csv", "#hash.csv",
    "quote'\"`^|<>~!().csv", "ünïcødé.csv", "日本語 データ.csv", "nbsp\u00a0x.csv",
    "ideographic\u3000space.csv", "emoji😀.csv", "zero\u200bwidth.csv",
]


def test_spark_uri_is_the_uri_spark_reports_for_every_odd_name(spark, tmp_path: Path):
    folder = tmp_path / "dir with space"
    folder.mkdir()
    paths = []
    for name in ODD_NAMES:
        path = folder / name
        path.write_text("a\n1\n")
        paths.append(path)
    df = spark.read.option("header", True).csv([str(p) for p in paths])
    reported = {row[0] for row in
                df.select(df.metadataColumn("_metadata").getField("file_path")).collect()}
    assert reported == {spark_uri(str(p)) for p in paths}


def _checkpoint_and_forget_history(spark, table: str) -> int:
    """What Delta's log cleanup does past the log retention: once a checkpoint stands, commit
    files older than it are deleted and DESCRIBE HISTORY no longer shows them. Returns the
    checkpoint's version."""
    ref = delta.table_ref(table)
    spark.sql(f"ALTER TABLE {ref} SET TBLPROPERTIES ('delta.checkpointInterval' = '1')")
    version = delta.table_version(spark, table)
    log = Path(table) / "_delta_log"
    assert (log / f"{version:020d}.checkpoint.parquet").exists(), sorted(log.iterdir())
    for commit in log.glob("*.json"):
        if int(commit.stem) < version:
            commit.unlink()
    return version


def test_a_source_quiet_past_the_log_retention_still_lands_every_file_once(lake, spark):
    """Delta keeps a source's idempotent-write version for good, but the history showing it
    (each commit's ``userMetadata``) expires. Later writes must neither be skipped as replays
    forever nor commit a file twice."""
    lake.put("raw/sensor-data/2026/01/15/a.csv", numbered_sensor_csv("a", 10))
    lake.put("raw/sensor-data/2026/01/16/b.csv", numbered_sensor_csv("b", 10, date(2026, 1, 16)))
    assert lake.ingest("sensor_data", "2026-01-15").batch_version == 0
    assert lake.ingest("sensor_data", "2026-01-16").batch_version == 1
    path = lake.table_path("sensor_data")
    version = _checkpoint_and_forget_history(spark, path)
    assert delta.table_state(spark, path) == (version, -1)  # the history lost batches 0 and 1

    # The ledger knows batch 1 was committed: the next batch goes above it at once.
    lake.put("raw/sensor-data/2026/01/17/c.csv", numbered_sensor_csv("c", 10, date(2026, 1, 17)))
    third = lake.ingest("sensor_data", "2026-01-17")
    assert (third.files_processed, third.batch_version, third.attempts) == (1, 2, 1)

    # Neither history nor ledger know the last batch (a run died between its commit and its
    # ledger entry, and the history expired since): Delta skips the write as a replay, the
    # engine learns the version from that and plans once more.
    version = _checkpoint_and_forget_history(spark, path)
    ledger = delta.table_ref(lake.lakehouse.ledger_path)
    spark.sql(f"DELETE FROM {ledger} WHERE batch_version = 2")
    lake.put("raw/sensor-data/2026/01/18/d.csv", numbered_sensor_csv("d", 10, date(2026, 1, 18)))
    fourth = lake.ingest("sensor_data", "2026-01-18")
    assert (fourth.files_processed, fourth.batch_version, fourth.attempts) == (1, 3, 2)

    rows = DeltaTable(path).to_pandas()
    per_file = rows.groupby("_source_file").size()
    assert sorted(Path(uri).name for uri in per_file.index) == ["a.csv", "b.csv", "c.csv", "d.csv"]
    assert set(per_file) == {10}
    # Nothing is left to take: the ledger answers every file of the untouched days as committed.
    assert lake.ingest("sensor_data", "2026-01-15", "2026-01-16").files_processed == 0


def test_bronze_tables_may_be_catalog_tables_by_name(lake, spark, tmp_path):
    """``MANUFACTURING_CATALOG``: the bronze table is ``<catalog>.manufacturing_bronze.<table>``
    (Unity Catalog on Databricks; the session's own catalog here), the bookkeeping stays by
    path, and exactly once, reprocess and the history work the same."""
    from manufacturing_ingest.engine.ingest import BronzeIngestor
    from manufacturing_ingest.engine.lakehouse import Lakehouse

    schema_location = tmp_path / "catalog" / "manufacturing_bronze"
    spark.sql("CREATE SCHEMA spark_catalog.manufacturing_bronze "
              f"LOCATION '{schema_location}'")
    try:
        lakehouse = Lakehouse(lake.lakehouse.root, catalog="spark_catalog")

        def ingest(*, reprocess=False):
            return BronzeIngestor(spark, get_source("sensor_data"), lake.zone, lakehouse) \
                .ingest(["2026-01-15"], reprocess=reprocess)

        lake.put("raw/sensor-data/2026/01/15/a.csv", numbered_sensor_csv("a", 10))
        first = ingest()
        name = "spark_catalog.manufacturing_bronze.sensor_data"
        table = delta.TableRef.named(name)
        assert first.table_path == name and first.records == 10
        assert first.table == table and table.sql == (
            "`spark_catalog`.`manufacturing_bronze`.`sensor_data`")
        # The quality check prunes by the commit's key statistics (and sizes its grouping by
        # the commit's rows), found through the catalog's location of the table (a catalog
        # name is not a folder to read a log from).
        from manufacturing_ingest.quality.evaluate import _batch_statistics, committed_batch

        keys = get_source("sensor_data").key_columns
        bounds, rows = _batch_statistics(spark, committed_batch(first), spark.table(name).schema,
                                         keys)
        assert set(bounds) == set(keys) and all(low is not None for low, _ in bounds.values())
        assert rows == 10
        # Created empty first: a first write by name would drop the idempotent-write options.
        assert spark.table(name).count() == 10 and first.attempts == 1
        lake.put("raw/sensor-data/2026/01/15/b.csv", numbered_sensor_csv("b", 5))
        assert ingest().records == 5
        assert ingest().files_processed == 0  # nothing new: the ledger answers by path
        rebuilt = ingest(reprocess=True)
        assert rebuilt.records == 15

        rows = spark.table(name)
        assert rows.count() == 15
        assert {r[0] for r in rows.select("_source_file").distinct().collect()} == {
            (lake.landing_root / "raw/sensor-data/2026/01/15" / f).as_uri()
            for f in ("a.csv", "b.csv")}
        location = spark.sql(f"DESCRIBE DETAIL {table.sql}").first()["location"]
        assert location.rstrip("/").endswith(f"{schema_location}/sensor_data")
        assert [c["userMetadata"]["batch_version"] for c in delta.commits_after(spark, table, -1)
                if "batch_version" in c["userMetadata"]] == [2, 1, 0]
        # Nothing of the bronze table under the lakehouse root: only the bookkeeping.
        assert not (Path(lake.lakehouse.root) / "manufacturing_bronze").exists()
    finally:
        spark.sql("DROP SCHEMA IF EXISTS spark_catalog.manufacturing_bronze CASCADE")
