"""Find objects that landed since the last look, listing only the date prefixes that can hold them.

The cursor is a high-water mark (newest LastModified seen) plus fingerprints of the objects seen
within the source's ``sensor_lookback`` of it. Listing covers the day prefixes from
``high_water - lookback`` to now, so a tick costs LIST requests in proportion to recent objects,
not to the bucket. Because S3's LastModified has one-second resolution, objects are told apart
by fingerprint, not by time: several objects sharing a second are all found, an object already
seen is never reported again, a re-upload (new ETag) is new, a late object (old date prefix, or
LastModified behind the high-water mark) is found while it is within the lookback (older ones
by the reconciliation sweep, ``sweep.py``), and deleting objects changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.landing.base import (
    LandedObject,
    LandingZone,
    ignore_reason,
)
from manufacturing_ingest.landing.sweep import SweepProgress
from manufacturing_ingest.partitioning import DAILY

# How often a sensor also lists the year and month levels for objects under folders that are
# not a valid date (``2026/02/30/``, ``2026/13/``, ``2026/11/20.csv``): a few LISTs per year of
# history, so not on every tick.
MISFILED_SCAN_EVERY = timedelta(minutes=10)


@dataclass
class LandingCursor:
    high_water: datetime | None = None
    # fingerprint -> LastModified (epoch seconds) of objects seen within the lookback
    seen: dict[str, float] = field(default_factory=dict)
    # when the last scan for objects under invalid date folders ran
    misfiled_scan_at: datetime | None = None
    # where the reconciliation sweep of the whole prefix is (``sweep.py``)
    sweep: SweepProgress = field(default_factory=SweepProgress)
    # notification mode: receipt handles of the messages the next tick deletes (their run
    # requests are saved with this cursor; ``notifications.py``)
    delete: list[str] = field(default_factory=list)

    def encode(self) -> str:
        return json.dumps({
            "v": 1,
            "high_water": self.high_water.isoformat() if self.high_water else None,
            "seen": self.seen,
            "misfiled_scan_at": (self.misfiled_scan_at.isoformat()
                                 if self.misfiled_scan_at else None),
            "sweep": self.sweep.to_dict(),
            **({"delete": self.delete} if self.delete else {}),
        }, separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, text: str | None) -> LandingCursor:
        if not text:
            return cls()
        data = json.loads(text)
        high_water = data.get("high_water")
        misfiled = data.get("misfiled_scan_at")
        return cls(
            high_water=datetime.fromisoformat(high_water) if high_water else None,
            seen={k: float(v) for k, v in data.get("seen", {}).items()},
            misfiled_scan_at=datetime.fromisoformat(misfiled) if misfiled else None,
            sweep=SweepProgress.from_dict(data.get("sweep")),
            delete=[str(h) for h in data.get("delete", [])],
        )

    def with_sweep(self, sweep: SweepProgress) -> LandingCursor:
        return replace(self, sweep=sweep)


def merge_sweep(cursor: LandingCursor, progress: SweepProgress,
                swept: Mapping[str, Sequence[LandedObject]]
                ) -> tuple[LandingCursor, dict[str, list[LandedObject]]]:
    """The cursor a tick saves, from the cursor its listing (or its queue) left and what its
    sweep step found not committed (``swept``, by partition); and the part of ``swept`` the tick
    requests runs for itself: the objects that cursor has not seen. The listing or the queue
    requests what it has seen; the others are seen from now on, so a listing or a late
    notification that reaches them later starts no second run. ``cursor`` is left unchanged."""
    seen = dict(cursor.seen)
    late: dict[str, list[LandedObject]] = {}
    for partition, objects in swept.items():
        mine = [o for o in objects if o.fingerprint not in seen]
        if mine:
            late[partition] = mine
            seen.update((o.fingerprint, o.last_modified.timestamp()) for o in mine)
    return replace(cursor, seen=seen, sweep=progress), late


@dataclass(frozen=True)
class Found:
    """New objects of one tick, by listing recent prefixes (``find_listed``) or by draining the
    notification queue (``notifications.find_notified``), and the cursor to save after them."""

    new_objects: list[LandedObject]
    cursor: LandingCursor
    note: str  # how they were found, for the SkipReason and the log
    idle: str  # what the SkipReason says first when nothing is new


@dataclass
class ScanResult:
    new_objects: list[LandedObject]
    cursor: LandingCursor
    listed: int
    ignored: int
    prefixes: list[str]
    list_requests: int


def scan_prefixes(spec: SourceSpec, since: datetime, now: datetime) -> list[str]:
    """The day prefixes from ``since`` to one day past ``now`` (clock skew, early uploads)."""
    first = DAILY.start_of(since)
    days = (DAILY.start_of(now + timedelta(days=1)) - first).days
    return [f"{spec.landing_prefix}/{DAILY.prefix_at(first + timedelta(days=n))}"
            for n in range(days + 1)]


def list_recent(spec: SourceSpec, zone: LandingZone, since: datetime, now: datetime,
                misfiled: bool = True) -> tuple[list[str], dict[str, LandedObject]]:
    """Objects under the day prefixes from ``since`` to ``now`` plus the undated ones, by key;
    with ``misfiled``, also those under folders that are not a valid date."""
    prefixes = scan_prefixes(spec, since, now)
    found: dict[str, LandedObject] = {}
    for prefix in prefixes:
        for obj in zone.list_flat(prefix):
            found[obj.key] = obj
    # Keys without a date in their path sit directly under the source's prefix.
    for obj in zone.walk(f"{spec.landing_prefix}/", skip_year_dirs=True):
        found[obj.key] = obj
    if misfiled:
        for obj in zone.misfiled(spec, []):
            found[obj.key] = obj
    return prefixes, found


def scan_landing(
    spec: SourceSpec,
    zone: LandingZone,
    cursor: LandingCursor,
    now: datetime | None = None,
) -> ScanResult:
    """New objects of ``spec`` since ``cursor``, and the cursor to store after them."""
    now = now or datetime.now(UTC)
    lookback = spec.sensor_lookback
    zone.check_available()
    since = (cursor.high_water or now) - lookback
    requests_before = getattr(zone, "list_requests", 0)
    misfiled = (cursor.misfiled_scan_at is None
                or now - cursor.misfiled_scan_at >= MISFILED_SCAN_EVERY)
    prefixes, found = list_recent(spec, zone, since, now, misfiled=misfiled)

    listed = len(found)
    ignored = 0
    new: list[LandedObject] = []
    high_water = cursor.high_water
    seen = dict(cursor.seen)
    for obj in sorted(found.values(), key=lambda o: (o.last_modified, o.key)):
        if ignore_reason(obj) or obj.size == 0 and obj.key.endswith("/"):
            ignored += 1
            continue
        if obj.last_modified < since:
            continue  # older than the lookback: a backfill's job, not the sensor's
        mark = obj.fingerprint
        if mark in seen:
            continue
        seen[mark] = obj.last_modified.timestamp()
        new.append(obj)
        if high_water is None or obj.last_modified > high_water:
            high_water = obj.last_modified
    if high_water is not None:
        horizon = (high_water - lookback).timestamp()
        seen = {k: v for k, v in seen.items() if v >= horizon}
    return ScanResult(
        new_objects=new,
        cursor=LandingCursor(high_water=high_water, seen=seen,
                             misfiled_scan_at=now if misfiled else cursor.misfiled_scan_at,
                             sweep=cursor.sweep),
        listed=listed,
        ignored=ignored,
        prefixes=prefixes,
        list_requests=getattr(zone, "list_requests", 0) - requests_before,
    )


def find_listed(spec: SourceSpec, zone: LandingZone, cursor: LandingCursor,
                now: datetime) -> Found:
    """``scan_landing``, with what it did said in words for the landing sensor's tick."""
    scan = scan_landing(spec, zone, cursor, now=now)
    note = (f"listed {scan.listed} objects under {len(scan.prefixes)} date prefixes "
            f"of {zone.root_uri}/{spec.landing_prefix}/"
            + (f" in {scan.list_requests} LIST requests" if scan.list_requests else "")
            + (f", {scan.ignored} markers or in-flight files ignored" if scan.ignored else ""))
    since = (scan.cursor.high_water.isoformat() if scan.cursor.high_water
             else "the lookback window")
    return Found(scan.new_objects, scan.cursor, note, f"No new objects since {since}")
