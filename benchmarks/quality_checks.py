#!/usr/bin/env python
"""Quality checks: their cost against the ingest of the same rows, and across incremental batches.

In one process and one Spark session, with the engine and the checks the bronze asset runs
(``BronzeIngestor.ingest`` then ``evaluate_batch`` and ``schema_drift``, as in its step):

- ``day``: one day of sensor_data CSV (5,000,000 rows in 50 files by default) ingested into an
  empty lakehouse as one batch, then checked; ``--day-repeats`` times (3), each into a fresh
  lakehouse. Reported per repeat: ingest seconds, check seconds, and the checks as a share of
  the ingest (goal: at most 10 %); the first repeat is the one a fresh Dagster run process
  pays (its queries are new to the JVM), the median the steady state.
- ``parts``: on the last repeat's table, where the check's time goes, each part timed
  ``--part-repeats`` times (3) on the warm session, medians: reading the batch's rows back, the
  row rules' counts alone (one scan, no shuffle), the grouping by key hashes alone, the same
  grouping carrying the rule sums (what ``evaluate_batch`` does), and the whole evaluation.
- ``incremental``: the same day's rows landed as ``--batches`` files (24 by default), one
  file per run into one daily partition (``--rows // --batches`` rows each, so 208,333 for the
  defaults), each run ingested and then checked. Reported: the check
  time of every batch, the first against the last (goal: about equal; the check reads its own
  batch, not the growing partition).

Before the measured parts, one unmeasured ingest and check of a small file warms up the JVM.
Landing files are generated under ``benchmarks/.work/quality/`` (git-ignored) and reused by later
runs with the same sizes. Figures go to ``benchmarks/results/quality_checks.json``.

    python benchmarks/quality_checks.py [--rows 5000000] [--files 50] [--batches 24]
                                        [--day-repeats 3] [--anomaly-rate 0]
                                        [--duplicate-rate 0] [--regenerate]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work" / "quality"
RESULTS = REPO / "benchmarks" / "results" / "quality_checks.json"

SOURCE = "sensor_data"
DAY = date(2026, 1, 15)
PARTITION = DAY.isoformat()
GOAL_SHARE = 0.10

log = logging.getLogger("benchmarks.quality_checks")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if min(args.rows, args.files, args.batches, args.day_repeats) <= 0:
        raise SystemExit("--rows, --files, --batches and --day-repeats must be positive")
    if args.rows % args.files:
        raise SystemExit(f"--rows ({args.rows}) must be a multiple of --files ({args.files})")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("py4j", "manufacturing_ingest"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    results = run(args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results)
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the day (5000000)")
    parser.add_argument("--files", type=int, default=50, help="files of the one-batch day (50)")
    parser.add_argument("--batches", type=int, default=24,
                        help="incremental batches (one file each) into one day (24)")
    parser.add_argument("--day-repeats", type=int, default=3,
                        help="times the one-batch day is ingested and checked (3)")
    parser.add_argument("--anomaly-rate", type=float, default=0.0,
                        help="share of rows with a broken value (0: every check passes)")
    parser.add_argument("--duplicate-rate", type=float, default=0.0,
                        help="share of rows landed twice (0)")
    parser.add_argument("--part-repeats", type=int, default=3,
                        help="timings of each part of the check on the last day's table (3)")
    parser.add_argument("--regenerate", action="store_true",
                        help="write the landing files again even if they are already there")
    return parser


def run(args) -> dict:
    from manufacturing_ingest.catalog import get_source
    from manufacturing_ingest.engine.spark import get_spark_session
    from manufacturing_ingest.settings import Settings

    spec = get_source(SOURCE)
    WORK.mkdir(parents=True, exist_ok=True)
    load_start = round(os.getloadavg()[0], 2)
    day_files = ensure_generated(args, "day", args.files)
    batch_files = ensure_generated(args, "batches", args.batches)

    settings = Settings.from_env()
    started = time.monotonic()
    spark = get_spark_session(settings.spark, app_name="benchmark_quality_checks")
    spark_startup = time.monotonic() - started
    log.info("Spark session up in %.1fs (%s)", spark_startup, settings.spark.master)

    warm_up(spark, spec, day_files[0])

    days = []
    parts = {}
    for repeat in range(1, args.day_repeats + 1):
        with tempfile.TemporaryDirectory(dir=WORK) as scratch:
            landing = Path(scratch) / "landing"
            place(day_files, landing)
            day = ingest_and_check(spark, spec, landing, Path(scratch) / "lakehouse",
                                   f"day {repeat}/{args.day_repeats}")
            batch = day.pop("batch")
            days.append({**day, "check_share_of_ingest":
                         round(day["check_seconds"] / day["ingest_seconds"], 3)})
            if repeat == args.day_repeats and args.part_repeats > 0 and batch is not None:
                parts = time_parts(spark, spec, batch, args.part_repeats)
    median_ingest = statistics.median(d["ingest_seconds"] for d in days)
    median_check = statistics.median(d["check_seconds"] for d in days)

    incremental = []
    with tempfile.TemporaryDirectory(dir=WORK) as scratch:
        landing = Path(scratch) / "landing"
        for index, file in enumerate(batch_files, 1):
            place([file], landing)
            figures = ingest_and_check(spark, spec, landing, Path(scratch) / "lakehouse",
                                       f"batch {index}/{len(batch_files)}")
            figures.pop("batch")
            incremental.append(figures)

    check_seconds = [b["check_seconds"] for b in incremental]
    return {
        "benchmark": "quality_checks",
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "manufacturing_ingest")),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": load_start,
                    "load_average_at_end": round(os.getloadavg()[0], 2)},
        "spark_master": settings.spark.master,
        "spark_startup_seconds": round(spark_startup, 2),
        "rows": args.rows,
        "anomaly_rate": args.anomaly_rate,
        "duplicate_rate": args.duplicate_rate,
        "day": {"files": args.files, "runs": days,
                "median_ingest_seconds": round(median_ingest, 2),
                "median_check_seconds": round(median_check, 2),
                "check_share_of_ingest": round(median_check / median_ingest, 3),
                "first_check_share_of_ingest": days[0]["check_share_of_ingest"],
                "failing_rows": days[0]["failing_rows"],
                "goal_share": GOAL_SHARE,
                "parts_median_seconds": parts},
        "incremental": {
            "batches": incremental,
            "rows_per_batch": args.rows // args.batches,
            "first_check_seconds": check_seconds[0],
            "last_check_seconds": check_seconds[-1],
            "median_check_seconds": round(statistics.median(check_seconds), 2),
            "last_over_first": round(check_seconds[-1] / check_seconds[0], 2),
        },
    }


def ensure_generated(args, kind: str, files: int) -> list[Path]:
    """The landing files of one day in ``files`` files (generated once per size and options)."""
    from manufacturing_ingest.generate import GenerateOptions, generate

    folder = WORK / (f"{kind}-{args.rows}-{files}-a{args.anomaly_rate}-d{args.duplicate_rate}")
    done = folder / ".complete"
    if args.regenerate and folder.exists():
        shutil.rmtree(folder)
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.monotonic()
        generate(folder, SOURCE, DAY, options=GenerateOptions(
            files=files, rows_per_file=args.rows // files, anomaly_rate=args.anomaly_rate,
            duplicate_rate=args.duplicate_rate))
        done.write_text("")
        log.info("generated %s in %.1fs", folder.name, time.monotonic() - started)
    return sorted(p for p in folder.rglob("*.csv"))


def place(files: list[Path], landing: Path) -> None:
    """Land ``files`` under their date folder, keeping their modification times."""
    for file in files:
        relative = file.relative_to(file.parents[5])  # raw/sensor-data/YYYY/MM/DD/name
        target = landing / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)


def warm_up(spark, spec, file: Path) -> None:
    """An unmeasured ingest and check of one small file: class loading and JIT."""
    with tempfile.TemporaryDirectory(dir=WORK) as scratch:
        landing = Path(scratch) / "landing" / "raw/sensor-data/2026/01/15"
        landing.mkdir(parents=True)
        with file.open() as source, (landing / "warm.csv").open("w") as target:
            for _, line in zip(range(2001), source, strict=False):
                target.write(line)
        ingest_and_check(spark, spec, Path(scratch) / "landing", Path(scratch) / "lakehouse",
                         "warm-up")


def ingest_and_check(spark, spec, landing: Path, lakehouse: Path, label: str) -> dict:
    from manufacturing_ingest.engine.ingest import BronzeIngestor
    from manufacturing_ingest.engine.lakehouse import Lakehouse
    from manufacturing_ingest.landing import LocalLandingZone
    from manufacturing_ingest.quality.drift import schema_drift
    from manufacturing_ingest.quality.evaluate import committed_batch, evaluate_batch

    ingestor = BronzeIngestor(spark, spec, LocalLandingZone(landing), Lakehouse(str(lakehouse)),
                              progress=lambda event: None)
    started = time.monotonic()
    report = ingestor.ingest([PARTITION])
    ingest_seconds = time.monotonic() - started
    started = time.monotonic()
    batch = committed_batch(report)
    results = evaluate_batch(spark, spec, batch) if batch else {}
    schema_drift(spark, report)
    check_seconds = time.monotonic() - started
    found = results.get(PARTITION)
    figures = {
        "rows_ingested": report.records,
        "delta_version": report.delta_version,
        "ingest_seconds": round(ingest_seconds, 2),
        "check_seconds": round(check_seconds, 2),
        "rows_checked": found.rows_checked if found else 0,
        "failing_rows": found.failing_rows if found else 0,
        "batch": batch,  # for time_parts; not written out
    }
    log.info("%s: ingest %.1fs, checks %.1fs (%d rows, %d failing)", label, ingest_seconds,
             check_seconds, figures["rows_checked"], figures["failing_rows"])
    return figures


def time_parts(spark, spec, batch, repeats: int) -> dict[str, float]:
    """Where the check of ``batch`` spends its time, part by part, on the warm session."""
    from pyspark.sql import functions as F

    from manufacturing_ingest.quality import evaluate as ev

    table = ev._table(spark, batch)
    rules = ev.row_rules(spec, set(table.columns))
    new = ev.batch_rows(table, spec, batch).withColumn(ev._PARTITION_ID, ev._partition_id(spec))
    any_failing = ev._any_of([r.fails for r in rules])
    keys = list(spec.key_columns)
    hashes = new.select(ev._PARTITION_ID, ev._key_hash(keys, 0).alias("h1"),
                        ev._key_hash(keys, 1).alias("h2"))
    parts = {
        "read_batch_rows_all_columns": lambda: new.write.format("noop").mode("overwrite").save(),
        "rule_counts_one_scan": lambda: ev._count_rules(new, rules, any_failing),
        "key_grouping_hashes_only": lambda: hashes.groupBy(ev._PARTITION_ID, "h1", "h2").count()
        .where(F.col("count") > 1).count(),
        "key_grouping_with_rule_sums": lambda: ev._count(
            ev._keys_per_group(spark, spec, batch, table, new, keys, rules, any_failing),
            len(rules)),
        "whole_evaluate_batch": lambda: ev.evaluate_batch(spark, spec, batch),
    }
    medians = {}
    for name, part in parts.items():
        seconds = []
        for _ in range(repeats):
            started = time.monotonic()
            part()
            seconds.append(time.monotonic() - started)
        medians[name] = round(statistics.median(seconds), 2)
        log.info("part %s: %.2fs (median of %d)", name, medians[name], repeats)
    return medians


def print_summary(results: dict) -> None:
    day, inc = results["day"], results["incremental"]
    print(f"\nquality checks, {results['rows']:,} sensor rows, Spark {results['spark_master']}, "
          f"load average {results['machine']['load_average_at_start']} → "
          f"{results['machine']['load_average_at_end']}")
    first = day["runs"][0]
    print(f"  one-batch day ({day['files']} files, {len(day['runs'])} repeats): median ingest "
          f"{day['median_ingest_seconds']:.1f}s, checks {day['median_check_seconds']:.1f}s = "
          f"{day['check_share_of_ingest']:.0%} of the ingest (goal ≤ {GOAL_SHARE:.0%}); first "
          f"repeat {first['ingest_seconds']:.1f}s / {first['check_seconds']:.1f}s = "
          f"{day['first_check_share_of_ingest']:.0%}; {day['failing_rows']:,} failing rows")
    if day.get("parts_median_seconds"):
        print("  where the check's time goes (warm, medians): " + ", ".join(
            f"{k} {v:.2f}s" for k, v in day["parts_median_seconds"].items()))
    print(f"  {len(inc['batches'])} incremental batches of {inc['rows_per_batch']:,} rows: "
          f"checks first {inc['first_check_seconds']:.1f}s, last {inc['last_check_seconds']:.1f}s"
          f" (last/first {inc['last_over_first']}), median {inc['median_check_seconds']:.1f}s")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


if __name__ == "__main__":
    sys.exit(main())
