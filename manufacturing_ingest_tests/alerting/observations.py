"""Observations as the alert sensor would report them, and the sentinel secrets."""

from __future__ import annotations

from datetime import UTC, datetime

from manufacturing_ingest.alerting import AlertKind, Observation, Severity

WEBHOOK_TOKEN = "T0KEN-SENTINEL-7f3a9c2e"
SMTP_USER = "dagster-alerts"
SMTP_PASSWORD = "pw-SENTINEL-51d0e2b8"

T0 = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
RUN_URL = "http://localhost:3000/runs/5c1e0c6a-2f4b-4d7e-9a11-0b6f2f1d3c55"


def backlog(failing: bool, at: datetime, partition: str = "2026-01-15") -> Observation:
    """The landing_backlog check of sensor_data, as the alert sensor would report it."""
    return Observation(
        subject=f"check:manufacturing_bronze/sensor_data:landing_backlog:{partition}",
        failing=failing,
        kind=AlertKind.CHECK_FAILED,
        severity=Severity.WARN,
        title=f"landing_backlog on manufacturing_bronze/sensor_data {partition}",
        observed_at=at,
        asset="manufacturing_bronze/sensor_data",
        check="landing_backlog",
        partition=partition,
        figures={"uncommitted": 12 if failing else 0,
                 "oldest_age_minutes": 75.5 if failing else 0.0},
        run_url=RUN_URL,
        detail="Landed objects waiting longer than 1 h for bronze." if failing else "",
    )


def freshness(failing: bool, at: datetime) -> Observation:
    return Observation(
        subject="freshness:manufacturing_bronze/machine_events",
        failing=failing,
        kind=AlertKind.FRESHNESS_FAILED,
        severity=Severity.ERROR,
        title="manufacturing_bronze/machine_events",
        observed_at=at,
        asset="manufacturing_bronze/machine_events",
        figures={"minutes_since_last_materialization": 22},
    )


def run_failed(run_id: str, at: datetime) -> Observation:
    return Observation(
        subject=f"run:{run_id}",
        failing=True,
        kind=AlertKind.RUN_FAILED,
        severity=Severity.ERROR,
        title=f"manufacturing_bronze/sensor_data run {run_id[:8]}",
        observed_at=at,
        asset="manufacturing_bronze/sensor_data",
        partition="2026-01-15",
        run_url=f"http://localhost:3000/runs/{run_id}",
        detail="DeltaConcurrentModificationException after 5 attempts",
    )


def sensor_tick(failing: bool, at: datetime) -> Observation:
    return Observation(
        subject="sensor:sensor_data_landing_sensor",
        failing=failing,
        kind=AlertKind.SENSOR_TICK_FAILED,
        severity=Severity.ERROR,
        title="sensor_data_landing_sensor",
        observed_at=at,
        detail="LandingZoneError: access denied listing s3://plant-landing/raw/sensor-data/"
        if failing else "",
    )
