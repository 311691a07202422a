"""The reconciliation sweep against a real S3 API server process: the whole prefix listed in key
order, resumably, a little per tick; late objects under old date prefixes requested and counted
as backlog until they are committed."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.landing import LocalLandingZone
from manufacturing_ingest.landing.s3 import S3LandingZone
from manufacturing_ingest.landing.sweep import SweepFindings, SweepProgress, sweep_step
from manufacturing_ingest.orchestration.assets import bronze_asset, landing_assets
from manufacturing_ingest.orchestration.checks import backlog_check
from manufacturing_ingest.orchestration.resources import (
    InProcessStep,
    LakehouseResource,
    LandingZoneResource,
    RemoteJobResource,
    SparkResource,
)
from manufacturing_ingest.orchestration.sensors import landing_sensor
from manufacturing_ingest_tests.samples import numbered_sensor_csv
from manufacturing_ingest_tests.sensor_results import skip_message as message
from manufacturing_ingest_tests.sensor_results import spans

pytestmark = pytest.mark.s3

NOW = datetime.now(UTC)
SPEC = get_source("sensor_data")
# Names whose key order differs from a naive walk: "." < "/" < "0", a file beside a folder of
# the same name, undated keys, date folders.
KEYS = [
    "raw/sensor-data/a.csv",
    "raw/sensor-data/a/b.csv",
    "raw/sensor-data/a/b/c.csv",
    "raw/sensor-data/a0.csv",
    "raw/sensor-data/2026/01/01/x.csv",
    "raw/sensor-data/2026/01/02/y.csv",
    "raw/sensor-data/2026/01/02/z.csv",
    "raw/sensor-data/Z.csv",
]


class Clock:
    """The sensor's "now", moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize("store", ["s3", "local"])
def test_list_after_gives_every_key_in_order_and_resumes_after_any_of_them(store, bucket,
                                                                           tmp_path):
    if store == "s3":
        for key in KEYS:
            bucket.put(key, "x")
        zone = S3LandingZone(bucket.url)
    else:
        for key in KEYS:
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_text("x")
        zone = LocalLandingZone(tmp_path)
    ordered = sorted(KEYS)
    assert [o.key for o in zone.list_after("raw/sensor-data/")] == ordered
    for n, key in enumerate(ordered):
        assert [o.key for o in zone.list_after("raw/sensor-data/", key)] == ordered[n + 1:]


def test_the_sweep_resumes_across_ticks_when_its_budget_runs_out(bucket):
    for key in KEYS:
        bucket.put(key, "x")
    zone = S3LandingZone(bucket.url)
    ticks = iter(range(10_000))  # a clock that moves one second per look
    progress = SweepProgress()
    listed: list[str] = []
    steps = 0
    while True:
        step = sweep_step(SPEC, zone, progress, NOW, timedelta(days=1), budget_seconds=3,
                          clock=lambda: float(next(ticks)))
        listed += [o.key for o in step.objects]
        progress = step.progress
        steps += 1
        assert steps == 1 or not step.started
        if step.completed:
            break
        assert progress.after == listed[-1]  # where the next tick goes on
    assert listed == sorted(KEYS)  # each key once, in order, across the ticks
    assert steps == 3
    assert progress.last_listed == len(KEYS) and progress.started_at is None
    assert progress.last_list_requests == steps  # one LIST page per tick here

    # Not due again until a day after it started.
    idle = sweep_step(SPEC, zone, progress, NOW + timedelta(hours=23), timedelta(days=1), 3)
    assert not idle.objects and not idle.started
    again = sweep_step(SPEC, zone, progress, NOW + timedelta(days=1), timedelta(days=1), 30)
    assert again.started and again.completed and len(again.objects) == len(KEYS)


