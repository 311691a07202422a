"""Ingest the landed files of some partitions into a bronze table, exactly once.

How exactly-once holds, across crashes, retries and concurrent runs:

1. Read the bronze table's last idempotent-write version ``t`` for this source, *then* the ledger.
2. Settle claims of earlier runs with version <= t: such a claim is committed if its
   ``claim_id`` is in the table history, otherwise it can never commit (Delta skips or rejects a
   ``txnVersion`` <= t) and is abandoned. Claims above t are in flight or dead; their files are
   treated as uncommitted.
3. Claim the uncommitted files in the ledger as batch ``t + 1``, then append them to bronze with
   ``txnAppId=<source>, txnVersion=t+1`` and the claim id in the commit's ``userMetadata``.
4. Look for the claim id in the new commits. Found: mark the files committed. Not found (another
   run took version t+1 first, or the write was skipped as a replay): abandon the claim and plan
   again from step 1.

A process killed anywhere leaves at most a pending claim, which step 2 settles on the next run.
"""

from __future__ import annotations

import logging
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from manufacturing_ingest.catalog import INGESTED_AT_COLUMN, SOURCE_FILE_COLUMN, SourceSpec
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.inspect import UnreadableFile, inspect_file
from manufacturing_ingest.engine.ledger import FileLedger, claims_of, file_states
from manufacturing_ingest.engine.read import (
    BatchFile,
    partition_value,
    read_batch,
)
from manufacturing_ingest.landing import LandedObject, LandingZone, is_ignored, partition_key_of

log = logging.getLogger("manufacturing_ingest.bronze")

MAX_ATTEMPTS = 6
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Lakehouse:
    """Where the bronze tables and the platform's own bookkeeping tables live."""

    root: str

    def table_path(self, spec: SourceSpec) -> str:
        return f"{self.root}/{spec.table_name.replace('.', '/')}"

    @property
    def ledger_path(self) -> str:
        return f"{self.root}/_manufacturing_ingest/file_ledger"

    @property
    def schema_log_path(self) -> str:
        return f"{self.root}/_manufacturing_ingest/schema_changes"


@dataclass
class FileOutcome:
    uri: str
    partition_key: str
    status: str  # committed | failed | skipped | ignored
    rows: int = 0
    error: str | None = None
    note: str | None = None


@dataclass
class IngestReport:
    """What one ingest did; becomes the materialization's metadata."""

    source: str
    partition_keys: list[str]
    mode: str
    table_path: str
    files_listed: int = 0
    files_ignored: int = 0
    files_skipped: int = 0
    files_processed: int = 0
    files_failed: int = 0
    files_empty: int = 0
    records: int = 0
    bytes: int = 0
    seconds: float = 0.0
    write_seconds: float = 0.0
    delta_version: int | None = None
    claim_id: str | None = None
    batch_version: int | None = None
    landing_to_commit_seconds_max: float | None = None
    landing_to_commit_seconds_median: float | None = None
    schema_changes: dict[str, str] = field(default_factory=dict)
    columns_missing_in_files: list[str] = field(default_factory=list)
    outcomes: list[FileOutcome] = field(default_factory=list)
    attempts: int = 1

    @property
    def records_per_second(self) -> float:
        """End to end: listing, inspection, the write and the bookkeeping."""
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


