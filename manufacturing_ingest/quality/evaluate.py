"""The ``quality`` check's evaluation: the rows one commit added, held to the catalog's rules.

Which rows: those of the batch, found by what the commit wrote into them, at the commit's own
table version: ``_ingested_at`` equal to the batch's stamp (Delta keeps min/max statistics on it,
so files of earlier batches are skipped without being opened) within the run's partitions. A day
that receives 100 batches is therefore never scanned 100 times: each check reads its batch.

Who does what:

- Pandera (``models.py``) checks the schema: every catalog column present with its type. At
  ``SCHEMA_ONLY`` depth it reads the DataFrame's schema and starts no Spark job.
- Row rules are not run through Pandera: on PySpark it reports *which* checks failed, not how
  many rows, and runs one Spark job per check. Instead every rule is compiled to one boolean
  expression (``rules.py``) and summed in one aggregation over the batch's rows.
- Duplicates need other rows: the batch's rows are grouped by key together with the keys the
  partition already held (only the key columns of older rows, and only of files whose key
  statistics overlap the batch's key range, read from the commit's own entries in the Delta
  log), so the cost follows the batch, not the partition. The rule sums ride along in the same
  grouping, so one scan of the batch gives every count (``_count``).
- Failing examples (up to five per rule, with ``_source_file``; up to five repeated keys) cost
  one more pass each, and only when something failed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from manufacturing_ingest.catalog import INGESTED_AT_COLUMN, SOURCE_FILE_COLUMN, SourceSpec
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.delta import TableRef, read_table, table_location
from manufacturing_ingest.engine.report import IngestReport
from manufacturing_ingest.quality.models import SchemaProblem, schema_problems
from manufacturing_ingest.quality.rules import DUPLICATES_RULE, CompiledRule, row_rules

EXAMPLES_PER_RULE = 5
# Delta truncates string statistics to this many characters (delta.dataSkippingStringPrefixLength);
# a longer-looking maximum is no longer an upper bound we can filter on.
_STRING_STATS_PREFIX = 32
_PARTITION_ID = "__partition_id"
# Keys per task of the check's grouping. Every key of a clean batch is distinct, so the grouping
# holds one entry per row: at the session's 4 shuffle partitions a 52 M-row day put 13 M entries
# (about 2 GB) in each task's hash map, past its share of a 4 GB heap, and the check spilled and
# took as long as the ingest (BENCHMARKS.md, "Ingest scaling"). A batch is grouped in as many
# tasks as keep each near this many rows.
_ROWS_PER_GROUPING_TASK = 1_000_000

log = logging.getLogger("manufacturing_ingest.quality")


class Verdict(StrEnum):
    PASSED = "passed"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class CommittedBatch:
    """The rows one commit added: its table, version, ``_ingested_at`` stamp and partitions.

    ``earlier``: the (version, stamp) of earlier commits checked together with this one (a
    stream's window of micro-batches: one evaluation of all their rows, at this version).
    """

    table: TableRef
    delta_version: int
    ingested_at: datetime
    partition_keys: tuple[str, ...]
    earlier: tuple[tuple[int, datetime], ...] = ()

    @property
    def versions(self) -> list[int]:
        return [*(version for version, _ in self.earlier), self.delta_version]

    @property
    def stamps(self) -> list[datetime]:
        return [*(stamp for _, stamp in self.earlier), self.ingested_at]


@dataclass(frozen=True)
class PartitionQuality:
    """The ``quality`` check's findings for the rows one batch added to one partition."""

    partition_key: str
    rows_checked: int
    failing_rows: int  # rows failing at least one rule
    failing_by_rule: dict[str, int]
    examples: dict[str, list[dict[str, str | None]]] = field(default_factory=dict)
    schema_problems: tuple[SchemaProblem, ...] = ()
    delta_version: int | None = None

    @property
    def error_rate(self) -> float:
        return self.failing_rows / self.rows_checked if self.rows_checked else 0.0

    def verdict(self, spec: SourceSpec) -> Verdict:
        """ERROR above the source's error threshold or on a schema problem, WARN above its
        warning threshold, else passed."""
        if self.schema_problems or self.error_rate > spec.quality.error_above:
            return Verdict.ERROR
        if self.error_rate > spec.quality.warn_above:
            return Verdict.WARN
        return Verdict.PASSED


def committed_batch(report: IngestReport) -> CommittedBatch | None:
    """The rows ``report``'s run committed; None when it committed none."""
    if report.delta_version is None or report.ingested_at is None or not report.records:
        return None
    return CommittedBatch(report.table, report.delta_version, report.ingested_at,
                          tuple(report.partition_keys))


def latest_batches(spark: SparkSession, spec: SourceSpec, table: TableRef,
                   partition_keys: list[str]) -> dict[str, CommittedBatch]:
    """The last batch that committed rows to each of ``partition_keys`` (none: no rows), as
    the batch to check when the run that committed it stopped before its checks."""
    if not partition_keys or not delta.is_table(spark, table):
        return {}
    ids = {v: k for k, v in _partition_ids(spec, tuple(partition_keys)).items()}
    rows = (read_table(spark, table).where(_in_partitions(spec, tuple(partition_keys)))
            .groupBy(_partition_id(spec).alias(_PARTITION_ID))
            .agg(F.unix_micros(F.max(INGESTED_AT_COLUMN)).alias("stamp")).collect())
    stamps = {row[_PARTITION_ID]: row["stamp"] for row in rows if row["stamp"] is not None}
    versions = delta.commits_of_stamps(spark, table, set(stamps.values()))
    return {ids[pid]: CommittedBatch(table, versions[stamp],
                                     datetime.fromtimestamp(stamp / 1_000_000, UTC),
                                     (ids[pid],))
            for pid, stamp in stamps.items() if pid in ids and stamp in versions}


def batch_rows(table: DataFrame, spec: SourceSpec, batch: CommittedBatch) -> DataFrame:
    """The rows ``batch`` committed, from its table read at the batch's version."""
    return table.where(_in_partitions(spec, batch.partition_keys) & _of_batch(batch))


def evaluate_batch(spark: SparkSession, spec: SourceSpec,
                   batch: CommittedBatch) -> dict[str, PartitionQuality]:
    """Every rule of ``spec`` over the rows ``batch`` committed, per partition key."""
    table = _table(spark, batch)
    columns = set(table.columns)
    problems = tuple(schema_problems(spec, table))
    rules = row_rules(spec, columns)
    ids = _partition_ids(spec, batch.partition_keys)
    new = batch_rows(table, spec, batch).withColumn(_PARTITION_ID, _partition_id(spec))
    any_failing = _any_of([r.fails for r in rules])

    keys = [k for k in spec.key_columns if k in columns]
    if keys:
        per_key = _keys_per_group(spark, spec, batch, table, new, keys, rules, any_failing)
        counts, duplicates = _count(per_key, len(rules))
        if duplicates:
            _add_duplicate_examples(duplicates, per_key, new, keys)
    else:
        counts, duplicates = _count_rules(new, rules, any_failing), {}

    failing_rules = [r for i, r in enumerate(rules) if any(c[1][i] for c in counts.values())]
    examples = _examples(new, keys, failing_rules) if failing_rules else {}

    results: dict[str, PartitionQuality] = {}
    for key, pid in ids.items():
        rows, per_rule, failing = counts.get(pid, (0, [0] * len(rules), 0))
        dups = duplicates.get(pid, Duplicates(0, 0, []))
        by_rule = {rule.name: n for rule, n in zip(rules, per_rule, strict=True)}
        found = dict(examples.get(pid, {}))
        if keys:
            by_rule[DUPLICATES_RULE] = dups.rows
            if dups.examples:
                found[DUPLICATES_RULE] = dups.examples
        results[key] = PartitionQuality(
            partition_key=key, rows_checked=rows, failing_rows=failing + dups.clean_rows,
            failing_by_rule=by_rule, examples=found,
            schema_problems=problems, delta_version=batch.delta_version,
        )
    return results




def _count_rules(new: DataFrame, rules: list[CompiledRule], any_failing: Column
                 ) -> dict[int, tuple[int, list[int], int]]:
    """Rows, failing rows per rule and rows failing any rule, per partition: one scan."""
    sums = [F.sum(r.fails.cast("long")).alias(f"rule_{i}") for i, r in enumerate(rules)]
    aggregated = new.groupBy(_PARTITION_ID).agg(
        F.count(F.lit(1)).alias("rows"), F.sum(any_failing.cast("long")).alias("failing"), *sums
    ).collect()
    return {
        row[_PARTITION_ID]: (int(row["rows"]),
                             [int(row[f"rule_{i}"] or 0) for i in range(len(rules))],
                             int(row["failing"] or 0))
        for row in aggregated
    }


def _keys_per_group(spark: SparkSession, spec: SourceSpec, batch: CommittedBatch,
                    table: DataFrame, new: DataFrame, keys: list[str], rules: list[CompiledRule],
                    any_failing: Column) -> DataFrame:
    """Per key of the batch: its rows in the batch, how many of them fail a row rule (any, and
    each rule), and how many rows the partition already held with that key. One scan of the
    batch and one grouping give every count the check reports.

    Keys are grouped by a 128-bit hash (two ``xxhash64``s): fixed-width grouping keys keep the
    aggregation in Spark's fast hash map, about twice as fast as grouping by the text columns;
    two distinct keys would have to collide in all 128 bits to be miscounted. A row with a
    missing key column is a group of its own (it repeats nothing). A batch of more than a few
    million rows is spread over more tasks than the session's shuffle partitions, so that each
    task's hash map stays in memory (``_ROWS_PER_GROUPING_TASK``).
    """
    bounds, rows = _batch_statistics(spark, batch, table.schema, keys)
    complete = _all_of([F.col(k).isNotNull() for k in keys])
    lone = F.monotonically_increasing_id()
    new_keys = new.select(
        _PARTITION_ID,
        F.when(complete, _key_hash(keys, 0)).otherwise(F.lit(None)).alias("key_hash"),
        F.when(complete, _key_hash(keys, 1)).otherwise(lone).alias("key_hash_2"),
        F.lit(1).alias("in_batch"), F.lit(0).alias("before"),
        any_failing.cast("int").alias("failing"),
        *[r.fails.cast("int").alias(f"rule_{i}") for i, r in enumerate(rules)],
    )
    older = table.where(
        _in_partitions(spec, batch.partition_keys)
        & ~_of_batch(batch) & complete
        & _within(bounds)
    ).select(
        _partition_id(spec).alias(_PARTITION_ID),
        _key_hash(keys, 0).alias("key_hash"), _key_hash(keys, 1).alias("key_hash_2"),
        F.lit(0).alias("in_batch"), F.lit(1).alias("before"), F.lit(0).alias("failing"),
        *[F.lit(0).alias(f"rule_{i}") for i in range(len(rules))],
    )
    sums = ["in_batch", "before", "failing", *(f"rule_{i}" for i in range(len(rules)))]
    grouping = [_PARTITION_ID, "key_hash", "key_hash_2"]
    both = new_keys.unionByName(older)
    tasks = -(-(rows or 0) // _ROWS_PER_GROUPING_TASK)
    if tasks > int(spark.conf.get("spark.sql.shuffle.partitions")):
        both = both.repartition(tasks, *grouping)  # the grouping reuses this partitioning
    grouped = both.groupBy(*grouping).agg(
        *[F.sum(c).alias(c) for c in sums]
    ).where(F.col("in_batch") > 0)
    # Every row of a key the partition already had is a duplicate; within the batch, all but one.
    return grouped.withColumn(
        "duplicates",
        F.when(F.col("before") > 0, F.col("in_batch")).otherwise(F.col("in_batch") - 1),
    )


def _key_hash(keys: list[str], seed: int) -> Column:
    return F.xxhash64(*([F.lit(seed)] + [F.col(k) for k in keys]))


@dataclass
class Duplicates:
    rows: int  # rows of the batch repeating a key
    clean_rows: int  # of those, rows failing no row rule (so far uncounted in failing_rows)
    examples: list[dict[str, str | None]] = field(default_factory=list)


def _count(per_key: DataFrame, rules: int
           ) -> tuple[dict[int, tuple[int, list[int], int]], dict[int, Duplicates]]:
    """From the per-key groups: rows, failing rows per rule and rows failing any rule per
    partition (as ``_count_rules``), and the duplicate rows per partition.

    Of a key's copies the one kept as the original is a clean one whenever there is one, so
    ``clean_rows`` is what duplicates add to the rows failing any rule.
    """
    clean = F.greatest(F.col("failing"), F.col("duplicates")) - F.col("failing")
    aggregated = per_key.groupBy(_PARTITION_ID).agg(
        F.sum("in_batch").alias("rows"), F.sum("failing").alias("failing"),
        F.sum("duplicates").alias("duplicates"), F.sum(clean).alias("clean"),
        *[F.sum(f"rule_{i}").alias(f"rule_{i}") for i in range(rules)],
    ).collect()
    counts = {
        row[_PARTITION_ID]: (int(row["rows"]), [int(row[f"rule_{i}"] or 0) for i in range(rules)],
                             int(row["failing"] or 0))
        for row in aggregated
    }
    duplicates = {row[_PARTITION_ID]: Duplicates(int(row["duplicates"]), int(row["clean"]))
                  for row in aggregated if row["duplicates"]}
    return counts, duplicates


def _add_duplicate_examples(found: dict[int, Duplicates], per_key: DataFrame, new: DataFrame,
                            keys: list[str]) -> None:
    """Up to ``EXAMPLES_PER_RULE`` repeated keys per partition, each with the values and file of
    its first row: one job picks the keys, a second reads their rows back."""
    whole = Window.partitionBy(_PARTITION_ID)
    picked = (
        per_key.where(F.col("duplicates") > 0)
        .withColumn("pick", F.row_number().over(whole.orderBy("key_hash", "key_hash_2")))
        .where(F.col("pick") <= EXAMPLES_PER_RULE)
        .select(_PARTITION_ID, "key_hash")
        .collect()
    )
    wanted = {(row[_PARTITION_ID], row["key_hash"]) for row in picked}
    first_of_key = Window.partitionBy(_PARTITION_ID, "key_hash").orderBy(SOURCE_FILE_COLUMN)
    rows = (
        new.withColumn("key_hash", _key_hash(keys, 0))
        .where(F.col("key_hash").isin(sorted({h for _, h in wanted})))
        .withColumn("pick", F.row_number().over(first_of_key))
        .where(F.col("pick") == 1)
        .select(_PARTITION_ID, "key_hash", SOURCE_FILE_COLUMN,
                *[F.col(k).cast("string").alias(k) for k in keys])
        .collect()
    )
    for row in sorted(rows, key=lambda r: tuple(str(r[c]) for c in [_PARTITION_ID, *keys])):
        if (row[_PARTITION_ID], row["key_hash"]) in wanted:
            found[row[_PARTITION_ID]].examples.append(
                {SOURCE_FILE_COLUMN: row[SOURCE_FILE_COLUMN], **{k: row[k] for k in keys}})


def _batch_statistics(spark: SparkSession, batch: CommittedBatch, schema: T.StructType,
                      keys: list[str]) -> tuple[dict[str, tuple[object, object]], int | None]:
    """The batch's min/max of each key column, and its rows, from the statistics Delta wrote
    into the commit's log entry (no data is read); a column without usable statistics is
    unbounded, and the rows are None when a file has no count."""
    try:
        # A catalog table's log is where the catalog keeps the table's files.
        location = table_location(spark, batch.table).rstrip("/")
        log_files = [f"{location}/_delta_log/{version:020d}.json" for version in batch.versions]
        lines = [row.value for row in spark.read.text(log_files).collect()]
    except Exception as exc:  # noqa: BLE001 - a log compacted away only costs the pruning
        log.info("no key-range pruning for %s version %s: its log entry could not be read (%s)",
                 batch.table, batch.delta_version, type(exc).__name__)
        return {}, None
    lows: dict[str, list] = {k: [] for k in keys}
    highs: dict[str, list] = {k: [] for k in keys}
    types = {f.name: f.dataType for f in schema.fields}
    files = 0
    rows: int | None = 0
    for line in lines:
        add = json.loads(line).get("add")
        if not add:
            continue
        files += 1
        stats = json.loads(add.get("stats") or "{}")
        records = stats.get("numRecords")
        rows = rows + records if rows is not None and isinstance(records, int) else None
        for key in keys:
            low = (stats.get("minValues") or {}).get(key)
            high = (stats.get("maxValues") or {}).get(key)
            lows[key].append(_stat_value(low, types[key], upper=False))
            highs[key].append(_stat_value(high, types[key], upper=True))
    bounds: dict[str, tuple[object, object]] = {}
    for key in keys:
        if files == 0:
            continue
        low = None if None in lows[key] else min(lows[key])
        high = None if None in highs[key] else max(highs[key])
        bounds[key] = (low, high)
    return bounds, rows


def _stat_value(value, data_type: T.DataType, upper: bool):
    """A Delta statistic as a bound on the column's values; None when it cannot be one."""
    if value is None:
        return None
    if isinstance(data_type, T.TimestampType):
        when = datetime.fromisoformat(value)
        # Delta keeps timestamp statistics to the millisecond: the real maximum may be later.
        return when + timedelta(milliseconds=1) if upper else when
    if isinstance(data_type, T.DateType):
        return date.fromisoformat(value)
    if isinstance(data_type, T.StringType):
        return None if upper and len(value) >= _STRING_STATS_PREFIX else value
    if isinstance(data_type, (T.LongType, T.IntegerType, T.DoubleType, T.FloatType)):
        return value
    return None


def _within(bounds: dict[str, tuple[object, object]]) -> Column:
    conditions = [F.lit(True)]
    for column, (low, high) in bounds.items():
        if low is not None:
            conditions.append(F.col(column) >= F.lit(low))
        if high is not None:
            conditions.append(F.col(column) <= F.lit(high))
    return _all_of(conditions)




def _examples(new: DataFrame, keys: list[str], rules: list[CompiledRule]
              ) -> dict[int, dict[str, list[dict[str, str | None]]]]:
    """Up to ``EXAMPLES_PER_RULE`` failing rows per rule and partition, in one pass."""
    shown = list(dict.fromkeys([SOURCE_FILE_COLUMN, *keys, *(c for r in rules for c in r.columns)]))
    rule = F.explode(F.array(*[F.when(r.fails, F.lit(r.name)) for r in rules]))
    order = Window.partitionBy("rule", _PARTITION_ID).orderBy(SOURCE_FILE_COLUMN, *keys)
    rows = (
        new.where(_any_of([r.fails for r in rules]))
        .select(_PARTITION_ID, rule.alias("rule"),
                *[F.col(c).cast("string").alias(c) for c in shown])
        .where(F.col("rule").isNotNull())
        .withColumn("pick", F.row_number().over(order))
        .where(F.col("pick") <= EXAMPLES_PER_RULE)
        .collect()
    )
    columns_of = {r.name: r.columns for r in rules}
    found: dict[int, dict[str, list[dict[str, str | None]]]] = {}
    for row in sorted(rows, key=lambda r: (r[_PARTITION_ID], r["rule"], r["pick"])):
        wanted = dict.fromkeys([SOURCE_FILE_COLUMN, *keys, *columns_of[row["rule"]]])
        found.setdefault(row[_PARTITION_ID], {}).setdefault(row["rule"], []).append(
            {c: row[c] for c in wanted})
    return found


def _table(spark: SparkSession, batch: CommittedBatch) -> DataFrame:
    return read_table(spark, batch.table, batch.delta_version)


def _of_batch(batch: CommittedBatch) -> Column:
    """The batch's rows: those stamped by its commit (or by one of its window's)."""
    stamps = [F.lit(stamp).cast("timestamp") for stamp in batch.stamps]
    if len(stamps) == 1:
        return F.col(INGESTED_AT_COLUMN) == stamps[0]
    return F.col(INGESTED_AT_COLUMN).isin(stamps)


def _in_partitions(spec: SourceSpec, keys: tuple[str, ...]) -> Column:
    return F.col(spec.partition_column).isin([spec.partitions.spark_value(k) for k in keys])


def _partition_id(spec: SourceSpec) -> Column:
    """The partition as epoch seconds of its start (session time zone UTC), an exact join key."""
    return F.unix_seconds(F.col(spec.partition_column).cast("timestamp"))


def _partition_ids(spec: SourceSpec, keys: tuple[str, ...]) -> dict[str, int]:
    return {key: int(spec.partitions.parse(key).timestamp()) for key in keys}


def _any_of(conditions: list[Column]) -> Column:
    if not conditions:
        return F.lit(False)
    result = conditions[0]
    for condition in conditions[1:]:
        result = result | condition
    return result


def _all_of(conditions: list[Column]) -> Column:
    result = conditions[0]
    for condition in conditions[1:]:
        result = result & condition
    return result