def test_a_sweep_spread_over_ticks_by_the_sensor_requests_each_old_object_once(bucket, instance):
    days = [NOW - timedelta(days=d) for d in (40, 35, 31)]
    for day in days:
        bucket.put(f"raw/sensor-data/{day:%Y/%m/%d}/old.csv", numbered_sensor_csv("o", 3, day))
    # Budget 0: one object per tick, the smallest step a sweep takes.
    sensor = landing_sensor(SPEC, sweep_budget_seconds=0)
    cursor = None
    asked: dict[tuple[str, str], int] = {}
    for _ in range(5):
        result = sensor(dg.build_sensor_context(
            cursor=cursor, instance=instance,
            resources={"landing": LandingZoneResource(url=bucket.url),
                       "lakehouse": LakehouseResource(url="/nonexistent/lakehouse")}))
        cursor = result.cursor
        for span, count in spans(result).items():
            asked[span] = asked.get(span, 0) + count
    assert asked == {(f"{d:%Y-%m-%d}", f"{d:%Y-%m-%d}"): 1 for d in days}
    assert "Next sweep at" in message(result)
    findings = SweepFindings.load(instance.run_storage, SPEC.name)
    assert sorted(o.key for o in findings.objects()) == sorted(
        f"raw/sensor-data/{d:%Y/%m/%d}/old.csv" for d in days)


@pytest.mark.spark
def test_a_late_object_under_a_30_day_old_prefix_is_requested_by_the_next_sweep_and_fails_the_backlog_until_committed(  # noqa: E501
        bucket, instance, spark, tmp_path):
    spec = dataclasses.replace(SPEC, backlog_limit=timedelta(seconds=1),
                               sweep_interval=timedelta(hours=1))
    clock = Clock()
    sensor = landing_sensor(spec, clock=clock)
    resources = {
        "spark": SparkResource(master="local[2]"), "step_launcher": InProcessStep(),
        "remote_job": RemoteJobResource(),
        "landing": LandingZoneResource(url=bucket.url),
        "lakehouse": LakehouseResource(url=str(tmp_path / "lakehouse")),
    }

    def tick(cursor: str | None):
        return sensor(dg.build_sensor_context(cursor=cursor, instance=instance,
                                              resources=resources))

    bronze, check = bronze_asset(spec), backlog_check(spec)
    assets = [bronze, check, *landing_assets(CATALOG.values())]

    def backlog() -> dg.AssetCheckEvaluation:
        run = dg.materialize(assets, selection=dg.AssetSelection.checks(check),
                             resources=resources, instance=instance)
        (evaluation,) = run.get_asset_check_evaluations()
        return evaluation

    first = tick(None)
    assert "Sweep complete: 0 objects" in message(first)

    old = NOW - timedelta(days=30)
    late_key = f"raw/sensor-data/{old:%Y/%m/%d}/gateway-7.csv"
    bucket.put(late_key, numbered_sensor_csv("g7", 25, old))
    time.sleep(1.5)  # older than the 1-second backlog limit of this test
    clock.now += timedelta(minutes=1)
    before = tick(first.cursor)
    assert not before.run_requests  # the recent listing cannot see a 30-day-old prefix
    assert "Next sweep at" in message(before)
    assert backlog().passed  # and until a sweep, nothing knows of it

    clock.now += timedelta(hours=1)
    swept = tick(before.cursor)
    (request,) = swept.run_requests
    assert spans(swept) == {(f"{old:%Y-%m-%d}", f"{old:%Y-%m-%d}"): 1}
    failing = backlog()
    assert not failing.passed
    assert failing.metadata["uncommitted_objects"].value == 1
    assert failing.metadata["from_sweep"].value == 1
    assert failing.metadata["oldest_uncommitted"].value == f"{bucket.url}/{late_key}"

    run = dg.materialize(assets, selection=[bronze.key], tags=request.tags,
                         resources=resources, instance=instance)
    assert run.success
    assert {e.partition for e in run.get_asset_materialization_events()} == {f"{old:%Y-%m-%d}"}
    passing = backlog()
    assert passing.passed and passing.metadata["uncommitted_objects"].value == 0

    # Committed: the next sweep asks for nothing.
    clock.now += timedelta(hours=1)
    assert not tick(swept.cursor).run_requests
