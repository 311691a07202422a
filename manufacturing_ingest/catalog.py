"""The source catalog: one ``SourceSpec`` per landing source drives assets, sensors and checks.

Adding a source is one entry here plus its columns; nothing else is written per source. Its
quality rules are data here too (``QualityRules``): adding a rule is a catalog change, and
``manufacturing_ingest.quality`` compiles whatever is declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Literal

from manufacturing_ingest.errors import UnknownSourceError
from manufacturing_ingest.partitioning import SCHEMES, Grain, PartitionScheme

ColumnType = Literal["string", "double", "long", "boolean", "timestamp"]
FileFormat = Literal["csv", "json", "parquet"]

BRONZE_SCHEMA = "manufacturing_bronze"
# Columns the platform adds to every bronze row, after the source's own.
SOURCE_FILE_COLUMN = "_source_file"
INGESTED_AT_COLUMN = "_ingested_at"
RESCUED_DATA_COLUMN = "_rescued_data"
LINEAGE_COLUMNS = (SOURCE_FILE_COLUMN, INGESTED_AT_COLUMN, RESCUED_DATA_COLUMN)


class Corrections(StrEnum):
    """What a new version of a committed file does to bronze (same key, other content).

    A version with the same content as the committed one (touched, or uploaded again with
    another part size) is never a new version: it changes nothing, whatever the choice.
    """

    REPLACE = "replace"  # its rows replace the old version's, in one Delta commit (default)
    APPEND = "append"  # its rows are added beside the old version's
    IGNORE = "ignore"  # it is recorded and not ingested (Auto Loader's default)


class SchemaContract(StrEnum):
    """What a file with columns the table does not have yet does to bronze.

    In every mode, a file that shares no identifying column with its source (a headerless CSV,
    another system's export) fails with that reason and changes nothing.
    """

    EVOLVE = "evolve"  # the table gains the new columns, as text (default; Auto Loader's
    # addNewColumns)
    RESCUE = "rescue"  # the table keeps its columns; new columns' values go to _rescued_data
    FREEZE = "freeze"  # the file fails, naming its new columns; nothing of it is written


@dataclass(frozen=True)
class ValueRange:
    """``column`` must lie within [minimum, maximum] (either bound may be open); nulls pass."""

    column: str
    minimum: float | None = None
    maximum: float | None = None

    @property
    def name(self) -> str:
        return f"{self.column}_range"


@dataclass(frozen=True)
class AllowedValues:
    """``column`` must be one of ``values``; nulls pass (``required`` catches those)."""

    column: str
    values: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.column}_allowed"


@dataclass(frozen=True)
class RowCondition:
    """A Spark SQL boolean over one row's columns that must hold; a null result passes."""

    name: str
    sql: str
    columns: tuple[str, ...]  # the columns it reads (shown in failing examples)
    description: str


@dataclass(frozen=True)
class EventTimeRule:
    """Bounds on the source's event time, relative to its ingest and to its partition."""

    # A reading stamped later than its own ``_ingested_at`` plus this is in the future.
    future_tolerance: timedelta = timedelta(minutes=5)
    # Late data: readings up to this long before the partition's window still belong to it.
    late_tolerance: timedelta = timedelta(days=2)
    # Clock skew: readings up to this long after the window's end still belong to it.
    early_tolerance: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class QualityRules:
    """What the ``quality`` check holds each committed row to, and when it fails.

    Besides what is declared here, every source gets: its catalog columns present with their
    types (schema), no ``_rescued_data`` (types), no duplicate ``key_columns`` and the event time
    bounds of ``event_time``.
    """

    ranges: tuple[ValueRange, ...] = ()
    allowed: tuple[AllowedValues, ...] = ()
    conditions: tuple[RowCondition, ...] = ()
    # Columns that must not be null (key and event time columns belong here).
    required: tuple[str, ...] = ()
    event_time: EventTimeRule = EventTimeRule()
    # Share of failing rows above which the check fails with WARN, and with ERROR.
    warn_above: float = 0.0
    error_above: float = 0.05


@dataclass(frozen=True)
class SourceSpec:
    """Everything the platform knows about one landing source."""

    name: str
    landing_prefix: str
    formats: tuple[FileFormat, ...]
    partitioning: Grain
    columns: dict[str, ColumnType]
    key_columns: tuple[str, ...]
    event_time_column: str
    # The asset's freshness policy fails when no materialization is newer than this.
    freshness_minutes: int
    description: str
    # The landing_backlog check fails when a landed object has waited longer than this.
    backlog_limit: timedelta = timedelta(hours=1)
    # How far behind its high-water mark the landing sensor still looks for late objects.
    sensor_lookback: timedelta = timedelta(hours=24)
    # How often the landing sensor also lists the whole prefix, for objects no recent listing
    # sees (``landing/sweep.py``); MANUFACTURING_SWEEP_INTERVAL_MINUTES overrides it.
    sweep_interval: timedelta = timedelta(days=1)
    # The rules the ``quality`` check evaluates on the rows each run commits.
    quality: QualityRules = QualityRules()
    # A corrected file (same key, new content); MANUFACTURING_CORRECTIONS_<SOURCE> overrides it.
    corrections: Corrections = Corrections.REPLACE
    # Text files without a byte-order mark are read in this encoding (a Python codec name);
    # MANUFACTURING_ENCODING_<SOURCE> overrides it (engine/encoding.py).
    encoding: str = "utf-8"
    # Files with new columns; MANUFACTURING_SCHEMA_<SOURCE> overrides it.
    schema_contract: SchemaContract = SchemaContract.EVOLVE

    @property
    def table_name(self) -> str:
        return f"{BRONZE_SCHEMA}.{self.name}"

    @property
    def asset_key_path(self) -> list[str]:
        return [BRONZE_SCHEMA, self.name]

    @property
    def landing_asset_key_path(self) -> list[str]:
        return ["raw", self.name]

    @property
    def partitions(self) -> PartitionScheme:
        return SCHEMES[self.partitioning]

    @property
    def partition_column(self) -> str:
        return self.partitions.column

    @property
    def ledger_app_id(self) -> str:
        """Delta ``txnAppId`` of this source's bronze writes."""
        return f"manufacturing_ingest/{self.name}"


SENSOR_DATA = SourceSpec(
    name="sensor_data",
    landing_prefix="raw/sensor-data",
    formats=("csv", "json"),
    partitioning=Grain.DAILY,
    columns={
        "plant_id": "string",
        "line_id": "string",
        "sensor_id": "string",
        "timestamp": "timestamp",
        "temperature": "double",
        "humidity": "double",
        "pressure": "double",
        "vibration": "double",
    },
    key_columns=("sensor_id", "timestamp"),
    event_time_column="timestamp",
    freshness_minutes=15,
    quality=QualityRules(
        ranges=(
            ValueRange("temperature", -40.0, 150.0),  # °C
            ValueRange("humidity", 0.0, 100.0),  # % relative humidity
            ValueRange("pressure", 80.0, 120.0),  # kPa
            ValueRange("vibration", 0.0, 50.0),  # mm/s RMS
        ),
        required=("plant_id", "sensor_id", "timestamp"),
    ),
    description=(
        "Raw sensor readings (temperature °C, relative humidity %, pressure kPa, vibration mm/s) "
        "from every plant, one row per reading, as landed under raw/sensor-data/YYYY/MM/DD/."
    ),
)

EQUIPMENT_LOGS = SourceSpec(
    name="equipment_logs",
    landing_prefix="raw/equipment-logs",
    formats=("json",),
    partitioning=Grain.DAILY,
    columns={
        "event_id": "string",
        "plant_id": "string",
        "equipment_id": "string",
        "timestamp": "timestamp",
        "event_type": "string",
        "severity": "string",
        "status_code": "long",
        "message": "string",
        "operator_id": "string",
        "runtime_hours": "double",
    },
    key_columns=("event_id",),
    event_time_column="timestamp",
    freshness_minutes=15,
    quality=QualityRules(
        ranges=(
            ValueRange("status_code", 0, 9999),
            ValueRange("runtime_hours", 0.0, 200_000.0),
        ),
        allowed=(AllowedValues("severity", ("INFO", "WARN", "ERROR", "CRITICAL")),),
        required=("event_id", "equipment_id", "timestamp", "event_type", "severity"),
    ),
    description=(
        "Equipment event log entries (start/stop, alarms, maintenance, status) as landed "
        "under raw/equipment-logs/YYYY/MM/DD/, one row per event."
    ),
)

QUALITY_METRICS = SourceSpec(
    name="quality_metrics",
    landing_prefix="raw/quality-metrics",
    formats=("parquet", "csv"),
    partitioning=Grain.HOURLY,
    columns={
        "batch_id": "string",
        "line_id": "string",
        "product_id": "string",
        "measured_at": "timestamp",
        "metric_name": "string",
        "metric_value": "double",
        "lower_spec": "double",
        "upper_spec": "double",
        "unit": "string",
        "inspector_id": "string",
        "passed": "boolean",
    },
    key_columns=("batch_id", "metric_name", "measured_at"),
    event_time_column="measured_at",
    freshness_minutes=75,
    quality=QualityRules(
        conditions=(
            RowCondition(
                "spec_limits_ordered", "lower_spec <= upper_spec", ("lower_spec", "upper_spec"),
                "a row's lower spec limit is not above its upper one",
            ),
            # An out-of-spec part is a real measurement (passed=false), not bad data; a value
            # outside its own row's limits that says it passed (or the reverse) is bad data.
            RowCondition(
                "passed_matches_spec",
                "passed = (metric_value BETWEEN lower_spec AND upper_spec)",
                ("metric_value", "lower_spec", "upper_spec", "passed"),
                "passed is true exactly when metric_value lies within [lower_spec, upper_spec]",
            ),
        ),
        required=("batch_id", "metric_name", "measured_at", "metric_value"),
    ),
    description=(
        "Hourly quality measurements per production batch (dimensions, weights, defect "
        "counts against spec limits) as landed under raw/quality-metrics/YYYY/MM/DD/HH/."
    ),
)

CATALOG: dict[str, SourceSpec] = {
    spec.name: spec for spec in (SENSOR_DATA, EQUIPMENT_LOGS, QUALITY_METRICS)
}


def get_source(name: str) -> SourceSpec:
    """The catalog entry for ``name``, with the known names in the error when it is unknown."""
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownSourceError(
            f"unknown source {name!r}; known sources: {', '.join(CATALOG)}"
        ) from None
