#!/usr/bin/env python
"""Bronze ingest throughput: the bronze asset against hand-written PySpark jobs, per format.

One partition (5,000,000 rows by default) is generated per format into scratch landing folders
under ``benchmarks/.work/`` (git-ignored) and reused by later runs: a day of sensor_data as CSV,
JSON lines and gzip-compressed CSV, and an hour of quality_metrics as Parquet (the catalog's
Parquet source; its files carry ``measured_at`` as text, as exporters write it). Then, in one
process and one Spark session (``get_spark_session`` with the project's settings), per format:

- ``plain``: every column a string (CSV: ``header`` and no inference; JSON: an all-string
  schema; Parquet: the file's own types), written with
  ``.write.format("delta").mode("overwrite")``: the shortest job.
- ``typed``: the catalog's explicit typed schema (timestamp, doubles), header, → Delta: the
  original design's own job (Parquet: the file's columns cast to the catalog's types).
- ``typed_lineage``: ``typed`` plus ``_metadata.file_path`` and ``current_timestamp()`` lineage
  columns: what a user would hand-write to get the bronze table's lineage.
- ``ours``: the ``manufacturing_bronze/<source>`` asset materialized for the partition through
  Dagster (``manufacturing_ingest.orchestration.runs.materialize_partitions``), from an empty
  lakehouse each time, so every repetition ingests the whole day.

Per format, one unmeasured warm-up pass of each approach over a single file (class loading,
JIT, the format's reader) comes first; then the four alternate ``--repeats`` times. Reported
per format: medians, rows/s (rows read back from the written tables), the ratios ours/plain,
ours/typed and ours/typed_lineage of rows/s from medians of this same run, CPU seconds, and
where the asset's time goes (from the engine's progress events); for the whole run: Spark
start-up time and peak RSS of the Python process plus its children (the JVM and its Python
workers, sampled every 0.2 s). Figures go to ``benchmarks/results/ingest_throughput.json``;
the summary is printed.

    python benchmarks/ingest_throughput.py [--rows 5000000] [--files 50] [--repeats 3]
                                           [--formats csv,json,csv.gz,parquet] [--regenerate]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORK = REPO / "benchmarks" / ".work"
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "ingest_throughput.json"

SOURCE = "sensor_data"
DAY = date(2026, 1, 15)
PARTITION = DAY.isoformat()
GOAL_RATIO = 0.9  # ours/plain on the CSV day
GOAL_RATIO_TYPED_LINEAGE = 1.0  # ours (asset call, checks included)/typed_lineage on CSV
GOAL_ENGINE_TYPED_LINEAGE = 1.1  # the engine alone/typed_lineage on CSV
OTHER_FORMAT_SLACK = 0.9  # JSON lines, gzip CSV and Parquet: the same goals within 10 %
MB = 1024 * 1024

# Format name -> (GenerateOptions.file_format, compress, landed file name ending, source).
FORMATS = {
    "csv": ("csv", False, ".csv", SOURCE),
    "json": ("json", False, ".jsonl", SOURCE),
    "csv.gz": ("csv", True, ".csv.gz", SOURCE),
    # sensor_data takes CSV and JSON only; the catalog's Parquet source is quality_metrics,
    # hourly, so its partition is one hour holding the same number of rows.
    "parquet": ("parquet", False, ".parquet", "quality_metrics"),
}
HOUR = 0  # the hour of an hourly source's partition


def source_of(fmt: str) -> str:
    return FORMATS[fmt][3]


def partition_of(fmt: str) -> str:
    """The partition key ingested for ``fmt``: the day, or its first hour for an hourly source."""
    from manufacturing_ingest.catalog import get_source

    spec = get_source(source_of(fmt))
    return spec.partitions.key_at(datetime(DAY.year, DAY.month, DAY.day, HOUR, tzinfo=UTC))
VARIANTS = ("plain", "typed", "typed_lineage", "ours")

log = logging.getLogger("benchmarks.ingest_throughput")

# Engine progress phases that mark the end of each part of one ingest, in the order they come.
MARKERS = (
    ("listed", "dagster_run_start_and_listing"),
    ("inspected", "inspect_files_on_driver"),
    ("claimed", "plan_read_and_claim_in_ledger"),
    ("committed", "delta_write_and_find_commit"),
    ("ledger_updated", "rows_per_file_and_ledger_commit"),
)
LAST_PHASE = "report_and_dagster_run_end"


@dataclasses.dataclass(frozen=True)
class Work:
    """The scratch folders of one run (``--work``)."""

    root: Path

    def landing(self, fmt: str) -> Path:
        # CSV keeps the folder earlier versions of this script used, so its data is reused.
        return self.root / ("landing" if fmt == "csv" else f"landing-{fmt}")

    @property
    def lakehouse(self) -> Path:
        return self.root / "lakehouse"

    def table(self, variant: str) -> Path:
        return self.root / variant / "table"

    @property
    def warm_up(self) -> Path:
        return self.root / "warm_up"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.rows <= 0 or args.files <= 0 or args.repeats <= 0:
        raise SystemExit("--rows, --files and --repeats must be positive")
    if args.rows % args.files:
        raise SystemExit(f"--rows ({args.rows}) must be a multiple of --files ({args.files})")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise SystemExit(f"--formats: expected some of {', '.join(FORMATS)}, got {args.formats}")
    args.format_list = formats
    work = Work(Path(args.work).resolve())
    results_path = Path(args.results).resolve()

    setup_logging()
    # Settings are read from the environment, and manufacturing_ingest.definitions reads them
    # once at import: point them at the scratch folders before importing anything of ours.
    os.environ["MANUFACTURING_ENV"] = "local"
    os.environ["MANUFACTURING_LANDING_URL"] = str(work.landing(formats[0]))
    os.environ["MANUFACTURING_LAKEHOUSE_URL"] = str(work.lakehouse)
    os.environ.pop("MANUFACTURING_SPARK_REMOTE", None)  # this benchmark needs its own JVM
    os.environ.pop("DAGSTER_HOME", None)  # an ephemeral Dagster instance, as in tests

    memory = PeakRss(interval=0.2)
    memory.start()
    try:
        results = run(args, work, memory)
    finally:
        memory.stop()
    results["peak_rss_mb"] = round(memory.peak / MB)
    results["peak_rss_mb_parts"] = {k: round(v / MB) for k, v in memory.peak_parts.items()}
    results["peak_rss_mb_by_phase"] = {k: round(v / MB) for k, v in memory.phase_peaks.items()}

    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results)
    print(f"\nwrote {_shown(results_path)}")
    return 0


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s.%(msecs)03d %(name)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("py4j", "dagster", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*currently in beta")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the day (5000000)")
    parser.add_argument("--files", type=int, default=50, help="files in the day (50)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating repetitions of the four approaches (3)")
    parser.add_argument("--formats", default="csv,json,csv.gz,parquet",
                        help="comma-separated, of csv, json (JSON lines), csv.gz, parquet "
                             "(default: all four)")
    parser.add_argument("--regenerate", action="store_true",
                        help="write the landing files again even if they are already there")
    parser.add_argument("--work", default=str(DEFAULT_WORK),
                        help="scratch folder for landing data and tables (benchmarks/.work)")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS),
                        help="where the JSON figures go (benchmarks/results/"
                             "ingest_throughput.json)")
    return parser


# -- the run --------------------------------------------------------------------------------


def run(args, work: Work, memory: PeakRss) -> dict:
    # The code state this process imports (others may commit while it runs).
    git_commit = _git("rev-parse", "--short", "HEAD")
    git_dirty = bool(_git("status", "--porcelain", "--", "manufacturing_ingest", "pyproject.toml"))
    load_start = round(os.getloadavg()[0], 2)
    memory.phase = "generate"
    landed = {fmt: ensure_landed(work.landing(fmt), fmt, args.rows, args.files, args.regenerate)
              for fmt in args.format_list}

    memory.phase = "spark_startup"
    from manufacturing_ingest.engine.spark import get_spark_session
    from manufacturing_ingest.settings import Settings

    settings = Settings.from_env()
    started = time.monotonic()
    spark = get_spark_session(settings.spark)
    spark_startup = time.monotonic() - started
    log.info("Spark session up in %.1fs", spark_startup)

    # Dagster and the definitions are imported once per process; keep that out of the timings.
    memory.phase = "dagster_import"
    started = time.monotonic()
    import manufacturing_ingest.definitions  # noqa: F401
    from manufacturing_ingest.catalog import CATALOG
    from manufacturing_ingest.engine.lakehouse import Lakehouse
    from manufacturing_ingest.orchestration.runs import materialize_partitions

    dagster_import = time.monotonic() - started

    engine_log = LogCapture()
    logging.getLogger("manufacturing_ingest").addHandler(engine_log)
    bench = Bench(spark, settings, materialize_partitions, Lakehouse(str(work.lakehouse)),
                  CATALOG, engine_log, work)

    per_format = {}
    for fmt in args.format_list:
        folder, files, landed_bytes, generate_seconds = landed[fmt]
        fmt_settings = dataclasses.replace(settings, landing_url=str(work.landing(fmt)))
        # One unmeasured pass of every approach over a single file of this format loads and
        # JIT-compiles its reader, the Parquet and Delta writers and the asset's own plans, so
        # the first measured repetition is not the JVM's warm-up.
        memory.phase = f"{fmt}:warm_up"
        started = time.monotonic()
        bench.warm_up(fmt, files[0], fmt_settings)
        warm_up_seconds = time.monotonic() - started

        runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for rep in range(1, args.repeats + 1):
            for variant in VARIANTS:
                memory.phase = f"{fmt}:{variant}"
                label = f"{fmt} {variant} {rep}/{args.repeats}"
                if variant == "ours":
                    runs[variant].append(bench.ours(fmt, fmt_settings, label))
                else:
                    runs[variant].append(bench.hand_written(variant, fmt, folder, label))
            memory.phase = "between"
        per_format[fmt] = summarize(fmt, runs, args.rows, folder, files, landed_bytes,
                                    generate_seconds, warm_up_seconds)

    app_id = spark.sparkContext.applicationId
    if any(r["spark_app_id"] != app_id for r in bench.ours_runs):
        log.warning("the asset did not reuse the benchmark's Spark session")

    return {
        "benchmark": "ingest_throughput",
        "recorded_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        # The machine is shared: the 1-minute load average says how busy it was.
        "load_average_start": load_start,
        "load_average_end": round(os.getloadavg()[0], 2),
        "command": "python benchmarks/ingest_throughput.py " + " ".join(
            f"--{k} {getattr(args, k)}" for k in ("rows", "files", "repeats", "formats")),
        "git_commit": git_commit,
        "git_dirty": git_dirty,
        "machine": machine(spark),
        "spark_startup_seconds": round(spark_startup, 2),
        "dagster_import_seconds": round(dagster_import, 2),
        "repeats": args.repeats,
        "goals": {"csv_ours_to_plain": GOAL_RATIO,
                  "csv_ours_to_typed_lineage": GOAL_RATIO_TYPED_LINEAGE,
                  "csv_engine_to_typed_lineage": GOAL_ENGINE_TYPED_LINEAGE,
                  "other_formats": f"the same ratios within {1 - OTHER_FORMAT_SLACK:.0%}"},
        "formats": per_format,
    }


def summarize(fmt: str, runs: dict[str, list[dict]], expected: int, folder: Path,
              files: list[Path], landed_bytes: int, generate_seconds: float,
              warm_up_seconds: float) -> dict:
    counts = {v: {r["rows"] for r in runs[v]} for v in VARIANTS}
    if any(c != {expected} for c in counts.values()):
        log.warning("%s: row counts differ from %d: %s", fmt, expected, counts)
    rows = max(max(c) for c in counts.values())
    ours = runs["ours"]
    seconds = {v: [r["seconds"] for r in runs[v]] for v in VARIANTS}
    seconds["ours_engine"] = [r["engine_seconds"] for r in ours]
    seconds["ours_engine_write"] = [r["engine_write_seconds"] for r in ours]
    med = {k: statistics.median(v) for k, v in seconds.items()}
    rps = {k: rows / v for k, v in med.items()}
    ratios = {
        "ours_to_plain": rps["ours"] / rps["plain"],
        "ours_to_typed": rps["ours"] / rps["typed"],
        "ours_to_typed_lineage": rps["ours"] / rps["typed_lineage"],
        "ours_engine_to_plain": rps["ours_engine"] / rps["plain"],
        "ours_engine_to_typed_lineage": rps["ours_engine"] / rps["typed_lineage"],
    }
    slack = 1.0 if fmt == "csv" else OTHER_FORMAT_SLACK
    goals = {
        "ours_to_plain": ratios["ours_to_plain"] >= GOAL_RATIO * slack,
        "ours_to_typed_lineage": ratios["ours_to_typed_lineage"]
        >= GOAL_RATIO_TYPED_LINEAGE * slack,
        "ours_engine_to_typed_lineage": ratios["ours_engine_to_typed_lineage"]
        >= GOAL_ENGINE_TYPED_LINEAGE * slack,
    }
    cpu = {v: statistics.median(r["cpu_seconds"] for r in runs[v]) for v in VARIANTS}
    phases = {}
    for name in [n for _, n in MARKERS] + [LAST_PHASE]:
        seen = [r["phases"][name] for r in ours if name in r["phases"]]
        if seen:
            phases[name] = round(statistics.median(seen), 2)
    return {
        "data": {
            "source": source_of(fmt),
            "partition": partition_of(fmt),
            "format": fmt,
            "folder": _shown(folder),
            "files": len(files),
            "rows": rows,
            "bytes": landed_bytes,
            "generate_seconds": round(generate_seconds, 1) if generate_seconds else "reused",
        },
        "warm_up_seconds": round(warm_up_seconds, 2),
        "seconds": {k: _rounded(v) for k, v in seconds.items()},
        "median_seconds": {k: round(v, 2) for k, v in med.items()},
        "rows_per_second": {k: round(v) for k, v in rps.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        # Kept under its old name for the history table's comparisons.
        "ratio_ours_to_plain": round(ratios["ours_to_plain"], 3),
        "ratio_per_repeat": {
            base: [round(b["seconds"] / o["seconds"], 3)
                   for b, o in zip(runs[base], ours, strict=True)]
            for base in ("plain", "typed", "typed_lineage")
        },
        # CPU seconds (Python + JVM) are less sensitive than wall time to a busy shared machine.
        "cpu_seconds": {v: _rounded([r["cpu_seconds"] for r in runs[v]]) for v in VARIANTS},
        "median_cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "goal_met": goals,
        "ours_median_phase_seconds": phases,
        "output_files": {v: runs[v][-1]["output_files"] for v in VARIANTS},
    }


class Bench:
    """The four approaches, each timed into an empty target in the one shared session."""

    def __init__(self, spark, settings, materialize_partitions, lakehouse, catalog,
                 engine_log: LogCapture, work: Work):
        self.spark = spark
        self.settings = settings
        self.materialize_partitions = materialize_partitions
        self.lakehouse = lakehouse
        self.catalog = catalog
        self.engine_log = engine_log
        self.work = work
        self.ours_runs: list[dict] = []

    def ours_table(self, fmt: str) -> str:
        return self.lakehouse.table_path(self.catalog[source_of(fmt)])

    def job(self, variant: str, fmt: str, path: str):
        """The DataFrame a user would hand-write for ``variant``, before the Delta write."""
        from pyspark.sql import functions as F

        columns = self.catalog[source_of(fmt)].columns
        reader = self.spark.read
        if fmt == "parquet":
            # Parquet carries its own types: plain writes them as they are; typed casts the
            # file's columns to the catalog's (its timestamp arrives as text).
            df = reader.parquet(path)
            if variant != "plain":
                df = df.select([F.col(f"`{name}`").cast(kind).alias(name)
                                for name, kind in columns.items()])
        else:
            if variant == "plain":
                # CSV with a header and no schema reads every column as a string without
                # inference; JSON needs the all-string schema given, or it would scan the
                # files to infer one.
                if fmt == "json":
                    reader = reader.schema(", ".join(f"`{name}` string" for name in columns))
            else:
                reader = reader.schema(", ".join(f"`{name}` {kind}"
                                                 for name, kind in columns.items()))
            df = reader.json(path) if fmt == "json" else reader.option("header", True).csv(path)
        if variant == "typed_lineage":
            df = df.select("*", F.col("_metadata.file_path").alias("_source_file"),
                           F.current_timestamp().alias("_ingested_at"))
        return df

    def hand_written(self, variant: str, fmt: str, folder: Path, label: str) -> dict:
        table = self.work.table(variant)
        shutil.rmtree(table, ignore_errors=True)
        _settle(self.spark)
        log.info("%s: reading %s", label, folder)
        cpu, started = cpu_seconds(), time.monotonic()
        (self.job(variant, fmt, str(folder))
         .write.format("delta").mode("overwrite").save(str(table)))
        seconds = time.monotonic() - started
        cpu = cpu_seconds() - cpu
        rows = self.spark.read.format("delta").load(str(table)).count()
        log.info("%s: %d rows in %.1fs (%.0f rows/s)", label, rows, seconds, rows / seconds)
        return {"seconds": seconds, "cpu_seconds": cpu, "rows": rows,
                "output_files": _parquet_files(table)}

    def ours(self, fmt: str, settings, label: str) -> dict:
        """The asset through Dagster, into an empty lakehouse (table and file ledger both gone)."""
        shutil.rmtree(self.work.lakehouse, ignore_errors=True)
        _settle(self.spark)
        source, partition = source_of(fmt), partition_of(fmt)
        log.info("%s: materializing %s %s", label, source, partition)
        self.engine_log.clear()
        cpu, started = cpu_seconds(), time.monotonic()
        [run] = self.materialize_partitions(settings, [source], partition)
        result = run.metadata
        ended = time.monotonic()
        cpu = cpu_seconds() - cpu
        seconds = ended - started
        if result["files_failed"]:
            log.warning("%s: %d files failed", label, result["files_failed"])
        rows = self.spark.read.format("delta").load(self.ours_table(fmt)).count()
        log.info("%s: %d rows in %.1fs (engine %.1fs; %.0f rows/s)", label, rows, seconds,
                 result["seconds"], rows / seconds)
        record = {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "engine_seconds": float(result["seconds"]),
            "engine_write_seconds": float(result["write_seconds"]),
            "records_reported": result["records"],
            "rows": rows,
            "phases": self.engine_log.phases(started, ended),
            "spark_app_id": self.spark.sparkContext.applicationId,
            "output_files": _parquet_files(Path(self.ours_table(fmt))),
        }
        self.ours_runs.append(record)
        return record

    def warm_up(self, fmt: str, one_file: Path, settings) -> None:
        """Every approach once over one file of ``fmt``; nothing of it is kept or counted."""
        root = self.work.warm_up
        shutil.rmtree(root, ignore_errors=True)
        for variant in VARIANTS[:-1]:
            table = root / variant
            (self.job(variant, fmt, str(one_file))
             .write.format("delta").mode("overwrite").save(str(table)))
            self.spark.read.format("delta").load(str(table)).count()
        # The asset over a landing zone holding just that file, into a throw-away lakehouse.
        landing = root / "landing"
        day = landing / one_file.parent.relative_to(self.work.landing(fmt))
        day.mkdir(parents=True)
        os.link(one_file, day / one_file.name)
        self.materialize_partitions(
            dataclasses.replace(settings, landing_url=str(landing),
                                lakehouse_url=str(root / "lakehouse")),
            [source_of(fmt)], partition_of(fmt))
        shutil.rmtree(root, ignore_errors=True)


def _settle(spark) -> None:
    """Same starting point for every measurement: no stale Delta state, garbage collected."""
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    gc.collect()
    spark._jvm.java.lang.System.gc()


def _parquet_files(table: Path) -> int:
    return sum(1 for _ in table.rglob("*.parquet"))


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# -- landing data ---------------------------------------------------------------------------


def ensure_landed(root: Path, fmt: str, rows: int, files: int, regenerate: bool
                  ) -> tuple[Path, list[Path], int, float]:
    """The day's files of ``fmt`` under ``root``, generated unless already there with ``rows``."""
    from manufacturing_ingest.catalog import get_source

    file_format, compress, ending, source = FORMATS[fmt]
    spec = get_source(source)
    folder = root / spec.landing_prefix / spec.partitions.prefix(partition_of(fmt))
    if not regenerate and folder.is_dir():
        existing = sorted(p for p in folder.iterdir() if p.is_file())
        if (len(existing) == files and all(p.name.endswith(ending) for p in existing)
                and data_rows(existing) == rows):
            size = sum(p.stat().st_size for p in existing)
            log.info("reusing %d %s files, %d rows, %.0f MB under %s", files, fmt, rows,
                     size / MB, folder)
            return folder, existing, size, 0.0

    from manufacturing_ingest.generate import GenerateOptions, generate

    shutil.rmtree(folder, ignore_errors=True)
    log.info("generating %d %s files x %d rows of %s for %s under %s", files, fmt,
             rows // files, source, partition_of(fmt), root)
    started = time.monotonic()
    hourly = spec.partitions.step < timedelta(days=1)
    paths = generate(root, source, DAY, HOUR if hourly else None,
                     GenerateOptions(files=files, rows_per_file=rows // files,
                                     file_format=file_format, compress=compress))
    seconds = time.monotonic() - started
    found = data_rows(paths)
    if found != rows:
        raise SystemExit(f"generated {found} rows, expected {rows}")
    size = sum(p.stat().st_size for p in paths)
    log.info("generated %d %s rows (%.0f MB) in %.0fs", rows, fmt, size / MB, seconds)
    return folder, sorted(paths), size, seconds


def data_rows(paths: list[Path]) -> int:
    """Data lines: after the header for CSV; generated files have no quoted line breaks."""
    import gzip

    import pyarrow.parquet as pq

    total = 0
    for path in paths:
        if path.name.endswith(".parquet"):
            total += pq.ParquetFile(path).metadata.num_rows
            continue
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(16 * MB), b""))
        header = 0 if path.name.endswith((".jsonl", ".jsonl.gz")) else 1
        total += max(lines - header, 0)
    return total


