"""The console script as a user runs it: generate, ingest, then inspect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]


def run(env, *args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "manufacturing-ingest"  # the installed console script
    return subprocess.run([str(script), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_generate_ingest_and_inspect(tmp_path: Path):
    env = {**os.environ, "MANUFACTURING_LANDING_URL": str(tmp_path / "landing"),
           "MANUFACTURING_LAKEHOUSE_URL": str(tmp_path / "lakehouse"),
           "MANUFACTURING_SPARK_MASTER": "local[2]", "MANUFACTURING_SPARK_DRIVER_MEMORY": "1g"}
    env.pop("DAGSTER_HOME", None)
    generated = run(env, "generate", "--source", "sensor_data", "--date", "2026-01-15",
                    "--files", "3", "--rows", "40", "--gzip", "--extra-columns")
    assert generated.returncode == 0, generated.stderr
    assert "sensor_data: wrote 3 files" in generated.stdout
    broken = tmp_path / "landing/raw/sensor-data/2026/01/15/broken.csv.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")

    ingested = run(env, "ingest", "--source", "sensor_data", "--partition", "2026-01-15")

    assert ingested.returncode == 1  # a failed file is reported, and the exit code says so
    assert "sensor_data: 120 rows from 3 files (0 already in, 1 failed, 0 ignored)" \
        in ingested.stdout
    assert "claimed batch 0" in ingested.stderr  # progress is shown while it works
    assert "will be retried on the next run" in ingested.stderr

    files = run(env, "files", "sensor_data", "2026-01-15")
    assert files.returncode == 0, files.stderr
    lines = files.stdout.splitlines()
    assert sum(line.startswith("committed") and " 40 " in line for line in lines) == 3
    (failed,) = [line for line in lines if line.startswith("failed")]
    assert "broken.csv.gz" in failed and "gzip" in failed

    history = run(env, "history", "sensor_data")
    assert history.returncode == 0, history.stderr
    (commit,) = [line for line in history.stdout.splitlines() if line.strip().startswith("0 ")]
    assert "120" in commit and "firmware_version" in commit

    rows = run(env, "rows")
    assert "manufacturing_bronze.sensor_data" in rows.stdout and " 120 " in rows.stdout
