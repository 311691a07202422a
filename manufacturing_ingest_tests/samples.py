"""Builders for the small sample files tests land; one spelling of each source's layout.

Bigger, realistic days come from ``manufacturing_ingest.generate``; these are for tests that
need to say exactly which rows a file holds.
"""

from __future__ import annotations

from datetime import date

DAY = date(2026, 1, 15)
SENSOR_HEADER = "plant_id,line_id,sensor_id,timestamp,temperature,humidity,pressure,vibration"
CSV_HEADER = SENSOR_HEADER + "\n"


def sensor_line(sensor_id: str, day: date = DAY) -> str:
    """One sensor_data CSV line (no newline) with plausible readings at 10:00 UTC of ``day``."""
    return f"P01,P01-L1,{sensor_id},{day:%Y-%m-%d}T10:00:00Z,21.5,40,101.3,2.5"


def sensor_lines(*sensor_ids: str, day: date = DAY) -> str:
    """CSV lines (no header), one per sensor id."""
    return "".join(sensor_line(i, day) + "\n" for i in sensor_ids)


def sensor_csv(*sensor_ids: str, day: date = DAY) -> str:
    """A whole sensor_data CSV file: the header and one line per sensor id."""
    return CSV_HEADER + sensor_lines(*sensor_ids, day=day)


def sensor_rows(n: int, start: int = 0) -> str:
    """``n`` CSV lines (no header) with distinct sensor ids, minutes and readings on ``DAY``."""
    return "".join(
        f"P01,P01-L1,S{i:03d},{DAY:%Y-%m-%d}T10:{i % 60:02d}:00Z,{20 + i / 10},{40 + i % 50},"
        f"101.{i % 9},{1 + i % 4}.5\n" for i in range(start, start + n)
    )


def numbered_sensor_csv(tag: str, n: int, day: date = DAY) -> str:
    """A sensor_data CSV file of ``n`` rows with ids ``<tag>-0`` … on ``day``."""
    return CSV_HEADER + "".join(
        f"P01,L1,{tag}-{k},{day:%Y-%m-%d}T01:{k % 60:02d}:00Z,{20 + k % 7},40,101,2\n"
        for k in range(n)
    )
