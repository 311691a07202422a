"""Realistic sample files for the landing zone, with switches for the trouble real plants send.

Sensors have their own baselines, a daily temperature cycle and noise; equipment emits start,
stop, status, alarm and maintenance events; quality batches are measured against spec limits.
Anomalies (out-of-range and non-numeric values), duplicate rows, late files (older readings
landing after the day), extra columns and gzip are all opt-in, so tests can ask for exactly the
trouble they check. No reading is stamped after the moment it is generated: for today, files
cover the time up to now, and windows that have not begun are not written.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.errors import UserError
from manufacturing_ingest.partitioning import Grain

PLANTS = ("P01", "P02", "P03")
LINES_PER_PLANT = 4
SENSORS_PER_LINE = 5
EVENT_TYPES = np.array(["STATUS", "START", "STOP", "ALARM", "MAINTENANCE"])
EVENT_WEIGHTS = np.array([0.70, 0.10, 0.10, 0.07, 0.03])
SEVERITY = {"STATUS": "INFO", "START": "INFO", "STOP": "INFO", "ALARM": "ERROR",
            "MAINTENANCE": "WARN"}
QUALITY_METRICS = (  # name, unit, nominal, tolerance
    ("diameter", "mm", 25.0, 0.05),
    ("length", "mm", 120.0, 0.2),
    ("weight", "g", 310.0, 2.5),
    ("surface_roughness", "um", 0.8, 0.3),
    ("hardness", "HRC", 58.0, 2.0),
)


@dataclass(frozen=True)
class GenerateOptions:
    files: int = 4
    rows_per_file: int = 1000
    file_format: str | None = None  # default: the source's first format
    compress: bool = False
    anomaly_rate: float = 0.0
    duplicate_rate: float = 0.0
    late_files: int = 0
    extra_columns: bool = False
    seed: int = 7

    def __post_init__(self):
        for name in ("files", "rows_per_file"):
            if getattr(self, name) < 1:
                raise GenerateError(f"{name} must be 1 or more, not {getattr(self, name)}")
        if self.late_files < 0:
            raise GenerateError(f"late_files must be 0 or more, not {self.late_files}")
        for name in ("anomaly_rate", "duplicate_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise GenerateError(f"{name} is a share of rows between 0 and 1, "
                                    f"not {getattr(self, name)}")


class GenerateError(UserError, ValueError):
    """Sample data that cannot be generated as asked."""


# Readings end this long before the moment of generation: a sensor whose reading is moved on
# by a millisecond (``_one_reading_per_sensor_and_ms``) still reads before it.
_BEFORE_NOW = timedelta(seconds=1)


def generate(landing_root: Path, source: str, day: date, hour: int | None = None,
             options: GenerateOptions | None = None, now: datetime | None = None) -> list[Path]:
    """Write sample files for one day (or one hour, for hourly sources); returns their paths.

    Nothing is stamped after ``now`` (default: the clock): on the current day a file's window
    ends at ``now``, and windows (for hourly sources, partitions) that start later are not
    written. A day or hour that has not begun is a ``GenerateError``.
    """
    options = options or GenerateOptions()
    now = now or datetime.now(UTC)
    spec = get_source(source)
    fmt = options.file_format or spec.formats[0]
    if fmt not in spec.formats:
        raise GenerateError(f"{source} takes {', '.join(spec.formats)}, not {fmt}")
    if hour is not None and not 0 <= hour <= 23:
        raise GenerateError(f"hour is 0 to 23, not {hour}")
    if datetime(day.year, day.month, day.day, hour or 0, tzinfo=UTC) >= now - _BEFORE_NOW:
        what = f"{day} {hour:02d}:00" if hour is not None else str(day)
        raise GenerateError(f"{what} UTC has not begun yet: sample readings are never stamped "
                            f"after the moment they are generated ({now:%Y-%m-%d %H:%M} UTC)")
    rng = np.random.default_rng([options.seed, day.toordinal(), hour or 0,
                                 list(CATALOG).index(source)])
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    # One window per partition of the day (24 for an hourly source), or just the asked hour.
    starts = spec.partitions.keys_between(spec.partitions.key_at(day_start),
                                          spec.partitions.key_at(day_start.replace(hour=23)))
    if hour is not None and spec.partitioning is Grain.HOURLY:
        starts = [spec.partitions.key_at(day_start.replace(hour=hour))]
    written: list[Path] = []
    latest = now - _BEFORE_NOW
    for key in starts:
        start = spec.partitions.parse(key)
        if start >= latest:
            break  # this partition and the ones after it have not begun
        span = spec.partitions.step
        folder = landing_root / spec.landing_prefix / spec.partitions.prefix(key)
        folder.mkdir(parents=True, exist_ok=True)
        total_files = options.files + options.late_files
        for index in range(total_files):
            late = index >= options.files
            window = span / options.files
            slot = index if not late else rng.integers(0, options.files)
            window_start = start + window * int(slot)
            if window_start >= latest:
                continue  # a window that has not begun
            frame = _BUILDERS[source](rng, window_start, min(window, latest - window_start),
                                      options.rows_per_file, options)
            frame = _with_trouble(rng, frame, spec.key_columns, options)
            name = f"{source.replace('_', '-')}-{window_start:%H%M}-{index:04d}"
            if late:
                name += "-late"
            path = folder / f"{name}.{'jsonl' if fmt == 'json' else fmt}"
            if options.compress and fmt != "parquet":
                path = path.with_name(path.name + ".gz")
            _write(frame, path, fmt)
            landed = window_start + window + timedelta(minutes=2)
            if late:
                landed = start + span + timedelta(hours=2)
            stamp = min(landed, now).timestamp()  # never land in the future
            os.utime(path, (stamp, stamp))
            written.append(path)
    return written


def _times(rng, start: datetime, window: timedelta, rows: int) -> pd.Series:
    offsets = np.sort(rng.uniform(0, window.total_seconds(), rows))
    base = pd.Timestamp(start)
    return pd.Series(base + pd.to_timedelta(np.round(offsets * 1000), unit="ms"))


def _one_reading_per_sensor_and_ms(ids: np.ndarray, when: pd.Series
                                    ) -> tuple[np.ndarray, pd.Series]:
    """(sensor_id, timestamp) is sensor_data's key: a sensor drawn twice in one millisecond
    (about a thousand times in a 5-million-row day) has the later reading moved on by 1 ms, so
    clean sample data has no duplicates; ``duplicate_rate`` adds them on purpose."""
    ms = (when.astype("int64") // 1_000_000).to_numpy()  # epoch milliseconds
    while True:
        key = ids.astype(np.int64) * (1 << 42) + (ms - ms.min())
        _, first = np.unique(key, return_index=True)
        if len(first) == len(key):
            break
        repeated = np.ones(len(key), dtype=bool)
        repeated[first] = False
        ms[repeated] += 1
    order = np.argsort(ms, kind="stable")
    return ids[order], pd.Series(pd.to_datetime(ms[order], unit="ms", utc=True))


def _sensor_rows(rng, start, window, rows, options) -> pd.DataFrame:
    sensors = [(p, f"{p}-L{line}", f"{p}-L{line}-S{s:02d}") for p in PLANTS
               for line in range(1, LINES_PER_PLANT + 1) for s in range(1, SENSORS_PER_LINE + 1)]
    ids = rng.integers(0, len(sensors), rows)
    # Each sensor keeps its own baseline from run to run: seed from the sensor, not the file.
    base = np.random.default_rng(1234).normal(size=(len(sensors), 4))
    ids, when = _one_reading_per_sensor_and_ms(ids, _times(rng, start, window, rows))
    hour_of_day = (when.dt.hour + when.dt.minute / 60).to_numpy()
    cycle = np.sin(2 * np.pi * (hour_of_day - 9) / 24)
    frame = pd.DataFrame({
        "plant_id": [sensors[i][0] for i in ids],
        "line_id": [sensors[i][1] for i in ids],
        "sensor_id": [sensors[i][2] for i in ids],
        "timestamp": when.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str.replace(
            r"(\.\d{3})\d{3}Z$", r"\1Z", regex=True),
        "temperature": np.round(68 + 6 * base[ids, 0] + 4 * cycle + rng.normal(0, 0.6, rows), 2),
        "humidity": np.round(np.clip(45 + 8 * base[ids, 1] - 5 * cycle
                                     + rng.normal(0, 1.5, rows), 0, 100), 2),
        "pressure": np.round(101.3 + 1.2 * base[ids, 2] + rng.normal(0, 0.15, rows), 3),
        "vibration": np.round(np.abs(2.5 + 0.8 * base[ids, 3] + rng.gamma(1.5, 0.3, rows)), 3),
    })
    if options.extra_columns:
        frame["firmware_version"] = rng.choice(["4.1.0", "4.2.1"], rows)
    return frame


def _equipment_rows(rng, start, window, rows, options) -> pd.DataFrame:
    kinds = rng.choice(EVENT_TYPES, rows, p=EVENT_WEIGHTS)
    equipment = rng.integers(1, 41, rows)
    when = _times(rng, start, window, rows)
    frame = pd.DataFrame({
        "event_id": [f"EV-{start:%Y%m%d%H%M}-{rng.integers(1 << 40):010x}" for _ in range(rows)],
        "plant_id": [PLANTS[e % len(PLANTS)] for e in equipment],
        "equipment_id": [f"EQ-{e:03d}" for e in equipment],
        "timestamp": when.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "+00:00",
        "event_type": kinds,
        "severity": [SEVERITY[k] for k in kinds],
        "status_code": np.where(kinds == "ALARM", rng.integers(500, 600, rows),
                                rng.integers(100, 300, rows)),
        "message": [f"{k.lower()} reported by controller" for k in kinds],
        "operator_id": [f"OP-{o:03d}" for o in rng.integers(1, 60, rows)],
        "runtime_hours": np.round(1000 + equipment * 37.5 + rng.uniform(0, 24, rows), 2),
    })
    if options.extra_columns:
        frame["controller_temp_c"] = np.round(rng.normal(45, 3, rows), 1)
    return frame


def _quality_rows(rng, start, window, rows, options) -> pd.DataFrame:
    metric = rng.integers(0, len(QUALITY_METRICS), rows)
    nominal = np.array([m[2] for m in QUALITY_METRICS])[metric]
    tolerance = np.array([m[3] for m in QUALITY_METRICS])[metric]
    value = nominal + rng.normal(0, tolerance / 2.5, rows)
    when = _times(rng, start, window, rows)
    batch = rng.integers(1, 9, rows)
    frame = pd.DataFrame({
        "batch_id": [f"B{start:%y%m%d%H}-{b:02d}" for b in batch],
        "line_id": [f"{PLANTS[b % 3]}-L{b % 4 + 1}" for b in batch],
        "product_id": [f"PRD-{100 + b % 5}" for b in batch],
        "measured_at": when.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "metric_name": [QUALITY_METRICS[m][0] for m in metric],
        "metric_value": np.round(value, 4),
        "lower_spec": nominal - tolerance,
        "upper_spec": nominal + tolerance,
        "unit": [QUALITY_METRICS[m][1] for m in metric],
        "inspector_id": [f"QI-{i:02d}" for i in rng.integers(1, 12, rows)],
        "passed": np.abs(value - nominal) <= tolerance,
    })
    if options.extra_columns:
        frame["gauge_id"] = [f"G-{g:03d}" for g in rng.integers(1, 30, rows)]
    return frame


_BUILDERS = {
    "sensor_data": _sensor_rows,
    "equipment_logs": _equipment_rows,
    "quality_metrics": _quality_rows,
}


def _with_trouble(rng, frame: pd.DataFrame, keys, options: GenerateOptions) -> pd.DataFrame:
    rows = len(frame)
    if options.anomaly_rate > 0 and rows:
        numeric = [c for c in frame.columns if frame[c].dtype.kind == "f"]
        picks = np.flatnonzero(rng.random(rows) < options.anomaly_rate)
        if numeric and len(picks):
            frame = frame.astype({c: "object" for c in numeric})
            for i in picks:
                column = numeric[rng.integers(0, len(numeric))]
                kind = rng.integers(0, 3)
                frame.at[i, column] = ("ERR" if kind == 0 else
                                       9999.0 if kind == 1 else -9999.0)
    if options.duplicate_rate > 0 and rows:
        dupes = frame[rng.random(rows) < options.duplicate_rate]
        frame = pd.concat([frame, dupes], ignore_index=True)
    return frame


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        table = pa.Table.from_pandas(frame.astype({c: "string" for c in frame.columns
                                                   if frame[c].dtype == object}),
                                     preserve_index=False)
        pq.write_table(table, path)
        return
    if fmt == "csv":
        buffer = io.BytesIO()
        table = pa.Table.from_pandas(frame.astype({c: "string" for c in frame.columns
                                                   if frame[c].dtype == object}),
                                     preserve_index=False)
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(quoting_style="needed"))
        data = buffer.getvalue()
    else:
        lines = [json.dumps(record, default=_plain) for record in frame.to_dict("records")]
        data = ("\n".join(lines) + "\n").encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6)
    path.write_bytes(data)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__}")
