#!/usr/bin/env python
"""Per run: a day through ``dagster asset materialize`` against the hand-written job's process.

Every Dagster run is a fresh process, so a run pays what a session-level benchmark hides: a cold
JVM (start-up, class loading, JIT). This compares whole runs of one 2,000,000-row sensor_data
CSV day (20 files; generated under ``benchmarks/.work/per_run/``, git-ignored), each into an
empty target, three ways, alternating, ``--repeats`` times:

- ``dagster``: ``dagster asset materialize -m manufacturing_ingest.definitions --select
  manufacturing_bronze/sensor_data --partition 2026-01-15``, a fresh process with its own local
  JVM (``MANUFACTURING_*`` pointing at scratch landing and lakehouse folders; ``DAGSTER_HOME``
  a scratch instance, so the run's events can be read back).
- ``hand_written``: ``benchmarks/hand_written_job.py``, a fresh process that builds its own
  SparkSession with the same session settings (``session_conf``) and runs the typed job with
  lineage columns (typed schema, header, ``_metadata.file_path``, ``current_timestamp()``).
- ``dagster_connect``: the same ``dagster asset materialize``, with
  ``MANUFACTURING_SPARK_REMOTE`` naming a long-lived local Spark Connect server (started once
  by this script with ``manufacturing-ingest spark-server``, as ``make dev`` starts it, and
  warmed by one unmeasured run): the run process holds no JVM.

Times are wall-clock stamps on one machine: the parent's stamp just before starting the process,
the Dagster instance's event times (run start, step start, the materialization), the stamps
``hand_written_job.py`` prints, and the timestamp of the Delta commit holding the rows (its
``commitInfo``). Reported, medians:

- **with session start**: process start → commit, for every variant; and for the Dagster
  variants run start (``RUN_START``) → commit, the issue's "run start to commit".
- **without session start**: Spark session up → commit. For ``hand_written`` from its
  "session ready" stamp; for the Dagster variants from the engine's start (the
  materialization's time minus the engine's own ``seconds``), which comes after
  ``get_session()``, so it also leaves out Dagster's run and step start.
- the process's whole wall time (Dagster's also holds the asset's quality and drift checks,
  which run after the commit in the same step, and the run's end) and its peak RSS (process and
  children: the JVM, Python workers, Dagster's step process); the Connect server's own RSS.
- ratios hand_written / variant of the seconds (≥ 1.0: the variant is at least as fast).

Figures go to ``benchmarks/results/per_run.json``.

    python benchmarks/per_run.py [--rows 2000000] [--files 20] [--repeats 3] [--no-connect]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from ingest_throughput import (
    MB,
    PARTITION,
    REPO,
    SOURCE,
    PeakRss,
    _git,
    _shown,
    ensure_landed,
    setup_logging,
)

DEFAULT_WORK = REPO / "benchmarks" / ".work" / "per_run"
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "per_run.json"
HAND_WRITTEN = Path(__file__).resolve().with_name("hand_written_job.py")
ASSET = "manufacturing_bronze/sensor_data"
CONNECT_START_TIMEOUT = 300

log = logging.getLogger("benchmarks.per_run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the day (2000000)")
    parser.add_argument("--files", type=int, default=20, help="CSV files in the day (20)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repetitions (3)")
    parser.add_argument("--no-connect", action="store_true",
                        help="leave out the variant on a long-lived Spark Connect server")
    parser.add_argument("--regenerate", action="store_true",
                        help="write the landing files again even if they are already there")
    parser.add_argument("--work", default=str(DEFAULT_WORK),
                        help="scratch folder (benchmarks/.work/per_run)")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS),
                        help="where the JSON figures go (benchmarks/results/per_run.json)")
    args = parser.parse_args(argv)
    if args.rows <= 0 or args.files <= 0 or args.repeats <= 0 or args.rows % args.files:
        raise SystemExit("--rows, --files, --repeats positive; --rows a multiple of --files")
    setup_logging()
    work = Path(args.work).resolve()
    results_path = Path(args.results).resolve()
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
    landing = work / "landing"
    folder, files, size, generate_seconds = ensure_landed(landing, "csv", args.rows, args.files,
                                                          args.regenerate)
    home = work / "dagster_home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    tables = work / "tables"
    shutil.rmtree(tables, ignore_errors=True)

    from manufacturing_ingest.catalog import CATALOG
    from manufacturing_ingest.engine.spark import session_conf
    from manufacturing_ingest.settings import Settings

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MANUFACTURING_") and k != "DAGSTER_HOME"}
    env.update({"MANUFACTURING_ENV": "local", "MANUFACTURING_LANDING_URL": str(landing),
                "DAGSTER_HOME": str(home)})
    settings = Settings.from_env(env)
    spec = CATALOG[SOURCE]
    conf = {"spark.master": settings.spark.master, **session_conf(settings.spark)}
    if "spark.jars" not in conf:
        raise SystemExit("no Delta jars in the virtualenv: run `manufacturing-ingest fetch-jars`")
    typed = ", ".join(f"`{name}` {kind}" for name, kind in spec.columns.items())
    bench = Runs(work, tables, env, home, folder, typed, conf, spec)

    variants = ["dagster", "hand_written"] + ([] if args.no_connect else ["dagster_connect"])
    server = None
    results: dict[str, list[dict]] = {v: [] for v in variants}
    try:
        if not args.no_connect:
            server = ConnectServer(work / "connect-server.log")
            log.info("Spark Connect server on %s up in %.1fs; warming it with one run",
                     server.url, server.start_seconds)
            warm = bench.dagster("warm-up", remote=server.url)
            log.info("warm-up run on the Connect server: run start → commit %.1fs",
                     warm["run_start_to_commit"])
        for rep in range(1, args.repeats + 1):
            for variant in variants:
                label = f"{variant} {rep}/{args.repeats}"
                if variant == "hand_written":
                    record = bench.hand_written(label)
                else:
                    record = bench.dagster(label, remote=server.url
                                           if variant == "dagster_connect" else "")
                if record["rows"] != args.rows:
                    log.warning("%s: %s rows, expected %d", label, record["rows"], args.rows)
                results[variant].append(record)
        server_rss = server.peak_rss_mb() if server else None
    finally:
        if server:
            server.stop()

    keys = ("process_to_commit", "run_start_to_commit", "session_to_commit", "process_seconds",
            "step_start_to_engine_start", "engine_seconds", "peak_rss_mb")
    medians = {v: {k: round(statistics.median(r[k] for r in rs), 2)
                   for k in keys if all(r.get(k) is not None for r in rs)}
               for v, rs in results.items()}
    hand = medians["hand_written"]
    ratios = {}
    for variant in (v for v in variants if v != "hand_written"):
        m = medians[variant]
        ratios[variant] = {
            # With session start in both: the pairing, and process start for both.
            "with_session_start_run_start": round(hand["process_to_commit"]
                                                  / m["run_start_to_commit"], 3),
            "with_session_start_process_start": round(hand["process_to_commit"]
                                                      / m["process_to_commit"], 3),
            "without_session_start": round(hand["session_to_commit"] / m["session_to_commit"],
                                           3),
            "whole_process": round(hand["process_seconds"] / m["process_seconds"], 3),
        }
    return {
        "benchmark": "per_run",
        "recorded_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "load_average_start": load_start,
        "load_average_end": round(os.getloadavg()[0], 2),
        "command": f"python benchmarks/per_run.py --rows {args.rows} --files {args.files} "
                   f"--repeats {args.repeats}" + (" --no-connect" if args.no_connect else ""),
        "git_commit": git_commit,
        "git_dirty": git_dirty,
        "data": {"source": SOURCE, "partition": PARTITION, "format": "csv (uncompressed)",
                 "files": len(files), "rows": args.rows, "bytes": size,
                 "generate_seconds": round(generate_seconds, 1) if generate_seconds
                 else "reused"},
        "spark_conf": conf,
        "repeats": args.repeats,
        "runs": results,
        "median_seconds": medians,
        "ratios_hand_written_to": ratios,
        "connect_server": (None if server is None else
                           {"start_seconds": round(server.start_seconds, 1),
                            "peak_rss_mb": server_rss}),
    }


class Runs:
    """Starts one measured process of each kind and reads back when it committed."""

    def __init__(self, work: Path, tables: Path, env: dict[str, str], home: Path, folder: Path,
                 typed: str, conf: dict[str, str], spec):
        self.work, self.tables, self.env, self.home = work, tables, env, home
        self.folder, self.typed, self.conf, self.spec = folder, typed, conf, spec
        self.count = 0

    def _target(self, name: str) -> Path:
        # A new folder per run: a long-lived Connect server must never see a reused table path.
        self.count += 1
        path = self.tables / f"{self.count:02d}-{name.replace(' ', '-').replace('/', 'of')}"
        return path

    def dagster(self, label: str, remote: str) -> dict:
        from manufacturing_ingest.engine.lakehouse import Lakehouse

        lakehouse = self._target(label)
        env = {**self.env, "MANUFACTURING_LAKEHOUSE_URL": str(lakehouse)}
        if remote:
            env["MANUFACTURING_SPARK_REMOTE"] = remote
        command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
                   "-m", "manufacturing_ingest.definitions", "--select", ASSET,
                   "--partition", PARTITION]
        outcome = self._measure(label, command, env, lakehouse.with_suffix(".log"))
        run = dagster_run(self.home)
        meta = run["metadata"]
        table = Path(Lakehouse(str(lakehouse)).table_path(self.spec))
        committed = commit_time(table, int(meta["delta_version"]))
        engine_start = run["materialized"] - float(meta["seconds"])
        record = {
            **outcome,
            "run_id": run["run_id"],
            "process_to_commit": committed - outcome["process_start"],
            "run_start_to_commit": committed - run["run_start"],
            "session_to_commit": committed - engine_start,
            "step_start_to_engine_start": engine_start - run["step_start"],
            "engine_seconds": float(meta["seconds"]),
            "engine_write_seconds": float(meta["write_seconds"]),
            "rows": int(meta["records"]),
            "files_failed": int(meta["files_failed"]),
        }
        log.info("%s: run start → commit %.1fs, process start → commit %.1fs, engine start → "
                 "commit %.1fs; process %.1fs, peak RSS %d MB", label,
                 record["run_start_to_commit"], record["process_to_commit"],
                 record["session_to_commit"], record["process_seconds"], record["peak_rss_mb"])
        shutil.rmtree(lakehouse, ignore_errors=True)
        return _rounded(record)

    def hand_written(self, label: str) -> dict:
        table = self._target(label) / SOURCE
        command = [sys.executable, str(HAND_WRITTEN), str(self.folder), str(table), self.typed,
                   json.dumps(self.conf)]
        outcome = self._measure(label, command, self.env, table.parent.with_suffix(".log"))
        stamps = json.loads(outcome.pop("stdout").strip().splitlines()[-1])
        committed, rows = commit_time(table, 0), written_rows(table, 0)
        record = {
            **outcome,
            "process_to_commit": committed - outcome["process_start"],
            "run_start_to_commit": None,
            "session_to_commit": committed - stamps["session_ready"],
            "session_start_seconds": stamps["session_ready"] - stamps["imported"],
            "python_start_and_import_seconds": stamps["imported"] - outcome["process_start"],
            "write_seconds": stamps["committed"] - stamps["session_ready"],
            "rows": rows,
        }
        log.info("%s: process start → commit %.1fs, session ready → commit %.1fs; process "
                 "%.1fs, peak RSS %d MB", label, record["process_to_commit"],
                 record["session_to_commit"], record["process_seconds"], record["peak_rss_mb"])
        shutil.rmtree(table.parent, ignore_errors=True)
        return _rounded(record)

    def _measure(self, label: str, command: list[str], env: dict[str, str], log_path: Path
                 ) -> dict:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log.info("%s: starting", label)
        with log_path.open("wb") as err:
            start = time.time()
            began = time.monotonic()
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err,
                                       cwd=self.work)
            memory = PeakRss(interval=0.2, process=psutil.Process(process.pid))
            memory.start()
            try:
                stdout, _ = process.communicate()
            finally:
                memory.stop()
            seconds = time.monotonic() - began
        if process.returncode:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{label}: exit {process.returncode}; {log_path}:\n{tail}")
        return {"process_start": start, "process_seconds": seconds,
                "peak_rss_mb": round(memory.peak / MB), "stdout": stdout.decode()}


def dagster_run(home: Path) -> dict:
    """The newest run of the scratch instance: its event times and the materialization."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        [record] = instance.get_runs(limit=1)
        stamps, metadata, materialized = {}, None, None
        for entry in instance.all_logs(record.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.RUN_START:
                stamps["run_start"] = entry.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_START:
                stamps.setdefault("step_start", entry.timestamp)
            elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                materialized = entry.timestamp
                metadata = {k: v.value for k, v in entry.asset_materialization.metadata.items()}
        if record.status != dg.DagsterRunStatus.SUCCESS or metadata is None:
            raise SystemExit(f"run {record.run_id} ended {record.status} without a "
                             "materialization")
    return {"run_id": record.run_id, "metadata": metadata, "materialized": materialized,
            **stamps}


def commit_time(table: Path, version: int) -> float:
    """When Delta committed ``version`` of ``table`` (its commitInfo timestamp), epoch seconds."""
    for line in (table / "_delta_log" / f"{version:020d}.json").read_text().splitlines():
        action = json.loads(line)
        if "commitInfo" in action:
            return action["commitInfo"]["timestamp"] / 1000
    raise SystemExit(f"{table} version {version} has no commitInfo")


def written_rows(table: Path, version: int) -> int | None:
    """Rows Delta wrote in ``version`` (``operationMetrics.numOutputRows``)."""
    for line in (table / "_delta_log" / f"{version:020d}.json").read_text().splitlines():
        action = json.loads(line)
        if "commitInfo" in action:
            rows = action["commitInfo"].get("operationMetrics", {}).get("numOutputRows")
            return int(rows) if rows is not None else None
    return None


def _rounded(record: dict) -> dict:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in record.items()}


