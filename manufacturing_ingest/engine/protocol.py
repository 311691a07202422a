"""The claim/commit protocol that makes every bronze write exactly once.

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
5. Record the files that carry no rows (unreadable: ``failed``, retried next run; empty:
   ``committed`` with 0 rows), and settle the claims of dead runs that now sit below the table's
   version.

A process killed anywhere leaves at most a pending claim, which step 2 settles on the next run.

A new version of a committed file (same key, other ETag) is told apart by its content
(``content_hash``): the same bytes record it as standing for the old version's rows and write
nothing (``record_versions``); other bytes follow the source's ``Corrections``: ``replace``
writes its rows and deletes the old version's in the same Delta commit (``replaceWhere`` on the
old version's file and partition) and records the old version ``superseded``; ``append`` adds
them; ``ignore`` records it and writes nothing.

This module is the only writer of the ledger: every ``claimed``, ``committed``, ``failed``,
``abandoned`` and ``superseded`` event is recorded here, by ``CommitProtocol`` (steps 1 to 5, for
the portable engine) or ``record_stream_commit`` (a writer with exactly-once of its own: Auto
Loader).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from manufacturing_ingest.catalog import INGESTED_AT_COLUMN, SOURCE_FILE_COLUMN, SourceSpec
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.accounting import count_rows, rows_from_inspection
from manufacturing_ingest.engine.delta import TableRef
from manufacturing_ingest.engine.ledger import (
    ClaimOutcome,
    EventKind,
    FileLedger,
    FileState,
    LedgerEvent,
    claims_of,
    file_states,
)
from manufacturing_ingest.engine.progress import Phase, Progress, ProgressEvent, human_size
from manufacturing_ingest.engine.read import BatchFile, BatchFrame, FailedFile
from manufacturing_ingest.engine.report import IngestMode
from manufacturing_ingest.errors import StorageFull
from manufacturing_ingest.landing import LandedObject

UNSTABLE = ("changed while Spark read it (still being written?); its rows were taken out "
            "again and it is read on a later run")


@dataclass(frozen=True)
class TableState:
    """The bronze table's version and this source's last idempotent-write version (-1: none)."""

    version: int
    txn: int


@dataclass(frozen=True)
class Plan:
    """What one attempt plans on (steps 1 and 2): the table's state, read before the ledger,
    and the ledger's events for the partitions, settled claims included."""

    partition_keys: list[str]
    state: TableState
    events: list[LedgerEvent]

    def files(self) -> dict[tuple[str, str], FileState]:
        """Where each (object key, ETag) of the partitions stands."""
        return file_states(self.events)


@dataclass(frozen=True)
class Batch:
    """Files read into one frame, ready to be claimed and written as one commit."""

    files: list[BatchFile]
    frame: BatchFrame
    ingested_at: datetime
    mode: IngestMode
    replace_where: str | None = None  # the partition predicate of a reprocess


@dataclass(frozen=True)
class Commit:
    """A batch that reached bronze."""

    claim_id: str
    batch_version: int
    version: int
    rows: dict[str, int]  # rows per file URI
    write_seconds: float
    # Files that changed while they were written: their rows were deleted again (see commit).
    unstable: list[FailedFile] = field(default_factory=list)


@dataclass(frozen=True)
class Version:
    """A new version of a committed file (same key, another ETag) that writes nothing: its
    ``content_hash``, and the committed version it was compared with (``prior``)."""

    obj: LandedObject
    partition_key: str
    prior: FileState
    content_hash: str


class WriteFailed(Exception):
    """The Delta write failed for a reason other than a lost race; the claim is abandoned."""


