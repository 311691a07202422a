"""Sensors that start bronze runs when new objects land, one per catalog source.

No ``from __future__ import annotations``: Dagster reads the sensor function's annotations to
inject resources.
"""

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.landing.scan import LandingCursor, scan_landing
from manufacturing_ingest.orchestration.resources import LandingZoneResource


def landing_sensor_name(spec: SourceSpec) -> str:
    return f"{spec.name}_landing_sensor"


def landing_sensor(spec: SourceSpec) -> dg.SensorDefinition:
    bronze_key = dg.AssetKey(spec.asset_key_path)
    partitions = spec.partitions.dagster_partitions()

    @dg.sensor(
        name=landing_sensor_name(spec),
        description=(
            f"Lists new objects under {spec.landing_prefix}/ and starts one "
            f"{spec.table_name} run per partition they belong to."
        ),
        asset_selection=[bronze_key],
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource):
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
        requests = []
        for partition_key, objects in scan.by_partition(spec).items():
            if not partitions.has_partition_key(partition_key):
                context.log.warning(
                    f"{len(objects)} object(s) belong to partition {partition_key}, which "
                    f"{spec.table_name} does not have; e.g. {objects[0].uri}"
                )
                continue
            marks = "".join(sorted(o.fingerprint for o in objects))
            requests.append(dg.RunRequest(
                partition_key=partition_key,
                run_key=f"{spec.name}:{partition_key}:{hashlib.sha1(marks.encode()).hexdigest()[:16]}",
                tags={"manufacturing_ingest/new_objects": str(len(objects))},
            ))
        context.log.info(f"{len(scan.new_objects)} new objects in {len(requests)} partitions; "
                         f"{listing}")
        return dg.SensorResult(run_requests=requests, cursor=scan.cursor.encode())

    return _sensor


def landing_sensors(specs: Iterable[SourceSpec]) -> list[dg.SensorDefinition]:
    return [landing_sensor(spec) for spec in specs]
