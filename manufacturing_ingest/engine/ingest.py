"""The ingest loop: the landed files of some partitions into a bronze table, exactly once.

One ``ingest`` lists the partitions' files, skips what the ledger says is committed, tells a new
version of a committed file by its content (the same bytes write nothing; other bytes follow the
source's ``Corrections``), inspects the rest on the driver (a broken file fails alone), reads the
good ones into one frame and hands it to the commit protocol (``protocol.py``). Losing a race to
a concurrent run means planning again. A reprocess that cannot read a file whose rows bronze
holds stops before it writes (``ReprocessIncomplete``): it never drops rows it could not read.
"""

from __future__ import annotations

import logging
import shutil
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from manufacturing_ingest.catalog import Corrections, SchemaContract, SourceSpec
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.encoding import normalized_copy
from manufacturing_ingest.engine.inspect import (
    HEAD_BYTES,
    PARQUET_TAIL_BYTES,
    FileInspection,
    UnreadableFile,
    inspect_bytes,
    inspect_file,
    inspect_parquet_tail,
    inspect_text_head,
)
from manufacturing_ingest.engine.isolation import find_unreadable, read_setting_aside
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.ledger import FileLedger, FileState, FileStatus
from manufacturing_ingest.engine.progress import Phase, Progress, ProgressEvent, killing_at
from manufacturing_ingest.engine.protocol import (
    Batch,
    Commit,
    CommitProtocol,
    Plan,
    Version,
    WriteFailed,
)
from manufacturing_ingest.engine.read import BatchFile, FailedFile, FailureKind
from manufacturing_ingest.engine.report import FileOutcome, IngestMode, IngestReport, Outcome
from manufacturing_ingest.engine.schema_log import SchemaLog
from manufacturing_ingest.engine.staging import (
    dedupe_json_keys,
    spark_can_address,
    spark_safe_path,
)
from manufacturing_ingest.engine.types import sanitize_column_name
from manufacturing_ingest.engine.warm import warm_transactions
from manufacturing_ingest.errors import ReprocessIncomplete, StorageFull
from manufacturing_ingest.landing import (
    ArchivedObject,
    LandedObject,
    LandingZone,
    has_date_path,
    ignore_reason,
    partition_key_of,
)
from manufacturing_ingest.retry import Backoff
from manufacturing_ingest.settings import ReadMode

log = logging.getLogger("manufacturing_ingest.bronze")

# Replanning after another run won the batch version (or after setting aside unreadable files).
REPLAN_BACKOFF = Backoff(attempts=6, base=0.5, cap=8.0)
NOT_STABLE = ("changed while it was read (still being written?); not yet stable, it is read on "
              "a later run")
FALLBACK_PARTITION_NOTE = "no valid date folder in the key; partition from LastModified (UTC)"
# Failed files are read again at once the first few times, then less often (see _held_until).
RETRIES_AT_ONCE = 3
RETRY_BACKOFF = Backoff(attempts=10, base=7.5 * 60, cap=6 * 3600)  # 15 min, 30 min, … 6 h
ARCHIVED_RETRY = timedelta(days=1)


