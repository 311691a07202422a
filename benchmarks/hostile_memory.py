#!/usr/bin/env python
"""Peak memory of an ingest run with decompression bombs in its batch, against the same run
without them.

Two landing folders under ``benchmarks/.work/hostile_memory/`` (git-ignored) hold the same good
sensor_data files for one day; the second also holds three 1 GiB-when-decompressed gzip bombs
(``--bomb-size``): zeros named ``.csv.gz``, zeros named ``.json.gz`` and newlines named
``.csv.gz``. Each folder is ingested by ``manufacturing-ingest ingest`` as its own process (as a
user would), while the peak RSS of that process and all of its children (the JVM and its
Python workers) is sampled every 0.1 s. Reported: both peaks, their difference (goal: under
2 GB), the wall time of each run and what happened to the bombs (they must fail, the good files
must land). Figures go to ``benchmarks/results/hostile_memory.json``.

    python benchmarks/hostile_memory.py [--bomb-size 1073741824] [--good-files 4]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work" / "hostile_memory"
RESULTS = REPO / "benchmarks" / "results" / "hostile_memory.json"
DAY_FOLDER = "raw/sensor-data/2026/01/15"
GOAL_BYTES = 2 * 1000**3
MB = 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bomb-size", type=int, default=1 << 30,
                        help="decompressed bytes of each bomb (1 GiB)")
    parser.add_argument("--good-files", type=int, default=4)
    args = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    plain, bombed = WORK / "plain", WORK / "bombed"
    for landing in (plain, bombed):
        generate_good(landing, args.good_files)
    for name, unit in (("zeros.csv.gz", b"\0"), ("zeros.json.gz", b"\0"),
                       ("newlines.csv.gz", b"\n")):
        write_bomb(bombed / DAY_FOLDER / name, unit, args.bomb_size)

    runs = {name: ingest(landing, WORK / f"lakehouse-{name}")
            for name, landing in (("without_bombs", plain), ("with_bombs", bombed))}
    extra = runs["with_bombs"]["peak_rss_bytes"] - runs["without_bombs"]["peak_rss_bytes"]
    results = {
        "bomb_size_bytes": args.bomb_size,
        "good_files": args.good_files,
        "runs": runs,
        "extra_peak_rss_bytes": extra,
        "goal_extra_bytes": GOAL_BYTES,
        "goal_met": extra < GOAL_BYTES,
        "command": "python benchmarks/hostile_memory.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for name, run in runs.items():
        print(f"{name:14} peak RSS {run['peak_rss_bytes'] / MB:7.0f} MB  "
              f"{run['seconds']:5.1f} s  exit {run['exit_code']}  {run['summary']}")
    print(f"extra peak RSS with the bombs: {extra / MB:.0f} MB "
          f"(goal < {GOAL_BYTES / MB:.0f} MB: {'met' if extra < GOAL_BYTES else 'NOT met'})")
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


def generate_good(landing: Path, files: int) -> None:
    from datetime import date

    from manufacturing_ingest.generate import GenerateOptions, generate

    generate(landing, "sensor_data", date(2026, 1, 15),
             options=GenerateOptions(files=files, rows_per_file=20_000))


def write_bomb(path: Path, unit: bytes, size: int) -> None:
    """``size`` bytes of ``unit`` gzip-compressed, streamed (about 1 MB on disk per GiB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = unit * (8 * MB)
    with gzip.open(path, "wb", compresslevel=9) as out:
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            out.write(piece)
            written += len(piece)


def ingest(landing: Path, lakehouse: Path) -> dict:
    env = {**os.environ, "MANUFACTURING_LANDING_URL": str(landing),
           "MANUFACTURING_LAKEHOUSE_URL": str(lakehouse)}
    env.pop("DAGSTER_HOME", None)
    script = Path(sys.executable).parent / "manufacturing-ingest"
    started = time.monotonic()
    process = subprocess.Popen([str(script), "ingest", "--source", "sensor_data",
                                "--partition", "2026-01-15"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = PeakTreeRss(process.pid)
    peak.start()
    out, err = process.communicate(timeout=1800)
    peak.stop()
    failed = [line for line in err.splitlines() if "FAILED" in line]
    return {"peak_rss_bytes": peak.peak, "seconds": round(time.monotonic() - started, 1),
            "exit_code": process.returncode, "summary": out.strip().splitlines()[-1:],
            "failed_files": [line.split("FAILED ", 1)[-1][:200] for line in failed]}


class PeakTreeRss(threading.Thread):
    """The largest sum of RSS over a process and its descendants, sampled every 0.1 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                family = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                family = []
            total = 0
            for process in family:
                try:
                    # A JVM's fork on its way to exec a helper reports the JVM's pages again.
                    parent = process.parent()
                    if parent is not None and parent.name().startswith("java") \
                            and process.name().startswith("java"):
                        continue
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._done.wait(0.1)

    def stop(self) -> None:
        self._done.set()
        self.join()


if __name__ == "__main__":
    sys.exit(main())
