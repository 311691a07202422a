"""The ledger read without Spark (delta-rs), as the sensors and the backlog check do it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from deltalake import write_deltalake

from manufacturing_ingest.engine.delta import local_table_folder
from manufacturing_ingest.engine.ledger import EventKind, LedgerEvent, _arrow_rows, read_events

READ_AND_EXIT = """
import sys
from manufacturing_ingest.engine.ledger import read_events
events = read_events(sys.argv[1], "sensor_data", ["2026-01-15"])
print(len(events))
"""


def _ledger(path, n: int) -> None:
    now = datetime.now(UTC)
    events = [LedgerEvent(source="sensor_data", event=EventKind.COMMITTED,
                          object_key=f"raw/sensor-data/2026/01/15/f{k}.csv", etag=f"e{k}",
                          object_uri=f"s3://landing/raw/sensor-data/2026/01/15/f{k}.csv",
                          partition_key="2026-01-15", rows=10, batch_version=k)
              for k in range(n)]
    for k in range(0, n, 5):  # several commits, several files, as a day of batches leaves
        write_deltalake(str(path), _arrow_rows(events[k:k + 5], now), mode="append",
                        partition_by=["source"])


def test_a_process_that_reads_the_ledger_exits_cleanly(tmp_path):
    """A CLI or run process that read the ledger must exit 0 once its work is done, every time:
    Arrow's scanner threads alive at interpreter exit made most such processes abort (134)."""
    _ledger(tmp_path / "ledger", 40)
    assert len(read_events(str(tmp_path / "ledger"), "sensor_data", ["2026-01-15"])) == 40
    outcomes = [subprocess.run([sys.executable, "-c", READ_AND_EXIT, str(tmp_path / "ledger")],
                               capture_output=True, text=True, timeout=120) for _ in range(8)]
    assert [(r.returncode, r.stdout.strip()) for r in outcomes] == [(0, "40")] * 8, \
        [r.stderr[-500:] for r in outcomes if r.returncode]


def test_only_a_delta_table_folder_of_this_machine_is_read_in_process(tmp_path):
    """With Spark Connect a local-looking lakehouse path may name the server's disk: a folder
    missing here must go to Spark, never read as an empty ledger (every file would look new)."""
    _ledger(tmp_path / "ledger", 5)
    here = str(tmp_path / "ledger")
    assert local_table_folder(here) == here
    assert local_table_folder(f"file://{here}") == here
    assert local_table_folder(str(tmp_path / "on-the-server-only")) is None
    assert local_table_folder(str(tmp_path)) is None  # a folder, but no Delta table
    assert local_table_folder("s3://lakehouse/_manufacturing_ingest/file_ledger") is None
    assert local_table_folder("main.manufacturing_bronze.sensor_data") is None
