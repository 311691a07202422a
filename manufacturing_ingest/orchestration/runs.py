"""Materialize bronze partitions in this process, as a UI run would (the CLI and benchmarks)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec, get_source
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.errors import ConfigurationError, InvalidPartitionError
from manufacturing_ingest.landing import landing_zone_for
from manufacturing_ingest.orchestration import build_definitions
from manufacturing_ingest.orchestration.names import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    bronze_asset_key,
    bronze_op_name,
)
from manufacturing_ingest.settings import Execution, Settings

log = logging.getLogger("manufacturing_ingest")


@dataclass(frozen=True)
class RunResult:
    """One source's run: its materialization metadata and the wall time of the whole call."""

    source: str
    partitions: int
    run_id: str
    seconds: float  # the whole call, Dagster run included
    metadata: dict[str, Any]  # the engine's own time is metadata["seconds"]


def partition_keys(spec: SourceSpec, first: str, last: str) -> list[str]:
    """The asset's keys from ``first`` to ``last``; ``InvalidPartitionError`` says what is off."""
    start, end = spec.partitions.parse(first), spec.partitions.parse(last)
    if end < start:
        raise InvalidPartitionError(f"--to {last} is before --partition {first}")
    partitions = spec.partitions.dagster_partitions()
    for key in (first, last):
        if not partitions.has_partition_key(key):
            raise InvalidPartitionError(
                f"{key} is not a partition of {spec.name}: its partitions run from "
                f"{partitions.get_first_partition_key()} to "
                f"{partitions.get_last_partition_key()} (UTC); "
                + spec.partitions.outside_why(key))
    return partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))


def materialize_partitions(settings: Settings, source_names: list[str], first: str,
                           last: str | None = None, reprocess: bool = False,
                           tags: dict[str, str] | None = None) -> list[RunResult]:
    """Run the bronze assets for a partition range (one run per source, in order); ``tags``
    go on each run besides the range's."""
    if settings.databricks is not None and settings.databricks.execution is Execution.STEP_LAUNCHER:
        from manufacturing_ingest.databricks.launcher import databricks_runs_elsewhere

        raise databricks_runs_elsewhere(source_names, first, last, reprocess)
    defs = build_definitions(settings)
    # Runs show in the UI when DAGSTER_HOME names a persistent instance.
    instance = (dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME")
                else dg.DagsterInstance.ephemeral())
    landing = [a for a in defs.assets or [] if isinstance(a, dg.AssetSpec)]
    # Every source's range, the landing zone and the lakehouse are checked before anything runs
    # (the engine checks the latter two again, for runs launched from the UI).
    ranges = {}
    for name in source_names:
        spec = get_source(name)
        ranges[name] = (spec, partition_keys(spec, *spec.partitions.widen(first, last)))
    landing_zone_for(settings.landing_url, role_arn=settings.s3_role_arn or None
                     ).check_available()
    Lakehouse(settings.lakehouse_url).check_writable()
    results = []
    for name, (spec, keys) in ranges.items():
        start, end = keys[0], keys[-1]
        key = bronze_asset_key(spec)
        asset = next(a for a in defs.assets or []
                     if isinstance(a, dg.AssetsDefinition) and a.key == key)
        if reprocess and len(keys) != 1:
            raise ConfigurationError("--reprocess rebuilds one partition; give one --partition")
        log.info("%s: ingesting %d partition(s) %s … %s", name, len(keys), start, end)
        began = time.monotonic()
        op_name = bronze_op_name(spec)
        result = dg.materialize(
            [asset, *landing],
            selection=[asset.key],
            instance=instance,
            resources=defs.resources,
            tags={**(tags or {}), RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]},
            run_config={
                "ops": {op_name: {"config": {"reprocess": reprocess}}},
                # The engine's own progress lines go to stderr and a failure is raised to the
                # caller (the CLI prints a UserError as one line); Dagster's event stream stays
                # quiet rather than print the same failure again with its traceback.
                "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            },
            raise_on_error=True,
        )
        materialization = result.asset_materializations_for_node(op_name)[0]
        results.append(RunResult(
            source=name, partitions=len(keys), run_id=result.run_id,
            seconds=time.monotonic() - began,
            metadata={k: v.value for k, v in materialization.metadata.items()},
        ))
    return results
