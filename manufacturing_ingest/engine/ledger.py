"""The file ledger: an append-only Delta table of what happened to every landed object.

Events, keyed by (source, object key, ETag):

- ``claimed``: the object is part of batch ``batch_version`` (the Delta ``txnVersion`` of the
  bronze write that will carry it) under ``claim_id``.
- ``committed``: the claim's bronze commit exists; ``rows`` rows came from the object. Empty
  files are committed without a claim, with 0 rows and a note.
- ``failed``: the object could not be read; ``error`` says why. It is retried next run.
- ``abandoned``: the claim never reached bronze (lost a race or its process died).
- ``superseded``: a new version of the object (same key, other content) replaced this version's
  rows in bronze, in commit ``table_version``; its rows are gone (``Corrections.REPLACE``).

Each committed version carries ``content_hash`` (``md5:<hex>`` of the object's bytes) when it
was known without extra reading: a later version with the same hash is the same file (touched,
or uploaded again with another part size) and changes nothing. A claimed version that replaces
an older one names that one's ETag in ``supersedes``, so a claim settled after a crash
supersedes it too (several ETags, comma-separated, when ``append`` had kept several versions).

Appends never conflict with each other, so concurrent runs need no lock on the ledger; the
bronze table's idempotent transactions decide which claim wins (see ``protocol.py``).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from manufacturing_ingest.engine.delta import (
    append_with_retry,
    is_missing_table,
    local_table_folder,
)
from manufacturing_ingest.landing import LandedObject

LEDGER_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType(), False),
        T.StructField("event", T.StringType(), False),
        T.StructField("claim_id", T.StringType()),
        T.StructField("batch_version", T.LongType()),
        T.StructField("base_version", T.LongType()),
        T.StructField("mode", T.StringType()),
        T.StructField("partition_key", T.StringType()),
        T.StructField("object_key", T.StringType(), False),
        T.StructField("object_uri", T.StringType()),
        T.StructField("etag", T.StringType(), False),
        T.StructField("size", T.LongType()),
        T.StructField("last_modified", T.TimestampType()),
        T.StructField("rows", T.LongType()),
        T.StructField("table_version", T.LongType()),
        T.StructField("error", T.StringType()),
        T.StructField("note", T.StringType()),
        T.StructField("run_id", T.StringType()),
        T.StructField("recorded_at", T.TimestampType(), False),
        # Added after the first release: older ledgers gain them on their next append.
        T.StructField("content_hash", T.StringType()),
        T.StructField("supersedes", T.StringType()),
    ]
)


class EventKind(StrEnum):
    CLAIMED = "claimed"
    COMMITTED = "committed"
    FAILED = "failed"
    ABANDONED = "abandoned"
    SUPERSEDED = "superseded"


class FileStatus(StrEnum):
    """Where one (object key, ETag) stands; superseded beats committed beats pending beats
    failed."""

    SUPERSEDED = "superseded"
    COMMITTED = "committed"
    PENDING = "pending"
    FAILED = "failed"


class ClaimOutcome(StrEnum):
    COMMITTED = "committed"
    ABANDONED = "abandoned"
    PENDING = "pending"


@dataclass(frozen=True)
class LedgerEvent:
    """One row of the ledger."""

    source: str
    event: EventKind
    object_key: str
    etag: str
    object_uri: str | None = None
    partition_key: str | None = None
    size: int | None = None
    last_modified: datetime | None = None
    claim_id: str | None = None
    batch_version: int | None = None
    base_version: int | None = None
    mode: str | None = None
    rows: int | None = None
    table_version: int | None = None
    error: str | None = None
    note: str | None = None
    run_id: str | None = None
    recorded_at: datetime | None = None
    content_hash: str | None = None
    supersedes: str | None = None

    @classmethod
    def for_object(cls, source: str, event: EventKind, obj: LandedObject, partition_key: str,
                   run_id: str, **fields) -> LedgerEvent:
        return cls(source=source, event=event, object_key=obj.key, etag=obj.etag,
                   object_uri=obj.uri, partition_key=partition_key, size=obj.size,
                   last_modified=obj.last_modified, run_id=run_id, **fields)

    @property
    def ident(self) -> tuple[str, str]:
        return self.object_key, self.etag

    def but(self, **changes) -> LedgerEvent:
        """A copy with ``changes`` (e.g. the same file, a new event)."""
        return dataclasses.replace(self, **changes)

    def to_row(self, now: datetime) -> tuple:
        values = {**dataclasses.asdict(self), "event": self.event.value,
                  "recorded_at": self.recorded_at or now}
        return tuple(values[f.name] for f in LEDGER_SCHEMA.fields)

    @classmethod
    def from_row(cls, row: dict) -> LedgerEvent:
        values = {f.name: row.get(f.name) for f in dataclasses.fields(cls)}
        values["event"] = EventKind(values["event"])
        for name in ("recorded_at", "last_modified"):
            # PySpark hands back naive datetimes in the process's local time zone, delta-rs
            # aware ones; events built here are aware. They must all compare.
            if isinstance(values[name], datetime):
                values[name] = values[name].astimezone(UTC)
        return cls(**values)


@dataclass(frozen=True)
class Claim:
    claim_id: str
    batch_version: int
    base_version: int
    mode: str
    files: tuple[tuple[str, str], ...]  # (object key, etag)


@dataclass
class FileState:
    """Where one (object key, ETag) stands, as the operator sees it in ``files``."""

    object_key: str
    etag: str
    object_uri: str | None
    partition_key: str | None
    status: FileStatus
    rows: int | None = None
    table_version: int | None = None
    error: str | None = None
    note: str | None = None
    attempts: int = 0
    size: int | None = None
    last_modified: datetime | None = None
    recorded_at: datetime | None = None
    content_hash: str | None = None


class FileLedger:
    """Reads and appends ledger events for one lakehouse."""

    def __init__(self, spark: SparkSession, path: str):
        self.spark = spark
        self.path = path

    def events(self, source: str, partition_keys: list[str] | None = None) -> list[LedgerEvent]:
        local = local_table_folder(self.path)
        if local is not None and partition_keys is not None:
            # In-process (delta-rs): the same snapshot a Spark job would read, without the job;
            # about 0.08 s against 0.75 s, a cost every batch pays before it can plan.
            return read_events(local, source, partition_keys)

        def read():
            df = self.spark.read.format("delta").load(self.path).where(F.col("source") == source)
            if partition_keys is not None:
                df = df.where(F.col("partition_key").isin(partition_keys))
            return [LedgerEvent.from_row(row.asDict()) for row in df.collect()]

        return self._unless_missing(read, [])

    def last_committed_batch(self, source: str) -> int:
        """The highest batch version of ``source`` the ledger records as committed (-1: none)."""
        row = self._unless_missing(
            lambda: (self.spark.read.format("delta").load(self.path)
                     .where((F.col("source") == source)
                            & (F.col("event") == EventKind.COMMITTED.value))
                     .agg(F.max("batch_version")).first()),
            None)
        return -1 if row is None or row[0] is None else int(row[0])

    def _unless_missing(self, read, default):
        """``read()``, or ``default`` while the ledger has no table yet. One look at the table:
        probing it first would load its snapshot twice, a cost every small batch pays."""
        try:
            return read()
        except AnalysisException as exc:
            if is_missing_table(exc):
                return default
            raise

    def append(self, events: list[LedgerEvent]) -> None:
        if not events:
            return
        rows = _arrow_rows(events, datetime.now(UTC))
        local = local_table_folder(self.path)
        if local is not None and _has_first_commit(local):
            # In-process (delta-rs): one atomic commit of a few rows, about 0.02 s against
            # 0.4-0.7 s for a Spark write job, paid twice by every batch (the claim, then
            # ``committed``). The table is created by Spark (below), so its schema, partitioning
            # and protocol are Spark's; Delta's commit protocol keeps writers of both kinds
            # apart (each commit is a new log file, created only if absent).
            _append_in_process(local, rows)
            return
        frame = self.spark.createDataFrame(rows, LEDGER_SCHEMA).coalesce(1)
        # mergeSchema: a ledger written before a column was added gains it.
        append_with_retry(lambda: frame.write.format("delta").mode("append")
                          .option("mergeSchema", "true").partitionBy("source").save(self.path))


def _has_first_commit(folder: str) -> bool:
    """Whether the table's first commit is there: its ``_delta_log`` folder appears before it,
    while another writer is still creating the table."""
    return (Path(folder) / "_delta_log" / f"{0:020d}.json").is_file()


def _append_in_process(folder: str, rows) -> None:
    from deltalake import write_deltalake

    # merge: a ledger written before a column was added gains it, as Spark's mergeSchema does.
    # The partitioning is the table's; said again so it can never differ.
    write_deltalake(folder, rows, mode="append", schema_mode="merge", partition_by=["source"])


def _arrow_rows(events: list[LedgerEvent], now: datetime):
    """The events as an Arrow table: Spark builds a DataFrame from it on the JVM side, where a
    list of Python rows would start Python workers to unpickle them on every append."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    try:
        schema = to_arrow_schema(LEDGER_SCHEMA, timezone="UTC")
    except TypeError:
        # pyspark 4.0 (databricks-connect 17's) names it timestamp_utc, UTC by default.
        schema = to_arrow_schema(LEDGER_SCHEMA)
    names = [f.name for f in LEDGER_SCHEMA.fields]
    return pa.Table.from_pylist([dict(zip(names, e.to_row(now), strict=True)) for e in events],
                                schema=schema)


