"""The landing sensor's cursor merges, as pure functions: old cursor + what a tick found -> the
cursor it saves (no S3, no queue, no Dagster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from manufacturing_ingest.landing.base import LandedObject
from manufacturing_ingest.landing.notifications import Drained, merge_notified
from manufacturing_ingest.landing.scan import LandingCursor, merge_sweep
from manufacturing_ingest.landing.sweep import SweepProgress

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
LOOKBACK = timedelta(hours=24)


def landed(name: str, etag: str = "e1", at: datetime = NOW - timedelta(minutes=5),
           day: str = "2026/01/15") -> LandedObject:
    key = f"raw/sensor-data/{day}/{name}"
    return LandedObject(key=key, uri=f"s3://plant/{key}", etag=etag, size=10, last_modified=at)


def test_the_sweep_requests_only_what_the_listing_has_not_seen_and_marks_it_seen():
    listed = landed("a.csv")
    late = landed("old.csv", at=NOW - timedelta(days=30), day="2025/12/16")
    cursor = LandingCursor(high_water=listed.last_modified,
                           seen={listed.fingerprint: listed.last_modified.timestamp()},
                           delete=["handle-1"])
    progress = SweepProgress(started_at=NOW, listed=2)

    merged, requested = merge_sweep(cursor, progress,
                                    {"2026-01-15": [listed], "2025-12-16": [late]})

    assert requested == {"2025-12-16": [late]}
    assert merged.seen == {listed.fingerprint: listed.last_modified.timestamp(),
                           late.fingerprint: late.last_modified.timestamp()}
    assert merged.sweep == progress
    # The rest of the cursor is the listing's (or the queue's) as it was.
    assert (merged.high_water, merged.delete) == (cursor.high_water, ["handle-1"])
    assert merged.misfiled_scan_at == cursor.misfiled_scan_at
    # Pure: the cursor it was given is unchanged.
    assert cursor.seen == {listed.fingerprint: listed.last_modified.timestamp()}
    assert cursor.sweep == SweepProgress()


def test_a_sweep_that_finds_nothing_moves_only_its_progress():
    cursor = LandingCursor(high_water=NOW, seen={"k@e": NOW.timestamp()})
    progress = SweepProgress(started_at=NOW, listed=500, after="raw/sensor-data/2026/01/01/x")
    merged, requested = merge_sweep(cursor, progress, {})
    assert requested == {}
    assert merged == LandingCursor(high_water=NOW, seen={"k@e": NOW.timestamp()}, sweep=progress)


def test_notifications_add_new_objects_and_keep_handles_for_the_next_tick():
    old_seen = landed("seen.csv")
    expired = "gone.csv@e0"
    cursor = LandingCursor(
        high_water=NOW - timedelta(hours=1),
        seen={old_seen.fingerprint: NOW.timestamp() - 60,
              expired: (NOW - LOOKBACK - timedelta(seconds=1)).timestamp()},
        misfiled_scan_at=NOW - timedelta(minutes=3),
        sweep=SweepProgress(started_at=NOW - timedelta(hours=2)),
        delete=["handled-last-tick"],
    )
    first = landed("b.csv", at=NOW - timedelta(minutes=2))
    second = landed("a.csv", at=NOW - timedelta(minutes=9))
    marker = landed("_SUCCESS", etag="e9")
    drained = Drained(objects=[first, old_seen, marker, second],
                      handles=["h1", "h2", "h3", "h4", "h5"], messages=5, duplicates=1)

    merged = merge_notified(cursor, drained, NOW, LOOKBACK)

    assert merged.new_objects == [second, first]  # oldest first
    assert merged.repeated == 2  # one in the drain itself, one the cursor had seen
    assert merged.ignored == 1
    assert merged.cursor.high_water == first.last_modified
    assert merged.cursor.seen == {old_seen.fingerprint: NOW.timestamp() - 60,
                                  first.fingerprint: NOW.timestamp(),
                                  second.fingerprint: NOW.timestamp()}
    # Deleted next tick, after the daemon has saved this tick's run requests with the cursor.
    assert merged.cursor.delete == ["h1", "h2", "h3", "h4", "h5"]
    assert merged.cursor.sweep == cursor.sweep
    assert merged.cursor.misfiled_scan_at == cursor.misfiled_scan_at
    assert cursor.delete == ["handled-last-tick"] and expired in cursor.seen  # unchanged


def test_an_empty_drain_keeps_the_high_water_mark_and_forgets_the_handles_deleted():
    cursor = LandingCursor(high_water=NOW - timedelta(hours=1), delete=["handled-last-tick"])
    merged = merge_notified(cursor, Drained(), NOW, LOOKBACK)
    assert merged.new_objects == []
    assert merged.cursor.high_water == cursor.high_water
    assert merged.cursor.delete == []
    # Encoded as the sensor saves it, and read back the same.
    assert LandingCursor.decode(merged.cursor.encode()) == merged.cursor
