"""Find the files Spark itself cannot read, so they fail alone and the rest of the batch commits.

Inspection on the driver catches most broken files before Spark sees them; what remains (a
Parquet file Spark rejects, a path Spark cannot plan) shows up as an error of the whole batch,
either while planning the read or during the write. These helpers read each file alone to name
the culprit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pyspark.sql import SparkSession

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.engine.read import (
    JSON_KEY_COLLISION,
    BatchFile,
    BatchFrame,
    FailedFile,
    FailureKind,
    read_batch,
)
from manufacturing_ingest.engine.staging import dedupe_json_keys


def read_setting_aside(spark: SparkSession, spec: SourceSpec, files: list[BatchFile],
                       table_types: dict[str, str], ingested_at: datetime, staging: Path,
                       localize: Callable[[BatchFile], Path] = lambda f: Path(f.path),
                       ) -> tuple[BatchFrame | None, list[FailedFile]]:
    """The batch frame, after setting aside files Spark cannot plan a read of.

    A JSON file whose objects repeat a key (or spell it twice with different case) is read from
    a rewritten copy that keeps the first value and rescues the others, instead of failing.
    ``localize`` gives such a file as a local file (one Spark reads where it landed is fetched).
    """
    try:
        return read_batch(spark, spec, files, table_types, ingested_at), []
    except Exception:  # noqa: BLE001 - find the file(s) behind a planning error
        files = list(files)
        failed = []
        rewritten = False
        for index, f in enumerate(files):
            try:
                read_batch(spark, spec, [f], table_types, ingested_at)
                continue
            except Exception as exc:  # noqa: BLE001
                error = exc
            if f.inspection.file_format == "json" and _key_collision(error):
                try:
                    fixed = dataclasses.replace(
                        f, path=dedupe_json_keys(localize(f), staging, index))
                    read_batch(spark, spec, [fixed], table_types, ingested_at)
                    files[index] = fixed
                    rewritten = True
                    continue
                except Exception as again:  # noqa: BLE001
                    error = again
            failed.append(FailedFile(f.obj, f.partition_key, spark_error(error),
                                     FailureKind.PERMANENT))
        if not failed and not rewritten:
            raise
        bad = {f.obj.uri for f in failed}
        good = [f for f in files if f.obj.uri not in bad]
        if not good:
            return None, failed
        return read_batch(spark, spec, good, table_types, ingested_at), failed


def _key_collision(exc: Exception) -> bool:
    return any(m in str(exc) for m in ("COLUMN_ALREADY_EXISTS", JSON_KEY_COLLISION))


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
