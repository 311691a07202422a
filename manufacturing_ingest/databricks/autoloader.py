"""Databricks Auto Loader (``cloudFiles``) as an optional reader of a bronze table.

Databricks only: ``cloudFiles`` is not part of open-source Spark. One stream per source and file
format (a ``cloudFiles`` stream reads one format), each with its own checkpoint and schema
location under the lakehouse, run with ``trigger(availableNow=True)``: it takes every file not
yet in its checkpoint, commits, and stops, so a Dagster run stays a bounded batch job.

Exactly once comes from the stream's checkpoint (which files were taken) and Delta's idempotent
writes: each micro-batch is appended in ``foreachBatch`` with ``txnAppId`` = the stream and
``txnVersion`` = the micro-batch id, so a micro-batch replayed after a crash is skipped by Delta.
After each commit the files it held are recorded as committed in the platform's file ledger, so
``manufacturing-ingest files``, the backlog check and the landing sensors see them as for the
portable engine. The ledger knows such files by key, size and modification time (the stream
does not see ETags).

What Auto Loader does differently from the portable engine (README, "Choosing a reader"): values
that do not fit a declared type go to ``_rescued_data`` as Auto Loader rescues them (epoch
timestamps are not converted), it does not read by partition (a run takes every new file of the
source, whatever partition the run names), and a broken file fails the stream unless
``ignoreCorruptFiles`` is set, which skips it silently.

How the streams find new files (directory listing, the external location's file events, or
classic S3 notifications) is ``MANUFACTURING_AUTOLOADER_DISCOVERY``: ``discovery.py``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from manufacturing_ingest.catalog import (
    INGESTED_AT_COLUMN,
    RESCUED_DATA_COLUMN,
    SOURCE_FILE_COLUMN,
    FileFormat,
    SourceSpec,
)
from manufacturing_ingest.databricks.discovery import AutoLoaderDiscovery
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.delta import TableRef
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.ledger import EventKind, FileLedger, LedgerEvent
from manufacturing_ingest.engine.protocol import record_stream_commit
from manufacturing_ingest.engine.report import FileOutcome, IngestMode, IngestReport, Outcome
from manufacturing_ingest.landing import LandedObject
from manufacturing_ingest.partitioning import Grain, PartitionScheme

# Catalog type → the SQL type Auto Loader's schema hints take.
HINT_TYPES = {"string": "STRING", "double": "DOUBLE", "long": "BIGINT", "boolean": "BOOLEAN",
              "timestamp": "TIMESTAMP", "date": "DATE"}
# The names of each format the landing zone accepts (and gzip), as a Hadoop glob.
FILE_GLOBS: dict[str, str] = {
    "csv": "*.{csv,CSV,csv.gz,CSV.GZ}",
    "json": "*.{json,jsonl,ndjson,JSON,JSONL,json.gz,jsonl.gz,ndjson.gz}",
    "parquet": "*.{parquet,PARQUET}",
}
# Columns the micro-batch carries for the ledger, dropped before the write.
_FILE_SIZE = "__manufacturing_ingest_file_size"
_FILE_MODIFIED = "__manufacturing_ingest_file_modified"


@dataclass(frozen=True)
class AutoLoaderLayout:
    """Where a source's streams keep their state: per table and format, under the lakehouse."""

    lakehouse_root: str

    def _base(self, spec: SourceSpec, file_format: FileFormat) -> str:
        return f"{self.lakehouse_root}/_manufacturing_ingest/autoloader/{spec.name}/{file_format}"

    def checkpoint(self, spec: SourceSpec, file_format: FileFormat) -> str:
        return f"{self._base(spec, file_format)}/checkpoint"

    def schema_location(self, spec: SourceSpec, file_format: FileFormat) -> str:
        return f"{self._base(spec, file_format)}/schema"


def schema_hints(spec: SourceSpec) -> str:
    """The catalog's columns as Auto Loader schema hints: ``plant_id STRING, …``."""
    return ", ".join(f"`{name}` {HINT_TYPES[kind]}" for name, kind in spec.columns.items())


