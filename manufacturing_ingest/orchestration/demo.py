"""``manufacturing-ingest demo``: two sample days ingested into the instance ``make dev`` opens.

What a newcomer then sees in the UI is what the demo did: the ``raw/<source>`` assets observed
with the files that landed, every bronze asset materialized for both days (each day by its own
runs) with its metadata, the ``quality`` and ``schema_drift`` checks evaluated per partition, the
``landing_backlog`` checks evaluated once. The first day is clean and passes every check; on the
second, a share of the sensor readings are out of range, so that day's ``quality`` check fails
with ERROR (above the 5 % limit), as a plant's bad day would, and the alert sensor, evaluated
once, sends its alert to the JSON log line. Once both days are in, one more ``equipment_logs``
file of the first day lands, late, under a date prefix the landing sensor's recent listing no
longer looks at; one tick of that sensor finds it with its reconciliation sweep, and its run
request is run here, tagged as the daemon tags a sensor's run, so the first day gains the late
file's rows exactly once.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from manufacturing_ingest.catalog import CATALOG, SourceSpec
from manufacturing_ingest.generate import GenerateOptions, generate
from manufacturing_ingest.landing import LocalLandingZone, landing_zone_for
from manufacturing_ingest.orchestration import build_definitions
from manufacturing_ingest.orchestration.assets import landed_observation
from manufacturing_ingest.orchestration.dagster_internals import RUN_KEY_TAG, SENSOR_NAME_TAG
from manufacturing_ingest.orchestration.names import (
    ALERT_SENSOR,
    BACKLOG_CHECKS_JOB,
    RANGE_END_TAG,
    RANGE_START_TAG,
    landing_sensor_name,
)
from manufacturing_ingest.orchestration.report import CheckResult, latest_check_results
from manufacturing_ingest.orchestration.runs import RunResult, materialize_partitions
from manufacturing_ingest.settings import Settings

# Files and rows per file of each source per day: about 80,000 rows a day, a minute of ingest.
VOLUMES = {"sensor_data": (12, 5000), "equipment_logs": (6, 2000), "quality_metrics": (1, 400)}
# The bad day's share of sensor readings with an out-of-range or non-numeric value.
BAD_DAY_ANOMALY_RATE = 0.08
# The source of the late file the landing sensor's sweep finds (on the first, clean day).
LATE_SOURCE = "equipment_logs"


@dataclass(frozen=True)
class DemoDay:
    day: date
    anomaly_rate: dict[str, float]  # per source; missing: clean


@dataclass(frozen=True)
class LateFile:
    """The late file: where it landed, and the run the landing sensor's sweep requested."""

    source: str
    partition: str
    uri: str
    sensor: str  # the landing sensor whose tick requested the run
    run: RunResult
    run_key: str


@dataclass
class DemoSummary:
    days: list[date]
    landed: dict[tuple[str, date], tuple[int, int]]  # (source, day) -> (files, bytes)
    runs: list[RunResult]
    checks: dict[str, list[CheckResult]]  # source -> latest results over the demo's days
    alerts: str  # what the alert sensor's evaluation did (its tick summary)
    late: LateFile


def demo_days(today: date) -> list[DemoDay]:
    """The day before yesterday, clean; yesterday, with bad sensor readings."""
    return [DemoDay(today - timedelta(days=2), {}),
            DemoDay(today - timedelta(days=1), {"sensor_data": BAD_DAY_ANOMALY_RATE})]


