"""Sample data: clean by default, so a clean day passes every quality check at any size."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.cli import main
from manufacturing_ingest.generate import (
    GenerateError,
    GenerateOptions,
    _one_reading_per_sensor_and_ms,
    _times,
    generate,
)
from manufacturing_ingest.partitioning import Grain


def test_no_sensor_reports_twice_in_one_millisecond_however_dense_the_day():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 120, 200_000)  # 200,000 readings of 120 sensors in half an hour
    when = _times(rng, datetime(2026, 1, 15, tzinfo=UTC), timedelta(minutes=30), 200_000)
    assert pd.DataFrame({"id": ids, "at": when}).duplicated().sum() > 50  # drawn at random

    kept_ids, kept_when = _one_reading_per_sensor_and_ms(ids, when)

    assert pd.DataFrame({"id": kept_ids, "at": kept_when}).duplicated().sum() == 0
    assert sorted(kept_ids.tolist()) == sorted(ids.tolist())  # every reading kept
    assert kept_when.is_monotonic_increasing
    assert (kept_when.max() - when.max()) <= pd.Timedelta(milliseconds=5)


def test_duplicates_appear_only_when_asked_for(tmp_path):
    def keys(folder, rate):
        paths = generate(folder, "sensor_data", date(2026, 1, 15), options=GenerateOptions(
            files=2, rows_per_file=20_000, duplicate_rate=rate))
        frame = pd.concat(pd.read_csv(p) for p in paths)
        return frame.duplicated(["sensor_id", "timestamp"]).sum()

    assert keys(tmp_path / "clean", 0.0) == 0
    assert keys(tmp_path / "dirty", 0.02) > 0


NUMERIC = {"sensor_data": ["temperature", "humidity", "pressure", "vibration"],
           "equipment_logs": ["runtime_hours"],
           "quality_metrics": ["metric_value", "lower_spec", "upper_spec"]}


def _read(paths) -> pd.DataFrame:
    """The generated files' rows, every value as the text written (CSV, JSON lines, Parquet)."""
    def one(path):
        if path.suffix == ".parquet":
            return pd.read_parquet(path).astype(str)
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False).astype(str)
        return pd.read_csv(path, dtype=str)
    return pd.concat(one(p) for p in paths)


@pytest.mark.parametrize("source", list(NUMERIC))
def test_no_reading_is_stamped_after_the_moment_of_generation(tmp_path, source):
    spec = get_source(source)
    now = datetime(2026, 3, 4, 13, 37, 21, 500_000, tzinfo=UTC)
    paths = generate(tmp_path, source, now.date(), options=GenerateOptions(files=8), now=now)

    frame = _read(paths)
    stamps = pd.to_datetime(frame[spec.event_time_column], utc=True, format="ISO8601")
    assert stamps.max() < now
    # The morning is there, up to the minute before now; nothing of the afternoon is written.
    assert stamps.min() < now.replace(hour=1)
    assert stamps.max() > now - timedelta(minutes=5)
    assert all(datetime.fromtimestamp(p.stat().st_mtime, UTC) <= now for p in paths)
    if spec.partitioning is Grain.HOURLY:
        assert {p.parent.name for p in paths} == {f"{h:02d}" for h in range(14)}


def test_a_day_or_hour_that_has_not_begun_is_refused_with_the_reason(tmp_path):
    now = datetime(2026, 3, 4, 13, 37, tzinfo=UTC)
    with pytest.raises(GenerateError, match="2026-03-05 UTC has not begun"):
        generate(tmp_path, "sensor_data", date(2026, 3, 5), now=now)
    with pytest.raises(GenerateError, match="2026-03-04 14:00 UTC has not begun"):
        generate(tmp_path, "quality_metrics", now.date(), hour=14, now=now)
    assert not any(tmp_path.rglob("*.*"))


@pytest.mark.parametrize("argv, message", [
    (["--rows", "-5"], "rows_per_file must be 1 or more, not -5"),
    (["--files", "0"], "files must be 1 or more, not 0"),
    (["--hour", "25"], "hour is 0 to 23, not 25"),
    (["--anomaly-rate", "1.5"], "anomaly_rate is a share of rows between 0 and 1, not 1.5"),
    (["--date", "9999-12-31"], "9999-12-31 UTC has not begun yet"),
])
def test_the_cli_refuses_impossible_sample_data_in_one_line(tmp_path, monkeypatch, capsys,
                                                             argv, message):
    monkeypatch.setenv("MANUFACTURING_LANDING_URL", str(tmp_path / "landing"))
    monkeypatch.setenv("MANUFACTURING_LAKEHOUSE_URL", str(tmp_path / "lakehouse"))

    code = main(["generate", "--source", "quality_metrics", *argv])

    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not any((tmp_path / "landing").rglob("*.*"))


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.2])
def test_the_share_of_anomalous_rows_is_the_one_asked_for(tmp_path, rate):
    rows = 20_000
    paths = generate(tmp_path / str(rate), "sensor_data", date(2026, 1, 15),
                     options=GenerateOptions(files=2, rows_per_file=rows // 2, anomaly_rate=rate))
    frame = _read(paths)
    values = frame[NUMERIC["sensor_data"]]
    anomalous = values.isin(["ERR", "9999.0", "-9999.0"]).any(axis=1)
    # Within four standard deviations of a binomial share: a seed that fails this is a bug.
    sigma = (rate * (1 - rate) / rows) ** 0.5
    assert abs(anomalous.mean() - rate) < 4 * sigma, anomalous.mean()
    # Every other row is clean: numeric and inside the catalog's ranges for the source.
    clean = values[~anomalous].astype(float)
    for bound in get_source("sensor_data").quality.ranges:
        assert clean[bound.column].between(bound.minimum, bound.maximum).all(), bound
