"""The file ledger: an append-only Delta table of what happened to every landed object.

Events, keyed by (source, object key, ETag):

- ``claimed``: the object is part of batch ``batch_version`` (the Delta ``txnVersion`` of the
  bronze write that will carry it) under ``claim_id``.
- ``committed``: the claim's bronze commit exists; ``rows`` rows came from the object.
- ``failed``: the object could not be read; ``error`` says why. It is retried next run.
- ``abandoned``: the claim never reached bronze (lost a race or its process died).

Appends never conflict with each other, so concurrent runs need no lock on the ledger; the
bronze table's idempotent transactions decide which claim wins (see ``bronze.py``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from manufacturing_ingest.engine.delta import append_with_retry, is_table

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
    ]
)
EVENT_FIELDS = [f.name for f in LEDGER_SCHEMA.fields]


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
    object_uri: str
    partition_key: str
    status: str  # committed | failed | pending
    rows: int | None = None
    table_version: int | None = None
    error: str | None = None
    note: str | None = None
    attempts: int = 0
    size: int | None = None
    last_modified: datetime | None = None
    recorded_at: datetime | None = None


class FileLedger:
    """Reads and appends ledger events for one lakehouse."""

    def __init__(self, spark: SparkSession, path: str):
        self.spark = spark
        self.path = path

    def events(self, source: str, partition_keys: list[str] | None = None) -> list[dict]:
        if not is_table(self.spark, self.path):
            return []
        df = self.spark.read.format("delta").load(self.path).where(F.col("source") == source)
        if partition_keys is not None:
            df = df.where(F.col("partition_key").isin(partition_keys))
        return [_aware(row.asDict()) for row in df.collect()]

    def append(self, events: list[dict]) -> None:
        if not events:
            return
        now = datetime.now(UTC)
        rows = [tuple({**e, "recorded_at": e.get("recorded_at") or now}.get(k)
                      for k in EVENT_FIELDS) for e in events]
        frame = self.spark.createDataFrame(rows, LEDGER_SCHEMA).coalesce(1)
        append_with_retry(lambda: frame.write.format("delta").mode("append")
                          .partitionBy("source").save(self.path))


def read_events(path: str, source: str, partition_keys: list[str]) -> list[dict]:
    """Ledger events without Spark (delta-rs), for sensors and checks that must stay light."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(path)
    except TableNotFoundError:
        return []
    import pyarrow.compute as pc

    dataset = table.to_pyarrow_dataset()
    expression = (pc.field("source") == source) & pc.field("partition_key").isin(partition_keys)
    return [_aware(e) for e in dataset.to_table(filter=expression).to_pylist()]


def _aware(event: dict) -> dict:
    """Timestamps as UTC-aware datetimes, whichever engine read them.

    PySpark hands back naive datetimes in the process's local time zone; delta-rs hands back
    aware ones. Events built in this process are aware; they must all compare.
    """
    for name in ("recorded_at", "last_modified"):
        value = event.get(name)
        if isinstance(value, datetime):
            event[name] = value.astimezone(UTC)  # a naive value is taken as local time
    return event


def claims_of(events: list[dict]) -> dict[str, tuple[Claim, str]]:
    """Every claim in ``events`` with its outcome: committed, abandoned or pending."""
    files: dict[str, list[tuple[str, str]]] = defaultdict(list)
    first: dict[str, dict] = {}
    outcome: dict[str, str] = {}
    for e in events:
        cid = e["claim_id"]
        if cid is None:
            continue
        if e["event"] == "claimed":
            files[cid].append((e["object_key"], e["etag"]))
            first.setdefault(cid, e)
        elif e["event"] in ("committed", "abandoned"):
            outcome[cid] = e["event"]
    return {
        cid: (
            Claim(cid, e["batch_version"], e["base_version"], e["mode"], tuple(files[cid])),
            outcome.get(cid, "pending"),
        )
        for cid, e in first.items()
    }


def file_states(events: list[dict]) -> dict[tuple[str, str], FileState]:
    """The standing of each (object key, ETag): committed beats pending beats failed."""
    claims = claims_of(events)
    states: dict[tuple[str, str], FileState] = {}
    rank = {"committed": 3, "pending": 2, "failed": 1}
    for e in sorted(events, key=lambda e: e["recorded_at"]):
        ident = (e["object_key"], e["etag"])
        if e["event"] == "claimed":
            if claims[e["claim_id"]][1] != "pending":
                continue
            status = "pending"
        elif e["event"] in ("committed", "failed"):
            status = e["event"]
        else:
            continue
        current = states.get(ident)
        attempts = (current.attempts if current else 0) + (1 if status == "failed" else 0)
        if current and rank[current.status] > rank[status]:
            current.attempts = attempts
            continue
        states[ident] = FileState(
            object_key=e["object_key"],
            etag=e["etag"],
            object_uri=e["object_uri"],
            partition_key=e["partition_key"],
            status=status,
            rows=e["rows"],
            table_version=e["table_version"],
            error=e["error"],
            note=e["note"],
            attempts=attempts,
            size=e["size"],
            last_modified=e["last_modified"],
            recorded_at=e["recorded_at"],
        )
    return states
