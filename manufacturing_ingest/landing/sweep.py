"""The reconciliation sweep: now and then, the whole source prefix is listed, so nothing is missed.

The landing sensor's regular listing looks only at recent date prefixes (``scan.py``). An object
that lands under an older prefix (a gateway back online after a week, a plant re-sending a
corrected day) or whose run failed after it left the lookback is invisible to it. Like Auto
Loader's ``cloudFiles.backfillInterval``, the sweep lists everything under the source's prefix
once per ``interval`` (default daily, from the catalog; ``MANUFACTURING_SWEEP_INTERVAL_MINUTES``
overrides it), in key order and resumably: each tick lists for at most its budget and records
the last key, and the next tick goes on after it (S3 ``StartAfter``), so even a bucket of
millions of objects never runs a sensor tick into its timeout.

Two pieces of state:

- ``SweepProgress`` (in the landing sensor's cursor, saved by the daemon with the tick's run
  requests): where the sweep is, and figures of the last full sweep.
- ``SweepFindings`` (in the instance's key-value store, read by the ``landing_backlog`` check):
  the landed objects the sweep found not committed, for the sweep under way and the last full
  one, so the backlog counts every uncommitted object whatever its age. At most
  ``MAX_FINDINGS`` per sweep are kept (the count of the others is).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.landing.base import LandedObject, LandingZone, ignore_reason

__all__ = [
    "MAX_FINDINGS",
    "SweepFindings",
    "SweepProgress",
    "SweepStep",
    "sweep_step",
]

MAX_FINDINGS = 10_000
_FORMAT = 1


@dataclass(frozen=True)
class SweepProgress:
    """Where the sweep of one source is; ``started_at`` is None between sweeps."""

    started_at: datetime | None = None
    after: str | None = None  # the last key listed by the sweep under way
    listed: int = 0
    list_requests: int = 0
    seconds: float = 0.0
    # The last full sweep: when it started and ended, what it listed, at what cost.
    last_started_at: datetime | None = None
    last_completed_at: datetime | None = None
    last_listed: int = 0
    last_list_requests: int = 0
    last_seconds: float = 0.0

    def due(self, now: datetime, interval: timedelta) -> bool:
        """Whether a new sweep starts now (one is not under way, and the last is old enough)."""
        return self.started_at is None and (
            self.last_started_at is None or now - self.last_started_at >= interval)

    def to_dict(self) -> dict:
        return {
            "started_at": _iso(self.started_at), "after": self.after, "listed": self.listed,
            "list_requests": self.list_requests, "seconds": round(self.seconds, 3),
            "last_started_at": _iso(self.last_started_at),
            "last_completed_at": _iso(self.last_completed_at), "last_listed": self.last_listed,
            "last_list_requests": self.last_list_requests,
            "last_seconds": round(self.last_seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping | None) -> SweepProgress:
        if not data:
            return cls()
        return cls(
            started_at=_when(data.get("started_at")), after=data.get("after"),
            listed=int(data.get("listed", 0)), list_requests=int(data.get("list_requests", 0)),
            seconds=float(data.get("seconds", 0.0)),
            last_started_at=_when(data.get("last_started_at")),
            last_completed_at=_when(data.get("last_completed_at")),
            last_listed=int(data.get("last_listed", 0)),
            last_list_requests=int(data.get("last_list_requests", 0)),
            last_seconds=float(data.get("last_seconds", 0.0)),
        )


@dataclass(frozen=True)
class SweepStep:
    """What one tick of the sweep listed, and the progress to save."""

    objects: list[LandedObject]  # data objects listed this tick (markers and in-flight dropped)
    progress: SweepProgress
    started: bool  # this tick began a new sweep
    completed: bool  # this tick listed the last key
    interval: timedelta

    @property
    def started_at(self) -> datetime | None:
        """When the sweep this tick worked on started; None when no sweep ran."""
        if self.completed:
            return self.progress.last_started_at
        return self.progress.started_at


def sweep_step(spec: SourceSpec, zone: LandingZone, progress: SweepProgress, now: datetime,
               interval: timedelta, budget_seconds: float,
               clock: Callable[[], float] = time.monotonic) -> SweepStep:
    """Go on with the sweep of ``spec`` (or start one when due) for at most ``budget_seconds``.

    Lists in key order from where the last tick stopped. At least one object is listed per
    tick, so a sweep always moves on.
    """
    started = False
    if progress.started_at is None:
        if not progress.due(now, interval):
            return SweepStep([], progress, started=False, completed=False, interval=interval)
        progress = replace(progress, started_at=now, after=None, listed=0, list_requests=0,
                           seconds=0.0)
        started = True
    begin = clock()
    deadline = begin + budget_seconds
    requests_before = getattr(zone, "list_requests", 0)
    objects: list[LandedObject] = []
    after = progress.after
    listed = 0
    completed = True
    for obj in zone.list_after(f"{spec.landing_prefix}/", after):
        after = obj.key
        listed += 1
        if not ignore_reason(obj) and not obj.key.endswith("/"):
            objects.append(obj)
        if clock() >= deadline:
            completed = False
            break
    progress = replace(
        progress, after=after, listed=progress.listed + listed,
        list_requests=progress.list_requests + getattr(zone, "list_requests", 0)
        - requests_before,
        seconds=progress.seconds + (clock() - begin),
    )
    if completed:
        progress = replace(
            progress, started_at=None, after=None,
            last_started_at=progress.started_at, last_completed_at=now,
            last_listed=progress.listed, last_list_requests=progress.list_requests,
            last_seconds=progress.seconds,
        )
    return SweepStep(objects, progress, started=started, completed=completed, interval=interval)


class KeyValueStore(Protocol):
    """Dagster's instance key-value store (``instance.run_storage``)."""

    def get_cursor_values(self, keys: set[str]) -> Mapping[str, str]: ...

    def set_cursor_values(self, pairs: Mapping[str, str]) -> None: ...