class BronzeIngestor:
    """Moves one source's landed files into its bronze table."""

    def __init__(
        self,
        spark: SparkSession,
        spec: SourceSpec,
        landing: LandingZone,
        lakehouse: Lakehouse,
        progress: Progress | None = None,
        staging_dir: Path | None = None,
    ):
        self.spark = spark
        self.spec = spec
        self.landing = landing
        self.lakehouse = lakehouse
        self.table_path = lakehouse.table_path(spec)
        self.ledger = FileLedger(spark, lakehouse.ledger_path)
        self.progress = progress or (lambda message: log.info(message))
        self.staging_dir = staging_dir or Path(tempfile.gettempdir()) / "manufacturing_ingest"
        self._spark_failures: dict[str, str] = {}

    def ingest(
        self, partition_keys: list[str], *, reprocess: bool = False, run_id: str | None = None
    ) -> IngestReport:
        """Ingest the uncommitted files of ``partition_keys`` (all of them with ``reprocess``)."""
        if reprocess and len(partition_keys) != 1:
            raise ValueError("reprocess rebuilds exactly one partition at a time")
        started = time.monotonic()
        run_id = run_id or uuid.uuid4().hex
        report = IngestReport(
            source=self.spec.name,
            partition_keys=list(partition_keys),
            mode="reprocess" if reprocess else "incremental",
            table_path=self.table_path,
        )
        listed = self.landing.partition_objects(self.spec, partition_keys)
        report.files_listed = len(listed)
        candidates = []
        for obj in listed:
            if is_ignored(obj.key):
                report.files_ignored += 1
                report.outcomes.append(
                    FileOutcome(obj.uri, partition_key_of(self.spec, obj), "ignored",
                                note="marker or in-flight file")
                )
            else:
                candidates.append(obj)
        self.progress(
            f"{self.spec.name} {_describe(partition_keys)}: {len(candidates)} files landed, "
            f"{report.files_ignored} ignored"
        )
        staging = self.staging_dir / uuid.uuid4().hex
        try:
            for attempt in range(1, MAX_ATTEMPTS + 1):
                report.attempts = attempt
                if self._attempt(report, candidates, reprocess, run_id, staging):
                    break
                pause = min(0.5 * 2**attempt, 8.0)
                self.progress(f"{self.spec.name}: another run committed first; "
                              f"replanning in {pause}s")
                time.sleep(pause)
            else:
                raise RuntimeError(
                    f"{self.spec.name}: could not commit after {MAX_ATTEMPTS} attempts; other "
                    "runs keep winning the same partitions. Check for runaway concurrent runs."
                )
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # staged copies of remote objects
        report.seconds = time.monotonic() - started
        return report

    # -- one planning + commit attempt ---------------------------------------------------------

    def _attempt(
        self, report: IngestReport, candidates: list[LandedObject], reprocess: bool, run_id: str,
        staging: Path,
    ) -> bool:
        spec = self.spec
        # The txn version must be read before the ledger (see the module docstring).
        base_version, txn = delta.table_state(self.spark, self.table_path, spec.ledger_app_id)
        events = self.ledger.events(spec.name, report.partition_keys)
        events += self._settle_claims(events, txn, run_id)
        states = file_states(events)

        report.outcomes = [o for o in report.outcomes if o.status == "ignored"]
        todo: list[LandedObject] = []
        for obj in candidates:
            state = states.get((obj.key, obj.etag))
            if state is not None and state.status == "committed" and not reprocess:
                report.outcomes.append(
                    FileOutcome(obj.uri, state.partition_key, "skipped", rows=state.rows or 0,
                                note="already committed")
                )
            else:
                todo.append(obj)
        report.files_skipped = sum(o.status == "skipped" for o in report.outcomes)
        if not todo:
            self.progress(f"{spec.name}: nothing new to ingest")
            return True

        ready, empty, failed = self._inspect(todo, staging)
        failure_events = [self._event("failed", f.obj, run_id, error=error)
                          for f, error in failed]
        empty_events = [self._event("committed", f.obj, run_id, rows=0,
                                    note=f.inspection.note) for f in empty]
        for f, error in failed:
            self.progress(f"{spec.name}: FAILED {f.obj.uri}: {error}")

        committed_version: int | None = None
        rows_by_uri: dict[str, int] = {}
        if ready:
            result = self._commit(report, ready, txn, base_version, reprocess, run_id)
            if result is None:
                return False
            committed_version, rows_by_uri, ready, more_failed = result
            failure_events += [self._event("failed", f.obj, run_id, error=e)
                               for f, e in more_failed]
            failed += more_failed
        self.ledger.append(failure_events + empty_events)
        if committed_version is not None and any(
            outcome == "pending" and claim.batch_version <= txn + 1
            and claim.claim_id != report.claim_id
            for claim, outcome in claims_of(events).values()
        ):
            # A claim of a run that died before its commit now sits below the table's version:
            # settle it now rather than leave it pending until the next run.
            self._settle_claims(self.ledger.events(spec.name, report.partition_keys),
                                txn + 1, run_id)

        commit_time = datetime.now(UTC)
        for f in ready:
            report.outcomes.append(FileOutcome(f.obj.uri, f.partition_key, "committed",
                                               rows=rows_by_uri.get(f.obj.uri, 0)))
        for f in empty:
            report.outcomes.append(FileOutcome(f.obj.uri, f.partition_key, "committed",
                                               note=f.inspection.note))
        for f, error in failed:
            report.outcomes.append(FileOutcome(f.obj.uri, f.partition_key, "failed", error=error))
        report.files_processed = len(ready) + len(empty)
        report.files_empty = len(empty)
        report.files_failed = len(failed)
        report.records = sum(rows_by_uri.values())
        report.bytes = sum(f.obj.size for f in ready + empty)
        report.delta_version = committed_version
        latencies = [(commit_time - f.obj.last_modified).total_seconds() for f in ready + empty]
        if latencies:
            report.landing_to_commit_seconds_max = max(latencies)
            report.landing_to_commit_seconds_median = statistics.median(latencies)
        return True

    def _settle_claims(self, events: list[dict], txn: int, run_id: str) -> list[dict]:
        """Decide the claims that can no longer change (version <= txn) and record the result."""
        settled: list[dict] = []
        open_claims = [
            claim for claim, outcome in claims_of(events).values()
            if outcome == "pending" and claim.batch_version <= txn
        ]
        if not open_claims:
            return settled
        oldest = min(c.base_version for c in open_claims)
        commits = {c["userMetadata"].get("claim_id"): c
                   for c in delta.commits_after(self.spark, self.table_path, oldest)}
        by_ident = {(e["object_key"], e["etag"]): e for e in events if e["event"] == "claimed"}
        for claim in open_claims:
            commit = commits.get(claim.claim_id)
            idents = [by_ident[i] for i in claim.files]
            if commit is None:
                self.progress(f"{self.spec.name}: claim {claim.claim_id} never committed; "
                              f"its {len(idents)} files will be ingested again")
                outcome, rows = "abandoned", {}
            else:
                self.progress(f"{self.spec.name}: claim {claim.claim_id} was committed in "
                              f"version {commit['version']} by an interrupted run; recording it")
                outcome = "committed"
                stamp = commit["userMetadata"].get("ingested_at")
                rows = self._rows_per_file(
                    [e["object_uri"] for e in idents], commit["version"],
                    datetime.fromisoformat(stamp) if stamp else None,
                )
            for e in idents:
                settled.append({**e, "event": outcome, "run_id": run_id,
                                "rows": rows.get(e["object_uri"], 0) if rows else None,
                                "table_version": commit["version"] if commit else None,
                                "recorded_at": None})
        now = datetime.now(UTC)
        for e in settled:
            e["recorded_at"] = now
        self.ledger.append(settled)
        return settled

    def _inspect(self, todo: list[LandedObject], staging: Path):
        ready: list[BatchFile] = []
        empty: list[BatchFile] = []
        failed: list[tuple[BatchFile, str]] = []
        for index, obj in enumerate(todo, 1):
            partition_key = partition_key_of(self.spec, obj)
            fmt = obj.file_format
            try:
                path = self.landing.local_path(obj, staging)
            except (FileNotFoundError, OSError) as exc:
                # Deleted or re-uploaded since listing, or a download that kept breaking: the
                # file is reported and the next run sees its current state.
                failed.append((BatchFile(obj, Path(), None, partition_key),  # type: ignore[arg-type]
                               f"could not be read: {exc}"))
                continue
            if obj.uri in self._spark_failures:
                failed.append((BatchFile(obj, path, None, partition_key),  # type: ignore[arg-type]
                               self._spark_failures[obj.uri]))
                continue
            if fmt not in self.spec.formats:
                error = (f"unsupported file type {obj.name!r}; {self.spec.name} accepts "
                         f"{', '.join(self.spec.formats)} (optionally .gz)")
                failed.append((BatchFile(obj, path, None, partition_key), error))  # type: ignore[arg-type]
                continue
            try:
                inspection = inspect_file(path, fmt, obj.compression)
            except UnreadableFile as exc:
                failed.append((BatchFile(obj, path, None, partition_key), str(exc)))  # type: ignore[arg-type]
                continue
            batch_file = BatchFile(obj, path, inspection, partition_key)
            (ready if inspection.has_rows else empty).append(batch_file)
            if index % 50 == 0:
                self.progress(f"{self.spec.name}: inspected {index}/{len(todo)} files")
        return ready, empty, failed

    def _commit(self, report, ready, txn, base_version, reprocess, run_id):
        """Claim and write ``ready``; None when another run won the version."""
        spec = self.spec
        batch_version = txn + 1
        claim_id = f"{run_id}:{uuid.uuid4().hex[:12]}"
        # Unique per batch: with the file URI it identifies this batch's rows of a re-upload.
        ingested_at = datetime.now(UTC)
        table_types = delta.table_types(self.spark, self.table_path)
        frame, more_failed = self._read(ready, table_types, ingested_at)
        ready = [f for f in ready if f.obj.uri not in {b.obj.uri for b, _ in more_failed}]
        if frame is None:
            return None, {}, [], more_failed
        mode = "reprocess" if reprocess else "incremental"
        self.ledger.append([
            self._event("claimed", f.obj, run_id, claim_id=claim_id, batch_version=batch_version,
                        base_version=base_version, mode=mode)
            for f in ready
        ])
        metadata = {
            "claim_id": claim_id,
            "source": spec.name,
            "mode": mode,
            "batch_version": batch_version,
            "files": len(ready),
            "added_columns": frame.new_columns,
            "ingested_at": ingested_at.isoformat(),
        }
        self.progress(f"{spec.name}: claimed batch {batch_version} ({len(ready)} files, "
                      f"{_size(sum(f.obj.size for f in ready))}); writing to {self.table_path}")
        writer = (
            frame.df.write.format("delta")
            .option("mergeSchema", "true")
            .option("txnAppId", spec.ledger_app_id)
            .option("txnVersion", str(batch_version))
            .option("userMetadata", _json(metadata))
            .partitionBy(spec.partition_column)
        )
        if base_version < 0:
            # Table properties can only ride on the write that creates the table.
            writer = writer.option("delta.dataSkippingStatsColumns", ",".join(stats_columns(spec)))
        if reprocess:
            value = partition_value(spec, report.partition_keys[0])
            literal = (f"{value:%Y-%m-%d %H:%M:%S}" if spec.partitioning == "hourly"
                       else f"{value:%Y-%m-%d}")
            writer = writer.mode("overwrite").option(
                "replaceWhere", f"{spec.partition_column} = '{literal}'"
            )
        else:
            writer = writer.mode("append")
        write_started = time.monotonic()
        try:
            writer.save(self.table_path)
        except Exception as exc:  # noqa: BLE001 - Delta's conflicts arrive as Py4J/Spark errors
            if not delta.is_write_conflict(exc):
                self.ledger.append([self._event("abandoned", f.obj, run_id, claim_id=claim_id,
                                                batch_version=batch_version) for f in ready])
                if self._isolate_unreadable(ready, table_types, ingested_at) == 0:
                    raise
                self.progress(f"{spec.name}: set aside files Spark cannot read; retrying")
                return None
            self.progress(f"{spec.name}: concurrent commit for batch {batch_version}: "
                          f"{type(exc).__name__}")
        report.write_seconds = time.monotonic() - write_started
        ours = [c for c in delta.commits_after(self.spark, self.table_path, base_version)
                if c["userMetadata"].get("claim_id") == claim_id]
        if not ours:
            self.ledger.append([self._event("abandoned", f.obj, run_id, claim_id=claim_id,
                                            batch_version=batch_version) for f in ready])
            return None
        version = int(ours[0]["version"])
        self.progress(f"{spec.name}: bronze commit version {version} holds batch {batch_version}")
        rows = self._rows_per_file_from_inspection(ready, ours[0])
        if rows is None:
            rows = self._rows_per_file([f.obj.uri for f in ready], version, ingested_at)
        self.ledger.append([
            self._event("committed", f.obj, run_id, claim_id=claim_id,
                        batch_version=batch_version, rows=rows.get(f.obj.uri, 0),
                        table_version=version)
            for f in ready
        ])
        self.progress(f"{spec.name}: ledger updated for batch {batch_version}")
        report.claim_id = claim_id
        report.batch_version = batch_version
        report.schema_changes = frame.new_columns
        if frame.new_columns:
            self._record_schema_change(frame, version, claim_id)
        report.columns_missing_in_files = frame.missing_columns
        return version, rows, ready, more_failed

    def _read(self, ready, table_types, ingested_at):
        """The batch frame, after setting aside files Spark itself cannot plan a read of."""
        try:
            return read_batch(self.spark, self.spec, ready, table_types, ingested_at), []
        except Exception:  # noqa: BLE001 - find the file(s) behind a planning error
            failed = []
            for f in ready:
                try:
                    read_batch(self.spark, self.spec, [f], table_types, ingested_at)
                except Exception as exc:  # noqa: BLE001
                    failed.append((f, _spark_error(exc)))
            if not failed:
                raise
            good = [f for f in ready if f not in {b for b, _ in failed}]
            if not good:
                return None, failed
            return read_batch(self.spark, self.spec, good, table_types, ingested_at), failed

    def _isolate_unreadable(self, ready, table_types, ingested_at) -> int:
        """After a failed write, read each file alone; remember the ones Spark cannot read."""
        found = 0
        for f in ready:
            try:
                frame = read_batch(self.spark, self.spec, [f], table_types, ingested_at)
                frame.df.write.format("noop").mode("overwrite").save()
            except Exception as exc:  # noqa: BLE001
                self._spark_failures[f.obj.uri] = _spark_error(exc)
                found += 1
        return found

    @staticmethod
    def _rows_per_file_from_inspection(ready: list[BatchFile], commit: dict
                                       ) -> dict[str, int] | None:
        """Rows per file from the inspected line counts, when they add up to what Delta wrote."""
        expected = [f.inspection.expected_rows for f in ready]
        written = (commit.get("operationMetrics") or {}).get("numOutputRows")
        if None in expected or written is None or int(written) != sum(expected):
            return None  # quoted line breaks, odd blank lines…: count in Spark instead
        return {f.obj.uri: f.inspection.expected_rows for f in ready}

    def _rows_per_file(self, uris: list[str], version: int, ingested_at: datetime | None
                       ) -> dict[str, int]:
        """Rows each file put into commit ``version`` (a scan of the new rows only)."""
        rows = (
            self.spark.read.format("delta").option("versionAsOf", version).load(self.table_path)
            .where(F.col(SOURCE_FILE_COLUMN).isin(uris))
        )
        if ingested_at is not None:  # with statistics on _ingested_at: only the new files
            rows = rows.where(F.col(INGESTED_AT_COLUMN) == F.lit(ingested_at).cast("timestamp"))
        counts = (
            rows
            .groupBy(SOURCE_FILE_COLUMN).count().collect()
        )
        return {row[SOURCE_FILE_COLUMN]: int(row["count"]) for row in counts}

    def _record_schema_change(self, frame, version: int, claim_id: str) -> None:
        now = datetime.now(UTC)
        rows = [
            (self.spec.name, name, kind, version, claim_id,
             ", ".join(sorted(set(frame.new_column_files.get(name, [])))[:5]), now)
            for name, kind in frame.new_columns.items()
        ]
        schema = ("source string, column_name string, column_type string, table_version long, "
                  "claim_id string, first_files string, detected_at timestamp")
        self.progress(f"{self.spec.name}: schema evolved, new columns "
                      f"{', '.join(f'{k} {v}' for k, v in frame.new_columns.items())}")
        frame = self.spark.createDataFrame(rows, schema).coalesce(1)
        delta.append_with_retry(lambda: frame.write.format("delta").mode("append")
                                .save(self.lakehouse.schema_log_path))

    def _event(self, event: str, obj: LandedObject, run_id: str, **fields) -> dict:
        return {
            "source": self.spec.name,
            "event": event,
            "partition_key": partition_key_of(self.spec, obj),
            "object_key": obj.key,
            "object_uri": obj.uri,
            "etag": obj.etag,
            "size": obj.size,
            "last_modified": obj.last_modified,
            "run_id": run_id,
            **fields,
        }


def stats_columns(spec: SourceSpec) -> list[str]:
    """Columns Delta keeps min/max statistics for: the ones queries and this engine filter on.

    The partition column needs none: it is in the table's directory layout.

    Statistics on every column (Delta's default: the first 32) cost about a fifth of the write
    on wide text columns such as ``_source_file`` and skip nothing useful there.
    """
    return list(dict.fromkeys([*spec.key_columns, spec.event_time_column, INGESTED_AT_COLUMN]))


def _spark_error(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"Spark could not read the file: {first[:500]}"


def _describe(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]}…{keys[-1]} ({len(keys)} partitions)"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)
