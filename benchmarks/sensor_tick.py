"""Sensor tick cost with a large bucket: 100 000 existing objects, 100 new ones.

Starts moto's S3 server on loopback, fills a bucket with historical objects spread over past
date prefixes (as a landing zone that has run for months looks), lands new objects today, and
times the landing sensor's scan. For comparison it also lists the whole source prefix, which is
what a sensor that lists everything each tick pays. LIST requests are counted by the zone.

    python benchmarks/sensor_tick.py [--existing 100000] [--new 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=1000, help="historical objects per day")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
    from manufacturing_ingest_tests.s3_server import MotoServer

    server = MotoServer(Path(tempfile.mkdtemp()) / "moto.log")
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint
    try:
        return run(args, server)
    finally:
        server.stop()


def run(args, server) -> int:
    import boto3

    from manufacturing_ingest.catalog import get_source
    from manufacturing_ingest.landing.s3 import S3LandingZone
    from manufacturing_ingest.landing.scan import LandingCursor, scan_landing

    spec = get_source("sensor_data")
    client = boto3.client("s3")
    client.create_bucket(Bucket="bench")
    now = datetime.now(UTC)
    body = b"plant_id,sensor_id\nP01,S1\n"

    def put(key: str) -> None:
        client.put_object(Bucket="bench", Key=f"landing/{key}", Body=body)

    # Historical objects end three days ago: the sensor's lookback is one day.
    historical = [
        f"{spec.landing_prefix}/{now - timedelta(days=3 + n // args.per_day):%Y/%m/%d}/"
        f"part-{n:06d}.csv" for n in range(args.existing)
    ]
    began = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, historical))
    print(f"put {args.existing} historical objects in {time.monotonic() - began:.0f}s")

    zone = S3LandingZone("s3://bench/landing")
    # The sensor has been running: its cursor knows everything up to now.
    cursor = scan_landing(spec, zone, LandingCursor(), now=now).cursor
    new_keys = [f"{spec.landing_prefix}/{now:%Y/%m/%d}/new-{n:04d}.csv" for n in range(args.new)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, new_keys))

    ticks, requests, found = [], [], []
    for _ in range(args.repeats):
        zone = S3LandingZone("s3://bench/landing")
        began = time.monotonic()
        scan = scan_landing(spec, zone, cursor)
        ticks.append(time.monotonic() - began)
        requests.append(scan.list_requests)
        found.append(len(scan.new_objects))
    full_times, full_requests = [], []
    for _ in range(args.repeats):
        zone = S3LandingZone("s3://bench/landing")
        began = time.monotonic()
        listed = sum(1 for _ in zone.list_flat(f"{spec.landing_prefix}/"))
        full_times.append(time.monotonic() - began)
        full_requests.append(zone.list_requests)
    results = {
        "existing_objects": args.existing,
        "new_objects": args.new,
        "repeats": args.repeats,
        "tick_seconds_median": round(statistics.median(ticks), 3),
        "tick_seconds_max": round(max(ticks), 3),
        "tick_list_requests": requests[0],
        "new_objects_found": found[0],
        "full_listing_seconds_median": round(statistics.median(full_times), 3),
        "full_listing_list_requests": full_requests[0],
        "full_listing_objects": listed,
        "speedup_vs_full_listing": round(statistics.median(full_times)
                                         / statistics.median(ticks), 1),
    }
    assert all(n == args.new for n in found), found
    out = ROOT / "benchmarks" / "results" / "sensor_tick.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
