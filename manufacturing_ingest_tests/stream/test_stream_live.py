"""``manufacturing-ingest stream`` as an operator runs it: files land one every 1.5 s, the stream
is SIGKILLed mid-way (the seventh file waits for the kill) and started again, a backfill of the
same partition runs beside the restarted stream, and the stream is stopped with SIGTERM. The
scenario runs once (module fixture); each test asserts one thing a user relies on: every file in
bronze exactly once, the Dagster instance holding the micro-batches, the quality check over the
stream's window, a clean stop.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.generate import GenerateOptions, generate
from manufacturing_ingest.orchestration.names import bronze_asset_key, raw_asset_key

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

SPEC = get_source("sensor_data")
BIN = Path(sys.executable).parent
FILES = 18
EVERY_SECONDS = 1.5
ROWS = 120
BAD_FILE = 6  # every temperature out of range: the quality check's window must fail on it
KILL_AFTER_VISIBLE = 4  # files in bronze when the first stream is SIGKILLed
# The lander waits for the kill after this many files, so a slow first micro-batch (a cold JVM
# on a loaded machine) cannot take every file in one go; the 2 beyond KILL_AFTER_VISIBLE may be
# in flight when the kill comes, and the rest land while the stream is down and restarting.
LAND_BEFORE_KILL = KILL_AFTER_VISIBLE + 2


@dataclass
class Scenario:
    day: str
    expected: dict[str, int]  # file name -> data rows
    bad_name: str
    table: Path
    home: Path
    logs: list[str] = field(default_factory=list)
    killed_at_visible: int = 0
    stop_code: int | None = None
    stop_seconds: float = 0.0
    backfill: subprocess.CompletedProcess | None = None


def _files(work: Path, day) -> list[tuple[str, bytes, int]]:
    """FILES distinct sensor_data files for ``day``: one template, each copy with its own sensor
    ids (no key repeats across files); file BAD_FILE with every temperature at 999."""
    template = generate(work / "template", SPEC.name, day,
                        options=GenerateOptions(files=1, rows_per_file=ROWS, seed=5))[0]
    relative = template.relative_to(work / "template").as_posix()
    header, *rows = template.read_bytes().splitlines(keepends=True)
    columns = header.decode().strip().replace('"', "").split(",")
    temperature = columns.index("temperature")
    out = []
    for i in range(FILES):
        lines = []
        for row in rows:
            line = row.replace(b"-S", f"-T{i:02d}S".encode(), 1)
            if i == BAD_FILE:
                cells = line.rstrip(b"\n").split(b",")
                cells[temperature] = b"999.0"
                line = b",".join(cells) + b"\n"
            lines.append(line)
        out.append((relative.replace(".csv", f"-stream{i:02d}.csv"), header + b"".join(lines),
                    len(rows)))
    return out


def _visible(table: Path) -> Counter[str]:
    """Rows in bronze per file name."""
    if not (table / "_delta_log").exists():
        return Counter()
    try:
        column = DeltaTable(str(table)).to_pyarrow_table(columns=["_source_file"])["_source_file"]
    except Exception:  # noqa: BLE001 - the first commit is being written; look again
        return Counter()
    return Counter(uri.rsplit("/", 1)[-1] for uri in column.to_pylist())


def _start_stream(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "manufacturing-ingest"), "stream", "--source", SPEC.name,
         "--poll-seconds", "0.5", "--check-window", "5", "--retry-seconds", "5"],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True)


def _wait(what: str, condition, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"no {what} within {timeout:.0f} s\n{tails}")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    work = tmp_path_factory.mktemp("stream")
    landing, home = work / "landing", work / "dagster_home"
    landing.mkdir()
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "MANUFACTURING_LANDING_URL": str(landing),
           "MANUFACTURING_LAKEHOUSE_URL": str(work / "lakehouse"), "DAGSTER_HOME": str(home)}
    for name in ("MANUFACTURING_ENV", "MANUFACTURING_CATALOG", "MANUFACTURING_SPARK_REMOTE"):
        env.pop(name, None)  # the stream's own warm JVM, as the CLI runs it
    day = datetime.now(UTC).date()
    files = _files(work, day)
    table = work / "lakehouse" / "manufacturing_bronze" / SPEC.name
    found = Scenario(day=day.isoformat(), expected={k.rsplit("/", 1)[-1]: n for k, _, n in files},
                     bad_name=files[BAD_FILE][0].rsplit("/", 1)[-1], table=table, home=home)
    logs = [work / "stream-1.log", work / "stream-2.log"]

    killed = threading.Event()

    def land() -> None:
        for i, (key, body, _) in enumerate(files):
            if i == LAND_BEFORE_KILL:
                killed.wait(timeout=300)
            target = landing / key
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")  # hidden until renamed
            partial.write_bytes(body)
            partial.rename(target)
            if i < len(files) - 1:
                time.sleep(EVERY_SECONDS)

    first = _start_stream(env, logs[0])
    lander = threading.Thread(target=land)
    second = None
    try:
        _wait("first stream start", lambda: "watching" in logs[0].read_text(), 180, logs)
        lander.start()
        _wait(f"{KILL_AFTER_VISIBLE} files in bronze",
              lambda: len(_visible(table)) >= KILL_AFTER_VISIBLE, 120, logs)
        os.killpg(first.pid, signal.SIGKILL)  # the JVM too, as a crashed host would
        first.wait()
        found.killed_at_visible = len(_visible(table))
        killed.set()
        second = _start_stream(env, logs[1])
        # A backfill of the same partition while the restarted stream works on it.
        found.backfill = subprocess.run(
            [str(BIN / "manufacturing-ingest"), "ingest", "--source", SPEC.name,
             "--partition", found.day], env=env, capture_output=True, text=True, timeout=300)
        lander.join()
        _wait("every file in bronze", lambda: set(_visible(table)) >= set(found.expected), 180,
              logs)
        # A broken file (a gzip cut short) after the backfill: the stream reports and retries it.
        broken = landing / files[0][0].replace(".csv", "-broken.csv.gz")
        broken.write_bytes(gzip.compress(files[0][1])[:60])
        _wait("the broken file reported", lambda: "file not ingested, retried in 5 s"
              in logs[1].read_text(), 60, logs)
        time.sleep(6)  # one check window, so the window after the last micro-batch closes
        began = time.monotonic()
        second.send_signal(signal.SIGTERM)
        found.stop_code = second.wait(timeout=120)
        found.stop_seconds = time.monotonic() - began
    finally:
        killed.set()
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        lander.join()
    found.logs = [p.read_text() for p in logs]
    return found


def test_every_file_lands_exactly_once_through_a_sigkill_and_a_backfill(scenario):
    assert KILL_AFTER_VISIBLE <= scenario.killed_at_visible <= LAND_BEFORE_KILL < FILES
    assert scenario.backfill.returncode == 0, scenario.backfill.stderr[-3000:]
    assert _visible(scenario.table) == Counter(scenario.expected)
    keys = DeltaTable(str(scenario.table)).to_pyarrow_table(columns=["sensor_id", "timestamp"])
    pairs = list(zip(keys["sensor_id"].to_pylist(), keys["timestamp"].to_pylist(), strict=True))
    assert len(set(pairs)) == len(pairs) == sum(scenario.expected.values())


def test_sigterm_finishes_and_exits_zero(scenario):
    assert scenario.stop_code == 0, scenario.logs[1][-3000:]
    assert scenario.stop_seconds < 60
    assert "SIGTERM: stopping after the micro-batch under way" in scenario.logs[1]
    assert "stopped after" in scenario.logs[1]


def test_each_micro_batch_is_a_materialization_of_its_partition(scenario):
    with dg.DagsterInstance.from_config(str(scenario.home)) as instance:
        records = instance.fetch_materializations(bronze_asset_key(SPEC), limit=500).records
        observed = instance.fetch_observations(raw_asset_key(SPEC), limit=500).records
    streamed = [r for r in records if "stream" in r.asset_materialization.metadata]
    assert streamed, "no micro-batch reached the instance"
    assert {r.partition_key for r in records} == {scenario.day}
    # Two streams (the killed one and its successor) reported, each micro-batch with its figures.
    restarted = {r.asset_materialization.metadata["stream"].value for r in streamed}
    assert len(restarted) == 2 or scenario.logs[0].count("micro-batch") == 0, restarted
    metadata = next(r.asset_materialization.metadata for r in streamed
                    if r.asset_materialization.metadata["records"].value)
    for name in ("records", "files_processed", "landing_to_commit_seconds_max", "delta_version",
                 "micro_batch"):
        assert name in metadata, sorted(metadata)
    # Rows reported never exceed the rows landed (each commit is reported once, by its writer).
    reported = sum(r.asset_materialization.metadata["records"].value for r in records)
    assert reported <= sum(scenario.expected.values())
    # The broken file: a micro-batch that says so (the alert sensor's "Files not ingested").
    failed = [r.asset_materialization.metadata for r in streamed
              if r.asset_materialization.metadata["files_failed"].value]
    assert failed and "-broken.csv.gz" in failed[0]["failed_files"].value
    assert sum(r.asset_observation.metadata["files"].value for r in observed) >= 1


def test_the_quality_check_of_a_window_fails_on_the_bad_file(scenario):
    check = dg.AssetCheckKey(bronze_asset_key(SPEC), "quality")
    with dg.DagsterInstance.from_config(str(scenario.home)) as instance:
        history = instance.event_log_storage.get_asset_check_execution_history(check, limit=100)
    evaluations = [r.event.dagster_event.event_specific_data for r in history if r.event]
    assert all(e.partition == scenario.day for e in evaluations)
    failed = [e for e in evaluations if not e.passed]
    assert failed, [e.description for e in evaluations]
    # Exactly the bad file's rows fail, whichever writer (the stream's window, or the backfill
    # run) committed it.
    assert failed[0].metadata["failing_rows"].value == scenario.expected[scenario.bad_name]
    assert failed[0].severity is dg.AssetCheckSeverity.ERROR
