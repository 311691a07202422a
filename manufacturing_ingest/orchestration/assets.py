"""Bronze assets, generated from the catalog: one partitioned asset per landing source.

No ``from __future__ import annotations`` here: Dagster reads the annotations of asset
functions at definition time to find their config and resources.
"""


import time
from collections.abc import Iterable, Iterator
from datetime import timedelta

import dagster as dg

from manufacturing_ingest.catalog import (
    INGESTED_AT_COLUMN,
    RESCUED_DATA_COLUMN,
    SOURCE_FILE_COLUMN,
    SourceSpec,
)
from manufacturing_ingest.engine.autoloader import AutoLoaderIngestor
from manufacturing_ingest.engine.ingest import BronzeIngestor, log_progress
from manufacturing_ingest.engine.progress import ProgressEvent
from manufacturing_ingest.engine.report import IngestReport
from manufacturing_ingest.orchestration.checks import (
    batch_check_specs,
    drift_evaluations,
    quality_evaluations,
)
from manufacturing_ingest.orchestration.dagster_internals import latest_completed_check
from manufacturing_ingest.orchestration.names import (
    CHECKED_VERSION,
    QUALITY_CHECK,
    SCHEMA_DRIFT_CHECK,
    bronze_asset_key,
    bronze_op_name,
    raw_asset_key,
)
from manufacturing_ingest.orchestration.resources import (
    LakehouseResource,
    LandingZoneResource,
    SparkSessionResource,
)
from manufacturing_ingest.printable import printable
from manufacturing_ingest.quality.drift import schema_drift
from manufacturing_ingest.quality.evaluate import (
    CommittedBatch,
    committed_batch,
    evaluate_batch,
    latest_batches,
)
from manufacturing_ingest.settings import ReadMode


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
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output]:
        if key not in context.selected_asset_keys:
            # The checks judge what a materialization commits; without one there is nothing.
            context.log.info("bronze asset not selected: nothing ingested, nothing checked")
            return

        def progress(event: ProgressEvent) -> None:
            context.log.info(event.message())
            log_progress(event)  # the CLI shows these on stderr while Dagster's logs stay quiet

        session = spark.get_session()
        partition_keys = list(context.partition_keys)
        read_mode = landing.read_mode
        if read_mode is ReadMode.AUTOLOADER and not config.reprocess:
            # Every new file of the source, whatever the run's partitions; the checks judge
            # what landed in the run's partitions.
            report = AutoLoaderIngestor(session, spec, landing.zone().root_uri,
                                        lakehouse.lakehouse()).ingest(partition_keys,
                                                                      context.run_id)
        else:
            # A reprocess rebuilds one partition from its files: the portable engine's job.
            ingestor = BronzeIngestor(
                session, spec, landing.zone(), lakehouse.lakehouse(), progress=progress,
                read_mode=ReadMode.DIRECT if read_mode is ReadMode.AUTOLOADER else read_mode,
            )
            report = ingestor.ingest(partition_keys, reprocess=config.reprocess,
                                     run_id=context.run_id)
        for failure in report.failures:
            context.log.warning(f"file not ingested, will retry next run: "
                                f"{printable(failure.uri)}: {printable(failure.error)}")
        yield dg.MaterializeResult(asset_key=key, metadata=report_metadata(report))

        selected = {check.name for check in context.selected_asset_check_keys}
        if QUALITY_CHECK in selected:
            started = time.monotonic()
            batch = committed_batch(report)
            results = evaluate_batch(session, spec, batch) if batch else None
            late, checked = unchecked_batches(
                context.instance, session, spec, report.table,
                [k for k in partition_keys if k not in (results or {})])
            for partition, earlier in late.items():
                context.log.info(f"{partition}: checking the batch of delta version "
                                 f"{earlier.delta_version}, which an earlier run committed "
                                 "but did not check")
                results = {**(results or {}), **evaluate_batch(session, spec, earlier)}
            context.log.info(f"quality check of {report.records} new rows took "
                             f"{time.monotonic() - started:.1f} s")
            yield from quality_evaluations(spec, partition_keys, results,
                                           late={k: b.delta_version for k, b in late.items()},
                                           checked=checked)
            yield _check_output(context, key, QUALITY_CHECK)
        if SCHEMA_DRIFT_CHECK in selected:
            committed = {o.partition_key for o in report.outcomes if o.rows}
            yield from drift_evaluations(spec, partition_keys, schema_drift(session, report),
                                         committed)
            yield _check_output(context, key, SCHEMA_DRIFT_CHECK)

    return _bronze


