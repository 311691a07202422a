"""Sensors that start bronze runs when new objects land, one per catalog source.

A tick lists what is new (``landing.scan``), drops what the file ledger already has committed,
and asks for one run per range of contiguous partitions, with Dagster's partition-range tags:
the bronze assets take a range in one run (``BackfillPolicy.single_run``), so a day of hourly
files is one Spark start, not 24.

No ``from __future__ import annotations``: Dagster reads the sensor function's annotations to
inject resources.
"""

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.engine.ledger import FileStatus, file_states, read_events
from manufacturing_ingest.landing import LandedObject
from manufacturing_ingest.landing.scan import LandingCursor, scan_landing
from manufacturing_ingest.orchestration.assets import bronze_pool
from manufacturing_ingest.orchestration.resources import LakehouseResource, LandingZoneResource


def landing_sensor_name(spec: SourceSpec) -> str:
    return f"{spec.name}_landing_sensor"


RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
NEW_OBJECTS_TAG = "manufacturing_ingest/new_objects"


def landing_sensor(spec: SourceSpec, interval_seconds: int = 60) -> dg.SensorDefinition:
    bronze_key = dg.AssetKey(spec.asset_key_path)
    partitions = spec.partitions.dagster_partitions()

    @dg.sensor(
        name=landing_sensor_name(spec),
        description=(
            f"Lists new objects under {spec.landing_prefix}/ and starts one {spec.table_name} "
            "run per range of contiguous partitions they belong to (a day of hourly files is "
            "one run); objects the file ledger already has as committed start nothing."
        ),
        asset_selection=[bronze_key],
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource,
                lakehouse: LakehouseResource):
        _configure_pool(context.instance, bronze_pool(spec))
        zone = landing.zone()
        scan = scan_landing(spec, zone, LandingCursor.decode(context.cursor),
                            now=datetime.now(UTC))
        listing = (f"listed {scan.listed} objects under {len(scan.prefixes)} date prefixes "
                   f"of {zone.root_uri}/{spec.landing_prefix}/"
                   + (f" in {scan.list_requests} LIST requests" if scan.list_requests else "")
                   + (f", {scan.ignored} markers or in-flight files ignored"
                      if scan.ignored else ""))
        if not scan.new_objects:
            since = (scan.cursor.high_water.isoformat() if scan.cursor.high_water
                     else "the lookback window")
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"No new objects since {since}: {listing}."),
                cursor=scan.cursor.encode(),
            )
        groups = {}
        for partition_key, objects in scan.by_partition(spec).items():
            if not partitions.has_partition_key(partition_key):
                context.log.warning(
                    f"{len(objects)} object(s) belong to partition {partition_key}, which "
                    f"{spec.table_name} does not have; e.g. {objects[0].uri}"
                )
                continue
            groups[partition_key] = objects
        pending, committed = _not_yet_committed(spec, lakehouse, groups)
        requests = [
            dg.RunRequest(
                run_key=_run_key(spec, first, last, objects),
                tags={RANGE_START_TAG: first, RANGE_END_TAG: last,
                      NEW_OBJECTS_TAG: str(len(objects))},
            )
            for first, last, objects in contiguous_ranges(spec, pending)
        ]
        summary = (f"{len(scan.new_objects)} new objects"
                   + (f", {committed} already committed" if committed else "")
                   + f": {len(requests)} run(s) for {len(pending)} partition(s); {listing}")
        context.log.info(summary)
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason(summary), cursor=scan.cursor.encode())
        return dg.SensorResult(run_requests=requests, cursor=scan.cursor.encode())

    return _sensor


def _configure_pool(instance: dg.DagsterInstance, pool: str) -> None:
    """Give the table's pool the instance's default limit now, before any run of it is queued.

    Dagster 1.13 sets a new pool's default limit during the first pass of the run queue that
    sees the pool, and that pass launches every queued run of it regardless: ``make dev`` after
    ``make demo`` would start two runs of one table at once.
    """
    storage = instance.event_log_storage
    if instance.global_op_concurrency_default_limit and pool not in storage.get_concurrency_keys():
        storage.initialize_concurrency_limit_to_default(pool)


def _not_yet_committed(spec: SourceSpec, lakehouse: LakehouseResource,
                       groups: dict[str, list[LandedObject]]
                       ) -> tuple[dict[str, list[LandedObject]], int]:
    """``groups`` without the objects the file ledger has as committed (same key and ETag), and
    how many those were: a run for them would only find nothing to do (e.g. ``make dev`` after
    ``make demo`` ingested the same files from the command line)."""
    if not groups:
        return {}, 0
    states = file_states(read_events(lakehouse.lakehouse().ledger_path, spec.name,
                                     sorted(groups)))
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


def _run_key(spec: SourceSpec, first: str, last: str, objects: list[LandedObject]) -> str:
    marks = "".join(sorted(o.fingerprint for o in objects))
    span = first if first == last else f"{first}..{last}"
    return f"{spec.name}:{span}:{hashlib.sha1(marks.encode()).hexdigest()[:16]}"


def landing_sensors(specs: Iterable[SourceSpec],
                    interval_seconds: int = 60) -> list[dg.SensorDefinition]:
    return [landing_sensor(spec, interval_seconds) for spec in specs]
