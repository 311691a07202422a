"""Small reads of Delta table state: versions, idempotent-write markers, history, schema.

Public APIs only (SQL and the DataFrame reader), so the same code runs on a local session, a
Spark Connect session and a Databricks cluster in shared access mode, where the JVM is out of
reach and Delta's classes have other names.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, DataFrameWriter, SparkSession

from manufacturing_ingest.engine.types import catalog_type
from manufacturing_ingest.retry import Backoff

# Blind appends (ledger, schema log) lose races only to table creation or metadata changes.
APPEND_BACKOFF = Backoff(attempts=6, base=0.2, cap=3.0)

# What Spark answers when a path holds no Delta table (yet).
_NOT_A_TABLE = ("DELTA_TABLE_ONLY_OPERATION", "DELTA_MISSING_DELTA_TABLE", "PATH_NOT_FOUND",
                "DELTA_TABLE_NOT_FOUND", "TABLE_OR_VIEW_NOT_FOUND")
# History rows read per look; widened while the answer is older than that.
_HISTORY_PAGE = 20


@dataclass(frozen=True)
class TableRef:
    """A Delta table, by where it is: a folder or URL (``path``) or a catalog name
    (``name``, ``catalog.schema.table``). Which of the two is said when it is made, never
    guessed from the string: a catalog table's name and a path can look alike.

    Every function here takes a ``TableRef``, or a plain string, which is always a path.
    """

    path: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.name is None):
            raise ValueError("a table is either a path or a catalog name")

    @classmethod
    def at(cls, path: str) -> TableRef:
        return cls(path=path)

    @classmethod
    def named(cls, name: str) -> TableRef:
        return cls(name=name)

    @property
    def sql(self) -> str:
        """As a SQL table reference: ``delta.`<path>``` or ```catalog`.`schema`.`table```."""
        if self.name is not None:
            return ".".join("`" + part.replace("`", "``") + "`" for part in self.name.split("."))
        return "delta.`" + str(self.path).replace("`", "``") + "`"

    def local_folder(self) -> str | None:
        """The table's folder on this machine, when it is a path table there (see
        ``local_table_folder``); None for a catalog table."""
        return None if self.path is None else local_table_folder(self.path)

    def __str__(self) -> str:
        return self.path if self.path is not None else str(self.name)


# How a full disk or an exhausted quota reads in the JVM's and the OS's messages.
_STORAGE_FULL = ("No space left on device", "Disk quota exceeded")


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the storage is full."""
    seen = exc
    while seen is not None:
        if any(m in str(seen) for m in _STORAGE_FULL):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def wait_for_tasks(spark: SparkSession, timeout: float = 15.0) -> None:
    """Wait until the session's JVM runs no job (tasks of an aborted job end on their own
    time), at most ``timeout`` seconds; at once on Spark Connect (no local JVM to ask)."""
    try:
        tracker = spark.sparkContext.statusTracker()
    except Exception:  # noqa: BLE001 - Spark Connect sessions have no SparkContext
        return
    deadline = time.monotonic() + timeout
    while tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)


def remove_unreferenced(spark: SparkSession, table: TableRef | str, since: float) -> int:
    """Delete the data files a failed write left in a local path table: Parquet files written
    since ``since`` (a ``time.time()``) that no version of the table references. Returns how
    many went. A no-op for catalog tables and remote paths (VACUUM removes them there)."""
    folder = as_table(table).local_folder()
    if folder is None or not os.path.isdir(folder):
        return 0
    referenced: set[str] = set()
    log_folder = os.path.join(folder, "_delta_log")
    if os.path.isdir(log_folder) and any(n.endswith(".json") and n[:20].isdigit()
                                         for n in os.listdir(log_folder)):
        try:
            referenced = {unquote(urlparse(uri).path) for uri in
                          spark.read.format("delta").load(folder).inputFiles()}
        except Exception:  # noqa: BLE001 - without the table's files nothing is safe to delete
            return 0
    removed = 0
    for parent, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "_delta_log"]
        for name in names:
            path = os.path.join(parent, name)
            if not name.endswith(".parquet") or path in referenced:
                continue
            try:
                if os.stat(path).st_mtime >= since:
                    os.unlink(path)
                    removed += 1
                    crc = os.path.join(parent, f".{name}.crc")
                    if os.path.exists(crc):
                        os.unlink(crc)
            except OSError:
                continue
    return removed