@dataclass
class SweepFindings:
    """Landed objects the sweeps found not committed: of the sweep under way (``current``,
    started at ``current_started_at``) and of the last full one (``previous``)."""

    source: str
    current_started_at: datetime | None = None
    current: dict[str, LandedObject] = field(default_factory=dict)  # by fingerprint
    current_more: int = 0
    previous: dict[str, LandedObject] = field(default_factory=dict)
    previous_more: int = 0

    @staticmethod
    def key(source: str) -> str:
        return f"manufacturing_ingest/sweep/{source}/findings"

    def record(self, started_at: datetime, objects: Iterable[LandedObject]) -> None:
        """Add what the sweep started at ``started_at`` found not committed; a findings list of
        another sweep (a new one, or a tick the daemon never saved) becomes the previous."""
        if self.current_started_at != started_at:
            if self.current_started_at is not None and self.current_started_at < started_at:
                self.previous, self.previous_more = self.current, self.current_more
            self.current_started_at, self.current, self.current_more = started_at, {}, 0
        for obj in objects:
            if obj.fingerprint in self.current:
                continue
            if len(self.current) >= MAX_FINDINGS:
                self.current_more += 1
                continue
            self.current[obj.fingerprint] = obj

    def complete(self, started_at: datetime) -> None:
        """The sweep started at ``started_at`` listed its last key: its findings are the last
        full sweep's now."""
        if self.current_started_at == started_at:
            self.previous, self.previous_more = self.current, self.current_more
            self.current_started_at, self.current, self.current_more = None, {}, 0

    def objects(self) -> list[LandedObject]:
        """Every object found not committed by the last full sweep or the one under way."""
        return list({**self.previous, **self.current}.values())

    @property
    def more(self) -> int:
        """Uncommitted objects found beyond ``MAX_FINDINGS`` (not kept, only counted)."""
        return max(self.current_more, self.previous_more)

    def encode(self) -> str:
        return json.dumps({
            "v": _FORMAT,
            "current_started_at": _iso(self.current_started_at),
            "current": [_row(o) for o in self.current.values()],
            "current_more": self.current_more,
            "previous": [_row(o) for o in self.previous.values()],
            "previous_more": self.previous_more,
        }, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, source: str, text: str | None) -> SweepFindings:
        findings = cls(source)
        if not text:
            return findings
        data = json.loads(text)
        if data.get("v") != _FORMAT:
            return findings  # written by another version: the next sweep rebuilds it
        findings.current_started_at = _when(data.get("current_started_at"))
        findings.current = {o.fingerprint: o for o in map(_object, data.get("current", []))}
        findings.current_more = int(data.get("current_more", 0))
        findings.previous = {o.fingerprint: o for o in map(_object, data.get("previous", []))}
        findings.previous_more = int(data.get("previous_more", 0))
        return findings

    @classmethod
    def load(cls, store: KeyValueStore, source: str) -> SweepFindings:
        key = cls.key(source)
        return cls.decode(source, store.get_cursor_values({key}).get(key))

    def save(self, store: KeyValueStore) -> None:
        store.set_cursor_values({self.key(self.source): self.encode()})


def _row(obj: LandedObject) -> list:
    return [obj.key, obj.uri, obj.etag, obj.size, obj.last_modified.timestamp()]


def _object(row: list) -> LandedObject:
    key, uri, etag, size, modified = row
    return LandedObject(key=key, uri=uri, etag=etag, size=int(size),
                        last_modified=datetime.fromtimestamp(float(modified), UTC))


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
