"""The schema-change log: every column a batch added to a bronze table, with where it came from."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import SparkSession

from manufacturing_ingest.engine.delta import append_with_retry

SCHEMA = ("source string, column_name string, column_type string, table_version long, "
          "claim_id string, first_files string, detected_at timestamp")


class SchemaLog:
    """An append-only Delta table, one row per added column."""

    def __init__(self, spark: SparkSession, path: str):
        self.spark = spark
        self.path = path

    def record(self, source: str, new_columns: dict[str, str],
               files_by_column: dict[str, list[str]], table_version: int, claim_id: str) -> None:
        now = datetime.now(UTC)
        rows = [
            (source, name, kind, table_version, claim_id,
             ", ".join(sorted(set(files_by_column.get(name, [])))[:5]), now)
            for name, kind in new_columns.items()
        ]
        frame = self.spark.createDataFrame(rows, SCHEMA).coalesce(1)
        append_with_retry(lambda: frame.write.format("delta").mode("append").save(self.path))
