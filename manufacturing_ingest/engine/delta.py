"""Small reads of Delta table state: versions, idempotent-write markers, history, schema."""

from __future__ import annotations

import json
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from manufacturing_ingest.engine.types import catalog_type
from manufacturing_ingest.retry import Backoff

# Blind appends (ledger, schema log) lose races only to table creation or metadata changes.
APPEND_BACKOFF = Backoff(attempts=6, base=0.2, cap=3.0)


def is_table(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def _snapshot(spark: SparkSession, path: str):
    jvm = spark._jvm  # py4j: Delta exposes no Python API for SetTransaction state
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    none = jvm.scala.Option.empty()
    return delta_log.update(False, none, none)


def table_state(spark: SparkSession, path: str, app_id: str) -> tuple[int, int]:
    """(table version, last ``txnVersion`` committed under ``app_id``); -1s when absent."""
    if not is_table(spark, path):
        return -1, -1
    snapshot = _snapshot(spark, path)
    found = snapshot.transactions().get(app_id)
    return int(snapshot.version()), int(found.get()) if found.isDefined() else -1


def table_version(spark: SparkSession, path: str) -> int:
    if not is_table(spark, path):
        return -1
    return int(_snapshot(spark, path).version())


def commits_after(spark: SparkSession, path: str, version: int) -> list[dict[str, Any]]:
    """Commit infos of versions after ``version``, newest first, ``userMetadata`` decoded."""
    current = table_version(spark, path)
    if current <= version:
        return []
    rows = (
        DeltaTable.forPath(spark, path)
        .history(current - version)
        .select("version", "timestamp", "operation", "operationMetrics", "userMetadata")
        .collect()
    )
    commits = []
    for row in rows:
        if row["version"] <= version:
            continue
        commit = row.asDict()
        try:
            commit["userMetadata"] = json.loads(row["userMetadata"] or "{}")
        except ValueError:
            commit["userMetadata"] = {"text": row["userMetadata"]}
        commits.append(commit)
    return commits


def table_types(spark: SparkSession, path: str) -> dict[str, str]:
    """Column name → catalog type of an existing table (empty when the table does not exist)."""
    if not is_table(spark, path):
        return {}
    return {f.name: catalog_type(f.dataType) for f in spark.read.format("delta").load(path).schema}


_CONFLICTS = (
    "ConcurrentTransactionException", "ConcurrentAppendException", "ProtocolChangedException",
    "MetadataChangedException", "ConcurrentWriteException", "DELTA_CONCURRENT",
    "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED",
)


def is_write_conflict(exc: BaseException) -> bool:
    """Whether a failed Delta write lost an optimistic-concurrency race (and may be retried)."""
    text = f"{type(exc).__name__} {exc}"
    return any(name in text for name in _CONFLICTS)


def append_with_retry(write) -> None:
    """Run a blind append, retrying when a concurrent commit (e.g. table creation) got in first."""
    APPEND_BACKOFF.call(write, retry_on=is_write_conflict)