def log_progress(event: ProgressEvent) -> None:
    """The default sink: a log line carrying the typed event (the CLI renders text or JSON)."""
    log.info(event.message(), extra={"progress_event": event})


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
        read_mode: ReadMode = ReadMode.STAGED,
    ):
        self.spark = spark
        self.spec = spec
        self.landing = landing
        self.lakehouse = lakehouse
        self.table = lakehouse.table(spec)
        self.progress = killing_at(progress or log_progress)  # crash tests' kill point
        # The protocol is the one writer of the ledger (see protocol.py).
        self.protocol = CommitProtocol(spark, spec, self.table,
                                       FileLedger(spark, lakehouse.ledger_path), self.progress,
                                       stable=landing.unchanged)
        self.schema_log = SchemaLog(spark, lakehouse.schema_log_path)
        self.staging_dir = staging_dir or Path(tempfile.gettempdir()) / "manufacturing_ingest"
        self.read_mode = read_mode
        self._spark_failures: dict[str, str] = {}  # URI -> error, found by a failed write
        self._hashes: dict[str, str] = {}  # URI -> content hash, of new versions already read
        self._hasher = _HASHER
        # Standard microsecond timestamps (not INT96), so any Delta reader can read any date.
        # A runtime SQL conf, so it holds on a shared session (a Databricks cluster's) too.
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")

    def _emit(self, phase: Phase, **figures) -> None:
        self.progress(ProgressEvent(self.spec.name, phase, figures))

    def ingest(
        self, partition_keys: list[str], *, reprocess: bool = False, run_id: str | None = None,
        objects: list[LandedObject] | None = None,
    ) -> IngestReport:
        """Ingest the uncommitted files of ``partition_keys`` (all of them with ``reprocess``).

        ``objects``: just these landed objects of those partitions, found by the caller, instead
        of listing the partitions (the stream's micro-batches: a bounded share of what landed).
        The protocol is the same: what another writer committed meanwhile is skipped.
        """
        if reprocess and len(partition_keys) != 1:
            raise ValueError("reprocess rebuilds exactly one partition at a time")
        if reprocess and objects is not None:
            raise ValueError("reprocess rebuilds a partition from all of its files")
        self.lakehouse.check_writable()
        self.landing.check_available()
        # Delta's idempotent-write check needs the table's whole state: have it computed while
        # this batch is listed, planned and inspected, not after (see warm.py).
        warm_transactions(self.spark, self.table)
        started = time.monotonic()
        run_id = run_id or uuid.uuid4().hex
        report = IngestReport(
            source=self.spec.name,
            partition_keys=list(partition_keys),
            mode=IngestMode.REPROCESS if reprocess else IngestMode.INCREMENTAL,
            table=self.table,
        )
        candidates = []
        landed = (self.landing.partition_objects(self.spec, partition_keys) if objects is None
                  else objects)
        for obj in landed:
            reason = ignore_reason(obj)
            if reason:
                report.outcomes.append(FileOutcome(
                    obj.uri, partition_key_of(self.spec, obj), Outcome.IGNORED, note=reason))
            else:
                candidates.append(obj)
        self._emit(Phase.LISTED, partitions=_describe(partition_keys), landed=len(candidates),
                   ignored=report.files_ignored)
        staging = self.staging_dir / uuid.uuid4().hex
        wall_started = time.time()
        try:
            for attempt in range(1, REPLAN_BACKOFF.attempts + 1):
                report.attempts = attempt
                if self._attempt(report, candidates, reprocess, run_id, staging):
                    break
                if attempt == REPLAN_BACKOFF.attempts:
                    raise RuntimeError(
                        f"{self.spec.name}: could not commit after {attempt} attempts; other "
                        "runs keep winning the same partitions. Check for runaway concurrent "
                        "runs."
                    )
                pause = REPLAN_BACKOFF.delay(attempt)
                self._emit(Phase.REPLANNING, pause=pause)
                time.sleep(pause)
        except Exception as exc:
            if isinstance(exc, StorageFull) or delta.is_storage_full(exc):
                raise self._storage_full(partition_keys, wall_started) from None
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # staged copies of remote objects
        report.seconds = time.monotonic() - started
        return report

    def _storage_full(self, partition_keys: list[str], since: float) -> StorageFull:
        """The lakehouse's storage filled up (bronze, ledger or schema log): take out the data
        files this run's writes left (none of them is in a commit) and say what to do."""
        delta.wait_for_tasks(self.spark)  # tasks of an aborted job may still be closing files
        removed = sum(delta.remove_unreferenced(self.spark, table, since) for table in
                      (self.table, self.protocol.ledger.path, self.schema_log.path))
        return StorageFull(
            f"no space left on the lakehouse's storage ({self.lakehouse.root}) while "
            f"ingesting {self.spec.name} {_describe(partition_keys)}; the run stopped and "
            f"removed the {removed} partial data file(s) its writes left. Nothing is lost or "
            "doubled: free space (or move MANUFACTURING_LAKEHOUSE_URL) and run again; the "
            "next run finishes what this one began")

    def _attempt(self, report: IngestReport, candidates: list[LandedObject], reprocess: bool,
                 run_id: str, staging: Path) -> bool:
        """Plan and commit once; False when the batch must be planned again.

        The steps, each named below: plan (the protocol reads the table, then the ledger, and
        settles what earlier runs left), pick the files still to do, inspect them on the
        driver, read and commit the readable ones, close (the protocol records the files
        without rows and settles claims left behind), report.
        """
        plan = self.protocol.plan(report.partition_keys, run_id)
        todo, supersedes = self._still_to_do(report, candidates, plan, reprocess, run_id)
        if not todo:
            self._emit(Phase.NOTHING_NEW)
            return True
        ready, empty, failed = self._inspect(todo, staging, supersedes)
        for f in failed:
            self._emit(Phase.FILE_FAILED, uri=f.obj.uri, error=f.error)
        if reprocess:
            self._refuse_partial_reprocess(plan, failed, run_id)
        written = (self._write(report, ready, plan, run_id, staging, failed_before=failed)
                   if ready else _Written())
        if written is None:
            return False
        failed += written.failed
        self.protocol.close(plan, written.commit, failed, empty, run_id)
        self._record(report, written.ready, empty, failed, written)
        return True

    def _still_to_do(self, report: IngestReport, candidates: list[LandedObject], plan: Plan,
                     reprocess: bool, run_id: str
                     ) -> tuple[list[LandedObject], dict[str, tuple[FileState, ...]]]:
        """The candidates to read (all of them on a reprocess, else those not yet committed;
        the rest are reported skipped or held), and for each new version of a committed file
        that replaces it, the committed versions it replaces (by URI). New versions with the
        committed bytes, or ignored by the source's ``Corrections``, are recorded here and not
        read."""
        states = plan.files()
        current = _committed_by_key(states)
        report.outcomes = [o for o in report.outcomes if o.status is Outcome.IGNORED]
        todo: list[LandedObject] = []
        supersedes: dict[str, tuple[FileState, ...]] = {}
        same: list[Version] = []
        ignored: list[Version] = []
        for obj in candidates:
            known = states.get((obj.key, obj.etag))
            versions = tuple(v for v in current.get(obj.key, ()) if v.etag != obj.etag)
            prior = versions[-1] if versions else None  # the latest
            if known is not None and known.status is FileStatus.COMMITTED and not reprocess:
                report.outcomes.append(FileOutcome(
                    obj.uri, known.partition_key or partition_key_of(self.spec, obj),
                    Outcome.SKIPPED, rows=known.rows or 0, note="already committed"))
                continue
            held = (_held_until(known) if known is not None and not reprocess
                    and known.status is FileStatus.FAILED else None)
            if held is not None:
                when = ("until its bytes change (a new upload is read)" if held == datetime.max
                        .replace(tzinfo=UTC) else f"until {held:%Y-%m-%d %H:%M} UTC")
                report.outcomes.append(FileOutcome(
                    obj.uri, known.partition_key or partition_key_of(self.spec, obj),
                    Outcome.HELD, error=known.error,
                    note=f"failed {known.attempts} time(s), not read again {when}"))
                continue
            if prior is None:
                todo.append(obj)
                continue
            if reprocess:  # the partition is rewritten from what landed: the old rows go
                supersedes[obj.uri] = versions
                todo.append(obj)
                continue
            verdict = self._version_of(obj, prior)
            if isinstance(verdict, str):  # its bytes could not be read now: retried next run
                report.outcomes.append(FileOutcome(obj.uri, partition_key_of(self.spec, obj),
                                                   Outcome.FAILED, error=verdict))
                continue
            if verdict.content_hash == prior.content_hash:
                same.append(verdict)
                report.outcomes.append(FileOutcome(
                    obj.uri, verdict.partition_key, Outcome.SKIPPED, rows=prior.rows or 0,
                    note=f"same content as the committed version (ETag {prior.etag}): "
                         "touched or uploaded again; nothing written"))
            elif self.spec.corrections is Corrections.IGNORE:
                ignored.append(verdict)
                report.outcomes.append(FileOutcome(
                    obj.uri, verdict.partition_key, Outcome.SKIPPED,
                    note="a new version of a committed file; not ingested (corrections: "
                         "ignore)"))
            else:
                if self.spec.corrections is Corrections.REPLACE:
                    supersedes[obj.uri] = versions  # every row of its key goes
                self._hashes[obj.uri] = verdict.content_hash
                todo.append(obj)
        if same or ignored:
            self.protocol.record_versions(same, ignored, run_id)
        return todo, supersedes

    def _version_of(self, obj: LandedObject, prior: FileState) -> Version | str:
        """``obj``, a new version of ``prior``'s key, with its content hash; why not, when its
        bytes cannot be read now."""
        try:
            digest = self.landing.content_hash(obj)
        except OSError as exc:
            return f"could not be read: {exc}"
        return Version(obj, partition_key_of(self.spec, obj), prior, digest)

    def _refuse_partial_reprocess(self, plan: Plan, failed: list[FailedFile],
                                  run_id: str) -> None:
        """A reprocess rewrites the whole partition: a file it cannot read whose rows bronze
        holds would lose them. Record the failures and stop before anything is written."""
        held = _committed_by_key(plan.files())
        lost = [f for f in failed
                if any((v.rows or 0) > 0 for v in held.get(f.obj.key, ()))]
        if not lost:
            return
        self.protocol.close(plan, None, failed, [], run_id)
        names = "; ".join(f"{f.obj.uri}: {f.error}" for f in lost[:5])
        raise ReprocessIncomplete(
            f"{self.spec.name} {plan.partition_keys[0]}: reprocess stopped, nothing written: "
            f"{len(lost)} file(s) whose rows bronze holds could not be read ({names}). The "
            "partition keeps its rows; run the reprocess again once they can be read")

    def _write(self, report: IngestReport, ready: list[BatchFile], plan: Plan, run_id: str,
               staging: Path, failed_before: list[FailedFile]) -> _Written | None:
        """Read the ready files into one frame and commit it through the protocol; None when
        the batch must be planned again (another run won its version, or Spark found files
        it cannot read, now set aside)."""
        spec = self.spec
        ingested_at = datetime.now(UTC)  # with the URI, identifies this batch's rows
        table_types = delta.table_types(self.spark, self.table)
        frame, unreadable = read_setting_aside(
            self.spark, spec, ready, table_types, ingested_at, staging,
            localize=lambda f: (f.path if isinstance(f.path, Path)
                                else self.landing.local_path(f.obj, staging)))
        set_aside = {u.obj.uri for u in unreadable}
        ready = [f for f in ready if f.obj.uri not in set_aside]
        if unreadable and report.mode is IngestMode.REPROCESS:
            self._refuse_partial_reprocess(plan, failed_before + unreadable, run_id)
        if frame is None:
            return _Written(ready=ready, failed=unreadable)
        if frame.new_columns and spec.schema_contract is SchemaContract.FREEZE:
            refused = _frozen_out(spec, frame.new_column_files)
            self._spark_failures.update(refused)
            self._emit(Phase.SET_ASIDE, files=len(refused))
            return None  # planned again without them
        batch = Batch(ready, frame, ingested_at, report.mode,
                      spec.partitions.sql_literal(report.partition_keys[0])
                      if report.mode is IngestMode.REPROCESS else None)
        try:
            commit = self.protocol.commit(batch, plan, run_id)
        except WriteFailed:
            found = find_unreadable(self.spark, spec, ready, table_types, ingested_at)
            if not found:
                raise
            if report.mode is IngestMode.REPROCESS:
                self._refuse_partial_reprocess(plan, failed_before + [
                    FailedFile(f.obj, f.partition_key, found[f.obj.uri])
                    for f in ready if f.obj.uri in found], run_id)
            self._spark_failures.update(found)
            self._emit(Phase.SET_ASIDE, files=len(found))
            return None
        if commit is None:
            return None
        for f in commit.unstable:
            self._emit(Phase.FILE_FAILED, uri=f.obj.uri, error=f.error)
        unstable = {f.obj.uri for f in commit.unstable}
        report.ingested_at = ingested_at
        if frame.new_columns:
            self._emit(Phase.SCHEMA_EVOLVED, columns=", ".join(
                f"{k} {v}" for k, v in frame.new_columns.items()))
            self.schema_log.record(spec.name, frame.new_columns, frame.new_column_files,
                                   commit.version, commit.claim_id)
        return _Written(commit=commit, ready=[f for f in ready if f.obj.uri not in unstable],
                        failed=unreadable + commit.unstable, new_columns=frame.new_columns,
                        columns_missing=frame.missing_columns)

    def _record(self, report: IngestReport, ready: list[BatchFile], empty: list[BatchFile],
                failed: list[FailedFile], written: _Written) -> None:
        """Each file's outcome and the batch's figures, into the report."""
        commit = written.commit
        commit_time = datetime.now(UTC)
        rows = commit.rows if commit else {}
        report.outcomes += [
            FileOutcome(f.obj.uri, f.partition_key, Outcome.COMMITTED,
                        rows=rows.get(f.obj.uri, 0), size=f.obj.size,
                        note=None if has_date_path(self.spec, f.obj) else FALLBACK_PARTITION_NOTE)
            for f in ready
        ] + [
            FileOutcome(f.obj.uri, f.partition_key, Outcome.COMMITTED, size=f.obj.size,
                        note=f.inspection.note, empty=True) for f in empty
        ] + [
            FileOutcome(f.obj.uri, f.partition_key, Outcome.FAILED, error=f.error)
            for f in failed
        ]
        if commit is not None:
            report.delta_version = commit.version
            report.claim_id = commit.claim_id
            report.batch_version = commit.batch_version
            report.write_seconds = commit.write_seconds
            report.schema_changes = written.new_columns
            report.columns_missing_in_files = written.columns_missing
        latencies = [(commit_time - f.obj.last_modified).total_seconds() for f in ready + empty]
        if latencies:
            report.landing_to_commit_seconds_max = max(latencies)
            report.landing_to_commit_seconds_median = statistics.median(latencies)

    def _inspect(self, todo: list[LandedObject], staging: Path,
                 supersedes: dict[str, tuple[FileState, ...]]
                 ) -> tuple[list[BatchFile], list[BatchFile], list[FailedFile]]:
        """Ready (rows to read), empty (commit with 0 rows) and failed files; each with its
        content hash when known (a staged copy is hashed; a direct read has the listing's) and
        the committed version it replaces, if any (``supersedes``, by URI)."""
        ready: list[BatchFile] = []
        empty: list[BatchFile] = []
        failed: list[FailedFile] = []
        for index, obj in enumerate(todo, 1):
            partition_key = partition_key_of(self.spec, obj)
            error = self._spark_failures.get(obj.uri)
            # Bytes Spark or the inspection cannot ingest stay so until they change.
            kind = FailureKind.PERMANENT
            if error is None and obj.broken:
                error = obj.broken
            if error is None and obj.file_format not in self.spec.formats:
                error = (f"unsupported file type {obj.name!r}; {self.spec.name} accepts "
                         f"{', '.join(self.spec.formats)} (optionally .gz): convert it, or "
                         "land it under another prefix")
            if error is None:
                direct = self.read_mode is ReadMode.DIRECT and spark_can_address(obj.key)
                try:
                    if direct:
                        path, inspection = self._look_remotely(obj)
                        landed = None
                    else:
                        path, inspection, landed = self._stage(obj, staging, index)
                except ArchivedObject as exc:
                    error, kind = str(exc), FailureKind.ARCHIVED
                except (OSError, UnreadableFile) as exc:
                    # Deleted or re-uploaded since listing, a download that kept breaking, or
                    # bytes that cannot be ingested: reported; the next run sees its state then.
                    if isinstance(exc, UnreadableFile):
                        error = str(exc)
                        if exc.transient:
                            kind = FailureKind.TRANSIENT
                    else:
                        error, kind = f"could not be read: {exc}", FailureKind.TRANSIENT
                except Exception as exc:  # noqa: BLE001 - one odd file must not stop the run
                    error = f"inspection failed: {type(exc).__name__}: {exc}"[:500]
                    kind = FailureKind.TRANSIENT
            if error is None and inspection.has_rows:
                error = _foreign(self.spec, inspection)  # permanent: its bytes say so
            if error is None and not self.landing.unchanged(obj):
                error, kind = NOT_STABLE, FailureKind.TRANSIENT
            if error is not None:
                failed.append(FailedFile(obj, partition_key, error, kind))
                continue
            digest = self._hashes.get(obj.uri) or self.landing.known_content_hash(obj)
            if digest is None and landed is not None:
                # Off the critical path: the bytes are hashed while Spark writes the batch.
                digest = self._hasher.submit(_hash_or_none, self.landing, obj, landed)
            batch_file = BatchFile(obj, path, inspection, partition_key, digest=digest,
                                   supersedes=supersedes.get(obj.uri, ()))
            (ready if inspection.has_rows else empty).append(batch_file)
            if index % 50 == 0:
                self._emit(Phase.INSPECTED, done=index, total=len(todo))
        return ready, empty, failed

    def _stage(self, obj: LandedObject, staging: Path, index: int
               ) -> tuple[Path, FileInspection, Path]:
        """The object as a local file Spark reads by name, checked whole on the way; and the
        local file with the landed bytes (what its content hash is of)."""
        landed = self.landing.local_path(obj, staging)
        # A zone may stage a plain-named object as .gz (S3's Content-Encoding: gzip).
        compression = obj.compression or ("gzip" if landed.name.endswith(".gz") else None)
        path = landed
        if obj.file_format in ("csv", "json"):
            # Another encoding, a BOM before JSON, CR-only line ends: a UTF-8 copy is read.
            copy = normalized_copy(landed, compression, obj.file_format, self.spec.encoding,
                                   staging, index)
            if copy is not None:
                path, compression = copy, None
        inspection = inspect_file(path, obj.file_format, compression)
        if inspection.repeated_header and path == landed:
            # The header again mid-file (files pasted together): read a copy without it.
            path = normalized_copy(landed, compression, "csv", self.spec.encoding, staging,
                                   index, repeated_header=True)
            inspection = inspect_file(path, obj.file_format, None)
        elif inspection.empty_json_keys and not inspection.multiline:
            # Spark's JSON reader drops the empty key "": a copy keeps its values.
            path = dedupe_json_keys(path, staging, index)
            inspection = inspect_file(path, obj.file_format, None)
        try:
            return spark_safe_path(path, staging, index), inspection, landed
        except OSError as exc:
            raise UnreadableFile(f"could not stage a copy Spark can read by name: {exc}",
                                 transient=True) from exc

    def _look_remotely(self, obj: LandedObject) -> tuple[str, FileInspection]:
        """Where Spark reads the object itself, and what its first bytes (a Parquet file: its
        footer) tell; the rest of the bytes never pass this process."""
        if obj.file_format == "parquet":
            tail = self.landing.read_range(obj, -PARQUET_TAIL_BYTES, PARQUET_TAIL_BYTES)
            inspection = inspect_parquet_tail(tail, obj.size)
        elif obj.size <= HEAD_BYTES:  # the head is the whole file: check it all
            inspection = inspect_bytes(self.landing.read_range(obj, 0, HEAD_BYTES),
                                       obj.file_format, obj.compression)
        else:
            inspection = inspect_text_head(self.landing.read_range(obj, 0, HEAD_BYTES),
                                           obj.file_format, obj.compression)
        return self.landing.spark_location(obj), inspection


