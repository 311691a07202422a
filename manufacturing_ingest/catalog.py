"""The source catalog: one ``SourceSpec`` per landing source drives assets, sensors and checks.

Adding a source is one entry here plus its columns; nothing else is written per source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["string", "double", "long", "boolean", "timestamp"]
Partitioning = Literal["daily", "hourly"]
FileFormat = Literal["csv", "json", "parquet"]

BRONZE_SCHEMA = "manufacturing_bronze"
# Columns the platform adds to every bronze row, after the source's own.
SOURCE_FILE_COLUMN = "_source_file"
INGESTED_AT_COLUMN = "_ingested_at"
RESCUED_DATA_COLUMN = "_rescued_data"
PARTITION_COLUMNS: dict[Partitioning, tuple[str, ColumnType]] = {
    "daily": ("_partition_date", "date"),  # type: ignore[dict-item]
    "hourly": ("_partition_hour", "timestamp"),
}


@dataclass(frozen=True)
class SourceSpec:
    """Everything the platform knows about one landing source."""

    name: str
    landing_prefix: str
    formats: tuple[FileFormat, ...]
    partitioning: Partitioning
    columns: dict[str, ColumnType]
    key_columns: tuple[str, ...]
    event_time_column: str
    freshness_minutes: int
    description: str
    # Plausible physical ranges per numeric column, used by the quality checks.
    value_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

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
    def partition_column(self) -> str:
        return PARTITION_COLUMNS[self.partitioning][0]

    @property
    def ledger_app_id(self) -> str:
        """Delta ``txnAppId`` of this source's bronze writes."""
        return f"manufacturing_ingest/{self.name}"


SENSOR_DATA = SourceSpec(
    name="sensor_data",
    landing_prefix="raw/sensor-data",
    formats=("csv", "json"),
    partitioning="daily",
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
    description=(
        "Raw sensor readings (temperature °C, relative humidity %, pressure kPa, vibration mm/s) "
        "from every plant, one row per reading, as landed under raw/sensor-data/YYYY/MM/DD/."
    ),
    value_ranges={
        "temperature": (-40.0, 150.0),
        "humidity": (0.0, 100.0),
        "pressure": (80.0, 120.0),
        "vibration": (0.0, 50.0),
    },
)

EQUIPMENT_LOGS = SourceSpec(
    name="equipment_logs",
    landing_prefix="raw/equipment-logs",
    formats=("json",),
    partitioning="daily",
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
    description=(
        "Equipment event log entries (start/stop, alarms, maintenance, status) as landed "
        "under raw/equipment-logs/YYYY/MM/DD/, one row per event."
    ),
    value_ranges={"runtime_hours": (0.0, 200_000.0), "status_code": (0.0, 9999.0)},
)

QUALITY_METRICS = SourceSpec(
    name="quality_metrics",
    landing_prefix="raw/quality-metrics",
    formats=("parquet", "csv"),
    partitioning="hourly",
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
    description=(
        "Hourly quality measurements per production batch (dimensions, weights, defect "
        "counts against spec limits) as landed under raw/quality-metrics/YYYY/MM/DD/HH/."
    ),
    value_ranges={},
)

CATALOG: dict[str, SourceSpec] = {
    spec.name: spec for spec in (SENSOR_DATA, EQUIPMENT_LOGS, QUALITY_METRICS)
}


def get_source(name: str) -> SourceSpec:
    """The catalog entry for ``name``, with the known names in the error when it is unknown."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known sources: {', '.join(CATALOG)}") from None
