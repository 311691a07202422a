"""Rows per landed file in a bronze commit: from the files' line counts when they add up to
what Delta wrote, else counted in the commit's own rows."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from manufacturing_ingest.catalog import INGESTED_AT_COLUMN, SOURCE_FILE_COLUMN
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.delta import TableRef
from manufacturing_ingest.engine.read import BatchFile


def rows_from_inspection(files: list[BatchFile], commit: dict) -> dict[str, int] | None:
    """Rows per file from the inspected line counts, when they add up to what Delta wrote."""
    expected = [f.inspection.expected_rows for f in files]
    written = (commit.get("operationMetrics") or {}).get("numOutputRows")
    if None in expected or written is None or int(written) != sum(expected):
        return None  # quoted line breaks, odd blank lines…: count in Spark instead
    return {f.obj.uri: f.inspection.expected_rows for f in files}


def count_rows(spark: SparkSession, table: TableRef, uris: list[str], version: int,
               ingested_at: datetime | None) -> dict[str, int]:
    """Rows each file put into commit ``version`` (a scan of the new rows only)."""
    rows = (
        delta.read_table(spark, table, version)
        .where(F.col(SOURCE_FILE_COLUMN).isin(uris))
    )
    if ingested_at is not None:  # with statistics on _ingested_at: only the new files
        rows = rows.where(F.col(INGESTED_AT_COLUMN) == F.lit(ingested_at).cast("timestamp"))
    counts = rows.groupBy(SOURCE_FILE_COLUMN).count().collect()
    return {row[SOURCE_FILE_COLUMN]: int(row["count"]) for row in counts}