@dataclass
class _Written:
    """What reading and committing the ready files gave: the commit (None when no file had
    readable rows), the files whose rows it holds, the files that failed on the way."""

    commit: Commit | None = None
    ready: list[BatchFile] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)
    new_columns: dict[str, str] = field(default_factory=dict)
    columns_missing: list[str] = field(default_factory=list)


# One thread hashes staged files while Spark writes (hashlib releases the GIL on big buffers).
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="content-hash")


def _hash_or_none(landing: LandingZone, obj: LandedObject, path: Path) -> str | None:
    """The content hash of a staged file; None (unknown) if it cannot be read any more."""
    try:
        return landing.content_hash(obj, path)
    except OSError:
        return None


def _foreign(spec: SourceSpec, inspection: FileInspection) -> str | None:
    """Why a file whose first record shares no identifying column with the source (its key and
    event-time columns, the columns its rows require) is not one of its files, or None. A
    headerless CSV is one such file: its first record would become the header, its values
    column names, and every row null. Unknown columns (a broken first JSON line) pass."""
    columns = {sanitize_column_name(c) for c in inspection.columns()}
    identifying = dict.fromkeys([*spec.key_columns, spec.event_time_column,
                                 *spec.quality.required])
    if not columns or columns & set(identifying):
        return None
    found = ", ".join(sorted(columns)[:8]) + (", …" if len(columns) > 8 else "")
    headerless = (" (a CSV without a header line? its first line reads as data)"
                  if inspection.file_format == "csv" else "")
    return (f"shares no column with {spec.name}: expected at least one of "
            f"{', '.join(identifying)}; found {found}{headerless}. Nothing was added to the "
            f"table; add the header, or land the file under its own source's prefix")


