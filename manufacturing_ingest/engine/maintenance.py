"""Table maintenance: compact closed partitions, VACUUM, and count files per partition.

Appends every few minutes leave a day of many small files; the ledger and the schema log grow
by one small file per batch. Maintenance rewrites them into files near a target size with
Delta's ``OPTIMIZE … WHERE <partition>`` and later deletes the replaced files with ``VACUUM``.

Why it is safe beside ingestion:

- OPTIMIZE only rearranges (every action it commits has ``dataChange=false``), and Delta never
  lets it conflict with a blind append, whichever partition the append writes to; only a
  concurrent delete or overwrite of the same files (a reprocess of that very partition) or a
  schema change can make it lose, and then it is retried (``OPTIMIZE_BACKOFF``). The ingest side
  loses nothing: an OPTIMIZE commit between its plan and its write is just another commit.
- Only *closed* partitions are compacted (a daily partition before today UTC, an hourly one
  before the current hour), so the files of the partition ingestion is filling stay as they are.
- The exactly-once protocol reads ``userMetadata`` of its own commits in ``DESCRIBE HISTORY``;
  OPTIMIZE and VACUUM commits carry none and are passed over (``delta.table_state``).
- VACUUM keeps every file a version younger than the retention needs, so time travel and the
  recovery of an interrupted run within the retention still read (``check_retention``).

Everything is SQL or the DataFrame reader, so it runs on a local session, Spark Connect and a
Databricks cluster, on path tables and catalog tables alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyspark.sql import SparkSession

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.delta import TableRef
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.progress import human_size
from manufacturing_ingest.retry import Backoff
from manufacturing_ingest.settings import MaintenanceSettings, check_retention

# OPTIMIZE loses a race only to a delete, overwrite or schema change of the same table.
OPTIMIZE_BACKOFF = Backoff(attempts=5, base=1.0, cap=15.0)
# A file below this share of the target size is "small": what compaction merges.
SMALL_FILE_SHARE = 4
_MB = 1024 * 1024
_MAX_FILE_SIZE = "spark.databricks.delta.optimize.maxFileSize"
_MIN_FILE_SIZE = "spark.databricks.delta.optimize.minFileSize"
_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
_LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


@dataclass(frozen=True)
class MaintenanceOptions:
    """What one maintenance pass does; built from ``MaintenanceSettings`` or run config."""

    target_file_bytes: int = 1024 * _MB
    zorder: bool = False
    vacuum_retention: timedelta = timedelta(hours=168)
    allow_short_retention: bool = False
    lookback: timedelta = timedelta(days=7)
    listing_parallelism: int | None = None
    dry_run: bool = False  # report what would be compacted and vacuumed; change nothing

    def __post_init__(self):
        if self.target_file_bytes < 1:
            raise ValueError("target_file_bytes must be positive")
        check_retention(self.vacuum_retention / timedelta(hours=1), self.allow_short_retention)

    @property
    def small_file_bytes(self) -> int:
        return max(1, self.target_file_bytes // SMALL_FILE_SHARE)

    @classmethod
    def from_settings(cls, settings: MaintenanceSettings, **changes) -> MaintenanceOptions:
        values = dict(
            target_file_bytes=settings.target_file_mb * _MB,
            zorder=settings.zorder,
            vacuum_retention=timedelta(hours=settings.vacuum_retention_hours),
            allow_short_retention=settings.allow_short_retention,
            lookback=timedelta(days=settings.lookback_days),
            listing_parallelism=settings.listing_parallelism,
        )
        return cls(**{**values, **changes})


@dataclass(frozen=True)
class FileStats:
    """The data files of one partition (or of a whole unpartitioned table) right now."""

    partition: str  # a partition key of the source, a ledger source name, or "" (whole table)
    files: int
    small_files: int
    bytes: int

    @property
    def mean_file_bytes(self) -> int:
        return self.bytes // self.files if self.files else 0

    def metadata(self) -> dict[str, int | float]:
        """Numeric figures for Dagster (the UI plots them over time)."""
        return {"file_count": self.files, "small_file_count": self.small_files,
                "mean_file_size_mb": round(self.mean_file_bytes / _MB, 3),
                "total_size_mb": round(self.bytes / _MB, 3)}

    def describe(self) -> str:
        return (f"{self.files} files ({self.small_files} small), mean "
                f"{human_size(self.mean_file_bytes)}, total {human_size(self.bytes)}")


@dataclass(frozen=True)
class Compaction:
    """One partition (or table) examined: its files before and after, and what OPTIMIZE did."""

    table: str
    before: FileStats
    after: FileStats
    compacted: bool  # False: nothing to merge, or a dry run
    would_compact: bool = False  # a dry run found small files to merge
    files_removed: int = 0
    files_added: int = 0
    seconds: float = 0.0

    def message(self) -> str:
        where = f"{self.table} {self.before.partition}".rstrip()
        if self.would_compact:
            return f"{where}: {self.before.describe()}; would compact (dry run)"
        if not self.compacted:
            return f"{where}: {self.before.describe()}; nothing to compact"
        rewrote = (f" ({self.files_removed} rewritten into {self.files_added})"
                   if self.files_removed else "")
        return (f"{where}: compacted {self.before.files} files to {self.after.files}{rewrote} "
                f"in {self.seconds:.1f}s; now {self.after.describe()}")


@dataclass(frozen=True)
class Vacuum:
    """One VACUUM: the files deleted (or, in a dry run, that would be)."""

    table: str
    retention_hours: float
    files_deleted: int
    dry_run: bool = False
    seconds: float = 0.0

    def message(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (f"{self.table}: VACUUM {verb} {self.files_deleted} files no longer needed "
                f"for {self.retention_hours:g} hours ({self.seconds:.1f}s)")


Step = Compaction | Vacuum
OnStep = Callable[[Step], None]


@dataclass
class TableReport:
    """What maintenance did to one table."""

    table: str
    source: str | None  # None: a bookkeeping table (ledger, schema log)
    compactions: list[Compaction] = field(default_factory=list)
    vacuum: Vacuum | None = None

    @property
    def files_before(self) -> int:
        return sum(c.before.files for c in self.compactions)

    @property
    def files_after(self) -> int:
        return sum(c.after.files for c in self.compactions)


def file_stats(spark: SparkSession, table: TableRef | str, partition_column: str | None,
               small_file_bytes: int, where: str = "") -> dict[str, FileStats]:
    """Files, small files and bytes per value of ``partition_column`` (as text) of ``table``.

    Counted from the files the current snapshot reads (``_metadata``), so it works on path and
    catalog tables, locally and over Spark Connect. The scan reads Parquet footers, no data
    columns; ``where`` (on the partition column) limits it to the partitions asked for.
    """
    if not delta.is_table(spark, table):
        return {}
    part = f"CAST(`{partition_column}` AS STRING)" if partition_column else "''"
    rows = spark.sql(
        "SELECT part, count(*) AS files, sum(size) AS bytes, "
        f"count_if(size < {int(small_file_bytes)}) AS small FROM ("
        f"SELECT DISTINCT {part} AS part, _metadata.file_path AS path, "
        f"_metadata.file_size AS size FROM {delta.table_ref(table)}"
        f"{' WHERE ' + where if where else ''}) GROUP BY part"
    ).collect()
    return {r["part"]: FileStats(r["part"], int(r["files"]), int(r["small"]), int(r["bytes"]))
            for r in rows}


def partition_file_stats(spark: SparkSession, spec: SourceSpec, table: TableRef | str,
                         small_file_bytes: int, since: datetime | None = None,
                         until: datetime | None = None) -> dict[str, FileStats]:
    """``file_stats`` of a bronze table keyed by partition key, for partitions starting in
    [since, until)."""
    scheme = spec.partitions
    bounds = []
    if since is not None:
        bounds.append(f"`{scheme.column}` >= {_literal(scheme.start_of(since), scheme.grain)}")
    if until is not None:
        bounds.append(f"`{scheme.column}` < {_literal(until, scheme.grain)}")
    stats = file_stats(spark, table, scheme.column, small_file_bytes, " AND ".join(bounds))
    keyed = {}
    for text, figures in stats.items():
        if text is None:
            continue
        key = scheme.key_at(datetime.fromisoformat(text).replace(tzinfo=UTC))
        keyed[key] = FileStats(key, figures.files, figures.small_files, figures.bytes)
    return dict(sorted(keyed.items()))


def _literal(when: datetime, grain) -> str:
    """A partition column value as a SQL literal (the session time zone is UTC)."""
    from manufacturing_ingest.partitioning import Grain

    when = when.astimezone(UTC)
    if grain is Grain.HOURLY:
        return f"TIMESTAMP '{when:%Y-%m-%d %H:%M:%S}'"
    return f"DATE '{when:%Y-%m-%d}'"


@contextlib.contextmanager
def _session_conf(spark: SparkSession, conf: dict[str, str | None]) -> Iterator[None]:
    """Set runtime SQL settings for a block, then put the earlier values back."""
    earlier = {}
    for key, value in conf.items():
        if value is None:
            continue
        earlier[key] = spark.conf.get(key, None)
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in earlier.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def optimize(spark: SparkSession, table: TableRef | str, options: MaintenanceOptions,
             where: str = "", zorder_by: tuple[str, ...] = ()) -> tuple[int, int]:
    """``OPTIMIZE table [WHERE …] [ZORDER BY …]`` toward the target file size, retried when a
    concurrent commit wins; (files removed, files added)."""
    sql = f"OPTIMIZE {delta.table_ref(table)}"
    if where:
        sql += f" WHERE {where}"
    if zorder_by:
        sql += " ZORDER BY (" + ", ".join(f"`{c}`" for c in zorder_by) + ")"
    conf = {_MAX_FILE_SIZE: str(options.target_file_bytes),
            _MIN_FILE_SIZE: str(options.small_file_bytes)}
    with _session_conf(spark, conf):
        rows = OPTIMIZE_BACKOFF.call(lambda: spark.sql(sql).collect(),
                                     retry_on=delta.is_write_conflict)
    metrics = rows[0]["metrics"] if rows else None
    if metrics is None:
        return 0, 0
    return int(metrics["numFilesRemoved"] or 0), int(metrics["numFilesAdded"] or 0)


def vacuum(spark: SparkSession, table: TableRef | str, options: MaintenanceOptions) -> Vacuum:
    """``VACUUM table RETAIN <retention> HOURS``: files no version within the retention reads
    are deleted (in a dry run, only counted)."""
    hours = options.vacuum_retention / timedelta(hours=1)
    check_retention(hours, options.allow_short_retention)
    started = time.monotonic()
    sql = f"VACUUM {delta.table_ref(table)} RETAIN {hours:.6f} HOURS"
    conf: dict[str, str | None] = {
        _LISTING_PARALLELISM: (str(options.listing_parallelism)
                               if options.listing_parallelism else None),
        # Below Delta's own floor only when the operator allowed it (check_retention above).
        _RETENTION_CHECK: "false" if options.allow_short_retention else None,
    }
    with _session_conf(spark, conf):
        if options.dry_run:
            deleted = spark.sql(sql + " DRY RUN").count()
        else:
            version = delta.table_version(spark, table)
            spark.sql(sql).collect()
            deleted = _vacuumed_files(spark, table, version)
    return Vacuum(table, hours, deleted, options.dry_run, time.monotonic() - started)


def _vacuumed_files(spark: SparkSession, table: TableRef | str, version: int) -> int:
    """Files the VACUUM after ``version`` deleted, from its ``VACUUM END`` commit."""
    for commit in delta.commits_after(spark, table, version):
        if commit["operation"] == "VACUUM END":
            return int((commit["operationMetrics"] or {}).get("numDeletedFiles", 0))
    return 0  # no VACUUM commits (Delta's vacuum logging turned off): unknown, none claimed


def compact_partitions(spark: SparkSession, spec: SourceSpec, table: TableRef | str,
                       options: MaintenanceOptions, now: datetime | None = None,
                       since: datetime | None = None, on_step: OnStep | None = None
                       ) -> list[Compaction]:
    """Compact every closed partition of ``spec``'s table from ``since`` (default: the
    lookback) that holds two or more small files; one ``Compaction`` per partition examined."""
    now = now or datetime.now(UTC)
    scheme = spec.partitions
    open_from = scheme.start_of(now)  # the partition ingestion is filling: left alone
    since = since or (open_from - options.lookback)
    stats = partition_file_stats(spark, spec, table, options.small_file_bytes, since, open_from)
    zorder_by = spec.key_columns if options.zorder else ()
    results = []
    for key, before in stats.items():
        if before.small_files < 2 or options.dry_run:
            result = Compaction(table, before, before, compacted=False,
                                would_compact=before.small_files >= 2)
        else:
            started = time.monotonic()
            removed, added = optimize(spark, table, options, scheme.sql_literal(key), zorder_by)
            after = partition_file_stats(spark, spec, table, options.small_file_bytes,
                                         scheme.parse(key), scheme.parse(key) + scheme.step)
            result = Compaction(table, before, after.get(key, before), compacted=removed > 0,
                                files_removed=removed, files_added=added,
                                seconds=time.monotonic() - started)
        if on_step:
            on_step(result)
        results.append(result)
    return results


def compact_table(spark: SparkSession, table: TableRef | str, partition_column: str | None,
                  options: MaintenanceOptions, on_step: OnStep | None = None
                  ) -> list[Compaction]:
    """Compact a bookkeeping table whole (every row kept; OPTIMIZE only rewrites files)."""
    before = file_stats(spark, table, partition_column, options.small_file_bytes)
    if not before:
        return []
    needed = any(s.small_files >= 2 for s in before.values())
    removed = added = 0
    started = time.monotonic()
    if needed and not options.dry_run:
        removed, added = optimize(spark, table, options)
    after = (file_stats(spark, table, partition_column, options.small_file_bytes)
             if removed else before)
    results = []
    for part, stats in sorted(before.items()):
        result = Compaction(table, stats, after.get(part, stats), compacted=removed > 0,
                            would_compact=options.dry_run and stats.small_files >= 2,
                            seconds=time.monotonic() - started)
        if on_step:
            on_step(result)
        results.append(result)
    return results


def maintain_source(spark: SparkSession, spec: SourceSpec, lakehouse: Lakehouse,
                    options: MaintenanceOptions, now: datetime | None = None,
                    since: datetime | None = None, on_step: OnStep | None = None
                    ) -> TableReport:
    """Compact the closed partitions of one bronze table, then VACUUM it."""
    table = lakehouse.table(spec)
    report = TableReport(str(table), spec.name)
    if not delta.is_table(spark, table):
        return report
    report.compactions = compact_partitions(spark, spec, table, options, now, since, on_step)
    report.vacuum = vacuum(spark, table, options)
    if on_step:
        on_step(report.vacuum)
    return report


def maintain_bookkeeping(spark: SparkSession, lakehouse: Lakehouse, options: MaintenanceOptions,
                         on_step: OnStep | None = None) -> list[TableReport]:
    """Compact and VACUUM the file ledger (per source) and the schema log."""
    reports = []
    for table, column in ((lakehouse.ledger_path, "source"), (lakehouse.schema_log_path, None)):
        report = TableReport(table, None)
        if delta.is_table(spark, table):
            report.compactions = compact_table(spark, table, column, options, on_step)
            report.vacuum = vacuum(spark, table, options)
            if on_step:
                on_step(report.vacuum)
        reports.append(report)
    return reports


__all__ = ["Compaction", "FileStats", "MaintenanceOptions", "TableReport", "Vacuum",
           "compact_partitions", "compact_table", "file_stats", "maintain_bookkeeping",
           "maintain_source", "optimize", "partition_file_stats", "vacuum"]