class ConnectServer:
    """A local Spark Connect server started as `make dev` and the tests start one
    (``manufacturing-ingest spark-server``), with its memory sampled."""

    def __init__(self, log_path: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"sc://127.0.0.1:{self.port}"
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        began = time.monotonic()
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("manufacturing-ingest")), "spark-server",
             "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MANUFACTURING_SPARK_REMOTE": ""},
        )
        self.memory = PeakRss(interval=0.5, process=psutil.Process(self.process.pid))
        self.memory.start()
        deadline = time.monotonic() + CONNECT_START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise SystemExit(f"Spark Connect server exited with {self.process.returncode};"
                                 f" see {log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
            except OSError:
                waited_out = time.monotonic() > deadline
            else:
                break
            if waited_out:
                self.stop()
                raise SystemExit(f"Spark Connect server not listening; see {log_path}")
            time.sleep(0.5)
        self.start_seconds = time.monotonic() - began

    def peak_rss_mb(self) -> int:
        return round(self.memory.peak / MB)

    def stop(self) -> None:
        self.memory.stop()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def print_summary(r: dict) -> None:
    d, m = r["data"], r["median_seconds"]
    print()
    print(f"per run: {d['rows']:,} sensor_data rows in {d['files']} CSV files, each run a fresh "
          f"process into an empty target; medians of {r['repeats']}")
    header = (f"{'':16} {'run start→commit':>17} {'process→commit':>15} "
              f"{'session→commit':>15} {'process s':>10} {'peak RSS MB':>12}")
    print(header)
    print("-" * len(header))
    for variant, s in m.items():
        run_start = s.get("run_start_to_commit")
        run_text = f"{run_start:>17.1f}" if run_start is not None else f"{'—':>17}"
        print(f"{variant:16} {run_text} {s['process_to_commit']:>15.1f} "
              f"{s['session_to_commit']:>15.1f} {s['process_seconds']:>10.1f} "
              f"{s['peak_rss_mb']:>12,.0f}")
    for variant, q in r["ratios_hand_written_to"].items():
        print(f"hand_written / {variant}: with session start "
              f"{q['with_session_start_run_start']:.2f}x (run start; process start for both: "
              f"{q['with_session_start_process_start']:.2f}x), without "
              f"{q['without_session_start']:.2f}x, whole process {q['whole_process']:.2f}x")
    if r["connect_server"]:
        c = r["connect_server"]
        print(f"Spark Connect server: up in {c['start_seconds']:.1f}s, peak RSS "
              f"{c['peak_rss_mb']:,} MB (held across runs)")
    print("(≥ 1.0: the variant is at least as fast as the hand-written job's process)")
    print(f"load average (1 min) at start/end: {r['load_average_start']}/{r['load_average_end']}")


if __name__ == "__main__":
    sys.exit(main())
