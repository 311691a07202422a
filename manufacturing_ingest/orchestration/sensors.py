"""Sensors that start bronze runs when new objects land, one per catalog source.

A tick lists what is new (``landing.scan``), goes on with the reconciliation sweep of the whole
prefix when one is due or under way (``landing.sweep``), drops what the file ledger already has
committed, and asks for one run per range of contiguous partitions, with Dagster's
partition-range tags: the bronze assets take a range in one run (``BackfillPolicy.single_run``),
so a day of hourly files is one Spark start, not 24.

No ``from __future__ import annotations``: Dagster reads the sensor function's annotations to
inject resources.
"""

import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.engine.ledger import FileState, FileStatus, file_states, read_events
from manufacturing_ingest.landing import LandedObject, ignore_reason, partition_key_of
from manufacturing_ingest.landing.notifications import find_notified, visibility_timeout
from manufacturing_ingest.landing.scan import LandingCursor, find_listed, merge_sweep
from manufacturing_ingest.landing.sweep import SweepFindings, SweepStep, sweep_step
from manufacturing_ingest.orchestration.assets import bronze_pool, landed_observation
from manufacturing_ingest.orchestration.names import (
    NEW_OBJECTS_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    bronze_asset_key,
    landing_sensor_name,
)
from manufacturing_ingest.orchestration.resources import LakehouseResource, LandingZoneResource
from manufacturing_ingest.printable import printable

# Importable from here, where the tests and benchmarks of the sensor have always found them.
__all__ = ["NEW_OBJECTS_TAG", "RANGE_END_TAG", "RANGE_START_TAG", "contiguous_ranges",
           "landing_sensor", "landing_sensor_name", "landing_sensors"]


