"""Find the files Spark itself cannot read, so they fail alone and the rest of the batch commits.

Inspection on the driver catches most broken files before Spark sees them; what remains (a
Parquet file Spark rejects, a path Spark cannot plan) shows up as an error of the whole batch,
either while planning the read or during the write. These helpers read each file alone to name
the culprit.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import SparkSession

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.engine.read import BatchFile, BatchFrame, FailedFile, read_batch


def read_setting_aside(spark: SparkSession, spec: SourceSpec, files: list[BatchFile],
                       table_types: dict[str, str], ingested_at: datetime
                       ) -> tuple[BatchFrame | None, list[FailedFile]]:
    """The batch frame, after setting aside files Spark cannot plan a read of."""
    try:
        return read_batch(spark, spec, files, table_types, ingested_at), []
    except Exception:  # noqa: BLE001 - find the file(s) behind a planning error
        failed = []
        for f in files:
            try:
                read_batch(spark, spec, [f], table_types, ingested_at)
            except Exception as exc:  # noqa: BLE001
                failed.append(FailedFile(f.obj, f.partition_key, spark_error(exc)))
        if not failed:
            raise
        bad = {f.obj.uri for f in failed}
        good = [f for f in files if f.obj.uri not in bad]
        if not good:
            return None, failed
        return read_batch(spark, spec, good, table_types, ingested_at), failed


def find_unreadable(spark: SparkSession, spec: SourceSpec, files: list[BatchFile],
                    table_types: dict[str, str], ingested_at: datetime) -> dict[str, str]:
    """After a failed write, read each file alone: URI → error of the ones Spark cannot read."""
    found = {}
    for f in files:
        try:
            frame = read_batch(spark, spec, [f], table_types, ingested_at)
            frame.df.write.format("noop").mode("overwrite").save()
        except Exception as exc:  # noqa: BLE001
            found[f.obj.uri] = spark_error(exc)
    return found


def spark_error(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"Spark could not read the file: {first[:500]}"
