"""The ``table_maintenance`` job and its daily schedule (see ``engine/maintenance.py``).

Each partition it examines is reported as an ``AssetObservation`` of the bronze asset for that
partition, with numeric metadata (``file_count``, ``small_file_count``, ``mean_file_size_mb``,
``total_size_mb``), so the asset's Plots show file health beside its materializations. An
observation, not a materialization: maintenance changes no rows, and a materialization would
also count as fresh data for the freshness policy. The bookkeeping tables are no assets; their
figures are the op's output metadata. A bronze table left to Databricks' Predictive Optimization
is one line in the run's log and ``<source>_maintenance: skipped: managed by Predictive
Optimization (…)`` in that metadata, with no observation.

No ``from __future__ import annotations`` here: Dagster reads the op's annotations.
"""

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec, get_source
from manufacturing_ingest.engine.maintenance import (
    Compaction,
    MaintenanceOptions,
    Step,
    TableReport,
    maintain_bookkeeping,
    maintain_source,
)
from manufacturing_ingest.orchestration.names import (
    MAINTENANCE_JOB,
    MAINTENANCE_OP,
    bronze_asset_key,
)
from manufacturing_ingest.orchestration.resources import (
    LakehouseResource,
    RemoteJobResource,
    SparkSessionResource,
)
from manufacturing_ingest.settings import MaintenanceSettings, PredictiveOptimization

# One maintenance run at a time (dagster.yaml: each pool runs one at a time); it is not in the
# bronze tables' pools, so ingestion never waits for it (Delta keeps the two apart).
MAINTENANCE_POOL = "manufacturing_ingest.maintenance"
# 02:30 UTC: every daily partition of yesterday is closed and its late files mostly in.
MAINTENANCE_CRON = "30 2 * * *"


class TableMaintenanceConfig(dg.Config):
    """What a maintenance run does; defaults come from the MANUFACTURING_* settings."""

    sources: list[str] = []
    """Bronze sources to maintain; empty: every source in the catalog."""
    target_file_mb: int = 1024
    """File size compaction aims at; files under a quarter of it are small."""
    zorder: bool = False
    """Z-ORDER compacted partitions by the source's key columns."""
    vacuum_retention_hours: float = 168
    """Files no version younger than this reads are deleted (time travel window)."""
    allow_short_retention: bool = False
    """Allow a retention below Delta's 168-hour safety check."""
    lookback_days: int = 7
    """Closed partitions that started this many days back or later are examined."""
    listing_parallelism: int = 0
    """Tasks VACUUM lists folders with; 0: Spark's default."""
    bookkeeping: bool = True
    """Also compact and vacuum the file ledger and the schema log."""
    dry_run: bool = False
    """Report what would be compacted and vacuumed; change nothing."""
    predictive_optimization: str = "auto"
    """auto: leave a catalog table Predictive Optimization maintains to it; on: every catalog
    table; off: maintain every table here."""

    def options(self) -> MaintenanceOptions:
        try:
            predictive = PredictiveOptimization(self.predictive_optimization.lower())
        except ValueError:
            raise dg.Failure(f"predictive_optimization={self.predictive_optimization!r} is not "
                             "one of auto, on, off") from None
        return MaintenanceOptions(
            target_file_bytes=self.target_file_mb * 1024 * 1024,
            zorder=self.zorder,
            vacuum_retention=timedelta(hours=self.vacuum_retention_hours),
            allow_short_retention=self.allow_short_retention,
            lookback=timedelta(days=self.lookback_days),
            listing_parallelism=self.listing_parallelism or None,
            dry_run=self.dry_run,
            predictive_optimization=predictive,
        )


def default_config(maintenance: MaintenanceSettings) -> dict:
    """The job's run config from the settings, so a scheduled run uses them (also on a cluster,
    where the settings are not in the environment)."""
    return {"ops": {MAINTENANCE_OP: {"config": {
        "target_file_mb": maintenance.target_file_mb,
        "zorder": maintenance.zorder,
        "vacuum_retention_hours": float(maintenance.vacuum_retention_hours),
        "allow_short_retention": maintenance.allow_short_retention,
        "lookback_days": maintenance.lookback_days,
        "listing_parallelism": maintenance.listing_parallelism or 0,
        "predictive_optimization": maintenance.predictive_optimization.value,
    }}}}