def reader_options(spec: SourceSpec, file_format: FileFormat, schema_location: str,
                   discovery: AutoLoaderDiscovery | None = None) -> dict[str, str]:
    """The ``cloudFiles`` options of one source and format; ``discovery``: how the stream
    finds new files (None: the runtime's default, directory listing)."""
    options = {
        "cloudFiles.format": file_format,
        "cloudFiles.schemaLocation": schema_location,
        # New columns are added to the schema (the stream stops once and picks them up on the
        # next run, as Auto Loader does); values that do not fit go to the rescued column.
        "cloudFiles.schemaEvolutionMode": "addNewColumns",
        "cloudFiles.schemaHints": schema_hints(spec),
        "cloudFiles.includeExistingFiles": "true",
        "rescuedDataColumn": RESCUED_DATA_COLUMN,
        "pathGlobFilter": FILE_GLOBS[file_format],
    }
    if file_format == "csv":
        # Text in, typed by the hints: the portable engine's columns, not Spark's guesses.
        options.update({"header": "true", "multiLine": "true", "escape": '"',
                        "encoding": "UTF-8", "cloudFiles.inferColumnTypes": "false"})
    elif file_format == "json":
        options.update({"multiLine": "false", "encoding": "UTF-8",
                        "cloudFiles.inferColumnTypes": "false"})
    if discovery is not None:
        options.update(discovery.options(spec.name, file_format))
    return options


def partition_value(scheme: PartitionScheme, file_path: Column, modified: Column) -> Column:
    """The partition column from ``YYYY/MM/DD[/HH]/`` in the path, else the file's
    modification time (UTC), as the portable engine files objects (``partition_key_of``)."""
    pattern = r"/(\d{4}/\d{2}/\d{2}/\d{2})/" if scheme.grain is Grain.HOURLY \
        else r"/(\d{4}/\d{2}/\d{2})/"
    found = F.regexp_extract(file_path, pattern, 1)
    if scheme.grain is Grain.HOURLY:
        from_path = F.try_to_timestamp(found, F.lit("yyyy/MM/dd/HH"))
        return F.coalesce(from_path, F.date_trunc("hour", modified))
    from_path = F.try_to_timestamp(found, F.lit("yyyy/MM/dd")).cast("date")
    return F.coalesce(from_path, modified.cast("date"))


def source_uri(file_path: Column) -> Column:
    """``_metadata.file_path`` (percent-encoded; ``file:/x`` for a local file) as the object URI
    the portable engine writes (``s3://bucket/key``, ``file:///x``)."""
    decoded = F.url_decode(F.regexp_replace(file_path, r"\+", "%2B"))
    return F.regexp_replace(decoded, r"^file:/(?!/)", "file:///")


def bronze_stream(spark: SparkSession, spec: SourceSpec, file_format: FileFormat,
                  landing_uri: str, layout: AutoLoaderLayout, ingested_at: datetime,
                  discovery: AutoLoaderDiscovery | None = None) -> DataFrame:
    """The ``cloudFiles`` stream of one format of ``spec``, with the bronze lineage columns."""
    options = reader_options(spec, file_format, layout.schema_location(spec, file_format),
                             discovery)
    raw = (spark.readStream.format("cloudFiles")
           .options(**options)
           .load(f"{landing_uri.rstrip('/')}/{spec.landing_prefix}"))
    return with_lineage(raw, spec, ingested_at)


def with_lineage(raw: DataFrame, spec: SourceSpec, ingested_at: datetime) -> DataFrame:
    """``raw`` plus ``_source_file``, ``_ingested_at``, the partition column, and what the ledger
    needs of each file (dropped before the write).

    ``_ingested_at`` is the run's one stamp, not each micro-batch's clock: with the partitions,
    it names the rows a run committed, which the quality check reads back.
    """
    metadata = raw.metadataColumn("_metadata")
    modified = metadata.getField("file_modification_time")
    return raw.select(
        "*",
        source_uri(metadata.getField("file_path")).alias(SOURCE_FILE_COLUMN),
        F.lit(ingested_at).cast("timestamp").alias(INGESTED_AT_COLUMN),
        partition_value(spec.partitions, metadata.getField("file_path"), modified)
        .alias(spec.partition_column),
        metadata.getField("file_size").alias(_FILE_SIZE),
        modified.alias(_FILE_MODIFIED),
    )