def _frozen_out(spec: SourceSpec, new_column_files: dict[str, list[str]]) -> dict[str, str]:
    """Why each file with columns the table does not have fails under ``SchemaContract.FREEZE``
    (by URI)."""
    columns: dict[str, list[str]] = {}
    for column, uris in new_column_files.items():
        for uri in dict.fromkeys(uris):
            columns.setdefault(uri, []).append(column)
    variable = f"MANUFACTURING_SCHEMA_{spec.name.upper()}"
    return {uri: (f"has columns {spec.table_name} does not have: {', '.join(names)} (schema "
                  f"contract: freeze); nothing of the file was written. Fix the export, or set "
                  f"{variable}=evolve (or rescue) and reprocess the partition")
            for uri, names in columns.items()}


def _held_until(state: FileState) -> datetime | None:
    """When a failed file may be read again (None: now). Permanent failures wait for new bytes
    (a new ETag is another file state); archived objects are tried once a day; a transient
    failure is retried at once ``RETRIES_AT_ONCE`` times, then after 15 min, 30 min, … 6 h."""
    kind = FailureKind.of(state.note)
    if kind is FailureKind.PERMANENT:
        return datetime.max.replace(tzinfo=UTC)
    last = state.recorded_at or datetime.now(UTC)
    if kind is FailureKind.ARCHIVED:
        until = last + ARCHIVED_RETRY
    elif state.attempts < RETRIES_AT_ONCE:
        return None
    else:
        until = last + timedelta(seconds=RETRY_BACKOFF.delay(state.attempts - RETRIES_AT_ONCE + 1))
    return until if until > datetime.now(UTC) else None


def _committed_by_key(states: dict[tuple[str, str], FileState]
                      ) -> dict[str, list[FileState]]:
    """The committed versions of each object key (bronze holds their rows), oldest first: one,
    unless ``Corrections.APPEND`` (or ``ignore``, with 0 rows) kept more."""
    current: dict[str, list[FileState]] = {}
    for state in states.values():
        if state.status is FileStatus.COMMITTED:
            current.setdefault(state.object_key, []).append(state)
    oldest = datetime.min.replace(tzinfo=UTC)
    return {key: sorted(versions, key=lambda v: v.recorded_at or oldest)
            for key, versions in current.items()}


def _describe(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]}…{keys[-1]} ({len(keys)} partitions)"