def as_table(table: TableRef | str) -> TableRef:
    """``table`` as a ``TableRef``; a string is a path."""
    return table if isinstance(table, TableRef) else TableRef.at(table)


def table_ref(table: TableRef | str) -> str:
    """``table`` as a SQL table reference (see ``TableRef.sql``)."""
    return as_table(table).sql


def table_location(spark: SparkSession, table: TableRef | str) -> str:
    """Where the table's files are: its path, or for a catalog table the location the catalog
    gives (``DESCRIBE DETAIL``)."""
    table = as_table(table)
    if table.path is not None:
        return table.path
    return str(spark.sql(f"DESCRIBE DETAIL {table.sql}").first()["location"])


def read_table(spark: SparkSession, table: TableRef | str, version: int | None = None
               ) -> DataFrame:
    """The rows of ``table`` (a path or a catalog name), at ``version`` when given."""
    at = f" VERSION AS OF {int(version)}" if version is not None else ""
    return spark.sql(f"SELECT * FROM {table_ref(table)}{at}")


def create_named_table(df: DataFrame, table: TableRef | str, partition_column: str,
                       properties: dict[str, str]) -> None:
    """Create catalog table ``table`` empty, with ``df``'s columns, when it does not exist yet.

    A first write by name is a CREATE TABLE AS SELECT, which drops the write's ``txnAppId``,
    ``txnVersion`` and ``userMetadata``: the exactly-once protocol would not find its commit.
    So the table is created first and every batch is an append. Paths need none of this.
    """
    table = as_table(table)
    if table.name is None:
        return
    try:
        (df.limit(0).write.format("delta").options(**properties)
         .partitionBy(partition_column).mode("ignore").saveAsTable(table.name))
    except AnalysisException as exc:
        if "TABLE_OR_VIEW_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
            raise


def save_table(writer: DataFrameWriter, table: TableRef | str) -> None:
    """Write to ``table``: a catalog name through the catalog, a path directly."""
    table = as_table(table)
    if table.name is not None:
        writer.saveAsTable(table.name)
    else:
        writer.save(table.path)


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def local_table_folder(path: str) -> str | None:
    """``path`` as a folder of this machine when a Delta table is there, else None.

    Only then may this process read the table itself, with delta-rs, instead of asking Spark:
    a Spark job per look costs 0.4-0.8 s, which every small batch pays several times. With
    Spark Connect a local-looking path names the *server's* disk, and a folder missing here
    says nothing about the table there, so anything else goes to Spark.
    """
    if "://" in path and not path.startswith("file://"):
        return None  # an object store, or a catalog name (no "://", but no folder either)
    folder = Path(path.removeprefix("file://"))
    return str(folder) if (folder / "_delta_log").is_dir() else None


_HISTORY_FIELDS = ("version", "timestamp", "operation", "operationMetrics", "userMetadata")


def _history(spark: SparkSession, table: TableRef | str, limit: int | None
             ) -> list[dict[str, Any]] | None:
    """The newest ``limit`` commits (all with None), newest first; None when no table is there."""
    table = as_table(table)
    local = table.local_folder()
    commits = _local_history(local, limit) if local is not None else None
    if commits is None:
        query = f"DESCRIBE HISTORY {table.sql}" + (f" LIMIT {int(limit)}" if limit else "")
        try:
            rows = spark.sql(query).select(*_HISTORY_FIELDS).collect()
        except AnalysisException as exc:
            if is_missing_table(exc):
                return None
            raise
        commits = [row.asDict() for row in rows]
    for commit in commits:
        text = commit["userMetadata"]
        try:
            commit["userMetadata"] = json.loads(text or "{}")
        except ValueError:
            commit["userMetadata"] = {"text": text}
        if not isinstance(commit["userMetadata"], dict):
            commit["userMetadata"] = {"text": text}
    return commits