# -- measurement helpers --------------------------------------------------------------------


class PeakRss(threading.Thread):
    """Samples RSS of this process plus all its descendants (the JVM) every ``interval`` s."""

    def __init__(self, interval: float, process: psutil.Process | None = None):
        super().__init__(name="peak-rss", daemon=True)
        self.interval = interval
        self.process = process or psutil.Process()  # another process: a run being measured
        self.phase = "setup"
        self.peak = 0
        self.peak_parts: dict[str, int] = {}
        self.phase_peaks: dict[str, int] = {}
        self._done = threading.Event()

    def sample(self) -> dict[str, int]:
        """RSS of this Python, the JVM, and the JVM's Python workers.

        Other descendants are short-lived helpers the JVM spawns (jspawnhelper, getconf,
        Hadoop's shell commands); between fork and exec they report the JVM's own pages as
        their RSS, which would count the JVM twice, so they are left out.
        """
        parts = {"python": 0, "jvm": 0, "workers": 0}
        family = _family(self.process)
        names = {}
        for process in family:
            try:
                names[process.pid] = process.name()
            except psutil.Error:
                pass
        for process in family:
            name = names.get(process.pid, "")
            try:
                if process.pid == self.process.pid:
                    kind = "python"
                elif name.startswith("java"):
                    if names.get(process.ppid(), "").startswith("java"):
                        continue  # the JVM's own fork on its way to exec a helper
                    kind = "jvm"
                elif name.startswith("python"):
                    kind = "workers"
                else:
                    continue
                parts[kind] += process.memory_info().rss
            except psutil.Error:
                continue  # exited since it was listed
        return parts

    def run(self) -> None:
        while not self._done.is_set():
            parts, phase = self.sample(), self.phase
            rss = sum(parts.values())
            if rss > self.peak:
                self.peak, self.peak_parts = rss, parts
            self.phase_peaks[phase] = max(self.phase_peaks.get(phase, 0), rss)
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _family(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def cpu_seconds() -> float:
    """CPU time used so far by this process and its live descendants (the JVM does the work)."""
    total = 0.0
    for process in _family(psutil.Process()):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class LogCapture(logging.Handler):
    """Keeps the engine's progress phases with a monotonic time, to split an ingest into parts."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "progress_event", None)
        if event is not None:
            self.lines.append((time.monotonic(), event.phase.value))

    def clear(self) -> None:
        self.lines = []

    def phases(self, started: float, ended: float) -> dict[str, float]:
        """Seconds from the previous marker to each marker line; the rest to the call's end."""
        phases: dict[str, float] = {}
        last = started
        for text, name in MARKERS:
            hit = next((t for t, phase in self.lines if phase == text and t >= last), None)
            if hit is None:
                continue
            phases[name] = round(hit - last, 2)
            last = hit
        phases[LAST_PHASE] = round(ended - last, 2)
        return phases


def machine(spark) -> dict:
    jvm = spark._jvm.java.lang.System
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3),
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": f"{jvm.getProperty('java.vm.name')} {jvm.getProperty('java.version')}",
        "pyspark": importlib.metadata.version("pyspark"),
        "delta_spark": importlib.metadata.version("delta-spark"),
        "dagster": importlib.metadata.version("dagster"),
        "spark_master": spark.sparkContext.master,
        "spark_driver_memory": spark.conf.get("spark.driver.memory", "default"),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 2) for v in values]



