"""``manufacturing-ingest demo``: two sample days ingested into the instance ``make dev`` opens.

What a newcomer then sees in the UI is what the demo did: the ``raw/<source>`` assets observed
with the files that landed, every bronze asset materialized for both days with its metadata,
the ``quality`` and ``schema_drift`` checks evaluated per partition, the ``landing_backlog``
checks evaluated once. The first day is clean and passes every check; on the second, a share of
the sensor readings are out of range, so that day's ``quality`` check fails with ERROR (above
the 5 % limit), as a plant's bad day would, and the alert sensor, evaluated once, sends its
alert to the JSON log line.
"""

from __future__ import annotations

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
from manufacturing_ingest.orchestration.names import (
    ALERT_SENSOR,
    BACKLOG_CHECKS_JOB,
)
from manufacturing_ingest.orchestration.report import CheckResult, latest_check_results
from manufacturing_ingest.orchestration.runs import RunResult, materialize_partitions
from manufacturing_ingest.settings import Settings

# Files and rows per file of each source per day: about 80,000 rows a day, a minute of ingest.
VOLUMES = {"sensor_data": (12, 5000), "equipment_logs": (6, 2000), "quality_metrics": (1, 400)}
# The bad day's share of sensor readings with an out-of-range or non-numeric value.
BAD_DAY_ANOMALY_RATE = 0.08


@dataclass(frozen=True)
class DemoDay:
    day: date
    anomaly_rate: dict[str, float]  # per source; missing: clean


@dataclass
class DemoSummary:
    days: list[date]
    landed: dict[tuple[str, date], tuple[int, int]]  # (source, day) -> (files, bytes)
    runs: list[RunResult]
    checks: dict[str, list[CheckResult]]  # source -> latest results over the demo's days
    alerts: str  # what the alert sensor's evaluation did (its tick summary)


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

    first, last = days[0].day.isoformat(), days[-1].day.isoformat()
    runs = materialize_partitions(settings, list(CATALOG), first, last)
    for r in runs:
        say(f"{r.source}: ingested {r.metadata['records']} rows from "
            f"{r.metadata['files_processed']} files in {r.seconds:.1f}s")

    defs = build_definitions(settings)
    backlog = defs.resolve_job_def(BACKLOG_CHECKS_JOB)
    # The check results are printed below; Dagster's event stream stays quiet.
    backlog.execute_in_process(instance=instance, raise_on_error=False, run_config={
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
    checks = {name: latest_check_results(instance, CATALOG[name], first, last)
              for name in CATALOG}
    return DemoSummary([d.day for d in days], landed, runs, checks, _alert_once(defs, instance))


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
    if isinstance(zone, LocalLandingZone):
        paths = generate(zone.root, spec.name, day, options=options)
        return len(paths), sum(p.stat().st_size for p in paths)
    with tempfile.TemporaryDirectory(prefix="manufacturing-demo-") as scratch:
        paths = generate(Path(scratch), spec.name, day, options=options)
        size = sum(p.stat().st_size for p in paths)
        zone.upload_tree(Path(scratch))
        return len(paths), size
