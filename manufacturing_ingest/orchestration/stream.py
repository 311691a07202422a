"""The streaming pattern: files committed to bronze seconds after they land, by one warm process.

``manufacturing-ingest stream`` (and the ``bronze_stream`` job, which runs the same loop from the
UI) keeps one Spark session and, every ``poll_seconds``, per source:

1. **finds** what landed: a listing of the recent date prefixes (the landing sensor's own
   ``scan``: fingerprints, high-water mark, the source's lookback), or, when the source has an
   SQS queue, the queue. At start it lists once whatever the mode and drops what the file ledger
   already has committed, so files that landed while the stream was down, or that a killed
   stream had taken from the queue, are found again;
2. **commits** the oldest ``max_files`` of them (back-pressure: a burst of 10,000 files is taken
   a bounded batch at a time, so the work per micro-batch, and Spark's memory, does not grow
   with the burst) through the same ``BronzeIngestor`` and claim/commit protocol as a run: a
   stream, the landing sensor's runs and a backfill can work on one partition at once and each
   file still lands once (the loser of a race replans and skips what the winner committed). A
   file that fails is retried after ``retry_seconds``; one the ledger holds (it failed in a way
   reading it again cannot fix) is left to the landing sensor's runs, as a held file is;
3. **reports** to the Dagster instance, as runs would: a materialization of each bronze
   partition the micro-batch wrote (records, files, landing-to-commit latency, the delta
   version), an observation of ``raw/<source>`` for what landed, and a ``schema_drift`` warning
   at once when a commit added columns;
4. every ``check_window_seconds``, **checks** each partition the window committed to, in one
   ``quality`` evaluation of every commit to it since the stream's last check of it (the same
   rules and thresholds as a run's check; the rows are those stamped by those commits, so a
   busy stream does not turn each micro-batch into a check run). Where that check stopped is
   kept in the instance's key-value store, saved before the first commit to a partition, so a
   restarted stream also checks what a killed one committed and never checked.

A round that raises (a dropped connection, a throttled bucket) is tried again after a pause that
doubles, up to ``MAX_FAILURES`` in a row; then the stream stops with the error (the service
restarts it; a ``bronze_stream`` run fails, which alerts).

SIGTERM or Ctrl-C finishes the micro-batch under way, checks the open window and exits 0.
SIGKILL at any point loses and doubles nothing: the protocol settles the dead micro-batch's
claim when the next writer (the restarted stream, or any run) plans.

The stream takes no concurrency-pool slot: it would hold the table's slot for as long as it
runs and leave every backfill queued behind it. The protocol keeps the writes exactly once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.engine import delta
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.ledger import FileStatus, file_states, read_events
from manufacturing_ingest.engine.report import IngestReport, Outcome
from manufacturing_ingest.landing import LandedObject, LandingZone, partition_key_of
from manufacturing_ingest.landing.notifications import find_notified
from manufacturing_ingest.landing.scan import LandingCursor, find_listed
from manufacturing_ingest.orchestration.assets import landed_observation
from manufacturing_ingest.orchestration.bronze import report_metadata
from manufacturing_ingest.orchestration.checks import drift_evaluations, quality_evaluations
from manufacturing_ingest.orchestration.dagster_internals import report_asset_event
from manufacturing_ingest.orchestration.names import STREAM_RUN_PREFIX, bronze_asset_key
from manufacturing_ingest.printable import printable
from manufacturing_ingest.quality.drift import schema_drift
from manufacturing_ingest.quality.evaluate import CommittedBatch, evaluate_batch
from manufacturing_ingest.settings import ReadMode

log = logging.getLogger("manufacturing_ingest.stream")

__all__ = ["BronzeStream", "MicroBatch", "StreamOptions", "stop_on_signals"]

# Rounds of one source that may raise in a row (a dropped connection, a throttled bucket, a
# table busy past the protocol's replanning) before the stream stops with the error; the pause
# between them doubles, from 2 s to a minute.
MAX_FAILURES = 8

AssetEvent = dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckEvaluation


@dataclass(frozen=True)
class StreamOptions:
    """How the stream paces itself (``manufacturing-ingest stream --help`` says each)."""

    poll_seconds: float = 1.0
    max_files: int = 500  # per micro-batch and source
    check_window_seconds: float = 60.0
    retry_seconds: float = 60.0

    def __post_init__(self):
        if self.poll_seconds <= 0 or self.check_window_seconds < 0 or self.retry_seconds < 0:
            raise ValueError("poll_seconds must be above 0; the window and retry, 0 or more")
        if self.max_files < 1:
            raise ValueError("max_files must be 1 or more")


@dataclass(frozen=True)
class MicroBatch:
    """What one micro-batch of one source did."""

    source: str
    number: int
    files: int  # files handed to the ingestor
    report: IngestReport

    def summary(self) -> str:
        r = self.report
        parts = ", ".join(f"{k}: {n}" for k, n in r.records_by_partition().items()) or "no rows"
        latency = (f"; landing to commit {r.landing_to_commit_seconds_max:.1f} s at most"
                   if r.landing_to_commit_seconds_max is not None else "")
        version = f" (delta version {r.delta_version})" if r.delta_version is not None else ""
        return (f"{self.source} micro-batch {self.number}: {r.files_processed} of {self.files} "
                f"files committed, {r.records} rows ({parts}){version}"
                + (f", {r.files_skipped} already in" if r.files_skipped else "")
                + (f", {r.files_failed} failed" if r.files_failed else "")
                + f" in {r.seconds:.1f} s{latency}")


@dataclass
class _Window:
    """The partitions the stream committed to since their last check, and when the first of
    those commits was."""

    opened: float | None = None
    partitions: set[str] = field(default_factory=set)
    drifted: set[str] = field(default_factory=set)

    def add(self, report: IngestReport, now: float) -> None:
        committed = {key for key, rows in report.records_by_partition().items() if rows}
        if report.delta_version is None or not committed:
            return
        self.partitions |= committed
        if self.opened is None:
            self.opened = now


class _SourceStream:
    """One source: its listing cursor, the files found and not yet taken, their retry times,
    and the open check window."""

    def __init__(self, stream: BronzeStream, spec: SourceSpec, queue_url: str | None):
        self.stream = stream
        self.spec = spec
        self.queue_url = queue_url
        self.cursor = LandingCursor()
        self.listed_once = False
        self.pending: dict[tuple[str, str], LandedObject] = {}  # (key, etag) -> object
        self.retry_at: dict[tuple[str, str], float] = {}
        self.window = _Window()
        self.batches = 0
        self.failures = 0  # consecutive rounds that raised
        self.windows = 0  # window checks so far
        self.partitions = spec.partitions.dagster_partitions()
        self.ingestor = BronzeIngestor(stream.session, spec, stream.zone, stream.lakehouse,
                                       progress=_quiet, read_mode=stream.read_mode)
        self.checked = _CheckedThrough(stream.store, spec, stream.session, self.ingestor.table)

    def find(self) -> None:
        """Add what landed since the last look to ``pending``."""
        now = datetime.now(UTC)
        if self.queue_url and self.listed_once:
            found = find_notified(self.spec, self.stream.zone, self.queue_url, self.cursor, now,
                                  budget_seconds=1.0, visibility_seconds=60)
        else:
            found = find_listed(self.spec, self.stream.zone, self.cursor, now)
        self.cursor = found.cursor
        new = [o for o in found.new_objects if self._in_partitions(o)]
        if not self.listed_once:
            self.listed_once = True
            self._owed({partition_key_of(self.spec, o) for o in new})
            new = self._not_committed(new)
        for obj in new:
            self.pending[(obj.key, obj.etag)] = obj
        if new:
            by_partition = {partition_key_of(self.spec, o) for o in new}
            self.stream.report(landed_observation(
                self.spec, len(new), sum(o.size for o in new), by_partition,
                f"{self.spec.landing_prefix}/ (seen by the stream)"))

    def _owed(self, partitions: set[str]) -> None:
        """At start: the partitions an earlier stream wrote to go into the first window, so
        what it committed and did not live to check is checked even if this stream commits
        nothing there (a check finds nothing to do where every commit was checked)."""
        owed = {key for key in partitions if self.checked.saved(key) is not None}
        if owed:
            self.window.partitions |= owed
            self.window.opened = self.window.opened or time.monotonic()

    def _in_partitions(self, obj: LandedObject) -> bool:
        key = partition_key_of(self.spec, obj)
        if self.partitions.has_partition_key(key):
            return True
        log.warning("%s: %s belongs to partition %s, which %s does not have: %s",
                    self.spec.name, printable(obj.uri), key, self.spec.table_name,
                    self.spec.partitions.outside_why(key))
        return False

    def _not_committed(self, objects: list[LandedObject]) -> list[LandedObject]:
        """``objects`` less those the ledger has committed (the first listing after a start)."""
        keys = sorted({partition_key_of(self.spec, o) for o in objects})
        if not keys:
            return []
        states = file_states(read_events(self.stream.lakehouse.ledger_path, self.spec.name, keys))
        committed = {ident for ident, state in states.items()
                     if state.status is FileStatus.COMMITTED}
        return [o for o in objects if (o.key, o.etag) not in committed]

    def take(self, now: float) -> list[LandedObject]:
        """The oldest ``max_files`` pending objects whose retry time has come."""
        ready = [o for ident, o in self.pending.items() if self.retry_at.get(ident, 0.0) <= now]
        ready.sort(key=lambda o: (o.last_modified, o.key))
        return ready[: self.stream.options.max_files]

    def commit(self, objects: list[LandedObject]) -> MicroBatch:
        """One micro-batch: ``objects`` through the claim/commit protocol, then its events."""
        self.batches += 1
        keys = sorted({partition_key_of(self.spec, o) for o in objects})
        self.checked.before_commit(keys)
        report = self.ingestor.ingest(keys, run_id=uuid.uuid4().hex, objects=objects)
        now = time.monotonic()
        by_uri = {o.uri: (o.key, o.etag) for o in objects}
        for outcome in report.outcomes:
            ident = by_uri.pop(outcome.uri, None)
            if ident is None:
                continue
            if outcome.status is Outcome.FAILED:
                self.retry_at[ident] = now + self.stream.options.retry_seconds
                continue
            # Committed now, or by another writer, or never data; or held by the ledger (it
            # failed before in a way reading again cannot fix: a new upload is a new object,
            # and the landing sensor's runs retry the rest when the hold ends).
            self.pending.pop(ident, None)
            self.retry_at.pop(ident, None)
            if outcome.status is Outcome.HELD:
                log.warning("%s: %s is held (%s); the stream leaves it to the landing "
                            "sensor's runs", self.spec.name, printable(outcome.uri),
                            printable(outcome.note or ""))
        for uri, ident in by_uri.items():  # not in the report: never read, so never dropped
            log.warning("%s: %s was not in the micro-batch's report; retried in %.0f s",
                        self.spec.name, printable(uri), self.stream.options.retry_seconds)
            self.retry_at[ident] = now + self.stream.options.retry_seconds
        for failure in report.failures:
            log.warning("%s: file not ingested, retried in %.0f s: %s: %s", self.spec.name,
                        self.stream.options.retry_seconds, printable(failure.uri),
                        printable(failure.error or ""))
        batch = MicroBatch(self.spec.name, self.batches, len(objects), report)
        self._report(batch)
        self.window.add(report, now)
        return batch

    def _report(self, batch: MicroBatch) -> None:
        report = batch.report
        touched = sorted({o.partition_key for o in report.outcomes
                          if o.status in (Outcome.COMMITTED, Outcome.FAILED)})
        if not touched:
            return  # every file was committed by another writer, or is held
        metadata = {**report_metadata(report), "stream": self.stream.run_id,
                    "micro_batch": batch.number}
        for key in touched:
            self.stream.report(dg.AssetMaterialization(
                asset_key=bronze_asset_key(self.spec), partition=key, metadata=metadata,
                description=f"micro-batch {batch.number} of stream {self.stream.run_id}"))
        drift = schema_drift(self.stream.session, report)
        if drift is not None:
            committed = set(report.records_by_partition())
            self.window.drifted |= committed
            for evaluation in drift_evaluations(self.spec, sorted(committed), drift, committed):
                self.stream.report(evaluation)

    def check_due(self, now: float) -> bool:
        opened = self.window.opened
        return opened is not None and now - opened >= self.stream.options.check_window_seconds

    def check(self) -> None:
        """The ``quality`` check of the partitions the window committed to: every commit to
        each since its last check (``_CheckedThrough``: the stream's own, a killed stream's, a
        run's), in one evaluation; and ``schema_drift`` passed where no commit of the window
        added columns."""
        window, self.window = self.window, _Window()
        if not window.partitions:
            return
        started = time.monotonic()
        # Each window check under an id of its own: Dagster keeps one check execution per run
        # id and partition, so a later window's pass under the stream's id would overwrite a
        # failure before the alert sensor read it.
        self.windows += 1
        base = self.stream.run_id
        check_run = (f"{base if base.startswith(STREAM_RUN_PREFIX) else STREAM_RUN_PREFIX + base}"
                     f"-check-{self.windows}")
        groups: dict[int, list[str]] = {}
        for key in sorted(window.partitions):
            groups.setdefault(self.checked.get(key), []).append(key)
        rows = 0
        judged: list[str] = []
        for since, keys in sorted(groups.items()):
            commits = _stamped_commits(self.stream.session, self.ingestor.table, since)
            if not commits:
                continue
            judged += keys
            (last_version, last_stamp), earlier = commits[-1], tuple(commits[:-1])
            batch = CommittedBatch(self.ingestor.table, last_version, last_stamp, tuple(keys),
                                   earlier=earlier)
            results = evaluate_batch(self.stream.session, self.spec, batch)
            for evaluation in quality_evaluations(self.spec, keys, results):
                report_asset_event(self.stream.instance, evaluation, check_run)
            rows += sum(r.rows_checked for r in results.values())
            self.checked.mark(keys, last_version)
        if not judged:
            return
        calm = [k for k in sorted(judged) if k not in window.drifted]
        for evaluation in drift_evaluations(self.spec, calm, None, set()):
            report_asset_event(self.stream.instance, evaluation, check_run)
        log.info("%s: quality check of %d rows (%s) took %.1f s", self.spec.name, rows,
                 ", ".join(sorted(judged)), time.monotonic() - started)


class _CheckedThrough:
    """Per partition of one source, the table version through which the stream's checks have
    judged every commit, in the Dagster instance's key-value store, so a restarted stream
    checks what a killed one committed and never checked.

    A partition the stream has never checked gets the table's version before the stream's first
    commit to it, saved before that commit: the check after it judges every commit since, the
    runs' and backfills' too (re-judging a run's already-checked batch costs a little work, and
    says nothing wrong).
    """

    def __init__(self, store, spec: SourceSpec, session, table):
        self.store = store
        self.spec = spec
        self.session = session
        self.table = table
        self.known: dict[str, int] = {}

    def _key(self, partition: str) -> str:
        return f"manufacturing_ingest/stream/{self.spec.name}/checked_through/{partition}"

    def saved(self, partition: str) -> int | None:
        """The partition's saved version; None when no stream has committed to it."""
        if partition not in self.known:
            key = self._key(partition)
            saved = self.store.get_cursor_values({key}).get(key)
            if saved is None:
                return None
            self.known[partition] = int(saved)
        return self.known[partition]

    def get(self, partition: str) -> int:
        found = self.saved(partition)
        if found is None:
            found = delta.table_version(self.session, self.table)
            self.mark([partition], found)
        return found

    def before_commit(self, partitions: list[str]) -> None:
        for partition in partitions:
            self.get(partition)

    def mark(self, partitions: list[str], version: int) -> None:
        self.store.set_cursor_values({self._key(p): str(version) for p in partitions})
        self.known.update(dict.fromkeys(partitions, version))


def _stamped_commits(session, table, since: int) -> list[tuple[int, datetime]]:
    """(version, ``_ingested_at`` stamp) of the engine's commits after version ``since``,
    oldest first (a commit of anything else, such as OPTIMIZE, adds no rows)."""
    found = []
    for commit in delta.commits_after(session, table, since):
        stamp = (commit["userMetadata"] or {}).get("ingested_at")
        if stamp:
            found.append((int(commit["version"]), datetime.fromisoformat(stamp)))
    return sorted(found)


def _quiet(_event) -> None:
    """The engine's per-phase progress: the stream logs one line per micro-batch instead."""


class BronzeStream:
    """The loop over ``specs``: find, commit, report, check, until ``stop`` is set."""

    def __init__(self, session, specs: Sequence[SourceSpec], zone: LandingZone,
                 lakehouse: Lakehouse, read_mode: ReadMode, queue_urls: dict[str, str],
                 instance: dg.DagsterInstance, options: StreamOptions | None = None,
                 stop: threading.Event | None = None, run_id: str | None = None,
                 on_batch: Callable[[MicroBatch], None] | None = None):
        if read_mode is ReadMode.AUTOLOADER:
            # Auto Loader is a stream of its own (run by the bronze asset on Databricks).
            read_mode = ReadMode.DIRECT
        self.session = session
        self.zone = zone
        self.lakehouse = lakehouse
        self.read_mode = read_mode
        # Every event of the stream under one run id: the ``bronze_stream`` run's own, else
        # ``stream-<id>`` (no run of that id exists; see ``report_asset_event``). The check
        # watermarks go into the instance's key-value store.
        self.run_id = run_id or f"{STREAM_RUN_PREFIX}{uuid.uuid4().hex[:12]}"
        self.report: Callable[[AssetEvent], None] = (
            lambda event: report_asset_event(instance, event, self.run_id))
        self.store = instance.run_storage
        self.instance = instance
        self.options = options or StreamOptions()
        self.stop = stop or threading.Event()
        self.on_batch = on_batch or (lambda batch: log.info("%s", batch.summary()))
        lakehouse.check_writable()
        zone.check_available()
        self.sources = [_SourceStream(self, spec, queue_urls.get(spec.name)) for spec in specs]
        self.micro_batches = 0
        self.files_committed = 0

    def run(self) -> None:
        """Until ``stop`` is set: each poll, every source finds and commits what landed."""
        names = ", ".join(s.spec.name for s in self.sources)
        log.info("stream %s: watching %s under %s every %.1f s, up to %d files per "
                 "micro-batch, checks every %.0f s", self.run_id, names, self.zone.root_uri,
                 self.options.poll_seconds, self.options.max_files,
                 self.options.check_window_seconds)
        try:
            while not self.stop.is_set():
                began = time.monotonic()
                busy = self.step()
                if not busy:
                    self.stop.wait(max(0.0, self.options.poll_seconds
                                       - (time.monotonic() - began)))
        finally:
            for source in self.sources:
                source.check()  # the open window, before the process goes
        log.info("stream %s: stopped after %d micro-batch(es), %d file(s) committed",
                 self.run_id, self.micro_batches, self.files_committed)

    def step(self) -> bool:
        """One round over the sources; True when a source left files pending (a burst), so
        the next round starts at once."""
        busy = False
        for source in self.sources:
            if self.stop.is_set():
                break
            try:
                busy = self._step(source) or busy
                source.failures = 0
            except Exception as exc:  # noqa: BLE001 - retried, then raised (below)
                source.failures += 1
                if source.failures >= MAX_FAILURES:
                    raise
                pause = min(60.0, 2.0 ** source.failures)
                log.warning("%s: %s: %s (%d in a row, stopping at %d); next try in %.0f s",
                            source.spec.name, type(exc).__name__, printable(str(exc))[:500],
                            source.failures, MAX_FAILURES, pause)
                self.stop.wait(pause)
        return busy

    def _step(self, source: _SourceStream) -> bool:
        source.find()
        busy = False
        objects = source.take(time.monotonic())
        if objects:
            batch = source.commit(objects)
            self.micro_batches += 1
            self.files_committed += batch.report.files_processed
            self.on_batch(batch)
            busy = len(source.take(time.monotonic())) > 0
        if source.check_due(time.monotonic()):
            source.check()
        return busy


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the micro-batch under way finishes) instead of
    interrupting; a second one interrupts at once. Only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("%s: stopping after the micro-batch under way",
                    signal.Signals(signum).name)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