def landing_sensor(spec: SourceSpec, interval_seconds: int = 60, sweep_budget_seconds: float = 20,
                   clock: Callable[[], datetime] | None = None) -> dg.SensorDefinition:
    """The sensor of ``spec``: lists recent prefixes each tick, and sweeps the whole prefix every
    ``spec.sweep_interval`` for at most ``sweep_budget_seconds`` per tick. ``clock`` (UTC now)
    is for tests of the sweep interval.

    What a tick writes to the Dagster instance:

    - its ``SensorResult``, which the daemon stores with the tick: ``RunRequest``s of the bronze
      asset (run key ``<source>:<first>[..<last>]:<hash of the objects' keys and ETags>``, tags
      ``dagster/asset_partition_range_start`` / ``_end`` and ``manufacturing_ingest/new_objects``)
      or a ``SkipReason``, and always the new cursor (``LandingCursor``: high-water mark,
      fingerprints seen, misfiled-scan time, sweep progress, and in notification mode the SQS
      receipt handles to delete next tick);
    - the sweep's findings, when a sweep step ran: ``SweepFindings`` in the instance's key-value
      store (``manufacturing_ingest/sweep/<source>/findings``), which the ``landing_backlog``
      check reads;
    - the table's concurrency pool (``bronze_pool``) at the instance's default limit, once, if
      the instance sets a default and does not know the pool yet;
    - log lines of the tick (a summary, and objects of partitions the asset does not have);
    - when the listing (or the queue) found new objects, an observation of ``raw/<source>``
      (``asset_events``): how many, their bytes and partitions, so the UI shows when files
      landed.

    It records no other asset events (no materializations or check results). Outside
    the instance it only reads (the landing zone, the file ledger), except in notification mode,
    where it deletes the SQS messages the previous tick's saved cursor names.
    """
    bronze_key = bronze_asset_key(spec)
    partitions = spec.partitions.dagster_partitions()
    now_of = clock or (lambda: datetime.now(UTC))

    @dg.sensor(
        name=landing_sensor_name(spec),
        description=(
            f"Lists new objects under {spec.landing_prefix}/ (or drains its S3 notification "
            f"queue in file notification mode) and starts one {spec.table_name} "
            "run per range of contiguous partitions they belong to (a day of hourly files is "
            "one run); objects the file ledger already has as committed start nothing. Every "
            f"{_duration(spec.sweep_interval)} it also sweeps the whole prefix, a little per "
            "tick, for objects no recent listing sees (late uploads under old date prefixes)."
        ),
        asset_selection=[bronze_key],
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource,
                lakehouse: LakehouseResource):
        _configure_pool(context.instance, bronze_pool(spec))
        zone = landing.zone()
        now = now_of()
        cursor = LandingCursor.decode(context.cursor)
        started = time.monotonic()
        queue_url = landing.queue_url(spec.name)
        if queue_url:
            found = find_notified(spec, zone, queue_url, cursor, now, sweep_budget_seconds,
                                  visibility_timeout(interval_seconds))
        else:
            found = find_listed(spec, zone, cursor, now)
        # The drain and the sweep share the tick's budget; the sweep lists one object at least.
        budget = max(0.0, sweep_budget_seconds - (time.monotonic() - started))
        sweep = sweep_step(spec, zone, cursor.sweep, now, spec.sweep_interval, budget)

        recent, _ = _by_partition(context, spec, partitions, found.new_objects)
        swept, outside = _by_partition(context, spec, partitions, sweep.objects)
        states = _ledger_states(spec, lakehouse, set(recent) | set(swept))
        pending, committed = _not_yet_committed(recent, states)
        swept_pending, _ = _not_yet_committed(swept, states)
        sweep_note = _sweep_note(sweep, swept_pending)
        if sweep.objects or sweep.started or sweep.completed:
            # Objects outside the partitions are findings too: the backlog check fails on them.
            _record_findings(context.instance, spec, sweep, {**swept_pending, **outside})
        # What the recent listing (or the queue) has seen is its to request; the sweep asks for
        # the rest.
        merged, late_objects = merge_sweep(found.cursor, sweep.progress, swept_pending)
        for key, objects in late_objects.items():
            pending[key] = [*pending.get(key, []), *objects]
        late = sum(len(objects) for objects in late_objects.values())
        next_cursor = merged.encode()
        if not found.new_objects and not late:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"{found.idle}: {found.note}." + sweep_note),
                cursor=next_cursor,
            )
        landed = ([landed_observation(spec, len(found.new_objects),
                                      sum(o.size for o in found.new_objects), recent,
                                      f"{spec.landing_prefix}/")]
                  if found.new_objects else [])
        sweep_id = _sweep_id(sweep) if late else ""
        requests = [
            dg.RunRequest(
                run_key=_run_key(spec, first, last, objects, sweep_id),
                tags={RANGE_START_TAG: first, RANGE_END_TAG: last,
                      NEW_OBJECTS_TAG: str(len(objects))},
            )
            for first, last, objects in contiguous_ranges(spec, pending)
        ]
        summary = (f"{len(found.new_objects)} new objects"
                   + (f", {committed} already committed" if committed else "")
                   + (f", {late} not committed found by the sweep" if late else "")
                   + f": {len(requests)} run(s) for {len(pending)} partition(s); {found.note}."
                   + sweep_note)
        context.log.info(summary)
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason(summary), cursor=next_cursor,
                                   asset_events=landed)
        return dg.SensorResult(run_requests=requests, cursor=next_cursor, asset_events=landed)

    return _sensor




def _by_partition(context: dg.SensorEvaluationContext, spec: SourceSpec, partitions,
                  objects: list[LandedObject]
                  ) -> tuple[dict[str, list[LandedObject]], dict[str, list[LandedObject]]]:
    """``objects`` by partition key: of the asset's partitions, and of partitions it does not
    have (logged, with what to do; markers and in-flight files left out)."""
    groups: dict[str, list[LandedObject]] = {}
    for obj in objects:
        groups.setdefault(partition_key_of(spec, obj), []).append(obj)
    outside = {key: [o for o in objs if not ignore_reason(o)] for key, objs in groups.items()
               if not partitions.has_partition_key(key)}
    outside = {key: objs for key, objs in outside.items() if objs}
    for key, objs in sorted(outside.items()):
        context.log.warning(f"{len(objs)} object(s) belong to partition {key}, which "
                            f"{spec.table_name} does not have; e.g. {printable(objs[0].uri)}: "
                            f"{spec.partitions.outside_why(key)}")
    inside = {key: objs for key, objs in sorted(groups.items())
              if partitions.has_partition_key(key)}
    return inside, outside


def _ledger_states(spec: SourceSpec, lakehouse: LakehouseResource,
                   partition_keys: set[str]) -> dict[tuple[str, str], FileState]:
    if not partition_keys:
        return {}
    return file_states(read_events(lakehouse.lakehouse().ledger_path, spec.name,
                                   sorted(partition_keys)))