# -- report ---------------------------------------------------------------------------------


LABELS = (
    ("plain", "plain: strings, read + Delta write"),
    ("typed", "typed: catalog schema"),
    ("typed_lineage", "typed + lineage columns"),
    ("ours", "ours: asset via Dagster (call)"),
    ("ours_engine", "ours: engine ingest seconds"),
    ("ours_engine_write", "ours: its Delta write alone"),
)


def print_summary(r: dict) -> None:
    print()
    print(f"ingest throughput: {r['repeats']} alternating repeats per format; machine: "
          f"{r['machine']['cpus']} CPUs, {r['machine']['memory_gb']} GB, "
          f"Python {r['machine']['python']}, {r['machine']['java']}, "
          f"pyspark {r['machine']['pyspark']}, delta-spark {r['machine']['delta_spark']}")
    for fmt, f in r["formats"].items():
        d, m, s, rps, q = (f["data"], f["median_seconds"], f["seconds"], f["rows_per_second"],
                           f["ratios"])
        print()
        print(f"{fmt}: {d['rows']:,} rows of {d['source']} in {d['files']} files "
              f"({d['bytes'] / MB:,.0f} MB)")
        header = f"{'':36} {'median s':>9} {'rows/s':>11} {'CPU s':>6}  runs (s)"
        print(header)
        print("-" * len(header))
        for key, label in LABELS:
            runs = ", ".join(f"{v:.1f}" for v in s[key])
            cpu = f["median_cpu_seconds"].get(key)
            cpu_text = f"{cpu:>6.1f}" if cpu is not None else f"{'':>6}"
            print(f"{label:36} {m[key]:>9.1f} {rps[key]:>11,} {cpu_text}  {runs}")
        goals = f["goal_met"]
        print(f"ratios of rows/s (medians, same run): ours/plain {q['ours_to_plain']:.2f}x "
              f"({'met' if goals['ours_to_plain'] else 'NOT met'}), ours/typed "
              f"{q['ours_to_typed']:.2f}x, ours/typed_lineage {q['ours_to_typed_lineage']:.2f}x "
              f"({'met' if goals['ours_to_typed_lineage'] else 'NOT met'}); engine only: "
              f"/plain {q['ours_engine_to_plain']:.2f}x, /typed_lineage "
              f"{q['ours_engine_to_typed_lineage']:.2f}x "
              f"({'met' if goals['ours_engine_to_typed_lineage'] else 'NOT met'})")
        print("per repeat: " + "; ".join(
            f"ours/{base} " + ", ".join(f"{x:.2f}" for x in xs)
            for base, xs in f["ratio_per_repeat"].items()))
        print("ours, median seconds per phase: "
              + ", ".join(f"{k} {v:.1f}" for k, v in f["ours_median_phase_seconds"].items()))
    print()
    print(f"goals: CSV ours/plain >= {GOAL_RATIO}x, ours/typed_lineage >= "
          f"{GOAL_RATIO_TYPED_LINEAGE}x, engine/typed_lineage >= {GOAL_ENGINE_TYPED_LINEAGE}x; "
          f"JSON lines, gzip CSV and Parquet: {r['goals']['other_formats']}")
    print(f"load average (1 min) at start/end: {r['load_average_start']}/{r['load_average_end']}")
    print(f"Spark start-up: {r['spark_startup_seconds']:.1f}s; Dagster + definitions import: "
          f"{r['dagster_import_seconds']:.1f}s")
    parts = r["peak_rss_mb_parts"]
    print(f"peak RSS (Python + JVM + workers): {r['peak_rss_mb']:,} MB (JVM {parts['jvm']:,}, "
          f"Python {parts['python']:,}, workers {parts['workers']:,}); by phase: "
          + ", ".join(f"{k} {v:,}" for k, v in r["peak_rss_mb_by_phase"].items()))


if __name__ == "__main__":
    sys.exit(main())