def read_events(path: str, source: str, partition_keys: list[str]) -> list[LedgerEvent]:
    """Ledger events without Spark (delta-rs), for sensors and checks that must stay light."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(path)
    except TableNotFoundError:
        return []
    dataset = table.to_pyarrow_dataset()
    expression = (pc.field("source") == source) & pc.field("partition_key").isin(partition_keys)
    # One thread: Arrow's scanner threads can outlive the scan, and a process that exits with
    # them alive aborts in Arrow's teardown ("terminate called without an active exception",
    # exit 134) after its work is done: 7 of 12 processes that read the ledger did, 0 of 12
    # with one thread. A partition's events are a few thousand rows; threads buy nothing here.
    rows = dataset.to_table(filter=expression, use_threads=False).to_pylist()
    return [LedgerEvent.from_row(e) for e in rows]


def claims_of(events: list[LedgerEvent]) -> dict[str, tuple[Claim, ClaimOutcome]]:
    """Every claim in ``events`` with its outcome."""
    files: dict[str, list[tuple[str, str]]] = defaultdict(list)
    first: dict[str, LedgerEvent] = {}
    outcome: dict[str, ClaimOutcome] = {}
    for e in events:
        cid = e.claim_id
        if cid is None:
            continue
        if e.event is EventKind.CLAIMED:
            files[cid].append(e.ident)
            first.setdefault(cid, e)
        elif e.event is EventKind.COMMITTED:
            outcome[cid] = ClaimOutcome.COMMITTED
        elif e.event is EventKind.ABANDONED:
            outcome[cid] = ClaimOutcome.ABANDONED
    return {
        cid: (
            Claim(cid, e.batch_version, e.base_version, e.mode, tuple(files[cid])),
            outcome.get(cid, ClaimOutcome.PENDING),
        )
        for cid, e in first.items()
    }


_RANK = {FileStatus.SUPERSEDED: 4, FileStatus.COMMITTED: 3, FileStatus.PENDING: 2,
         FileStatus.FAILED: 1}


def file_states(events: list[LedgerEvent]) -> dict[tuple[str, str], FileState]:
    """The standing of each (object key, ETag): superseded beats committed beats pending beats
    failed."""
    claims = claims_of(events)
    states: dict[tuple[str, str], FileState] = {}
    for e in sorted(events, key=lambda e: e.recorded_at):
        if e.event is EventKind.CLAIMED:
            if claims[e.claim_id][1] is not ClaimOutcome.PENDING:
                continue
            status = FileStatus.PENDING
        elif e.event is EventKind.COMMITTED:
            status = FileStatus.COMMITTED
        elif e.event is EventKind.FAILED:
            status = FileStatus.FAILED
        elif e.event is EventKind.SUPERSEDED:
            status = FileStatus.SUPERSEDED
        else:
            continue
        current = states.get(e.ident)
        attempts = (current.attempts if current else 0) + (status is FileStatus.FAILED)
        if current and _RANK[current.status] > _RANK[status]:
            current.attempts = attempts
            continue
        states[e.ident] = FileState(
            object_key=e.object_key, etag=e.etag, object_uri=e.object_uri,
            partition_key=e.partition_key, status=status, rows=e.rows,
            table_version=e.table_version, error=e.error, note=e.note, attempts=attempts,
            size=e.size, last_modified=e.last_modified, recorded_at=e.recorded_at,
            content_hash=e.content_hash or (current.content_hash if current else None),
        )
    return states
