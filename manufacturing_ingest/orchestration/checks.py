"""Asset checks on the bronze tables. No ``from __future__ import annotations`` (Dagster reads
the annotations to inject resources).

- ``landing_backlog``: its own check op, run on a schedule (it looks at the landing zone).
- ``quality`` and ``schema_drift``: declared on the bronze asset (``batch_check_specs``) and
  evaluated in its step, right after the write, on the rows that write committed; this module
  turns the findings of ``manufacturing_ingest.quality`` into one evaluation per partition.
"""

import warnings
from collections.abc import Iterable

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.landing.sweep import SweepFindings
from manufacturing_ingest.orchestration.names import (
    BACKLOG_CHECK,
    CHECKED_VERSION,
    QUALITY_CHECK,
    SCHEMA_DRIFT_CHECK,
    bronze_asset_key,
)
from manufacturing_ingest.orchestration.resources import LakehouseResource, LandingZoneResource
from manufacturing_ingest.printable import printable
from manufacturing_ingest.quality.backlog import BACKLOG_WINDOW, landing_backlog
from manufacturing_ingest.quality.drift import SchemaDrift
from manufacturing_ingest.quality.evaluate import PartitionQuality, Verdict


def backlog_check(spec: SourceSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=bronze_asset_key(spec),
        name=BACKLOG_CHECK,
        description=(
            f"Fails when an object landed under {spec.landing_prefix}/ has waited more than "
            f"{int(spec.backlog_limit.total_seconds() // 60)} minutes without reaching "
            f"{spec.table_name}: objects of the last {BACKLOG_WINDOW.days} days from a listing, "
            "older ones from the landing sensor's reconciliation sweep."
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext, landing: LandingZoneResource,
               lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        findings = SweepFindings.load(context.instance.run_storage, spec.name)
        backlog = landing_backlog(spec, landing.zone(), lakehouse.lakehouse().ledger_path,
                                  swept=findings.objects(), not_kept=findings.more)
        minutes = backlog.oldest_age_seconds / 60
        description = (f"{backlog.uncommitted} landed objects not yet ingested; the oldest has "
                       f"waited {minutes:.0f} min" if backlog.uncommitted
                       else "every landed object is ingested")
        if backlog.not_kept:
            description += (f"; the last sweep also found {backlog.not_kept} more not "
                            "committed than it keeps")
        if backlog.outside:
            description += (f"; {backlog.outside} landed objects lie under date folders "
                            f"outside the partitions and are never ingested as they lie, e.g. "
                            f"{printable(backlog.outside_example)}")
        return dg.AssetCheckResult(
            passed=not backlog.exceeds(spec.backlog_limit),
            severity=dg.AssetCheckSeverity.ERROR,
            description=description,
            metadata={
                "backlog_seconds": round(backlog.oldest_age_seconds, 1),
                "uncommitted_objects": backlog.uncommitted,
                "failed_objects": backlog.failed,
                "landed_objects": backlog.listed,
                "from_sweep": backlog.swept,
                "oldest_uncommitted": backlog.oldest_uri or "",
                "outside_partitions": backlog.outside,
            },
        )

    return _check


def backlog_checks(specs: Iterable[SourceSpec]) -> list[dg.AssetChecksDefinition]:
    return [backlog_check(spec) for spec in specs]


_SEVERITY = {Verdict.WARN: dg.AssetCheckSeverity.WARN, Verdict.ERROR: dg.AssetCheckSeverity.ERROR}


def batch_check_specs(spec: SourceSpec) -> list[dg.AssetCheckSpec]:
    """The checks a bronze asset evaluates in its own step, on the rows it just committed."""
    key = bronze_asset_key(spec)
    rules = spec.quality
    partitions = spec.partitions.dagster_partitions()
    with warnings.catch_warnings():
        # Partitioned check specs are a preview API in Dagster 1.13; the UI shows the results
        # per partition, which is what an operator of a partitioned table needs.
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                QUALITY_CHECK, asset=key, partitions_def=partitions,
                description=(
                    f"Rules of the {spec.name} catalog entry (schema, types, required values, "
                    "value ranges, event time, duplicate keys) over the rows each run commits. "
                    f"WARN above {rules.warn_above:.0%} failing rows, ERROR above "
                    f"{rules.error_above:.0%}."
                ),
            ),
            dg.AssetCheckSpec(
                SCHEMA_DRIFT_CHECK, asset=key, partitions_def=partitions,
                description=(f"WARN when a run added columns to {spec.table_name}; the metadata "
                             "has the columns before and after."),
            ),
        ]


