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

Predictive Optimization: on Databricks, a Unity Catalog managed table may be maintained by
Databricks itself (OPTIMIZE, VACUUM and ANALYZE on serverless compute). Such a bronze table is
left to it, with one line in the report (``Skipped``) instead of a second OPTIMIZE and VACUUM
racing it: ``MANUFACTURING_PREDICTIVE_OPTIMIZATION`` ``auto`` (default) asks the table
(``DESCRIBE TABLE EXTENDED``: ``Type`` is ``MANAGED`` and its ``Predictive Optimization`` field,
which Databricks documents as the way to check, says ``ENABLE``), ``on`` leaves every catalog
bronze table to it, ``off`` maintains them all. Path tables (and the bookkeeping, always by path)
are never Predictive Optimization's and are always maintained here.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyspark.sql import SparkSession

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.delta import TableRef
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.progress import human_size
from manufacturing_ingest.retry import Backoff
from manufacturing_ingest.settings import (
    MaintenanceSettings,
    PredictiveOptimization,
    check_retention,
)

# OPTIMIZE loses a race only to a delete, overwrite or schema change of the same table.
OPTIMIZE_BACKOFF = Backoff(attempts=5, base=1.0, cap=15.0)
# A file below this share of the target size is "small": what compaction merges.
SMALL_FILE_SHARE = 4
_MB = 1024 * 1024
_MAX_FILE_SIZE = "spark.databricks.delta.optimize.maxFileSize"
_MIN_FILE_SIZE = "spark.databricks.delta.optimize.minFileSize"
_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
_LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
# The field of DESCRIBE TABLE EXTENDED in which Databricks shows whether Predictive Optimization
# runs on a Unity Catalog table: ENABLE or DISABLE, often "(inherited from CATALOG <name>)".
PREDICTIVE_OPTIMIZATION_FIELD = "Predictive Optimization"
_DETAILS_HEADER = "# detailed table information"
# Predictive Optimization's VACUUM keeps what the table property says, but never under 7 days.
_RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
_DELTA_DEFAULT_RETENTION = "interval 1 weeks"
_PREDICTIVE_MIN_RETENTION = timedelta(days=7)


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
    # Whether a catalog table Predictive Optimization maintains is left to it (see the module).
    predictive_optimization: PredictiveOptimization = PredictiveOptimization.AUTO

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
            predictive_optimization=settings.predictive_optimization,
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


@dataclass(frozen=True)
class Skipped:
    """A table left to Databricks' Predictive Optimization: no OPTIMIZE, no VACUUM here."""

    table: str
    reason: str  # what said so: the table's field, or MANUFACTURING_PREDICTIVE_OPTIMIZATION=on
    notes: tuple[str, ...] = ()  # what differs from this job's own maintenance

    @property
    def summary(self) -> str:
        return f"skipped: managed by Predictive Optimization ({self.reason})"

    def message(self) -> str:
        return "; ".join((f"{self.table}: {self.summary}; OPTIMIZE and VACUUM are left to "
                          "Databricks", *self.notes))


Step = Compaction | Vacuum | Skipped
OnStep = Callable[[Step], None]
Describe = Callable[[SparkSession, TableRef], Mapping[str, str]]


@dataclass
class TableReport:
    """What maintenance did to one table."""

    table: str
    source: str | None  # None: a bookkeeping table (ledger, schema log)
    compactions: list[Compaction] = field(default_factory=list)
    vacuum: Vacuum | None = None
    skipped: Skipped | None = None  # left to Predictive Optimization

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


def describe_table(spark: SparkSession, table: TableRef) -> dict[str, str]:
    """The detailed fields of ``DESCRIBE TABLE EXTENDED`` (``Type``, ``Provider``, …; on
    Databricks also ``Predictive Optimization``), by the names it shows."""
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {table.sql}").collect()
    return detailed_fields((row[0], row[1]) for row in rows)


def detailed_fields(rows: Iterable[tuple[str | None, str | None]]) -> dict[str, str]:
    """The (name, value) rows after ``# Detailed Table Information``; the column and partition
    rows before it are left out, so a column called ``Type`` is not taken for the field."""
    fields: dict[str, str] = {}
    details = False
    for name, value in rows:
        name = (name or "").strip()
        if name.lower() == _DETAILS_HEADER:
            details = True
        elif details and name and not name.startswith("#"):
            fields.setdefault(name, (value or "").strip())
    return fields


