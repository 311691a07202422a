#!/usr/bin/env python
"""Fixed overhead per batch: one small file through the bronze asset against the Spark work alone.

A small hourly batch (one CSV file of 20,000 sensor_data rows by default) pays the engine's
fixed cost per batch (listing, inspection, table state, ledger claim, finding the commit,
ledger update) in full. This measures that cost: in one process and one warm Spark session
(``get_spark_session`` with the project's settings), per repetition one new file lands in the
day's folder, and

- ``typed_lineage``: the hand-written job appends that file to its own Delta table: the
  catalog's typed schema, header, ``_metadata.file_path`` and ``current_timestamp()`` lineage
  columns. This is the Spark work a batch cannot avoid.
- ``ours``: the ``manufacturing_bronze/sensor_data`` asset is materialized for the day
  (``materialize_partitions``, as ``manufacturing-ingest ingest`` does); it appends the new
  file's rows to the existing bronze table, as a run in the middle of a day does.

Both tables exist before the measured repetitions: two unmeasured warm-up batches of each come
first (the first creates the tables, the second is a steady-state append). Reported: medians of
each; the fixed overhead = ours' engine seconds (``seconds`` in the materialization's metadata,
from listing to the ledger update) minus the typed_lineage seconds of the same repetition, and
the same for the whole ``materialize_partitions`` call (Dagster run start and end, and the
asset's quality and schema-drift checks, which run in the same step); and ours' time per phase
from the engine's progress events. Figures go to ``benchmarks/results/batch_overhead.json``.

    python benchmarks/batch_overhead.py [--rows 20000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from ingest_throughput import (
    DAY,
    LAST_PHASE,
    MARKERS,
    PARTITION,
    REPO,
    SOURCE,
    LogCapture,
    _git,
    _settle,
    _shown,
    cpu_seconds,
    data_rows,
    machine,
    setup_logging,
)

DEFAULT_WORK = REPO / "benchmarks" / ".work" / "batch_overhead"
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "batch_overhead.json"
WARM_UP_BATCHES = 2
GOAL_SECONDS = 1.0

log = logging.getLogger("benchmarks.batch_overhead")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows in the file (20000)")
    parser.add_argument("--repeats", type=int, default=7, help="measured batches (7, >= 5)")
    parser.add_argument("--work", default=str(DEFAULT_WORK),
                        help="scratch folder (benchmarks/.work/batch_overhead)")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS),
                        help="where the JSON figures go (benchmarks/results/batch_overhead.json)")
    args = parser.parse_args(argv)
    if args.rows <= 0 or args.repeats <= 0:
        raise SystemExit("--rows and --repeats must be positive")
    work = Path(args.work).resolve()
    results_path = Path(args.results).resolve()

    setup_logging()
    shutil.rmtree(work, ignore_errors=True)
    os.environ["MANUFACTURING_ENV"] = "local"
    os.environ["MANUFACTURING_LANDING_URL"] = str(work / "landing")
    os.environ["MANUFACTURING_LAKEHOUSE_URL"] = str(work / "lakehouse")
    os.environ.pop("MANUFACTURING_SPARK_REMOTE", None)
    os.environ.pop("DAGSTER_HOME", None)  # an ephemeral Dagster instance, as in tests

    results = run(args, work)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results)
    print(f"\nwrote {_shown(results_path)}")
    return 0


def run(args, work: Path) -> dict:
    git_commit = _git("rev-parse", "--short", "HEAD")
    git_dirty = bool(_git("status", "--porcelain", "--", "manufacturing_ingest", "pyproject.toml"))
    load_start = round(os.getloadavg()[0], 2)

    from manufacturing_ingest.catalog import CATALOG
    from manufacturing_ingest.generate import GenerateOptions, generate

    # Every batch is a different file (its own time window of the day, so no repeated keys for
    # the duplicate check); all are generated up front and moved into the landing folder one
    # per batch.
    batches = WARM_UP_BATCHES + args.repeats
    spec = CATALOG[SOURCE]
    day = Path(spec.landing_prefix) / f"{DAY:%Y/%m/%d}"
    pending = sorted(generate(work / "pending", SOURCE, DAY, None,
                              GenerateOptions(files=batches, rows_per_file=args.rows,
                                              file_format="csv")))
    if data_rows(pending[:1]) != args.rows:
        raise SystemExit("generated file has the wrong number of rows")
    landing_day = work / "landing" / day
    landing_day.mkdir(parents=True)

    from manufacturing_ingest.engine.spark import get_spark_session
    from manufacturing_ingest.settings import Settings

    settings = Settings.from_env()
    started = time.monotonic()
    spark = get_spark_session(settings.spark)
    spark_startup = time.monotonic() - started
    from pyspark.sql import functions as F

    import manufacturing_ingest.definitions  # noqa: F401
    from manufacturing_ingest.engine.lakehouse import Lakehouse
    from manufacturing_ingest.orchestration.runs import materialize_partitions

    typed = ", ".join(f"`{name}` {kind}" for name, kind in spec.columns.items())
    hand_table = work / "typed_lineage" / SOURCE
    ours_table = Lakehouse(str(work / "lakehouse")).table_path(spec)
    engine_log = LogCapture()
    logging.getLogger("manufacturing_ingest").addHandler(engine_log)

    def typed_lineage(path: Path) -> dict:
        _settle(spark)
        cpu, began = cpu_seconds(), time.monotonic()
        (spark.read.schema(typed).option("header", True).csv(str(path))
         .select("*", F.col("_metadata.file_path").alias("_source_file"),
                 F.current_timestamp().alias("_ingested_at"))
         .write.format("delta").mode("append").save(str(hand_table)))
        return {"seconds": time.monotonic() - began, "cpu_seconds": cpu_seconds() - cpu}

    def ours() -> dict:
        _settle(spark)
        engine_log.clear()
        cpu, began = cpu_seconds(), time.monotonic()
        [result] = materialize_partitions(settings, [SOURCE], PARTITION)
        ended = time.monotonic()
        meta = result.metadata
        if meta["files_failed"] or meta["records"] != args.rows:
            log.warning("ours: %s records, %s files failed", meta["records"],
                        meta["files_failed"])
        return {"seconds": ended - began, "cpu_seconds": cpu_seconds() - cpu,
                "engine_seconds": float(meta["seconds"]),
                "engine_write_seconds": float(meta["write_seconds"]),
                "records": meta["records"], "phases": engine_log.phases(began, ended)}

    hand, mine = [], []
    for index, path in enumerate(pending):
        landed = landing_day / path.name
        shutil.move(path, landed)
        measured = index >= WARM_UP_BATCHES
        label = (f"batch {index - WARM_UP_BATCHES + 1}/{args.repeats}" if measured
                 else f"warm-up {index + 1}/{WARM_UP_BATCHES}")
        h = typed_lineage(landed)
        o = ours()
        log.info("%s: typed_lineage %.2fs, ours %.2fs (engine %.2fs, write %.2fs)", label,
                 h["seconds"], o["seconds"], o["engine_seconds"], o["engine_write_seconds"])
        if measured:
            hand.append(h)
            mine.append(o)

    rows = {"typed_lineage": spark.read.format("delta").load(str(hand_table)).count(),
            "ours": spark.read.format("delta").load(ours_table).count()}
    expected = batches * args.rows
    if set(rows.values()) != {expected}:
        log.warning("rows read back %s, expected %d each", rows, expected)

    seconds = {
        "typed_lineage": [r["seconds"] for r in hand],
        "ours": [r["seconds"] for r in mine],
        "ours_engine": [r["engine_seconds"] for r in mine],
        "ours_engine_write": [r["engine_write_seconds"] for r in mine],
    }
    overhead_engine = [o["engine_seconds"] - h["seconds"] for h, o in zip(hand, mine, strict=True)]
    overhead_call = [o["seconds"] - h["seconds"] for h, o in zip(hand, mine, strict=True)]
    med = {k: statistics.median(v) for k, v in seconds.items()}
    phases = {}
    for name in [n for _, n in MARKERS] + [LAST_PHASE]:
        seen = [r["phases"][name] for r in mine if name in r["phases"]]
        if seen:
            phases[name] = round(statistics.median(seen), 3)
    overhead = statistics.median(overhead_engine)
    return {
        "benchmark": "batch_overhead",
        "recorded_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "load_average_start": load_start,
        "load_average_end": round(os.getloadavg()[0], 2),
        "command": f"python benchmarks/batch_overhead.py --rows {args.rows} "
                   f"--repeats {args.repeats}",
        "git_commit": git_commit,
        "git_dirty": git_dirty,
        "machine": machine(spark),
        "data": {"source": SOURCE, "partition": PARTITION, "format": "csv (uncompressed)",
                 "rows_per_batch": args.rows, "warm_up_batches": WARM_UP_BATCHES,
                 "rows_read_back": rows},
        "spark_startup_seconds": round(spark_startup, 2),
        "repeats": args.repeats,
        "seconds": {k: [round(x, 3) for x in v] for k, v in seconds.items()},
        "median_seconds": {k: round(v, 3) for k, v in med.items()},
        "median_cpu_seconds": {
            "typed_lineage": round(statistics.median(r["cpu_seconds"] for r in hand), 2),
            "ours": round(statistics.median(r["cpu_seconds"] for r in mine), 2)},
        "overhead_engine_seconds": [round(x, 3) for x in overhead_engine],
        "overhead_call_seconds": [round(x, 3) for x in overhead_call],
        "median_overhead_engine_seconds": round(overhead, 3),
        "median_overhead_call_seconds": round(statistics.median(overhead_call), 3),
        "goal_seconds": GOAL_SECONDS,
        "goal_met": overhead <= GOAL_SECONDS,
        "ours_median_phase_seconds": phases,
    }


def print_summary(r: dict) -> None:
    m, s = r["median_seconds"], r["seconds"]
    print()
    print(f"batch overhead: {r['repeats']} batches of {r['data']['rows_per_batch']:,} rows "
          f"(one CSV file each) after {r['data']['warm_up_batches']} warm-up batches, "
          f"one warm session")
    header = f"{'':38} {'median s':>9}  runs (s)"
    print(header)
    print("-" * len(header))
    for key, label in (("typed_lineage", "typed_lineage: append of the file"),
                       ("ours", "ours: materialize_partitions call"),
                       ("ours_engine", "ours: engine seconds"),
                       ("ours_engine_write", "ours: its Delta write alone")):
        print(f"{label:38} {m[key]:>9.2f}  " + ", ".join(f"{v:.2f}" for v in s[key]))
    verdict = "met" if r["goal_met"] else "NOT met"
    print(f"fixed overhead per batch, engine - typed_lineage (median of per-batch differences): "
          f"{r['median_overhead_engine_seconds']:.2f}s (goal <= {r['goal_seconds']}s: {verdict});"
          f" whole call - typed_lineage: {r['median_overhead_call_seconds']:.2f}s")
    print("ours, median seconds per phase: "
          + ", ".join(f"{k} {v:.2f}" for k, v in r["ours_median_phase_seconds"].items()))
    print(f"load average (1 min) at start/end: {r['load_average_start']}/{r['load_average_end']}; "
          f"Spark start-up {r['spark_startup_seconds']:.1f}s")


if __name__ == "__main__":
    sys.exit(main())