def _local_history(folder: str, limit: int | None) -> list[dict[str, Any]] | None:
    """What ``DESCRIBE HISTORY`` answers, read in-process from the log; None when the folder
    holds no commit yet (Spark then answers)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        raw = DeltaTable(folder).history(limit)
    except TableNotFoundError:
        return None
    return [{
        "version": int(c["version"]),
        "timestamp": datetime.fromtimestamp(c["timestamp"] / 1000, UTC),
        "operation": c.get("operation"),
        "operationMetrics": c.get("operationMetrics"),
        "userMetadata": c.get("userMetadata"),
    } for c in raw]


def _pages(spark: SparkSession, path: TableRef | str):
    """Ever longer views of the history, newest first, each one consistent in itself, with
    whether it holds all of the history there is (an empty view: no table)."""
    limit = _HISTORY_PAGE
    while True:
        commits = _history(spark, path, limit)
        if commits is None:
            yield [], True
            return
        whole = len(commits) < limit
        yield commits, whole
        if whole:
            return
        limit *= 10


def commits_of_stamps(spark: SparkSession, path: TableRef | str, stamps: set[int]
                      ) -> dict[int, int]:
    """The version of the engine's commit of each batch stamp (``_ingested_at`` as epoch
    microseconds, which the commit's ``userMetadata`` carries), newest history first."""
    found: dict[int, int] = {}
    for commits, _ in _pages(spark, path):
        for commit in commits:
            stamp = (commit["userMetadata"] or {}).get("ingested_at")
            if stamp:
                micros = round(datetime.fromisoformat(stamp).timestamp() * 1_000_000)
                if micros in stamps:
                    found.setdefault(micros, int(commit["version"]))
        if set(found) == stamps:
            break
    return found


def is_table(spark: SparkSession, path: TableRef | str) -> bool:
    return _history(spark, path, 1) is not None


def table_state(spark: SparkSession, path: TableRef | str) -> tuple[int, int]:
    """(table version, ``batch_version`` of the engine's newest commit); -1s when absent.

    Every bronze commit of the engine carries its ``batch_version`` in ``userMetadata``, the
    same number it gives Delta as ``txnVersion``, so the newest one is the version Delta holds
    for the source's ``txnAppId``. Both figures come from one read of the history, so they
    agree. History older than the log retention (30 days by default) is gone: the protocol also
    counts the ledger's committed batches, for a source that was quiet that long.
    """
    for commits, whole in _pages(spark, path):
        if not commits:
            return -1, -1
        batch = next((c["userMetadata"]["batch_version"] for c in commits
                      if isinstance(c["userMetadata"].get("batch_version"), int)), None)
        if batch is not None or whole:
            return int(commits[0]["version"]), -1 if batch is None else batch
    raise AssertionError("the last view of the history is whole")


def table_version(spark: SparkSession, path: TableRef | str) -> int:
    commits = _history(spark, path, 1)
    return int(commits[0]["version"]) if commits else -1


def commits_after(spark: SparkSession, path: TableRef | str, version: int) -> list[dict[str, Any]]:
    """Commit infos of versions after ``version``, newest first, ``userMetadata`` decoded."""
    for commits, whole in _pages(spark, path):
        if whole or int(commits[-1]["version"]) <= version + 1:
            return [c for c in commits if int(c["version"]) > version]
    raise AssertionError("the last view of the history is whole")


def is_missing_table(exc: BaseException) -> bool:
    """Whether a failed read says there is no Delta table (yet) at the path or name."""
    return isinstance(exc, AnalysisException) and any(name in str(exc) for name in _NOT_A_TABLE)


def table_types(spark: SparkSession, path: TableRef | str) -> dict[str, str]:
    """Column name → catalog type of an existing table (empty when the table does not exist)."""
    # One analysis of the table, not a probe of its history first: each look at a table loads
    # its snapshot, and small batches pay that per look.
    try:
        schema = read_table(spark, path).schema
    except AnalysisException as exc:
        if is_missing_table(exc):
            return {}
        raise
    return {f.name: catalog_type(f.dataType) for f in schema}


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
    """Run a blind append (or another write that is safe to repeat), retrying when a concurrent
    commit (table creation, a compaction) got in first."""
    APPEND_BACKOFF.call(write, retry_on=is_write_conflict)
