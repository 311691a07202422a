#!/usr/bin/env python
"""Ingest scaling: time and peak memory of the bronze asset against the size of the day.

One day of sensor_data CSV is generated per size (5,000,000 and 20,000,000 rows by default, in
files of 100,000 rows) under ``benchmarks/.work/scaling/`` (git-ignored) and reused by later
runs. Each size is then ingested by the ``manufacturing_bronze/sensor_data`` asset
(``materialize_partitions``, as ``manufacturing-ingest ingest`` does) in its **own fresh
process**, into an empty lakehouse: a cold JVM, as every Dagster run has, so the memory one
size needs cannot hide in a heap grown by another. That process samples its own peak RSS every
0.2 s the way ``ingest_throughput.py`` does: the Python process, the JVM and the JVM's Python
workers.

Reported per size: Spark start-up, the ingest call's seconds, the engine's own seconds, rows/s,
rows read back, and peak RSS (whole process, and during the ingest alone); and the ratio of the
largest size's peak RSS to the smallest's (goal: at most 1.10, i.e. memory does not grow with
the rows: nothing of the data is collected to the driver). Figures go to
``benchmarks/results/ingest_scaling.json``.

    python benchmarks/ingest_scaling.py [--rows 5000000,20000000] [--rows-per-file 100000]
                                        [--repeats 1] [--regenerate]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from ingest_throughput import (
    MB,
    PARTITION,
    REPO,
    SOURCE,
    PeakRss,
    _git,
    _shown,
    ensure_landed,
    machine,
    setup_logging,
)

DEFAULT_WORK = REPO / "benchmarks" / ".work" / "scaling"
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "ingest_scaling.json"
GOAL_PEAK_RATIO = 1.10

log = logging.getLogger("benchmarks.ingest_scaling")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="5000000,20000000",
                        help="comma-separated day sizes in rows (5000000,20000000)")
    parser.add_argument("--rows-per-file", type=int, default=100_000,
                        help="rows per CSV file (100000)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="fresh processes per size; medians are reported (1)")
    parser.add_argument("--regenerate", action="store_true",
                        help="write the landing files again even if they are already there")
    parser.add_argument("--driver-memory", default=None,
                        help="the JVM heap of every measured process "
                             "(MANUFACTURING_SPARK_DRIVER_MEMORY; default: the project's, 4g)")
    parser.add_argument("--work", default=str(DEFAULT_WORK),
                        help="scratch folder (benchmarks/.work/scaling)")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS),
                        help="where the JSON figures go (benchmarks/results/ingest_scaling.json)")
    # The measured process: ingests one landing root into one lakehouse, writes its figures.
    parser.add_argument("--child", nargs=3, metavar=("LANDING", "LAKEHOUSE", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup_logging()
    if args.child:
        return child(*(Path(p) for p in args.child))

    sizes = sorted({int(x) for x in args.rows.split(",") if x.strip()})
    if not sizes or any(s <= 0 or s % args.rows_per_file for s in sizes) or args.repeats <= 0:
        raise SystemExit("--rows must be positive multiples of --rows-per-file; --repeats > 0")
    work = Path(args.work).resolve()
    results_path = Path(args.results).resolve()
    git_commit = _git("rev-parse", "--short", "HEAD")
    git_dirty = bool(_git("status", "--porcelain", "--", "manufacturing_ingest", "pyproject.toml"))
    load_start = round(os.getloadavg()[0], 2)

    if args.driver_memory:
        os.environ["MANUFACTURING_SPARK_DRIVER_MEMORY"] = args.driver_memory  # the children's
    driver_memory = os.environ.get("MANUFACTURING_SPARK_DRIVER_MEMORY", "4g")
    landed = {}
    for rows in sizes:
        root = work / f"landing-{rows}"
        folder, files, size, seconds = ensure_landed(root, "csv", rows, rows // args.rows_per_file,
                                                     args.regenerate)
        landed[rows] = {"root": root, "files": len(files), "bytes": size,
                        "generate_seconds": round(seconds, 1) if seconds else "reused"}
    free = shutil.disk_usage(work).free
    log.info("%.1f GB free under %s", free / 1024**3, work)

    runs: dict[int, list[dict]] = {rows: [] for rows in sizes}
    for rep in range(1, args.repeats + 1):
        for rows in sizes:
            lakehouse = work / "lakehouse"
            shutil.rmtree(lakehouse, ignore_errors=True)
            out = work / "child.json"
            out.unlink(missing_ok=True)
            log.info("%d rows, %d/%d: a fresh process ingests the day", rows, rep, args.repeats)
            began = time.monotonic()
            subprocess.run([sys.executable, __file__, "--child", str(landed[rows]["root"]),
                            str(lakehouse), str(out)], check=True)
            record = json.loads(out.read_text())
            record["process_seconds"] = round(time.monotonic() - began, 2)
            runs[rows].append(record)
            log.info("%d rows: ingest %.1fs (engine %.1fs), peak RSS %d MB (ingest alone %d MB)",
                     rows, record["ingest_seconds"], record["engine_seconds"],
                     record["peak_rss_mb"], record["peak_rss_mb_ingest"])
            shutil.rmtree(lakehouse, ignore_errors=True)

    per_size = {}
    for rows in sizes:
        rs = runs[rows]
        med = {k: statistics.median(r[k] for r in rs) for k in
               ("spark_startup_seconds", "ingest_seconds", "engine_seconds",
                "engine_write_seconds", "process_seconds", "peak_rss_mb", "peak_rss_mb_ingest")}
        per_size[str(rows)] = {
            "data": {k: v for k, v in landed[rows].items() if k != "root"},
            "runs": rs,
            "median": {k: round(v, 2) for k, v in med.items()},
            "rows_per_second_ingest": round(rows / med["ingest_seconds"]),
            "rows_per_second_engine": round(rows / med["engine_seconds"]),
            "rows_read_back": sorted({r["rows"] for r in rs}),
        }
    small, large = per_size[str(sizes[0])], per_size[str(sizes[-1])]
    ratio = large["median"]["peak_rss_mb"] / small["median"]["peak_rss_mb"]
    ratio_ingest = large["median"]["peak_rss_mb_ingest"] / small["median"]["peak_rss_mb_ingest"]
    results = {
        "benchmark": "ingest_scaling",
        "recorded_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "load_average_start": load_start,
        "load_average_end": round(os.getloadavg()[0], 2),
        "command": f"python benchmarks/ingest_scaling.py --rows {args.rows} "
                   f"--rows-per-file {args.rows_per_file} --repeats {args.repeats} "
                   f"--driver-memory {driver_memory}",
        "driver_memory": driver_memory,
        "git_commit": git_commit,
        "git_dirty": git_dirty,
        "machine": runs[sizes[0]][0]["machine"],
        "source": SOURCE,
        "partition": PARTITION,
        "sizes": per_size,
        "peak_rss_ratio_largest_to_smallest": round(ratio, 3),
        "peak_rss_ratio_largest_to_smallest_ingest": round(ratio_ingest, 3),
        "time_ratio_largest_to_smallest": round(
            large["median"]["ingest_seconds"] / small["median"]["ingest_seconds"], 3),
        "goal_peak_rss_ratio": GOAL_PEAK_RATIO,
        "goal_met": ratio <= GOAL_PEAK_RATIO,
    }
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results)
    print(f"\nwrote {_shown(results_path)}")
    return 0


def child(landing: Path, lakehouse: Path, out: Path) -> int:
    """One ingest in this fresh process, measuring itself as ingest_throughput.py does."""
    os.environ["MANUFACTURING_ENV"] = "local"
    os.environ["MANUFACTURING_LANDING_URL"] = str(landing)
    os.environ["MANUFACTURING_LAKEHOUSE_URL"] = str(lakehouse)
    os.environ.pop("MANUFACTURING_SPARK_REMOTE", None)
    os.environ.pop("DAGSTER_HOME", None)
    memory = PeakRss(interval=0.2)
    memory.start()
    try:
        memory.phase = "spark_startup"
        from manufacturing_ingest.engine.spark import get_spark_session
        from manufacturing_ingest.settings import Settings

        settings = Settings.from_env()
        began = time.monotonic()
        spark = get_spark_session(settings.spark)
        startup = time.monotonic() - began
        memory.phase = "dagster_import"
        import manufacturing_ingest.definitions  # noqa: F401
        from manufacturing_ingest.catalog import CATALOG
        from manufacturing_ingest.engine.lakehouse import Lakehouse
        from manufacturing_ingest.orchestration.runs import materialize_partitions

        memory.phase = "ingest"
        began = time.monotonic()
        [result] = materialize_partitions(settings, [SOURCE], PARTITION)
        seconds = time.monotonic() - began
        memory.phase = "read_back"
        rows = spark.read.format("delta").load(
            Lakehouse(str(lakehouse)).table_path(CATALOG[SOURCE])).count()
        meta = result.metadata
        record = {
            "spark_startup_seconds": round(startup, 2),
            "ingest_seconds": round(seconds, 2),
            "engine_seconds": float(meta["seconds"]),
            "engine_write_seconds": float(meta["write_seconds"]),
            "records_reported": meta["records"],
            "files_failed": meta["files_failed"],
            "rows": rows,
            "machine": machine(spark),
        }
    finally:
        memory.stop()
    record["peak_rss_mb"] = round(memory.peak / MB)
    record["peak_rss_mb_parts"] = {k: round(v / MB) for k, v in memory.peak_parts.items()}
    record["peak_rss_mb_by_phase"] = {k: round(v / MB) for k, v in memory.phase_peaks.items()}
    record["peak_rss_mb_ingest"] = record["peak_rss_mb_by_phase"].get("ingest", 0)
    out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


def print_summary(r: dict) -> None:
    print()
    print(f"ingest scaling: sensor_data CSV, each size ingested by the bronze asset in its own "
          f"fresh process (driver heap {r.get('driver_memory', '4g')}); medians of "
          f"{len(next(iter(r['sizes'].values()))['runs'])} run(s)")
    header = (f"{'rows':>12} {'files':>6} {'MB':>7} {'ingest s':>9} {'engine s':>9} "
              f"{'rows/s':>10} {'peak RSS MB':>12} {'in ingest':>10}  JVM/Python/workers")
    print(header)
    print("-" * len(header))
    for rows, s in r["sizes"].items():
        m = s["median"]
        parts = s["runs"][-1]["peak_rss_mb_parts"]
        print(f"{int(rows):>12,} {s['data']['files']:>6} {s['data']['bytes'] / MB:>7,.0f} "
              f"{m['ingest_seconds']:>9.1f} {m['engine_seconds']:>9.1f} "
              f"{s['rows_per_second_ingest']:>10,} {m['peak_rss_mb']:>12,.0f} "
              f"{m['peak_rss_mb_ingest']:>10,.0f}  "
              f"{parts['jvm']}/{parts['python']}/{parts['workers']}")
    verdict = "met" if r["goal_met"] else "NOT met"
    print(f"peak RSS largest/smallest: {r['peak_rss_ratio_largest_to_smallest']:.2f} "
          f"(goal <= {r['goal_peak_rss_ratio']}: {verdict}); during the ingest alone "
          f"{r['peak_rss_ratio_largest_to_smallest_ingest']:.2f}; time largest/smallest "
          f"{r['time_ratio_largest_to_smallest']:.2f}")
    print(f"load average (1 min) at start/end: {r['load_average_start']}/{r['load_average_end']}")


if __name__ == "__main__":
    sys.exit(main())
