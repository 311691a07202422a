"""Landing-to-visible latency of ``manufacturing-ingest stream``, and the throughput of a burst.

What runs is what an operator runs: ``manufacturing-ingest stream --source sensor_data`` as its
own process (one local Spark JVM, kept warm), recording into a Dagster instance, with the landing
zone in a real S3 API server (moto in server mode; ``--landing local`` for a folder instead).

1. **Trickle**: ``--files`` files (``--rows`` rows each) land one every ``--every`` seconds
   (default 3). Each is timed from the end of its upload until its rows are visible in bronze,
   read with ``deltalake`` (polled every 0.2 s, so a latency is at most that much late).
2. **Burst**: ``--burst`` small files (``--burst-rows`` rows each) land at once; timed from the
   first upload until every one of them is visible: files and rows per second, the number of
   micro-batches, and the resident memory of the stream's process tree (Python and its JVM),
   sampled every 0.5 s: before the burst, at its peak, after it, and as each quarter of the
   burst becomes visible (the whole tree, and the Python process alone).

Both phases end with an exactly-once count (rows in bronze = rows landed) and the stream is
stopped with SIGTERM, which must exit 0. Figures go to ``benchmarks/results/stream_latency.json``.

    python benchmarks/stream_latency.py [--files 40] [--every 3] [--rows 2000]
                                        [--burst 10000] [--burst-rows 20] [--landing s3|local]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "stream_latency.json"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


class TreeMemory(threading.Thread):
    """Memory of a process and its children (proportional set size: resident pages, shared
    ones divided among their sharers), sampled every 0.5 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, int]] = []
        self.python: list[tuple[float, int]] = []  # the stream's own process, without its JVM
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.done.wait(0.5):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                # PSS, not RSS: a JVM forking a helper (Hadoop runs a few shell commands) shows
                # a child with the parent's whole RSS for a moment, which a sum of RSS counts
                # twice (single samples 3-4 GB above their neighbours); PSS shares those pages.
                rss = sum(p.memory_full_info().pss for p in tree if p.is_running())
                own = self.process.memory_full_info().pss
            except psutil.Error:
                continue
            self.samples.append((time.time(), rss))
            self.python.append((time.time(), own))

    def peak(self, since: float, until: float) -> int:
        return max((rss for at, rss in self.samples if since <= at <= until), default=0)

    def last_before(self, when: float, python: bool = False) -> int:
        samples = self.python if python else self.samples
        return next((rss for at, rss in reversed(samples) if at <= when), 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40, help="trickle files (default 40)")
    parser.add_argument("--every", type=float, default=3.0,
                        help="seconds between two trickle uploads (default 3)")
    parser.add_argument("--rows", type=int, default=2000, help="rows per trickle file")
    parser.add_argument("--burst", type=int, default=10_000, help="burst files (default 10000)")
    parser.add_argument("--burst-rows", type=int, default=20, help="rows per burst file")
    parser.add_argument("--landing", choices=["s3", "local"], default="s3")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help=f"where the figures go (default {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds to wait for a phase's last file")
    args = parser.parse_args()

    from deltalake import DeltaTable

    from manufacturing_ingest.catalog import get_source
    from manufacturing_ingest.generate import GenerateOptions, generate

    spec = get_source("sensor_data")
    day = datetime.now(UTC).date()
    work = Path(tempfile.mkdtemp(prefix="stream_latency_"))
    print(f"working in {work}", flush=True)
    env = {**os.environ, "MANUFACTURING_LAKEHOUSE_URL": str(work / "lakehouse"),
           "DAGSTER_HOME": str(work / "dagster_home")}
    for name in ("MANUFACTURING_ENV", "MANUFACTURING_CATALOG", "MANUFACTURING_SPARK_REMOTE",
                 "MANUFACTURING_ALERT_WEBHOOK_URL", "MANUFACTURING_ALERT_SMTP_HOST"):
        env.pop(name, None)
    (work / "dagster_home").mkdir()
    (work / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    moto = None
    if args.landing == "s3":
        import boto3

        from manufacturing_ingest_tests.s3_server import MotoServer

        moto = MotoServer(work / "moto.log")
        aws = {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
               "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
        env.update(aws, MANUFACTURING_LANDING_URL="s3://plant-landing/landing")
        s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        s3.create_bucket(Bucket="plant-landing")

        def land(key: str, body: bytes) -> None:
            s3.put_object(Bucket="plant-landing", Key=f"landing/{key}", Body=body)
    else:
        landing = work / "landing"
        landing.mkdir()
        env["MANUFACTURING_LANDING_URL"] = str(landing)

        def land(key: str, body: bytes) -> None:
            target = landing / key
            target.parent.mkdir(parents=True, exist_ok=True)
            hidden = target.with_name(f".{target.name}.partial")
            hidden.write_bytes(body)
            hidden.rename(target)  # one atomic step, as an uploader's rename

    def bodies(count: int, rows: int, tag: str) -> list[tuple[str, bytes, int]]:
        staged = work / f"staged-{tag}"
        out = []
        template = generate(staged, spec.name, day,
                            options=GenerateOptions(files=1, rows_per_file=rows, seed=3))[0]
        relative = template.relative_to(staged).as_posix()
        lines = template.read_bytes().splitlines(keepends=True)
        header, data = lines[0], lines[1:]
        for i in range(count):
            # Each file's rows differ in their sensor id, so no two files repeat a key.
            body = header + b"".join(line.replace(b"-S", f"-S{tag}{i:05d}-".encode(), 1)
                                     for line in data)
            out.append((relative.replace(".csv", f"-{tag}{i:05d}.csv"), body, len(data)))
        return out

    trickle = bodies(args.files, args.rows, "t")
    burst = bodies(args.burst, args.burst_rows, "b")
    table_path = work / "lakehouse" / "manufacturing_bronze" / spec.name
    seen_at: dict[str, float] = {}
    rows_seen = 0

    def poll() -> None:
        nonlocal rows_seen
        if not table_path.exists():
            return
        try:
            column = DeltaTable(str(table_path)).to_pyarrow_table(
                columns=["_source_file"]).column("_source_file")
        except Exception:  # noqa: BLE001 - the table is being created; look again
            return
        now = time.time()
        rows_seen = len(column)
        for uri in column.unique().to_pylist():
            seen_at.setdefault(uri.rsplit("/", 1)[-1], now)

    log_path = work / "stream.log"
    stream = subprocess.Popen(
        [str(Path(sys.executable).parent / "manufacturing-ingest"), "stream", "--source",
         spec.name, "--check-window", "30"],
        env=env, stdout=subprocess.DEVNULL, stderr=log_path.open("w"), cwd=work)
    memory = TreeMemory(stream.pid)
    memory.start()
    try:
        deadline = time.time() + 180
        while "watching" not in log_path.read_text() and time.time() < deadline:
            if stream.poll() is not None:
                raise RuntimeError(f"the stream exited: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        print(f"stream up; trickle: {args.files} files, one every {args.every:g} s "
              f"({args.landing} landing)", flush=True)
        landed_at: dict[str, float] = {}
        started = time.time()
        for i, (key, body, _) in enumerate(trickle):
            due = started + i * args.every
            while time.time() < due:
                poll()
                time.sleep(0.2)
            land(key, body)
            landed_at[key.rsplit("/", 1)[-1]] = time.time()
        deadline = time.time() + args.timeout
        while set(landed_at) - set(seen_at) and time.time() < deadline:
            poll()
            time.sleep(0.2)
        trickle_rows = sum(n for _, _, n in trickle)
        poll()
        trickle_exact = rows_seen == trickle_rows
        latencies = [seen_at[n] - landed_at[n] for n in landed_at if n in seen_at]

        print(f"burst: {args.burst} files of {args.burst_rows} rows", flush=True)
        time.sleep(5)  # let the trickle's check window pass; the burst starts from quiet
        before = time.time()
        for key, body, _ in burst:
            land(key, body)
        uploaded = time.time()
        names = {key.rsplit("/", 1)[-1] for key, _, _ in burst}
        deadline = time.time() + args.timeout
        quarters: list[dict[str, float]] = []  # memory as each quarter of the burst is in
        while names - set(seen_at) and time.time() < deadline:
            poll()
            done = len(names & set(seen_at)) / len(names)
            if done >= 0.25 * (len(quarters) + 1):
                now = time.time()
                quarters.append({"share_visible": round(done, 2),
                                 "seconds": round(now - before, 1),
                                 "rss_mb": round(memory.last_before(now) / 2**20),
                                 "python_rss_mb": round(memory.last_before(now, True) / 2**20)})
            time.sleep(1.0)
        finished = time.time()
        poll()
        burst_missing = len(names - set(seen_at))
        exact = rows_seen == trickle_rows + sum(n for _, _, n in burst)
        time.sleep(2)
        after_rss = memory.last_before(time.time())
        stream.send_signal(signal.SIGTERM)
        code = stream.wait(timeout=120)
    finally:
        memory.done.set()
        if stream.poll() is None:
            stream.kill()
        if moto is not None:
            moto.stop()

    # The memory samples, for a look at where a peak falls against the stream's log lines.
    with (work / "memory.tsv").open("w") as trace:
        trace.write("time\ttree_rss_mb\tpython_rss_mb\n")
        for (at, rss), (_, own) in zip(memory.samples, memory.python, strict=False):
            trace.write(f"{datetime.fromtimestamp(at, UTC):%H:%M:%S.%f}\t{rss >> 20}\t"
                        f"{own >> 20}\n")
    log_text = log_path.read_text()
    batches = log_text.count("micro-batch")
    if not latencies:
        print("no file reached bronze", file=sys.stderr)
        return 1
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({os.cpu_count()} cores)",
        "landing": args.landing,
        "trickle": {
            "files": args.files, "every_seconds": args.every, "rows_per_file": args.rows,
            "missing": len(set(landed_at) - set(seen_at)), "exactly_once": trickle_exact,
            "latency_seconds": {"p50": round(statistics.median(latencies), 2),
                                "p95": round(percentile(latencies, 0.95), 2),
                                "max": round(max(latencies), 2),
                                "min": round(min(latencies), 2)},
            "latencies": [round(x, 2) for x in sorted(latencies)],
        },
        "burst": {
            "files": args.burst, "rows_per_file": args.burst_rows,
            "upload_seconds": round(uploaded - before, 1),
            "seconds_to_last_visible": round(finished - before, 1),
            "files_per_second": round(args.burst / (finished - before), 1),
            "rows_per_second": round(args.burst * args.burst_rows / (finished - before), 1),
            "missing": burst_missing, "exactly_once": exact,
            "rss_mb_before": round(memory.last_before(before) / 2**20),
            "rss_mb_peak": round(memory.peak(before, finished) / 2**20),
            "rss_mb_after": round(after_rss / 2**20),
            "by_quarter": quarters,
        },
        "micro_batch_lines": batches,
        "sigterm_exit_code": code,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    t, b = result["trickle"], result["burst"]
    print(f"trickle: {len(latencies)}/{args.files} files visible, landing to visible p50 "
          f"{t['latency_seconds']['p50']} s, p95 {t['latency_seconds']['p95']} s, max "
          f"{t['latency_seconds']['max']} s; exactly once: {t['exactly_once']}")
    print(f"burst: {args.burst - burst_missing}/{args.burst} files in "
          f"{b['seconds_to_last_visible']} s ({b['files_per_second']} files/s, "
          f"{b['rows_per_second']} rows/s); RSS {b['rss_mb_before']} MB before, "
          f"{b['rss_mb_peak']} MB peak, {b['rss_mb_after']} MB after; exactly once: "
          f"{b['exactly_once']}; SIGTERM exit code {code}")
    ok = (not t["missing"] and not burst_missing and t["exactly_once"] and exact and code == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
