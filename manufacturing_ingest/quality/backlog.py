"""Backlog: landed objects not yet committed to bronze, from the landing listing and the ledger.

The listing covers the last ``BACKLOG_WINDOW`` of date prefixes; older objects come from the
reconciliation sweep's findings (``landing/sweep.py``), so an object waits in the backlog
whatever its age until the ledger has it committed. An object under a date folder outside the
asset's partitions (before ``MANUFACTURING_PARTITIONS_START``, or in the future) can never be
ingested as it lies: it is counted apart (``outside``), and fails the check at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.engine.ledger import FileStatus, file_states, read_events
from manufacturing_ingest.landing import LandedObject, LandingZone, ignore_reason, partition_key_of
from manufacturing_ingest.landing.scan import list_recent

# How far back the listing looks; objects landed before it are not counted.
BACKLOG_WINDOW = timedelta(days=2)


@dataclass(frozen=True)
class Backlog:
    """Landed objects not yet in bronze, and how long the oldest of them has waited."""

    uncommitted: int
    failed: int
    oldest_age_seconds: float
    oldest_uri: str | None
    listed: int
    swept: int = 0  # of ``listed``: objects only the sweep's findings know of
    # uncommitted objects the last sweep counted beyond what it keeps (``MAX_FINDINGS``)
    not_kept: int = 0
    # objects of partitions the asset does not have (never ingested as they lie), and why
    outside: int = 0
    outside_example: str | None = None

    def exceeds(self, limit: timedelta) -> bool:
        return self.outside > 0 or self.oldest_age_seconds > limit.total_seconds()


def landing_backlog(spec: SourceSpec, zone: LandingZone, ledger_path: str,
                    now: datetime | None = None, window: timedelta = BACKLOG_WINDOW,
                    swept: Iterable[LandedObject] = (), not_kept: int = 0) -> Backlog:
    """Compare the landing listing of the last ``window``, plus the objects the sweep found
    not committed (``swept``), with the file ledger."""
    now = now or datetime.now(UTC)
    since = now - window
    _, landed = list_recent(spec, zone, since, now)
    recent = {o.fingerprint: o for o in landed.values()
              if not ignore_reason(o) and o.last_modified >= since}
    older = {o.fingerprint: o for o in swept if o.fingerprint not in recent}
    everything = [*recent.values(), *older.values()]
    have = spec.partitions.dagster_partitions()
    outside = [o for o in everything if not have.has_partition_key(partition_key_of(spec, o))]
    objects = [o for o in everything if o not in outside]
    partitions = sorted({partition_key_of(spec, o) for o in objects})
    states = file_states(read_events(ledger_path, spec.name, partitions)) if partitions else {}
    waiting = []
    failed = 0
    for obj in objects:
        state = states.get((obj.key, obj.etag))
        if state is None or state.status is not FileStatus.COMMITTED:
            waiting.append(obj)
            failed += bool(state and state.status is FileStatus.FAILED)
    oldest = min(waiting, key=lambda o: o.last_modified, default=None)
    return Backlog(
        uncommitted=len(waiting),
        failed=failed,
        oldest_age_seconds=(now - oldest.last_modified).total_seconds() if oldest else 0.0,
        oldest_uri=oldest.uri if oldest else None,
        listed=len(objects),
        swept=len(older),
        not_kept=not_kept,
        outside=len(outside),
        outside_example=_outside_example(spec, outside),
    )


def _outside_example(spec: SourceSpec, outside: list[LandedObject]) -> str | None:
    if not outside:
        return None
    first = min(outside, key=lambda o: o.key)
    return f"{first.uri} ({spec.partitions.outside_why(partition_key_of(spec, first))})"
