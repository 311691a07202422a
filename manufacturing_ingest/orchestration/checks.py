"""Asset checks on the bronze tables. No ``from __future__ import annotations`` (Dagster reads
the annotations to inject resources)."""

from collections.abc import Iterable

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.orchestration.resources import LakehouseResource, LandingZoneResource
from manufacturing_ingest.quality.backlog import BACKLOG_WINDOW, landing_backlog


def backlog_check(spec: SourceSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(spec.asset_key_path),
        name="landing_backlog",
        description=(
            f"Fails when an object landed under {spec.landing_prefix}/ has waited more than "
            f"{int(spec.backlog_limit.total_seconds() // 60)} minutes without reaching "
            f"{spec.table_name} (objects of the last {BACKLOG_WINDOW.days} days)."
        ),
    )
    def _check(landing: LandingZoneResource, lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        backlog = landing_backlog(spec, landing.zone(), lakehouse.lakehouse().ledger_path)
        minutes = backlog.oldest_age_seconds / 60
        return dg.AssetCheckResult(
            passed=not backlog.exceeds(spec.backlog_limit),
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


def backlog_checks(specs: Iterable[SourceSpec]) -> list[dg.AssetChecksDefinition]:
    return [backlog_check(spec) for spec in specs]
