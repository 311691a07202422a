#!/usr/bin/env python
"""Bronze ingest throughput: the sensor_data asset against a hand-written PySpark script.

One day of sensor_data CSV (5,000,000 rows by default) is generated into a scratch landing
folder under ``benchmarks/.work/`` (git-ignored) and reused by later runs. Then, in one process
and one Spark session:

- ``plain``: ``spark.read.option("header", True).csv(day_folder)`` (every column a string, no
  inference) written with ``.write.format("delta").mode("overwrite")``: the baseline a
  hand-rolled notebook would use.
- ``ours``: the ``manufacturing_bronze/sensor_data`` asset materialized for the day through
  Dagster (``manufacturing_ingest.orchestration.runs.materialize_partitions``), from an empty
  lakehouse each
  time, so every repetition ingests the whole day.

After one unmeasured warm-up pass of ``plain`` over a single file (class loading and JIT), the
two alternate ``--repeats`` times. Reported: medians, rows/s (rows read back from the written
tables), the ours/plain ratio of rows/s from this same run, CPU seconds of each, Spark start-up
time, peak RSS of the Python process plus its children (the JVM and its Python workers, sampled
every 0.2 s), and where the asset's time goes (from the engine's log lines). Figures go to
``benchmarks/results/ingest_throughput.json``; the summary is printed.

    python benchmarks/ingest_throughput.py [--rows 5000000] [--files 50] [--repeats 3]
                                           [--regenerate]
"""

from __future__ import annotations

import argparse
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
from datetime import UTC, date, datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work"
LANDING = WORK / "landing"
LAKEHOUSE = WORK / "lakehouse"
PLAIN_TABLE = WORK / "plain" / "sensor_data"
RESULTS = REPO / "benchmarks" / "results" / "ingest_throughput.json"

SOURCE = "sensor_data"
DAY = date(2026, 1, 15)
PARTITION = DAY.isoformat()
GOAL_RATIO = 0.9
MB = 1024 * 1024

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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.rows <= 0 or args.files <= 0 or args.repeats <= 0:
        raise SystemExit("--rows, --files and --repeats must be positive")
    if args.rows % args.files:
        raise SystemExit(f"--rows ({args.rows}) must be a multiple of --files ({args.files})")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s.%(msecs)03d %(name)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("py4j", "dagster", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*currently in beta")

    # Settings are read from the environment, and manufacturing_ingest.definitions reads them
    # once at import: point them at the scratch folders before importing anything of ours.
    os.environ["MANUFACTURING_ENV"] = "local"
    os.environ["MANUFACTURING_LANDING_URL"] = str(LANDING)
    os.environ["MANUFACTURING_LAKEHOUSE_URL"] = str(LAKEHOUSE)
    os.environ.pop("DAGSTER_HOME", None)  # an ephemeral Dagster instance, as in tests

    memory = PeakRss(interval=0.2)
    memory.start()
    try:
        results = run(args, memory)
    finally:
        memory.stop()
    results["peak_rss_mb"] = round(memory.peak / MB)
    results["peak_rss_mb_parts"] = {k: round(v / MB) for k, v in memory.peak_parts.items()}
    results["peak_rss_mb_by_phase"] = {k: round(v / MB) for k, v in memory.phase_peaks.items()}

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results)
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the day (5000000)")
    parser.add_argument("--files", type=int, default=50, help="CSV files in the day (50)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating plain/ours repetitions (3)")
    parser.add_argument("--regenerate", action="store_true",
                        help="write the landing files again even if they are already there")
    return parser


# -- the run --------------------------------------------------------------------------------


