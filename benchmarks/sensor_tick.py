"""Sensor tick cost with a large bucket: 100 000 existing objects, 100 new ones.

Starts moto's S3 server on loopback, fills a bucket with historical objects spread over past
date prefixes (as a landing zone that has run for months looks), lands new objects today, and
times the landing sensor's scan. For comparison it also lists the whole source prefix, which is
what a sensor that lists everything each tick pays. LIST requests are counted by the zone.

Then the two other ways objects are found:

- the reconciliation sweep of the whole prefix, tick by tick at the default per-tick budget:
  ticks, time, LIST requests, objects per second;
- file notification mode: the bucket sends its events to an SQS queue (moto implements S3 ->
  SQS), 100 new objects land, and a whole landing-sensor tick drains the queue; every request
  goes through a counting proxy, so LIST and SQS requests are counted on the wire.

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
    results |= sweep(spec, args)
    results |= notification_ticks(spec, args, server, put, now)
    out = ROOT / "benchmarks" / "results" / "sensor_tick.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:32} {value}")
    return 0


def sweep(spec, args) -> dict:
    """The whole prefix swept at the default per-tick budget, as the landing sensor does."""
    from manufacturing_ingest.landing.s3 import S3LandingZone
    from manufacturing_ingest.landing.sweep import SweepProgress, sweep_step
    from manufacturing_ingest.settings import Settings

    budget = Settings.from_env({}).sweep_budget_seconds
    zone = S3LandingZone("s3://bench/landing")
    progress, ticks, longest = SweepProgress(), 0, 0.0
    now = datetime.now(UTC)
    while True:
        began = time.monotonic()
        step = sweep_step(spec, zone, progress, now, spec.sweep_interval, budget)
        longest = max(longest, time.monotonic() - began)
        progress, ticks = step.progress, ticks + 1
        if step.completed:
            break
    return {
        "sweep_budget_seconds": budget,
        "sweep_ticks": ticks,
        "sweep_longest_tick_seconds": round(longest, 2),
        "sweep_seconds": round(progress.last_seconds, 1),
        "sweep_list_requests": progress.last_list_requests,
        "sweep_objects": progress.last_listed,
        "sweep_objects_per_second": round(progress.last_listed / progress.last_seconds),
    }


def notification_ticks(spec, args, server, put, now) -> dict:
    """Landing-sensor ticks in file notification mode, each finding ``args.new`` objects."""
    import boto3
    import dagster as dg

    from manufacturing_ingest.landing.scan import LandingCursor
    from manufacturing_ingest.landing.sweep import SweepProgress
    from manufacturing_ingest.orchestration.resources import (
        LakehouseResource,
        LandingZoneResource,
    )
    from manufacturing_ingest.orchestration.sensors import NEW_OBJECTS_TAG, landing_sensor
    from manufacturing_ingest_tests.s3_server import FaultProxy, is_list_request

    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="bench-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    rules = [{"Name": "prefix", "Value": f"landing/{spec.landing_prefix}/"}]
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket="bench", NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": rules}}}]})
    proxy = FaultProxy(server.port, slow_down=0, delay=0, reset=0)
    os.environ["AWS_ENDPOINT_URL"] = proxy.endpoint
    sensor = landing_sensor(spec)
    resources = {"landing": LandingZoneResource(url="s3://bench/landing",
                                                queue_urls={spec.name: queue}),
                 "lakehouse": LakehouseResource(url=str(Path(tempfile.mkdtemp()) / "none"))}
    # A sensor that has run: its last sweep was just now, so a tick only drains the queue.
    cursor = LandingCursor(sweep=SweepProgress(last_started_at=now,
                                               last_completed_at=now)).encode()
    instance = dg.DagsterInstance.ephemeral()
    times, lists, sqs_requests, found = [], [], [], []
    try:
        for repeat in range(args.repeats):
            keys = [f"{spec.landing_prefix}/{now:%Y/%m/%d}/n{repeat}-{n:04d}.csv"
                    for n in range(args.new)]
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(put, keys))
            proxy.requests.clear()
            began = time.monotonic()
            result = sensor(dg.build_sensor_context(cursor=cursor, instance=instance,
                                                    resources=resources))
            times.append(time.monotonic() - began)
            cursor = result.cursor
            lists.append(sum(map(is_list_request, proxy.requests)))
            sqs_requests.append(sum(1 for _, _, action in proxy.requests if action))
            found.append(sum(int(r.tags[NEW_OBJECTS_TAG]) for r in result.run_requests or []))
    finally:
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint
        proxy.stop()
    assert all(n == args.new for n in found), found
    return {
        "notification_tick_seconds_median": round(statistics.median(times), 3),
        "notification_tick_seconds_max": round(max(times), 3),
        "notification_tick_list_requests": max(lists),
        "notification_tick_sqs_requests_median": statistics.median(sqs_requests),
        "notification_new_objects_found": found[0],
    }


if __name__ == "__main__":
    sys.exit(main())
