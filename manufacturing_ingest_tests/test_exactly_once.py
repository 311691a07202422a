"""Exactly once under crashes: SIGKILL the ingest process at random points, rerun, count rows."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from deltalake import DeltaTable

from manufacturing_ingest.generate import GenerateOptions, generate

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

# Kill right after the engine says it reached a phase, or after a random delay.
PHASES = ("claimed batch", "bronze commit version", "ledger updated", "files landed")


def _ingest_process(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "manufacturing_ingest.cli", "ingest", "--source", "sensor_data",
         "--partition", "2026-01-15"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the JVM too, as a crashed host would
    except ProcessLookupError:
        pass


def _run_and_kill(env, trigger: str | None, delay: float, log: list[str]) -> bool:
    """Run one ingest; SIGKILL it at the trigger. True when it was killed before finishing."""
    process = _ingest_process(env)
    timer = threading.Timer(delay, _kill_group, [process]) if trigger is None else None
    if timer:
        timer.start()
    killed_at_phase = False
    assert process.stdout is not None
    for line in process.stdout:
        log.append(line.rstrip())
        if trigger and trigger in line:
            time.sleep(delay)
            _kill_group(process)
            killed_at_phase = True
            break
    process.wait(timeout=120)
    if timer:
        timer.cancel()
    return killed_at_phase or process.returncode == -signal.SIGKILL


def test_sigkill_at_random_points_then_rerun_lands_every_row_once(tmp_path: Path):
    rng = random.Random(20260115)
    landing, lakehouse = tmp_path / "landing", tmp_path / "lakehouse"
    env = {**os.environ, "MANUFACTURING_LANDING_URL": str(landing),
           "MANUFACTURING_LAKEHOUSE_URL": str(lakehouse), "MANUFACTURING_SPARK_MASTER": "local[2]",
           "MANUFACTURING_SPARK_DRIVER_MEMORY": "1g"}
    env.pop("DAGSTER_HOME", None)
    log: list[str] = []
    written: list[Path] = []
    kills = 0
    for round_number in range(6):
        # New files arrive between crashes, so later runs mix leftovers and fresh files.
        written += generate(landing, "sensor_data", date(2026, 1, 15), options=GenerateOptions(
            files=2, rows_per_file=300 + round_number, seed=round_number))
        # Names repeat across rounds with different seeds: keep them distinct objects.
        for path in written[-2:]:
            path.rename(path.with_name(f"r{round_number}-{path.name}"))
        written[-2:] = [p.with_name(f"r{round_number}-{p.name}") for p in written[-2:]]
        trigger = rng.choice([*PHASES, None])
        delay = rng.uniform(0.0, 0.6) if trigger else rng.uniform(4.0, 14.0)
        kills += _run_and_kill(env, trigger, delay, log)
    assert kills >= 4, "\n".join(log[-40:])

    final = subprocess.run(
        [sys.executable, "-m", "manufacturing_ingest.cli", "ingest", "--source", "sensor_data",
         "--partition", "2026-01-15"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert final.returncode == 0, final.stderr[-3000:]
    # Both recovery paths ran: a claim that reached bronze before the kill was recorded, and
    # a claim killed before its commit was abandoned and its files ingested again.
    said = "\n".join(log) + final.stderr
    progress = "\n".join(line for line in said.splitlines() if "sensor_data" in line)
    assert "by an interrupted run" in said, progress
    assert "never committed" in said, progress

    table = DeltaTable(str(lakehouse / "manufacturing_bronze" / "sensor_data")).to_pandas()
    per_file = table.groupby("_source_file").size().to_dict()
    expected = {p.resolve().as_uri(): sum(1 for _ in p.open()) - 1 for p in written}
    assert per_file == expected
    assert len(table) == sum(expected.values()) == 2 * sum(300 + r for r in range(6))