def run(args, memory: PeakRss) -> dict:
    # The code state this process imports (others may commit while it runs).
    git_commit = _git("rev-parse", "--short", "HEAD")
    git_dirty = bool(_git("status", "--porcelain", "--", "manufacturing_ingest", "pyproject.toml"))
    load_start = round(os.getloadavg()[0], 2)
    memory.phase = "generate"
    folder, files, landed_bytes, generate_seconds = ensure_landed(
        args.rows, args.files, args.regenerate
    )

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
    from manufacturing_ingest.catalog import get_source
    from manufacturing_ingest.engine.lakehouse import Lakehouse
    from manufacturing_ingest.orchestration.runs import materialize_partitions

    dagster_import = time.monotonic() - started
    ours_table = Lakehouse(settings.lakehouse_url).table_path(get_source(SOURCE))

    engine_log = LogCapture()
    logging.getLogger("manufacturing_ingest").addHandler(engine_log)

    # One unmeasured plain pass over a single file loads and JIT-compiles the CSV, Parquet and
    # Delta code paths, so the first measured repetition is not the JVM's warm-up.
    memory.phase = "warm_up"
    started = time.monotonic()
    warm_up(spark, files[0])
    warm_up_seconds = time.monotonic() - started

    plain, ours = [], []
    for rep in range(1, args.repeats + 1):
        memory.phase = "plain"
        plain.append(run_plain(spark, folder, rep, args.repeats))
        memory.phase = "ours"
        ours.append(run_ours(spark, settings, materialize_partitions, ours_table, engine_log,
                             rep, args.repeats))
        memory.phase = "between"

    app_id = spark.sparkContext.applicationId
    if any(r["spark_app_id"] != app_id for r in ours):
        log.warning("the asset did not reuse the benchmark's Spark session")

    expected = args.rows
    rows_plain = {r["rows"] for r in plain}
    rows_ours = {r["rows"] for r in ours}
    if rows_plain != {expected} or rows_ours != {expected}:
        log.warning("row counts differ from %d: plain %s, ours %s", expected, rows_plain,
                    rows_ours)
    rows = max(rows_plain | rows_ours)

    plain_s = [r["seconds"] for r in plain]
    ours_s = [r["seconds"] for r in ours]
    engine_s = [r["engine_seconds"] for r in ours]
    write_s = [r["engine_write_seconds"] for r in ours]
    med = {
        "plain": statistics.median(plain_s),
        "ours": statistics.median(ours_s),
        "ours_engine": statistics.median(engine_s),
        "ours_engine_write": statistics.median(write_s),
    }
    rps = {k: rows / v for k, v in med.items()}
    ratio = rps["ours"] / rps["plain"]
    cpu = {"plain": statistics.median(r["cpu_seconds"] for r in plain),
           "ours": statistics.median(r["cpu_seconds"] for r in ours)}
    phases = {}
    for name in [n for _, n in MARKERS] + [LAST_PHASE]:
        seen = [r["phases"][name] for r in ours if name in r["phases"]]
        if seen:
            phases[name] = round(statistics.median(seen), 2)

    return {
        "benchmark": "ingest_throughput",
        "recorded_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        # The machine is shared: the 1-minute load average says how busy it was.
        "load_average_start": load_start,
        "load_average_end": round(os.getloadavg()[0], 2),
        "command": "python benchmarks/ingest_throughput.py " + " ".join(
            f"--{k} {getattr(args, k)}" for k in ("rows", "files", "repeats")),
        "git_commit": git_commit,
        "git_dirty": git_dirty,
        "machine": machine(spark),
        "data": {
            "source": SOURCE,
            "partition": PARTITION,
            "format": "csv (uncompressed)",
            "files": len(files),
            "rows": rows,
            "bytes": landed_bytes,
            "generate_seconds": round(generate_seconds, 1) if generate_seconds else "reused",
        },
        "spark_startup_seconds": round(spark_startup, 2),
        "dagster_import_seconds": round(dagster_import, 2),
        "warm_up_seconds": round(warm_up_seconds, 2),
        "repeats": args.repeats,
        "seconds": {
            "plain": _rounded(plain_s),
            "ours": _rounded(ours_s),
            "ours_engine": _rounded(engine_s),
            "ours_engine_write": _rounded(write_s),
        },
        "median_seconds": {k: round(v, 2) for k, v in med.items()},
        "rows_per_second": {k: round(v) for k, v in rps.items()},
        "ratio_ours_to_plain": round(ratio, 3),
        "ratio_ours_engine_to_plain": round(rps["ours_engine"] / rps["plain"], 3),
        "ratio_per_repeat": [round(p["seconds"] / o["seconds"], 3)
                             for p, o in zip(plain, ours, strict=True)],
        # CPU seconds (Python + JVM) are less sensitive than wall time to a busy shared machine.
        "cpu_seconds": {"plain": _rounded([r["cpu_seconds"] for r in plain]),
                        "ours": _rounded([r["cpu_seconds"] for r in ours])},
        "median_cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "cpu_ratio_plain_to_ours": round(cpu["plain"] / cpu["ours"], 3),
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio >= GOAL_RATIO,
        "ours_median_phase_seconds": phases,
        "output_files": {"plain": plain[-1]["output_files"], "ours": ours[-1]["output_files"]},
    }