def observation(spec: SourceSpec, step: Compaction) -> dg.AssetObservation:
    """A bronze partition's file figures as an observation of its asset."""
    metadata: dict = {**step.after.metadata(), "compacted": step.compacted,
                      "file_count_before": step.before.files}
    return dg.AssetObservation(asset_key=bronze_asset_key(spec),
                               partition=step.before.partition, metadata=metadata)


def summary_metadata(reports: list[TableReport]) -> dict:
    """Totals of the run, per table: files before and after, partitions compacted, vacuumed;
    or why the table was left to Predictive Optimization."""
    metadata: dict = {}
    for r in reports:
        name = r.source or r.table.rstrip("/").rsplit("/", 1)[-1]
        if r.skipped is not None:
            metadata[f"{name}_maintenance"] = r.skipped.summary
            continue
        metadata[f"{name}_files_before"] = r.files_before
        metadata[f"{name}_files_after"] = r.files_after
        metadata[f"{name}_partitions_compacted"] = sum(c.compacted for c in r.compactions)
        if r.vacuum is not None:
            metadata[f"{name}_files_vacuumed"] = r.vacuum.files_deleted
    return metadata


def maintenance_events(session, lake, config: TableMaintenanceConfig,
                       catalog: dict[str, SourceSpec], log: Callable[[str], None]
                       ) -> Iterator[dg.AssetObservation | dg.Output]:
    """One maintenance run's work, wherever it runs: each source's observations as its tables
    are done, then the summary as the op's output."""
    options = config.options()
    names = config.sources or list(catalog)
    unknown = [n for n in names if n not in catalog]
    if unknown:
        get_source(unknown[0])  # raises with the known names
    now = datetime.now(UTC)
    reports: list[TableReport] = []
    pending: list[dg.AssetObservation] = []

    def on_step(step: Step, spec: SourceSpec | None = None) -> None:
        log(step.message())
        if spec is not None and isinstance(step, Compaction):
            pending.append(observation(spec, step))

    for name in names:
        spec = catalog[name]
        log(f"maintaining {spec.table_name}{' (dry run)' if options.dry_run else ''}")
        reports.append(maintain_source(session, spec, lake, options, now=now,
                                       on_step=lambda s, spec=spec: on_step(s, spec)))
        yield from pending
        pending.clear()
    if config.bookkeeping:
        reports += maintain_bookkeeping(session, lake, options, on_step=on_step)
    yield dg.Output(None, metadata=summary_metadata(reports))


def maintenance_job(specs: Iterable[SourceSpec], maintenance: MaintenanceSettings
                    ) -> dg.JobDefinition:
    catalog = {spec.name: spec for spec in specs}

    @dg.op(name=MAINTENANCE_OP, pool=MAINTENANCE_POOL,
           out=dg.Out(dg.Nothing),
           description="Compact closed partitions of the bronze tables and the bookkeeping "
                       "tables, then VACUUM them.")
    def maintain_tables(
        context: dg.OpExecutionContext,
        config: TableMaintenanceConfig,
        spark: SparkSessionResource,
        lakehouse: LakehouseResource,
        # Never called here: on Databricks requiring it sends the step to the cluster.
        step_launcher: dg.ResourceParam[object],
        remote_job: RemoteJobResource,
    ) -> Iterator[dg.AssetObservation | dg.Output]:
        if remote_job.remote:
            # pipes-serverless: a Databricks job maintains the tables and sends back the same
            # observations and summary.
            yield from remote_job.run_maintenance(context, config)
            return
        yield from maintenance_events(spark.get_session(), lakehouse.lakehouse(), config,
                                      catalog, log=context.log.info)

    # In-process: one step, one Spark session (a process per op would start a JVM each).
    @dg.job(name=MAINTENANCE_JOB, config=default_config(maintenance),
            executor_def=dg.in_process_executor,
            tags={"manufacturing_ingest/kind": "maintenance"},
            description="Compaction (OPTIMIZE) of closed partitions and of the ledger and schema "
                        "log, then VACUUM, with file counts per partition as observations.")
    def table_maintenance():
        maintain_tables()

    return table_maintenance


def maintenance_schedule(job: dg.JobDefinition) -> dg.ScheduleDefinition:
    """Daily at 02:30 UTC, on by default: tables stay healthy without anyone remembering."""
    return dg.ScheduleDefinition(
        name=f"{MAINTENANCE_JOB}_schedule",
        job=job,
        cron_schedule=MAINTENANCE_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


__all__ = ["MAINTENANCE_JOB", "TableMaintenanceConfig", "maintenance_events", "maintenance_job",
           "maintenance_schedule", "observation"]
