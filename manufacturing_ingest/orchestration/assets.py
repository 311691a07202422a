"""Bronze assets, generated from the catalog: one partitioned asset per landing source.

No ``from __future__ import annotations`` here: Dagster reads the annotations of asset
functions at definition time to find their config and resources.
"""


from collections.abc import Iterable, Iterator
from datetime import timedelta

import dagster as dg

from manufacturing_ingest.catalog import (
    INGESTED_AT_COLUMN,
    RESCUED_DATA_COLUMN,
    SOURCE_FILE_COLUMN,
    SourceSpec,
)
from manufacturing_ingest.orchestration.bronze import (
    checked_version_in,
    report_metadata,
    run_bronze,
    step_events,
)
from manufacturing_ingest.orchestration.checks import batch_check_specs
from manufacturing_ingest.orchestration.names import bronze_asset_key, bronze_op_name, raw_asset_key
from manufacturing_ingest.orchestration.resources import (
    LakehouseResource,
    LandingZoneResource,
    RemoteJobResource,
    SparkSessionResource,
)

__all__ = ["bronze_asset", "bronze_assets", "landing_asset", "landing_assets",
           "landed_observation", "report_metadata"]


class BronzeIngestConfig(dg.Config):
    """Run options an operator can set in the launchpad."""

    reprocess: bool = False
    """Rebuild the partition from every landed file (replaceWhere) instead of adding new ones."""


def landing_asset(spec: SourceSpec) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=raw_asset_key(spec),
        description=f"Files landed under {spec.landing_prefix}/ ({', '.join(spec.formats)}).",
        group_name="landing",
        kinds={"s3"},
        metadata={"landing_prefix": spec.landing_prefix, "formats": ", ".join(spec.formats)},
    )


def landed_observation(spec: SourceSpec, files: int, size: int, partitions: Iterable[str],
                       where: str) -> dg.AssetObservation:
    """Files that landed for ``spec``, as an observation of its ``raw/<source>`` asset (the
    landing sensor's ticks and the demo report them), so the UI shows when data arrived."""
    return dg.AssetObservation(
        asset_key=raw_asset_key(spec),
        description=f"{files} new objects landed under {where}",
        metadata={"files": files, "bytes": size, "partitions": ", ".join(sorted(partitions))},
    )


def column_schema(spec: SourceSpec) -> dg.TableSchema:
    columns = [dg.TableColumn(name, kind) for name, kind in spec.columns.items()]
    columns += [
        dg.TableColumn(SOURCE_FILE_COLUMN, "string", description="Full URI of the landed object"),
        dg.TableColumn(INGESTED_AT_COLUMN, "timestamp", description="When the batch was ingested"),
        dg.TableColumn(RESCUED_DATA_COLUMN, "string",
                       description="JSON of values that did not fit the column types"),
        dg.TableColumn(spec.partition_column, spec.partitions.column_type),
    ]
    return dg.TableSchema(columns=columns)


def bronze_pool(spec: SourceSpec) -> str:
    """The concurrency pool of the source's bronze asset: its table, one writer at a time."""
    return spec.table_name


def bronze_asset(spec: SourceSpec) -> dg.AssetsDefinition:
    key = bronze_asset_key(spec)

    # A multi_asset only for ``can_subset``: it makes the check outputs optional, so the step can
    # report one evaluation per partition of a range run (see checks.py), and lets an operator
    # deselect the checks.
    @dg.multi_asset(
        name=bronze_op_name(spec),
        specs=[dg.AssetSpec(
            key=key,
            description=spec.description,
            deps=[raw_asset_key(spec)],
            group_name="bronze",
            kinds={"spark", "delta"},
            freshness_policy=dg.FreshnessPolicy.time_window(
                fail_window=timedelta(minutes=spec.freshness_minutes)
            ),
            metadata={
                "table": spec.table_name,
                "partition_column": spec.partition_column,
                "key_columns": ", ".join(spec.key_columns),
                "dagster/column_schema": column_schema(spec),
            },
        )],
        check_specs=batch_check_specs(spec),
        partitions_def=spec.partitions.dagster_partitions(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        # One pool per table: with the instance's pool limit of 1 (dagster.yaml), two runs never
        # write one table at once.
        pool=bronze_pool(spec),
        can_subset=True,
    )
    def _bronze(
        context: dg.AssetExecutionContext,
        config: BronzeIngestConfig,
        spark: SparkSessionResource,
        landing: LandingZoneResource,
        lakehouse: LakehouseResource,
        # Never called here: when it is a step launcher (on Databricks), requiring it is what
        # makes Dagster send this step to a cluster; locally it is not one and nothing happens.
        step_launcher: dg.ResourceParam[object],
        remote_job: RemoteJobResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output]:
        if key not in context.selected_asset_keys:
            # The checks judge what a materialization commits; without one there is nothing.
            context.log.info("bronze asset not selected: nothing ingested, nothing checked")
            return
        selected = {check.name for check in context.selected_asset_check_keys}
        if remote_job.remote:
            # pipes-serverless: a Databricks job runs the step and sends it back.
            step = remote_job.run_step(context, spec, config.reprocess, selected)
        else:
            step = run_bronze(
                spark.get_session(), spec, landing.zone(), landing.read_mode,
                lakehouse.lakehouse(), list(context.partition_keys), context.run_id,
                config.reprocess, selected, checked_version_in(context.instance, spec),
                log=context.log.info, warn=context.log.warning,
                autoloader=landing.autoloader())
        yield from step_events(context, spec, step)

    return _bronze


def landing_assets(specs: Iterable[SourceSpec]) -> list[dg.AssetSpec]:
    return [landing_asset(spec) for spec in specs]


def bronze_assets(specs: Iterable[SourceSpec]) -> list[dg.AssetsDefinition]:
    return [bronze_asset(spec) for spec in specs]
