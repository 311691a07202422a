"""The ledger read without Spark (delta-rs), as the sensors and the backlog check do it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from deltalake import write_deltalake

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