def predictive_optimization_state(fields: Mapping[str, str]) -> str | None:
    """The table's ``Predictive Optimization`` field when Predictive Optimization maintains it
    (e.g. ``ENABLE (inherited from CATALOG main)``), else None: it runs only on Unity Catalog
    managed tables, and a table without the field (open-source Spark, Hive) has none."""
    named = {name.lower(): value for name, value in fields.items()}
    state = named.get(PREDICTIVE_OPTIMIZATION_FIELD.lower(), "")
    if named.get("type", "").upper() != "MANAGED" or not state.upper().startswith("ENABLE"):
        return None
    return state


def left_to_predictive_optimization(spark: SparkSession, table: TableRef | str,
                                    options: MaintenanceOptions,
                                    describe: Describe = describe_table) -> str | None:
    """What says ``table`` is Predictive Optimization's to maintain, or None: this job's."""
    table = delta.as_table(table)
    if table.name is None or options.predictive_optimization is PredictiveOptimization.OFF:
        return None  # a path table is never a Unity Catalog managed table
    if options.predictive_optimization is PredictiveOptimization.ON:
        return "MANUFACTURING_PREDICTIVE_OPTIMIZATION=on"
    state = predictive_optimization_state(describe(spark, table))
    return f"{PREDICTIVE_OPTIMIZATION_FIELD}: {state}" if state else None


def interval(text: str) -> timedelta | None:
    """A Delta interval property (``interval 30 days``, ``7 days``, ``1 week 12 hours``) as a
    ``timedelta``; None when it is not one this reads."""
    units = {"week": timedelta(weeks=1), "day": timedelta(days=1), "hour": timedelta(hours=1),
             "minute": timedelta(minutes=1), "second": timedelta(seconds=1)}
    body = re.sub(r"^\s*interval\s+", "", text.strip().lower())
    parts = re.findall(r"(\d+)\s*(week|day|hour|minute|second)s?\s*", body)
    if not parts or re.sub(r"(\d+)\s*(week|day|hour|minute|second)s?\s*", "", body):
        return None
    return sum((int(n) * units[unit] for n, unit in parts), timedelta())


def _predictive_notes(spark: SparkSession, table: TableRef | str,
                      options: MaintenanceOptions) -> tuple[str, ...]:
    """Where Predictive Optimization keeps less than this job would: a shorter VACUUM
    retention (the table property, at least 7 days, not MANUFACTURING_VACUUM_RETENTION_HOURS),
    and no Z-ORDER."""
    notes = []
    properties = {row[0]: row[1] for row in
                  spark.sql(f"SHOW TBLPROPERTIES {delta.table_ref(table)}").collect()}
    text = properties.get(_RETENTION_PROPERTY) or _DELTA_DEFAULT_RETENTION
    kept = interval(text)
    if kept is not None and max(kept, _PREDICTIVE_MIN_RETENTION) < options.vacuum_retention:
        hours = options.vacuum_retention / timedelta(hours=1)
        notes.append(f"its VACUUM keeps replaced files for {_RETENTION_PROPERTY} ({text}), less "
                     f"than the {hours:g} hours of MANUFACTURING_VACUUM_RETENTION_HOURS: set that "
                     "table property to keep time travel and reprocess windows as long")
    if options.zorder:
        notes.append("Predictive Optimization does not Z-ORDER (MANUFACTURING_OPTIMIZE_ZORDER "
                     "has no effect on it)")
    return tuple(notes)


def maintain_source(spark: SparkSession, spec: SourceSpec, lakehouse: Lakehouse,
                    options: MaintenanceOptions, now: datetime | None = None,
                    since: datetime | None = None, on_step: OnStep | None = None,
                    describe: Describe = describe_table) -> TableReport:
    """Compact the closed partitions of one bronze table, then VACUUM it; or, when
    Predictive Optimization maintains the table, leave it to that (``report.skipped``).
    ``describe``: how the table's ``DESCRIBE TABLE EXTENDED`` fields are read."""
    table = lakehouse.table(spec)
    report = TableReport(str(table), spec.name)
    if not delta.is_table(spark, table):
        return report
    reason = left_to_predictive_optimization(spark, table, options, describe)
    if reason:
        report.skipped = Skipped(str(table), reason, _predictive_notes(spark, table, options))
        if on_step:
            on_step(report.skipped)
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


__all__ = ["Compaction", "FileStats", "MaintenanceOptions", "Skipped", "TableReport", "Vacuum",
           "compact_partitions", "compact_table", "describe_table", "detailed_fields",
           "file_stats", "left_to_predictive_optimization", "maintain_bookkeeping",
           "maintain_source", "optimize", "partition_file_stats",
           "predictive_optimization_state", "vacuum"]