def run_demo(settings: Settings, instance: dg.DagsterInstance, today: date | None = None,
             say: Callable[[str], None] = print) -> DemoSummary:
    """Land two sample days, ingest them and check them, all recorded in ``instance``."""
    today = today or datetime.now(UTC).date()
    days = demo_days(today)
    zone = landing_zone_for(settings.landing_url, role_arn=settings.s3_role_arn or None)
    if isinstance(zone, LocalLandingZone):
        zone.root.mkdir(parents=True, exist_ok=True)  # a first demo creates .data/landing
    zone.check_available()
    landed: dict[tuple[str, date], tuple[int, int]] = {}
    runs: list[RunResult] = []
    # Day by day, as a plant's files arrive: each day lands, then one run per source ingests it
    # (so each day's materialization carries that day's figures).
    for demo_day in days:
        for name, (files, rows) in VOLUMES.items():
            spec = CATALOG[name]
            options = GenerateOptions(files=files, rows_per_file=rows,
                                      anomaly_rate=demo_day.anomaly_rate.get(name, 0.0))
            count, size = _land(zone, spec, demo_day.day, options)
            landed[(name, demo_day.day)] = (count, size)
            location = f"{zone.root_uri}/{spec.landing_prefix}/{demo_day.day:%Y/%m/%d}"
            instance.report_runless_asset_event(landed_observation(
                spec, count, size, spec.partitions.keys_between(
                    *spec.partitions.widen(demo_day.day.isoformat())), location))
        say(f"landed {sum(landed[(n, demo_day.day)][0] for n in VOLUMES)} files for "
            f"{demo_day.day}" + (" (bad sensor readings)" if demo_day.anomaly_rate else ""))
        day_runs = materialize_partitions(settings, list(CATALOG), demo_day.day.isoformat())
        for r in day_runs:
            say(f"  {r.source}: ingested {r.metadata['records']} rows from "
                f"{r.metadata['files_processed']} files in {r.seconds:.1f}s")
        runs += day_runs

    first, last = days[0].day.isoformat(), days[-1].day.isoformat()
    defs = build_definitions(settings)
    late = _late_file(settings, defs, instance, zone, days[0].day)
    say(f"{late.source}: the landing sensor's sweep found a late file of {late.partition}; "
        f"ingested {late.run.metadata['records']} rows from "
        f"{late.run.metadata['files_processed']} file in {late.run.seconds:.1f}s")

    backlog = defs.resolve_job_def(BACKLOG_CHECKS_JOB)
    # The check results are printed below; Dagster's event stream stays quiet.
    backlog.execute_in_process(instance=instance, raise_on_error=False, run_config={
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
    checks = {name: latest_check_results(instance, CATALOG[name], first, last)
              for name in CATALOG}
    return DemoSummary([d.day for d in days], landed, runs, checks, _alert_once(defs, instance),
                       late)


def _late_file(settings: Settings, defs: dg.Definitions, instance: dg.DagsterInstance, zone,
               day: date) -> LateFile:
    """Land one late ``LATE_SOURCE`` file of ``day``, let one landing sensor tick find it (its
    sweep: the recent listing covers the last day only) and run what the tick requests."""
    spec = CATALOG[LATE_SOURCE]
    files, rows = VOLUMES[spec.name]
    options = GenerateOptions(files=files, rows_per_file=rows, late_files=1)
    ((key, size),) = _place(zone, spec, day, options, late_only=True)
    location = f"{zone.root_uri}/{key}"
    partition = spec.partitions.key_at(datetime(day.year, day.month, day.day, tzinfo=UTC))
    instance.report_runless_asset_event(landed_observation(spec, 1, size, [partition], location))
    sensor = defs.resolve_sensor_def(landing_sensor_name(spec))
    context = dg.build_sensor_context(instance=instance, resources={
        "landing": defs.resources["landing"], "lakehouse": defs.resources["lakehouse"]})
    result = sensor(context)
    requests = result.run_requests or []
    if len(requests) != 1:
        reason = result.skip_reason.skip_message if result.skip_reason else f"{len(requests)} runs"
        raise RuntimeError(f"the landing sensor of {spec.name} did not request one run for the "
                           f"late file {location}: {reason}")
    (request,) = requests
    (run,) = materialize_partitions(
        settings, [spec.name], request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG],
        tags={**request.tags, SENSOR_NAME_TAG: sensor.name, RUN_KEY_TAG: request.run_key})
    return LateFile(spec.name, partition, location, sensor.name, run, request.run_key)


def _alert_once(defs: dg.Definitions, instance: dg.DagsterInstance) -> str:
    """One evaluation of the alert sensor, as the daemon's first tick would run it: the bad
    day's failed check goes to the JSON alert log line (and to the webhook and email when they
    are configured). It keeps the daemon's journal (the same repository and sensor), so the
    first tick under ``make dev`` does not send the same alert again. Its tick summary."""
    sensor = defs.resolve_sensor_def(ALERT_SENSOR)
    context = dg.build_sensor_context(instance=instance,
                                      resources={"alerts": defs.resources["alerts"]})
    result = sensor(context)
    return result.skip_reason.skip_message if result.skip_reason else ""


def _land(zone, spec: SourceSpec, day: date, options: GenerateOptions) -> tuple[int, int]:
    """Generate ``spec``'s files for ``day`` into the landing zone; (files, bytes)."""
    placed = _place(zone, spec, day, options)
    return len(placed), sum(size for _, size in placed)


def _place(zone, spec: SourceSpec, day: date, options: GenerateOptions,
           late_only: bool = False) -> list[tuple[str, int]]:
    """Generate ``spec``'s files for ``day`` (only the late ones if ``late_only``) and put them
    in the landing zone, as an uploader would: (key under the zone's root, bytes) of each."""
    with tempfile.TemporaryDirectory(prefix="manufacturing-demo-") as scratch:
        root = Path(scratch)
        paths = generate(root, spec.name, day, options=options)
        for path in paths:
            if late_only and not path.stem.split(".")[0].endswith("-late"):
                path.unlink()
        placed = [(p.relative_to(root).as_posix(), p.stat().st_size)
                  for p in paths if p.exists()]
        if isinstance(zone, LocalLandingZone):
            shutil.copytree(root, zone.root, dirs_exist_ok=True)  # copy2: keeps the mtimes
        else:
            zone.upload_tree(root)
        return placed
