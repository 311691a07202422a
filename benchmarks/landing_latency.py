"""Landing-to-commit latency on a live deployment: files land one every few seconds in the S3 API
server, and each is timed from its upload until its rows are visible in bronze.

What runs is what an operator runs: ``dagster-webserver`` and ``dagster-daemon`` over the
project's ``workspace.yaml`` with the ``dagster.yaml`` that ``make dev`` ships, the landing zone
in a real S3 API server (moto in server mode), and every run on one warm Spark Connect server
(``manufacturing-ingest spark-server``, as ``make dev`` starts it). The path measured is the
whole chain: the landing sensor's tick lists the object, asks for a run, the run queue starts it,
the run ingests and commits, and the benchmark sees the rows with ``deltalake`` (polled every
0.5 s, so a latency is at most that much late).

    python benchmarks/landing_latency.py [--files 24] [--every 5] [--interval 15] [--rows 2000]

``--interval`` is the landing sensor's interval (``MANUFACTURING_LANDING_INTERVAL_SECONDS``;
the shipped default is 60). Figures go to ``benchmarks/results/landing_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "landing_latency.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=24, help="files to land (default 24)")
    parser.add_argument("--every", type=float, default=5.0,
                        help="seconds between two uploads (default 5)")
    parser.add_argument("--interval", type=int, default=15,
                        help="landing sensor interval in seconds (default 15)")
    parser.add_argument("--rows", type=int, default=2000, help="rows per file (default 2000)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds to wait for the last file after the uploads end")
    args = parser.parse_args()

    import boto3
    from deltalake import DeltaTable

    from manufacturing_ingest.catalog import get_source
    from manufacturing_ingest.generate import GenerateOptions, generate
    from manufacturing_ingest_tests.live_ui import LiveDagster
    from manufacturing_ingest_tests.s3_server import MotoServer
    from manufacturing_ingest_tests.spark_connect import ConnectServer

    spec = get_source("sensor_data")
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    work = Path(tempfile.mkdtemp(prefix="landing_latency_"))
    print(f"working in {work}", flush=True)
    moto = MotoServer(work / "moto.log")
    aws = {
        "AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    s3.create_bucket(Bucket="plant-landing")
    spark = ConnectServer(work / "spark-server.log")
    env = {**os.environ, **aws,
           "MANUFACTURING_LANDING_URL": "s3://plant-landing/landing",
           "MANUFACTURING_LAKEHOUSE_URL": str(work / "lakehouse"),
           "MANUFACTURING_SPARK_REMOTE": spark.url,
           "MANUFACTURING_LANDING_INTERVAL_SECONDS": str(args.interval)}
    for name in ("MANUFACTURING_ENV", "MANUFACTURING_CATALOG", "DAGSTER_HOME",
                 "MANUFACTURING_ALERT_WEBHOOK_URL", "MANUFACTURING_ALERT_SMTP_HOST"):
        env.pop(name, None)
    deployment = LiveDagster(work, env)
    table_path = work / "lakehouse" / "manufacturing_bronze" / spec.name

    # The files, generated up front so the uploads are evenly spaced.
    staged = work / "staged"
    bodies: list[tuple[str, bytes]] = []
    for i in range(args.files):
        for path in generate(staged / str(i), spec.name, day,
                             options=GenerateOptions(files=1, rows_per_file=args.rows, seed=i)):
            key = path.relative_to(staged / str(i)).as_posix().replace(".csv", f"-{i:03d}.csv")
            bodies.append((key, path.read_bytes()))

    landed_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}

    def poll() -> None:
        if not table_path.exists():
            return
        try:
            files = DeltaTable(str(table_path)).to_pyarrow_table(
                columns=["_source_file"]).column("_source_file").unique().to_pylist()
        except Exception:  # noqa: BLE001 - the table is being created; look again
            return
        now = time.time()
        for uri in files:
            name = uri.rsplit("/", 1)[-1]
            seen_at.setdefault(name, now)

    try:
        deployment.start()
        print(f"webserver {deployment.url}; landing {args.files} files, one every "
              f"{args.every:g} s, sensor interval {args.interval} s", flush=True)
        started = time.time()
        for i, (key, body) in enumerate(bodies):
            due = started + i * args.every
            while time.time() < due:
                poll()
                time.sleep(0.5)
            s3.put_object(Bucket="plant-landing", Key=f"landing/{key}", Body=body)
            landed_at[key.rsplit("/", 1)[-1]] = time.time()
        deadline = time.time() + args.timeout
        while len(set(landed_at) & set(seen_at)) < len(landed_at) and time.time() < deadline:
            poll()
            time.sleep(0.5)
        import dagster as dg

        instance = deployment.instance()
        sensor_runs = dg.RunsFilter(tags={"dagster/sensor_name": f"{spec.name}_landing_sensor"})
        # Let the queue drain, so every run's outcome is counted (a run asked for files an
        # earlier run already took ends quickly with nothing to do).
        drain = time.time() + 180
        while time.time() < drain and any(
                not r.dagster_run.is_finished for r in instance.get_run_records(sensor_runs)):
            time.sleep(1)
        statuses = sorted(str(r.dagster_run.status.value)
                          for r in instance.get_run_records(sensor_runs))
    finally:
        deployment.stop()
        spark.stop()
        moto.stop()

    missing = sorted(set(landed_at) - set(seen_at))
    latencies = sorted(seen_at[name] - landed_at[name] for name in landed_at if name in seen_at)
    if not latencies:
        print("no file reached bronze", file=sys.stderr)
        return 1
    p95 = latencies[min(len(latencies) - 1, max(0, round(0.95 * len(latencies)) - 1))]
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({os.cpu_count()} cores)",
        "files": args.files, "every_seconds": args.every, "rows_per_file": args.rows,
        "sensor_interval_seconds": args.interval,
        "runs": len(statuses), "run_statuses": statuses,
        "missing": missing,
        "latency_seconds": {"p50": round(statistics.median(latencies), 1),
                            "p95": round(p95, 1), "max": round(latencies[-1], 1),
                            "min": round(latencies[0], 1)},
        "latencies": [round(x, 1) for x in latencies],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    figures = result["latency_seconds"]
    print(f"{len(latencies)}/{len(landed_at)} files in bronze through {len(statuses)} runs "
          f"({', '.join(sorted(set(statuses)))}); landing to commit: p50 {figures['p50']} s, "
          f"p95 {figures['p95']} s, max {figures['max']} s (sensor interval {args.interval} s)")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