class MicroBatchCommit:
    """``foreachBatch`` of one stream: an idempotent Delta append, then the ledger."""

    def __init__(self, spark: SparkSession, spec: SourceSpec, file_format: FileFormat,
                 table: TableRef, ledger: FileLedger, landing_uri: str, run_id: str,
                 on_commit: Callable[[list[LedgerEvent]], None] = lambda events: None):
        self.spark = spark
        self.spec = spec
        self.app_id = f"{spec.ledger_app_id}/autoloader/{file_format}"
        self.table = table
        self.ledger = ledger
        self.landing_root = landing_uri.rstrip("/") + "/"
        self.run_id = run_id
        self.on_commit = on_commit

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        files = (batch.groupBy(SOURCE_FILE_COLUMN, _FILE_SIZE, _FILE_MODIFIED,
                               self.spec.partition_column).count().collect())
        if not files:
            return
        metadata = {"source": self.spec.name, "mode": IngestMode.AUTOLOADER.value,
                    "stream": self.app_id, "autoloader_batch": batch_id, "files": len(files)}
        rows = batch.drop(_FILE_SIZE, _FILE_MODIFIED)
        writer = (rows.write.format("delta").mode("append")
                  .option("mergeSchema", "true")
                  .option("txnAppId", self.app_id).option("txnVersion", str(batch_id))
                  .option("userMetadata", json.dumps(metadata, sort_keys=True))
                  .partitionBy(self.spec.partition_column))
        before = delta.table_version(self.spark, self.table)
        if before < 0:
            delta.create_named_table(rows, self.table, self.spec.partition_column, {})
        delta.save_table(writer, self.table)
        events = [self._committed(row) for row in files]
        # Recorded either way: a replayed micro-batch (skipped by Delta) was committed by a run
        # that may have died before its ledger entry. Only a commit of this call is reported.
        record_stream_commit(self.ledger, events)
        if any(c["userMetadata"].get("stream") == self.app_id
               and c["userMetadata"].get("autoloader_batch") == batch_id
               for c in delta.commits_after(self.spark, self.table, before)):
            self.on_commit(events)

    def _committed(self, row) -> LedgerEvent:
        uri = row[SOURCE_FILE_COLUMN]
        size, modified = int(row[_FILE_SIZE]), row[_FILE_MODIFIED]
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        key = uri[len(self.landing_root):] if uri.startswith(self.landing_root) else uri
        obj = LandedObject(key=key, uri=uri, size=size, last_modified=modified,
                           etag=f"autoloader-{size:x}-{int(modified.timestamp() * 1000):x}")
        partition = row[self.spec.partition_column]
        if isinstance(partition, datetime):
            partition_key = self.spec.partitions.key_at(partition.replace(tzinfo=UTC))
        else:
            partition_key = partition.strftime(self.spec.partitions.key_format)
        return LedgerEvent.for_object(self.spec.name, EventKind.COMMITTED, obj, partition_key,
                                      self.run_id, rows=int(row["count"]), note="auto loader")


class AutoLoaderIngestor:
    """Runs a source's streams once (``availableNow``) and reports like ``BronzeIngestor``.

    ``discovery``: how the streams find new files (``MANUFACTURING_AUTOLOADER_DISCOVERY``).
    """

    def __init__(self, spark: SparkSession, spec: SourceSpec, landing_uri: str,
                 lakehouse: Lakehouse, discovery: AutoLoaderDiscovery | None = None):
        self.spark = spark
        self.discovery = discovery or AutoLoaderDiscovery()
        self.spec = spec
        self.landing_uri = landing_uri
        self.table = lakehouse.table(spec)
        self.ledger = FileLedger(spark, lakehouse.ledger_path)
        self.layout = AutoLoaderLayout(lakehouse.root)

    def ingest(self, partition_keys: list[str], run_id: str) -> IngestReport:
        """Every new file of the source, whatever ``partition_keys`` the run names (Auto Loader
        does not read by partition); the report lists the partitions the files went to."""
        started = time.monotonic()
        ingested_at = datetime.now(UTC)
        committed: list[LedgerEvent] = []
        for file_format in self.spec.formats:
            commit = MicroBatchCommit(self.spark, self.spec, file_format, self.table,
                                      self.ledger, self.landing_uri, run_id,
                                      on_commit=committed.extend)
            stream = bronze_stream(self.spark, self.spec, file_format, self.landing_uri,
                                   self.layout, ingested_at, self.discovery)
            query = (stream.writeStream.foreachBatch(commit)
                     .option("checkpointLocation", self.layout.checkpoint(self.spec, file_format))
                     .trigger(availableNow=True)
                     .queryName(f"manufacturing_ingest {self.spec.name} {file_format}")
                     .start())
            query.awaitTermination()
        return self.report(committed, partition_keys, ingested_at, time.monotonic() - started)

    def report(self, committed: list[LedgerEvent], partition_keys: list[str],
               ingested_at: datetime, seconds: float) -> IngestReport:
        touched = sorted({e.partition_key for e in committed})
        report = IngestReport(source=self.spec.name, partition_keys=touched or partition_keys,
                              mode=IngestMode.AUTOLOADER, table=self.table,
                              seconds=seconds)
        report.outcomes = [FileOutcome(e.object_uri, e.partition_key, Outcome.COMMITTED,
                                       rows=e.rows or 0, size=e.size) for e in committed]
        if committed:
            report.ingested_at = ingested_at
            report.delta_version = delta.table_version(self.spark, self.table)
            now = datetime.now(UTC)
            latencies = [(now - e.last_modified).total_seconds() for e in committed
                         if e.last_modified]
            if latencies:
                report.landing_to_commit_seconds_max = max(latencies)
                report.landing_to_commit_seconds_median = statistics.median(latencies)
        return report