class CommitProtocol:
    """Claims, writes and settles batches of one source's bronze table."""

    def __init__(self, spark: SparkSession, spec: SourceSpec, table: TableRef,
                 ledger: FileLedger, progress: Progress,
                 stable: Callable[[LandedObject], bool] = lambda obj: True):
        self.spark = spark
        self.spec = spec
        self.table = table
        self.ledger = ledger
        self.progress = progress
        self.stable = stable  # whether an object still has the identity it was listed with
        # A batch version Delta is known to hold for this source although neither the history
        # nor the ledger shows it: learnt when Delta skipped a write as a replay.
        self._txn_floor = -1

    def _emit(self, phase: Phase, **figures) -> None:
        self.progress(ProgressEvent(self.spec.name, phase, figures))

    def table_state(self) -> TableState:
        """Step 1; read it *before* the ledger.

        Delta keeps a source's idempotent-write version for good, but the history that shows it
        expires (log retention, 30 days by default). A table whose history shows no batch of
        this engine takes the ledger's last committed batch instead, and, should Delta then
        skip a write as a replay, the version learnt from that (see ``commit``).
        """
        version, txn = delta.table_state(self.spark, self.table)
        if version >= 0 and txn < 0:
            txn = self.ledger.last_committed_batch(self.spec.name)
        return TableState(version, max(txn, self._txn_floor))

    def plan(self, partition_keys: list[str], run_id: str) -> Plan:
        """Steps 1 and 2 for ``partition_keys``: the table's state, then the ledger, settled."""
        state = self.table_state()
        events = self.ledger.events(self.spec.name, partition_keys)
        events += self.settle(events, state.txn, run_id)
        return Plan(list(partition_keys), state, events)

    def settle(self, events: list[LedgerEvent], txn: int, run_id: str) -> list[LedgerEvent]:
        """Step 2: decide the claims that can no longer change (version <= txn), record them."""
        open_claims = [
            claim for claim, outcome in claims_of(events).values()
            if outcome is ClaimOutcome.PENDING and claim.batch_version <= txn
        ]
        if not open_claims:
            return []
        oldest = min(c.base_version for c in open_claims)
        commits = {c["userMetadata"].get("claim_id"): c
                   for c in delta.commits_after(self.spark, self.table, oldest)}
        claimed = {e.ident: e for e in events if e.event is EventKind.CLAIMED}
        now = datetime.now(UTC)
        settled: list[LedgerEvent] = []
        for claim in open_claims:
            commit = commits.get(claim.claim_id)
            files = [claimed[ident] for ident in claim.files]
            if commit is None:
                self._emit(Phase.CLAIM_ABANDONED, claim_id=claim.claim_id, files=len(files))
                settled += [e.but(event=EventKind.ABANDONED, run_id=run_id, rows=None,
                                  table_version=None, recorded_at=now) for e in files]
                continue
            self._emit(Phase.CLAIM_RECOVERED, claim_id=claim.claim_id,
                       version=commit["version"])
            stamp = commit["userMetadata"].get("ingested_at")
            rows = count_rows(self.spark, self.table, [e.object_uri for e in files],
                              commit["version"], datetime.fromisoformat(stamp) if stamp else None)
            settled += [e.but(event=EventKind.COMMITTED, run_id=run_id,
                              rows=rows.get(e.object_uri, 0), table_version=commit["version"],
                              recorded_at=now) for e in files]
            settled += [s for e in files
                        for s in _superseded(e, commit["version"], run_id, now)]
        self.ledger.append(settled)
        return settled

    def commit(self, batch: Batch, plan: Plan, run_id: str) -> Commit | None:
        """Steps 3 and 4; None when another run won the version (plan again)."""
        spec = self.spec
        state = plan.state
        batch_version = state.txn + 1
        claim_id = f"{run_id}:{uuid.uuid4().hex[:12]}"
        claim_fields = {"claim_id": claim_id, "batch_version": batch_version}
        self.ledger.append([
            self._file_event(EventKind.CLAIMED, f, run_id, base_version=state.version,
                             mode=batch.mode.value,
                             supersedes=f.superseded_etags, **claim_fields)
            for f in batch.files
        ])
        metadata = {
            "claim_id": claim_id,
            "source": spec.name,
            "mode": batch.mode.value,
            "batch_version": batch_version,
            "files": len(batch.files),
            "added_columns": batch.frame.new_columns,
            "ingested_at": batch.ingested_at.isoformat(),
        }
        self._emit(Phase.CLAIMED, batch_version=batch_version, files=len(batch.files),
                   size=human_size(sum(f.obj.size for f in batch.files)), table=str(self.table))
        writer = (
            batch.frame.df.write.format("delta")
            .option("mergeSchema", "true")
            .option("txnAppId", spec.ledger_app_id)
            .option("txnVersion", str(batch_version))
            .option("userMetadata", json.dumps(metadata, sort_keys=True, default=str))
            .partitionBy(spec.partition_column)
        )
        if state.version < 0:
            # Table properties can only ride on the write that creates the table.
            properties = {"delta.dataSkippingStatsColumns": ",".join(stats_columns(spec))}
            writer = writer.options(**properties)
            delta.create_named_table(batch.frame.df, self.table, spec.partition_column,
                                     properties)
        replaced = [v for f in batch.files for v in f.supersedes]
        if batch.replace_where:
            writer = writer.mode("overwrite").option("replaceWhere", batch.replace_where)
        elif replaced and state.version >= 0:
            # One commit deletes the old versions' rows and adds the batch; the batch's other
            # files' rows do not match the predicate, which Delta checks unless told not to.
            writer = (writer.mode("overwrite")
                      .option("replaceWhere", self._rows_of(replaced)))
        else:
            writer = writer.mode("append")
        write_started = time.monotonic()
        try:
            with _replace_where_unchecked(self.spark, bool(replaced and not batch.replace_where)):
                delta.save_table(writer, self.table)
        except Exception as exc:  # noqa: BLE001 - Delta's conflicts arrive as Py4J/Spark errors
            if delta.is_storage_full(exc):
                raise self._storage_full(batch, run_id, claim_fields) from None
            if not delta.is_write_conflict(exc):
                self._abandon(batch, run_id, claim_fields)
                raise WriteFailed(str(exc)) from exc
            self._emit(Phase.WRITE_CONFLICT, batch_version=batch_version,
                       error=type(exc).__name__)
        write_seconds = time.monotonic() - write_started
        after = delta.commits_after(self.spark, self.table, state.version)
        ours = [c for c in after if c["userMetadata"].get("claim_id") == claim_id]
        if not ours:
            if not after:
                # Nothing at all was committed: Delta skipped the write as a replay, so it holds
                # this batch version already (from history older than the log retention).
                self._txn_floor = batch_version
            self._abandon(batch, run_id, claim_fields)
            return None
        version = int(ours[0]["version"])
        self._emit(Phase.COMMITTED, version=version, batch_version=batch_version)
        unstable = [f for f in batch.files if not self.stable(f.obj)]
        files = [f for f in batch.files if f not in unstable]
        if unstable:
            # Appended to while Spark read it: its rows belong to no one identity of the file.
            # Take them out again (a second commit); the file fails and a later run reads it.
            uris = ", ".join(delta.sql_string(f.obj.uri) for f in unstable)
            stamp = delta.sql_string(batch.ingested_at.isoformat())
            # Idempotent, so a loss to a concurrent commit (a compaction of this partition)
            # is simply run again.
            delta.append_with_retry(lambda: self.spark.sql(
                f"DELETE FROM {delta.table_ref(self.table)} "
                f"WHERE `{SOURCE_FILE_COLUMN}` IN ({uris}) "
                f"AND `{INGESTED_AT_COLUMN}` = TIMESTAMP {stamp}"))
        rows = None if unstable else rows_from_inspection(files, ours[0])
        if rows is None:
            rows = count_rows(self.spark, self.table, [f.obj.uri for f in files],
                              version, batch.ingested_at)
        now = datetime.now(UTC)
        committed = [
            self._file_event(EventKind.COMMITTED, f, run_id, rows=rows.get(f.obj.uri, 0),
                             table_version=version, supersedes=f.superseded_etags,
                             **claim_fields)
            for f in files
        ]
        # Every replaced version's rows went in this commit, an unstable file's too (its new
        # version fails, and is read again as a file of its own).
        self.ledger.append(committed + [
            s for f in batch.files
            for s in _superseded(self._file_event(EventKind.COMMITTED, f, run_id,
                                                  supersedes=f.superseded_etags),
                                 version, run_id, now, versions=f.supersedes)])
        self._emit(Phase.LEDGER_UPDATED, batch_version=batch_version)
        return Commit(claim_id, batch_version, version, rows, write_seconds,
                      unstable=[FailedFile(f.obj, f.partition_key, UNSTABLE) for f in unstable])

    def close(self, plan: Plan, commit: Commit | None, failed: list[FailedFile],
              empty: list[BatchFile], run_id: str) -> None:
        """Step 5: record the files without rows (``failed``: unreadable, retried next run;
        ``empty``: committed with 0 rows; one that replaces a version deletes its rows first),
        then settle the claims left behind."""
        emptied = [v for f in empty for v in f.supersedes]
        version = None
        if emptied:
            delta.append_with_retry(lambda: self.spark.sql(
                f"DELETE FROM {delta.table_ref(self.table)} WHERE {self._rows_of(emptied)}"))
            version = delta.table_state(self.spark, self.table)[0]
        now = datetime.now(UTC)
        events = [self._file_event(EventKind.COMMITTED, f, run_id, rows=0,
                                   note=f.inspection.note, supersedes=f.superseded_etags)
                  for f in empty]
        self.ledger.append(
            [LedgerEvent.for_object(self.spec.name, EventKind.FAILED, f.obj, f.partition_key,
                                    run_id, error=f.error, note=f.kind.value) for f in failed]
            + events + [s for e, f in zip(events, empty, strict=True)
                        for s in _superseded(e, version, run_id, now, versions=f.supersedes)]
        )
        if commit is not None and any(
            outcome is ClaimOutcome.PENDING and claim.batch_version <= plan.state.txn + 1
            and claim.claim_id != commit.claim_id
            for claim, outcome in claims_of(plan.events).values()
        ):
            # A claim of a run that died before its commit now sits below the table's version:
            # settle it now rather than leave it pending until the next run.
            self.settle(self.ledger.events(self.spec.name, plan.partition_keys),
                        plan.state.txn + 1, run_id)

    def record_versions(self, same: list[Version], ignored: list[Version], run_id: str) -> None:
        """New versions that write nothing: ``same`` (the committed version's bytes under a new
        ETag) now stand for the old version's rows, which is recorded ``superseded``;
        ``ignored`` (other bytes, ``Corrections.IGNORE``) are recorded committed with 0 rows
        beside the old version, which keeps its rows."""
        now = datetime.now(UTC)
        events: list[LedgerEvent] = []
        for v in same:
            new = LedgerEvent.for_object(
                self.spec.name, EventKind.COMMITTED, v.obj, v.partition_key, run_id,
                rows=v.prior.rows, table_version=v.prior.table_version,
                content_hash=v.content_hash, supersedes=v.prior.etag,
                note=f"same content as ETag {v.prior.etag}: nothing written")
            events += [new, *_superseded(new, v.prior.table_version, run_id, now,
                                         note=f"same content now under ETag {v.obj.etag}",
                                         versions=(v.prior,))]
        events += [LedgerEvent.for_object(
            self.spec.name, EventKind.COMMITTED, v.obj, v.partition_key, run_id, rows=0,
            content_hash=v.content_hash,
            note=f"a new version of a committed file, not ingested (corrections: ignore); "
                 f"bronze keeps the rows of ETag {v.prior.etag}") for v in ignored]
        self.ledger.append(events)

    def _rows_of(self, versions: list[FileState]) -> str:
        """The predicate of the bronze rows of ``versions`` (their file, in their partition)."""
        parts = self.spec.partitions
        by_partition: dict[str, list[str]] = {}
        for v in versions:
            by_partition.setdefault(v.partition_key or "", []).append(v.object_uri or "")
        clauses = []
        for key, uris in sorted(by_partition.items()):
            files = (f"`{SOURCE_FILE_COLUMN}` IN "
                     f"({', '.join(delta.sql_string(u) for u in sorted(set(uris)))})")
            clauses.append(f"({parts.sql_literal(key)} AND {files})" if key else f"({files})")
        return " OR ".join(clauses)

    def _storage_full(self, batch: Batch, run_id: str, claim_fields: dict) -> StorageFull:
        """The error for a write the storage had no room for. The claim is abandoned if the
        ledger still has room; else it stays pending and the next run settles it (nothing was
        committed, so its files are read again). ``BronzeIngestor`` removes the files left."""
        try:
            self._abandon(batch, run_id, claim_fields)
        except Exception as exc:  # noqa: BLE001 - the ledger is most likely on the same disk
            if not delta.is_storage_full(exc):
                raise
        return StorageFull(f"no space left on the storage writing {self.table}")

    def _abandon(self, batch: Batch, run_id: str, claim_fields: dict) -> None:
        self.ledger.append([self._file_event(EventKind.ABANDONED, f, run_id, **claim_fields)
                            for f in batch.files])

    def _file_event(self, kind: EventKind, f: BatchFile, run_id: str, **fields) -> LedgerEvent:
        return LedgerEvent.for_object(self.spec.name, kind, f.obj, f.partition_key, run_id,
                                      content_hash=f.content_hash, **fields)