def unchecked_batches(instance: dg.DagsterInstance, spark, spec: SourceSpec, table,
                      partition_keys: list[str]
                      ) -> tuple[dict[str, CommittedBatch], dict[str, int]]:
    """The partitions among ``partition_keys`` whose last committed batch has no ``quality``
    result (the run that committed it stopped before its checks: a crash, a killed worker, a
    check that failed to run), with that batch, which the next run that touches them checks;
    and for the others, the delta version of their last batch, which is checked."""
    if not partition_keys:
        return {}, {}
    check = dg.AssetCheckKey(bronze_asset_key(spec), QUALITY_CHECK)
    latest = latest_batches(spark, spec, table, partition_keys)
    late: dict[str, CommittedBatch] = {}
    for key, batch in latest.items():
        found = latest_completed_check(instance, check, key)
        metadata = found[1].metadata if found else {}
        checked = max((int(metadata[name].value) for name in ("delta_version", CHECKED_VERSION)
                       if name in metadata and metadata[name].value is not None), default=-1)
        if checked < batch.delta_version:
            late[key] = batch
    return late, {k: b.delta_version for k, b in latest.items() if k not in late}


def _check_output(context: dg.AssetExecutionContext, asset_key: dg.AssetKey,
                  check_name: str) -> dg.Output:
    """The output Dagster expects of a check the step evaluated.

    The evaluations are yielded per partition (``AssetCheckEvaluation``: an ``AssetCheckResult``
    in a range run would record one result with no partition), and those do not count as the
    check's output; without this, every run logs that the op "did not yield or return expected
    outputs". It is what Dagster itself yields for an ``AssetCheckResult``: an ``Output`` of
    None under the check's output name, which no IO manager stores.
    """
    name = context.assets_def.get_output_name_for_asset_check_key(
        dg.AssetCheckKey(asset_key, check_name))
    return dg.Output(None, output_name=name)


def report_metadata(report: IngestReport) -> dict[str, object]:
    """The monitoring figures the UI plots per materialization."""
    metadata: dict[str, object] = {
        "records": report.records,
        "files_processed": report.files_processed,
        "files_failed": report.files_failed,
        "files_skipped": report.files_skipped,
        "files_held": report.files_held,
        "files_ignored": report.files_ignored,
        "files_empty": report.files_empty,
        "bytes": report.bytes,
        "records_per_second": round(report.records_per_second, 1),
        "seconds": round(report.seconds, 2),
        "write_seconds": round(report.write_seconds, 2),
        "mode": report.mode.value,
        "table_location": dg.MetadataValue.path(report.table_path),
    }
    if len(report.partition_keys) > 1:
        # Dagster gives each partition of a range run the run's metadata (the figures above are
        # the run's); these say how many partitions share them and what each one received.
        metadata["run_partitions"] = len(report.partition_keys)
        metadata["records_by_partition"] = dg.MetadataValue.json(report.records_by_partition())
    if report.delta_version is not None:
        metadata["delta_version"] = report.delta_version
    if report.landing_to_commit_seconds_max is not None:
        metadata["landing_to_commit_seconds_max"] = round(report.landing_to_commit_seconds_max, 1)
        metadata["landing_to_commit_seconds_median"] = round(
            report.landing_to_commit_seconds_median or 0.0, 1
        )
    if report.schema_changes:
        metadata["schema_changes"] = dg.MetadataValue.json(report.schema_changes)
    if report.columns_missing_in_files:
        metadata["columns_missing_in_files"] = ", ".join(report.columns_missing_in_files)
    if report.failures:
        metadata["failed_files"] = dg.MetadataValue.md(
            "\n".join(f"- `{_code(f.uri)}`: {_code(f.error or '')}"
                      for f in report.failures[:20])
        )
    return metadata


def _code(text: str) -> str:
    """``text`` for a Markdown code span: escaped, its backticks made quotes."""
    return printable(text).replace("`", "'")


def landing_assets(specs: Iterable[SourceSpec]) -> list[dg.AssetSpec]:
    return [landing_asset(spec) for spec in specs]


def bronze_assets(specs: Iterable[SourceSpec]) -> list[dg.AssetsDefinition]:
    return [bronze_asset(spec) for spec in specs]