def quality_evaluations(spec: SourceSpec, partition_keys: list[str],
                        results: dict[str, PartitionQuality] | None,
                        late: dict[str, int] | None = None,
                        checked: dict[str, int] | None = None,
                        ) -> list[dg.AssetCheckEvaluation]:
    """The ``quality`` check per partition; ``results`` None: the run committed nothing new.
    ``late``: partitions whose result is of an earlier run's batch (its delta version) that was
    never checked; ``checked``: the last checked batch's version of a partition with nothing
    new (kept in the result, so the next run knows that batch is checked)."""
    evaluations = []
    late = late or {}
    for key in partition_keys:
        found = (results or {}).get(key)
        if found is None or found.rows_checked == 0:
            why = ("this run committed no new rows" if results is None
                   else "this run committed no new rows to this partition")
            metadata: dict[str, object] = {"rows_checked": 0}
            if key in (checked or {}):
                metadata[CHECKED_VERSION] = checked[key]
            evaluations.append(_evaluation(spec, QUALITY_CHECK, key, Verdict.PASSED,
                                           f"nothing to check: {why}", metadata))
            continue
        verdict = found.verdict(spec)
        metadata: dict[str, object] = {
            "rows_checked": found.rows_checked,
            "failing_rows": found.failing_rows,
            "error_rate": round(found.error_rate, 6),
            "failing_rows_by_rule": dg.MetadataValue.json(found.failing_by_rule),
            "delta_version": found.delta_version,
        }
        if found.examples:
            metadata["failing_examples"] = dg.MetadataValue.json(found.examples)
        if found.schema_problems:
            metadata["schema_problems"] = dg.MetadataValue.json(
                [{"column": p.column, "problem": p.problem, "detail": p.detail}
                 for p in found.schema_problems])
        broken = [f"{rule} {n}" for rule, n in found.failing_by_rule.items() if n]
        description = (
            f"{found.failing_rows} of {found.rows_checked} new rows fail a rule "
            f"({found.error_rate:.2%})" + (f": {', '.join(broken)}" if broken else "")
        )
        if key in late:
            description += (f" (the batch of delta version {late[key]}, committed by an "
                            "earlier run that stopped before checking it)")
        if found.schema_problems:
            description += "; schema: " + ", ".join(
                f"{p.column} {p.problem}" for p in found.schema_problems)
        evaluations.append(_evaluation(spec, QUALITY_CHECK, key, verdict, description, metadata))
    return evaluations


def drift_evaluations(spec: SourceSpec, partition_keys: list[str], drift: SchemaDrift | None,
                      committed: set[str]) -> list[dg.AssetCheckEvaluation]:
    """The ``schema_drift`` check per partition: WARN on the partitions of a commit that added
    columns, with the diff."""
    evaluations = []
    for key in partition_keys:
        if drift is None or key not in committed:
            evaluations.append(_evaluation(spec, SCHEMA_DRIFT_CHECK, key, Verdict.PASSED,
                                           "no new columns", {}))
            continue
        added = ", ".join(f"{name} {kind}" for name, kind in drift.added.items())
        evaluations.append(_evaluation(
            spec, SCHEMA_DRIFT_CHECK, key, Verdict.WARN,
            f"schema evolution detected: {spec.table_name} gained {added}",
            {
                "added_columns": dg.MetadataValue.json(drift.added),
                "columns_before": dg.MetadataValue.json(drift.before),
                "columns_after": dg.MetadataValue.json(drift.after),
                "delta_version": drift.delta_version,
            },
        ))
    return evaluations


def _evaluation(spec: SourceSpec, name: str, partition_key: str, verdict: Verdict,
                description: str, metadata: dict[str, object]) -> dg.AssetCheckEvaluation:
    # One evaluation per partition: an AssetCheckResult yielded from a range run would record
    # a single result with no partition (see README, "Quality checks").
    return dg.AssetCheckEvaluation(
        asset_key=bronze_asset_key(spec),
        check_name=name,
        passed=verdict is Verdict.PASSED,
        severity=_SEVERITY.get(verdict, dg.AssetCheckSeverity.ERROR),  # a pass: Dagster's default
        description=description,
        metadata=metadata,
        partition=partition_key,
    )
