"""The names Dagster and its users see: asset keys, op, job, sensor and check names, run tags.

Each is spelled here once and built from the catalog (``SourceSpec.asset_key_path``,
``landing_asset_key_path``). They are part of the contract (DESIGN.md: asset keys
``manufacturing_bronze/<source>`` with upstream ``raw/<source>``): a run, a check result, a
cursor or a schedule stored in an instance refers to them, so changing one orphans what the
instance holds. ``manufacturing_ingest_tests/orchestration/test_definitions.py`` checks them
from outside, with literal strings.
"""

from __future__ import annotations

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec

__all__ = [
    "ALERT_SENSOR",
    "ASSET_CHECKS",
    "BACKLOG_CHECK",
    "BACKLOG_CHECKS_JOB",
    "MAINTENANCE_JOB",
    "MAINTENANCE_OP",
    "NEW_OBJECTS_TAG",
    "PARTITION_CHECKS",
    "PARTITION_TAG",
    "QUALITY_CHECK",
    "RANGE_END_TAG",
    "RANGE_START_TAG",
    "SCHEMA_DRIFT_CHECK",
    "STREAM_JOB",
    "STREAM_RUN_PREFIX",
    "asset_path",
    "bronze_asset_key",
    "bronze_check_key",
    "bronze_op_name",
    "landing_sensor_name",
    "raw_asset_key",
]

# Checks of each bronze asset.
BACKLOG_CHECK = "landing_backlog"
QUALITY_CHECK = "quality"
SCHEMA_DRIFT_CHECK = "schema_drift"
# In a ``quality`` result with nothing new to check: the delta version of the partition's last
# batch, which an earlier result covers (see bronze.unchecked_batches).
CHECKED_VERSION = "last_checked_delta_version"
# Checks with one result per partition (evaluated in the bronze step), and of the whole asset.
PARTITION_CHECKS = (QUALITY_CHECK, SCHEMA_DRIFT_CHECK)
ASSET_CHECKS = (BACKLOG_CHECK,)

# Jobs, ops and sensors that are not one per source.
BACKLOG_CHECKS_JOB = "landing_backlog_checks"
MAINTENANCE_JOB = "table_maintenance"
MAINTENANCE_OP = "maintain_tables"
STREAM_JOB = "bronze_stream"
# The run id of a ``manufacturing-ingest stream`` process's events: this, then its own id.
STREAM_RUN_PREFIX = "stream-"
ALERT_SENSOR = "alert_sensor"

# Run tags. Dagster's own: one run over a partition range (the bronze assets take a range in one
# run, ``BackfillPolicy.single_run``), or one partition.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
# The project's own: how many new objects a landing sensor asked the run for.
NEW_OBJECTS_TAG = "manufacturing_ingest/new_objects"


def bronze_asset_key(spec: SourceSpec) -> dg.AssetKey:
    """``manufacturing_bronze/<source>``: the bronze table's asset."""
    return dg.AssetKey(spec.asset_key_path)


def raw_asset_key(spec: SourceSpec) -> dg.AssetKey:
    """``raw/<source>``: the landing prefix's external asset, upstream of the bronze one."""
    return dg.AssetKey(spec.landing_asset_key_path)


def asset_path(spec: SourceSpec) -> str:
    """The bronze asset key as the CLI and the UI write it: ``manufacturing_bronze/<source>``."""
    return bronze_asset_key(spec).to_user_string()


def bronze_op_name(spec: SourceSpec) -> str:
    """``manufacturing_bronze__<source>``: the bronze asset's op (step), keying its run config."""
    return "__".join(spec.asset_key_path)


def bronze_check_key(spec: SourceSpec, check: str) -> dg.AssetCheckKey:
    """The key of the bronze asset's check named ``check``."""
    return dg.AssetCheckKey(bronze_asset_key(spec), check)


def landing_sensor_name(spec: SourceSpec) -> str:
    return f"{spec.name}_landing_sensor"