def _superseded(new: LedgerEvent, table_version: int | None, run_id: str, now: datetime,
                note: str | None = None, versions: tuple[FileState, ...] = ()
                ) -> list[LedgerEvent]:
    """The events that the versions ``new.supersedes`` names (same key; in their partitions
    when ``versions`` tells them, else the new version's) no longer stand in bronze."""
    if not new.supersedes:
        return []
    partitions = {v.etag: v.partition_key for v in versions}
    return [new.but(event=EventKind.SUPERSEDED, etag=etag, supersedes=None,
                    rows=0, table_version=table_version, run_id=run_id, recorded_at=now,
                    content_hash=None, size=None, last_modified=None,
                    partition_key=partitions.get(etag) or new.partition_key,
                    note=note or f"replaced by ETag {new.etag} in version {table_version}")
            for etag in new.supersedes.split(",")]


@contextmanager
def _replace_where_unchecked(spark: SparkSession, unchecked: bool) -> Iterator[None]:
    """With ``unchecked``, Delta's check that every written row matches ``replaceWhere`` is
    off for the block (a runtime SQL conf, restored after)."""
    if not unchecked:
        yield
        return
    name = "spark.databricks.delta.replaceWhere.constraintCheck.enabled"
    before = spark.conf.get(name, None)
    spark.conf.set(name, "false")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(name)
        else:
            spark.conf.set(name, before)


def record_stream_commit(ledger: FileLedger, events: list[LedgerEvent]) -> None:
    """Record files a writer with exactly-once of its own committed (Auto Loader: the stream's
    checkpoint and Delta's idempotent ``txnVersion``), so ``files``, the backlog check and the
    landing sensors see them as for the portable engine. Recording again is harmless: a
    committed file stays committed."""
    if any(e.event is not EventKind.COMMITTED for e in events):
        raise ValueError("a stream records only committed files")
    ledger.append(events)


def stats_columns(spec: SourceSpec) -> list[str]:
    """Columns Delta keeps min/max statistics for: the ones queries and this engine filter on.

    The partition column needs none: it is in the table's directory layout.

    Statistics on every column (Delta's default: the first 32) cost about a fifth of the write
    on wide text columns such as ``_source_file`` and skip nothing useful there.
    """
    return list(dict.fromkeys([*spec.key_columns, spec.event_time_column, INGESTED_AT_COLUMN]))