def warm_up(spark, one_file: Path) -> None:
    table = WORK / "warm_up"
    shutil.rmtree(table, ignore_errors=True)
    (spark.read.option("header", True).csv(str(one_file))
     .write.format("delta").mode("overwrite").save(str(table)))
    spark.read.format("delta").load(str(table)).count()
    shutil.rmtree(table, ignore_errors=True)


def run_plain(spark, folder: Path, rep: int, repeats: int) -> dict:
    """The baseline: read the day's CSV as strings, write it to a fresh Delta table."""
    shutil.rmtree(PLAIN_TABLE, ignore_errors=True)
    _settle(spark)
    log.info("plain %d/%d: reading %s", rep, repeats, folder)
    cpu, started = cpu_seconds(), time.monotonic()
    (
        spark.read.option("header", True).csv(str(folder))
        .write.format("delta").mode("overwrite").save(str(PLAIN_TABLE))
    )
    seconds = time.monotonic() - started
    cpu = cpu_seconds() - cpu
    rows = spark.read.format("delta").load(str(PLAIN_TABLE)).count()
    log.info("plain %d/%d: %d rows in %.1fs (%.0f rows/s)", rep, repeats, rows, seconds,
             rows / seconds)
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": rows,
            "output_files": _parquet_files(PLAIN_TABLE)}


def run_ours(spark, settings, materialize_partitions, table: str, engine_log: LogCapture,
             rep: int, repeats: int) -> dict:
    """The asset through Dagster, into an empty lakehouse (table and file ledger both gone)."""
    shutil.rmtree(LAKEHOUSE, ignore_errors=True)
    _settle(spark)
    log.info("ours %d/%d: materializing %s %s", rep, repeats, SOURCE, PARTITION)
    engine_log.clear()
    cpu, started = cpu_seconds(), time.monotonic()
    [run] = materialize_partitions(settings, [SOURCE], PARTITION)
    result = run.metadata
    ended = time.monotonic()
    cpu = cpu_seconds() - cpu
    seconds = ended - started
    if result["files_failed"]:
        log.warning("ours %d/%d: %d files failed", rep, repeats, result["files_failed"])
    rows = spark.read.format("delta").load(table).count()
    log.info("ours %d/%d: %d rows in %.1fs (engine %.1fs; %.0f rows/s)", rep, repeats, rows,
             seconds, result["seconds"], rows / seconds)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "engine_seconds": float(result["seconds"]),
        "engine_write_seconds": float(result["write_seconds"]),
        "records_reported": result["records"],
        "rows": rows,
        "phases": engine_log.phases(started, ended),
        "spark_app_id": spark.sparkContext.applicationId,
        "output_files": _parquet_files(Path(table)),
    }


def _settle(spark) -> None:
    """Same starting point for every measurement: no stale Delta state, garbage collected."""
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    gc.collect()
    spark._jvm.java.lang.System.gc()


def _parquet_files(table: Path) -> int:
    return sum(1 for _ in table.rglob("*.parquet"))


# -- landing data ---------------------------------------------------------------------------


