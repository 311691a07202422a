"""Sample data: clean by default, so a clean day passes every quality check at any size."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from manufacturing_ingest.generate import (
    GenerateOptions,
    _one_reading_per_sensor_and_ms,
    _times,
    generate,
)


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
