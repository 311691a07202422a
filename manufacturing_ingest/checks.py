"""Asset checks on the bronze tables. No ``from __future__ import annotations`` (Dagster reads
the annotations to inject resources)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from manufacturing_ingest.catalog import CATALOG, SourceSpec
from manufacturing_ingest.engine.ledger import file_states, read_events
from manufacturing_ingest.landing import LandingZone, is_ignored, partition_key_of
from manufacturing_ingest.landing.scan import list_recent
from manufacturing_ingest.resources import LakehouseResource, LandingZoneResource

BACKLOG_LIMIT = timedelta(hours=1)
BACKLOG_WINDOW = timedelta(days=2)


@dataclass(frozen=True)
class Backlog:
    """Landed objects not yet in bronze, and how long the oldest of them has waited."""

    uncommitted: int
    failed: int
    oldest_age_seconds: float
    oldest_uri: str | None
    listed: int


def landing_backlog(spec: SourceSpec, zone: LandingZone, ledger_path: str,
                    now: datetime | None = None, window: timedelta = BACKLOG_WINDOW) -> Backlog:
    """Compare the landing listing of the last ``window`` with the file ledger."""
    now = now or datetime.now(UTC)
    since = now - window
    _, landed = list_recent(spec, zone, since, now)
    objects = [o for o in landed.values()
               if not is_ignored(o.key) and o.last_modified >= since]
    partitions = sorted({partition_key_of(spec, o) for o in objects})
    states = file_states(read_events(ledger_path, spec.name, partitions)) if partitions else {}
    waiting = []
    failed = 0
    for obj in objects:
        state = states.get((obj.key, obj.etag))
        if state is None or state.status != "committed":
            waiting.append(obj)
            failed += bool(state and state.status == "failed")
    oldest = min(waiting, key=lambda o: o.last_modified, default=None)
    return Backlog(
        uncommitted=len(waiting),
        failed=failed,
        oldest_age_seconds=(now - oldest.last_modified).total_seconds() if oldest else 0.0,
        oldest_uri=oldest.uri if oldest else None,
        listed=len(objects),
    )


def backlog_check(spec: SourceSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(spec.asset_key_path),
        name="landing_backlog",
        description=(
            f"Fails when an object landed under {spec.landing_prefix}/ has waited more than "
            f"{int(BACKLOG_LIMIT.total_seconds() // 60)} minutes without reaching "
            f"{spec.table_name} (objects of the last {BACKLOG_WINDOW.days} days)."
        ),
    )
    def _check(landing: LandingZoneResource, lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        backlog = landing_backlog(spec, landing.zone(), lakehouse.lakehouse().ledger_path)
        minutes = backlog.oldest_age_seconds / 60
        return dg.AssetCheckResult(
            passed=backlog.oldest_age_seconds <= BACKLOG_LIMIT.total_seconds(),
            severity=dg.AssetCheckSeverity.ERROR,
            description=(f"{backlog.uncommitted} landed objects not yet ingested; the oldest has "
                         f"waited {minutes:.0f} min" if backlog.uncommitted
                         else "every landed object is ingested"),
            metadata={
                "backlog_seconds": round(backlog.oldest_age_seconds, 1),
                "uncommitted_objects": backlog.uncommitted,
                "failed_objects": backlog.failed,
                "landed_objects": backlog.listed,
                "oldest_uncommitted": backlog.oldest_uri or "",
            },
        )

    return _check


BACKLOG_CHECKS = [backlog_check(spec) for spec in CATALOG.values()]
backlog_checks_job = dg.define_asset_job(
    "landing_backlog_checks",
    selection=dg.AssetSelection.checks(*BACKLOG_CHECKS),
    description="Backlog checks of every source, without ingesting anything.",
)
backlog_checks_schedule = dg.ScheduleDefinition(
    job=backlog_checks_job,
    cron_schedule="*/10 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