def ensure_landed(rows: int, files: int, regenerate: bool) -> tuple[Path, list[Path], int, float]:
    """The day's CSV files, generated unless they are already there with ``rows`` rows."""
    from manufacturing_ingest.catalog import get_source

    spec = get_source(SOURCE)
    folder = LANDING / spec.landing_prefix / f"{DAY:%Y/%m/%d}"
    if not regenerate and folder.is_dir():
        existing = sorted(p for p in folder.iterdir() if p.is_file())
        if (len(existing) == files and all(p.suffix == ".csv" for p in existing)
                and _data_rows(existing) == rows):
            size = sum(p.stat().st_size for p in existing)
            log.info("reusing %d files, %d rows, %.0f MB under %s", files, rows, size / MB,
                     folder)
            return folder, existing, size, 0.0

    from manufacturing_ingest.generate import GenerateOptions, generate

    shutil.rmtree(folder, ignore_errors=True)
    log.info("generating %d files x %d rows of %s for %s under %s", files, rows // files, SOURCE,
             DAY, LANDING)
    started = time.monotonic()
    paths = generate(LANDING, SOURCE, DAY, None,
                     GenerateOptions(files=files, rows_per_file=rows // files, file_format="csv"))
    seconds = time.monotonic() - started
    found = _data_rows(paths)
    if found != rows:
        raise SystemExit(f"generated {found} rows, expected {rows}")
    size = sum(p.stat().st_size for p in paths)
    log.info("generated %d rows (%.0f MB) in %.0fs", rows, size / MB, seconds)
    return folder, sorted(paths), size, seconds


def _data_rows(paths: list[Path]) -> int:
    """Lines after the header; generated CSV has no quoted line breaks."""
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(16 * MB), b""))
        total += max(lines - 1, 0)
    return total


# -- measurement helpers --------------------------------------------------------------------


class PeakRss(threading.Thread):
    """Samples RSS of this process plus all its descendants (the JVM) every ``interval`` s."""

    def __init__(self, interval: float):
        super().__init__(name="peak-rss", daemon=True)
        self.interval = interval
        self.process = psutil.Process()
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


def print_summary(r: dict) -> None:
    d, m, s, rps = r["data"], r["median_seconds"], r["seconds"], r["rows_per_second"]
    print()
    print(f"ingest throughput: {d['rows']:,} rows of {d['source']} in {d['files']} CSV files "
          f"({d['bytes'] / MB:,.0f} MB), {r['repeats']} alternating repeats")
    print(f"machine: {r['machine']['cpus']} CPUs, {r['machine']['memory_gb']} GB, "
          f"Python {r['machine']['python']}, {r['machine']['java']}, "
          f"pyspark {r['machine']['pyspark']}, delta-spark {r['machine']['delta_spark']}")
    print()
    header = f"{'':34} {'median s':>9} {'rows/s':>11}  runs (s)"
    print(header)
    print("-" * len(header))
    rows = (
        ("plain PySpark read+write", "plain"),
        ("ours: asset via Dagster (whole call)", "ours"),
        ("ours: engine ingest seconds", "ours_engine"),
        ("ours: Delta write alone", "ours_engine_write"),
    )
    for label, key in rows:
        runs = ", ".join(f"{v:.1f}" for v in s[key])
        print(f"{label:34} {m[key]:>9.1f} {rps[key]:>11,}  {runs}")
    print()
    verdict = "met" if r["goal_met"] else "NOT met"
    print(f"ratio ours/plain rows/s (medians): {r['ratio_ours_to_plain']:.2f}x "
          f"(goal >= {r['goal_ratio']}x: {verdict}); engine only: "
          f"{r['ratio_ours_engine_to_plain']:.2f}x; per repeat: "
          + ", ".join(f"{x:.2f}" for x in r["ratio_per_repeat"]))
    c = r["median_cpu_seconds"]
    print(f"CPU seconds (Python + JVM), medians: plain {c['plain']:.1f}, ours {c['ours']:.1f} "
          f"(plain/ours {r['cpu_ratio_plain_to_ours']:.2f})")
    print(f"load average (1 min) at start/end: {r['load_average_start']}/{r['load_average_end']}")
    print(f"Spark start-up: {r['spark_startup_seconds']:.1f}s; Dagster + definitions import: "
          f"{r['dagster_import_seconds']:.1f}s")
    parts = r["peak_rss_mb_parts"]
    print(f"peak RSS (Python + JVM + workers): {r['peak_rss_mb']:,} MB (JVM {parts['jvm']:,}, "
          f"Python {parts['python']:,}, workers {parts['workers']:,}); by phase: "
          + ", ".join(f"{k} {v:,}" for k, v in r["peak_rss_mb_by_phase"].items()))
    print("ours, median seconds per phase: "
          + ", ".join(f"{k} {v:.1f}" for k, v in r["ours_median_phase_seconds"].items()))


if __name__ == "__main__":
    sys.exit(main())