def _record_findings(instance: dg.DagsterInstance, spec: SourceSpec, sweep: SweepStep,
                     pending: dict[str, list[LandedObject]]) -> None:
    """Keep what the sweep found not committed where the ``landing_backlog`` check reads it."""
    started_at = sweep.started_at
    if started_at is None:
        return
    findings = SweepFindings.load(instance.run_storage, spec.name)
    findings.record(started_at, [o for objects in pending.values() for o in objects])
    if sweep.completed:
        findings.complete(started_at)
    findings.save(instance.run_storage)


def _sweep_note(sweep: SweepStep, pending: dict[str, list[LandedObject]]) -> str:
    progress = sweep.progress
    waiting = sum(len(objects) for objects in pending.values())
    if sweep.completed:
        return (f" Sweep complete: {progress.last_listed} objects in "
                f"{progress.last_list_requests} LIST requests, {progress.last_seconds:.1f} s; "
                f"{waiting} not committed in its last part.")
    if progress.started_at is not None:
        return (f" Sweep under way since {progress.started_at:%Y-%m-%d %H:%M} UTC: "
                f"{progress.listed} objects so far ({len(sweep.objects)} this tick, {waiting} "
                f"not committed), next after {progress.after}.")
    if progress.last_started_at is not None:
        due = progress.last_started_at + sweep.interval
        return f" Next sweep at {due:%Y-%m-%d %H:%M} UTC."
    return ""


def _sweep_id(sweep: SweepStep) -> str:
    started = sweep.started_at
    return f"sweep@{started.isoformat()}" if started else ""


def _configure_pool(instance: dg.DagsterInstance, pool: str) -> None:
    """Give the table's pool the instance's default limit now, before any run of it is queued.

    Dagster 1.13 sets a new pool's default limit during the first pass of the run queue that
    sees the pool, and that pass launches every queued run of it regardless: ``make dev`` after
    ``make demo`` would start two runs of one table at once.
    """
    storage = instance.event_log_storage
    if instance.global_op_concurrency_default_limit and pool not in storage.get_concurrency_keys():
        storage.initialize_concurrency_limit_to_default(pool)


def _not_yet_committed(groups: dict[str, list[LandedObject]],
                       states: dict[tuple[str, str], FileState]
                       ) -> tuple[dict[str, list[LandedObject]], int]:
    """``groups`` without the objects the file ledger has as committed (same key and ETag), and
    how many those were: a run for them would only find nothing to do (e.g. ``make dev`` after
    ``make demo`` ingested the same files from the command line)."""
    pending: dict[str, list[LandedObject]] = {}
    committed = 0
    for key, objects in groups.items():
        left = [o for o in objects if (state := states.get((o.key, o.etag))) is None
                or state.status is not FileStatus.COMMITTED]
        committed += len(objects) - len(left)
        if left:
            pending[key] = left
    return pending, committed


def contiguous_ranges(spec: SourceSpec, groups: dict[str, list[LandedObject]]
                      ) -> list[tuple[str, str, list[LandedObject]]]:
    """Runs of consecutive partition keys, each with the objects of all its partitions: one run
    per range (the bronze assets take a range in one run), never one per partition."""
    ranges: list[tuple[str, str, list[LandedObject]]] = []
    for key in sorted(groups, key=spec.partitions.parse):
        if ranges and spec.partitions.parse(ranges[-1][1]) + spec.partitions.step \
                == spec.partitions.parse(key):
            first, _, objects = ranges[-1]
            ranges[-1] = (first, key, objects + groups[key])
        else:
            ranges.append((key, key, list(groups[key])))
    return ranges


def _run_key(spec: SourceSpec, first: str, last: str, objects: list[LandedObject],
             sweep_id: str = "") -> str:
    # With the sweep's id, the next sweep asks again for a file whose run failed: Dagster never
    # starts two runs with one run key.
    marks = "".join(sorted(o.fingerprint for o in objects)) + sweep_id
    span = first if first == last else f"{first}..{last}"
    return f"{spec.name}:{span}:{hashlib.sha1(marks.encode()).hexdigest()[:16]}"


def landing_sensors(specs: Iterable[SourceSpec], interval_seconds: int = 60,
                    sweep_budget_seconds: float = 20) -> list[dg.SensorDefinition]:
    return [landing_sensor(spec, interval_seconds, sweep_budget_seconds) for spec in specs]


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return "day" if days == 1 else f"{days} days"
    if minutes % 60 == 0:
        return "hour" if minutes == 60 else f"{minutes // 60} hours"
    return f"{minutes} minutes"
