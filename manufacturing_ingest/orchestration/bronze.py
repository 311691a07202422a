"""One bronze step's work, wherever it runs: ingest the run's partitions, then check them.

The bronze asset calls ``run_bronze`` in the run's own process (locally, over Databricks Connect,
or on a cluster the step launcher started); with ``pipes-serverless`` the Databricks job calls it
(``databricks/task.py``) and sends the ``BronzeStep`` back. Either way the asset yields the same
materialization and check evaluations (``step_events``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.databricks.discovery import AutoLoaderDiscovery
from manufacturing_ingest.engine.ingest import BronzeIngestor, log_progress
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.progress import ProgressEvent
from manufacturing_ingest.engine.report import IngestReport
from manufacturing_ingest.landing import LandingZone
from manufacturing_ingest.orchestration.checks import drift_evaluations, quality_evaluations
from manufacturing_ingest.orchestration.names import (
    CHECKED_VERSION,
    QUALITY_CHECK,
    SCHEMA_DRIFT_CHECK,
    bronze_asset_key,
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


@dataclass(frozen=True)
class BronzeStep:
    """What a bronze step did: its materialization metadata and, per check it ran, the
    evaluations of the run's partitions (None: the check was not selected)."""

    metadata: dict[str, object]
    quality: list[dg.AssetCheckEvaluation] | None
    drift: list[dg.AssetCheckEvaluation] | None


def run_bronze(session, spec: SourceSpec, zone: LandingZone, read_mode: ReadMode,
               lakehouse: Lakehouse, partition_keys: list[str], run_id: str, reprocess: bool,
               selected_checks: set[str], checked_version: Callable[[str], int],
               log: Callable[[str], None], warn: Callable[[str], None],
               autoloader: AutoLoaderDiscovery | None = None) -> BronzeStep:
    """Ingest ``partition_keys`` of ``spec`` and run the selected checks on what was committed.

    ``checked_version(partition)``: the delta version of the partition's last checked batch
    (-1: none), from the Dagster instance, so a batch an earlier run committed but did not check
    is checked now. ``log``/``warn``: where the step's lines go (the run's log).
    ``autoloader``: how Auto Loader finds new files in read mode ``autoloader`` (None: listing).
    """
    def progress(event: ProgressEvent) -> None:
        log(event.message())
        log_progress(event)  # the CLI shows these on stderr while Dagster's logs stay quiet

    if read_mode is ReadMode.AUTOLOADER and not reprocess:
        from manufacturing_ingest.databricks.autoloader import AutoLoaderIngestor

        # Every new file of the source, whatever the run's partitions; the checks judge what
        # landed in the run's partitions.
        autoloader = autoloader or AutoLoaderDiscovery()
        report = AutoLoaderIngestor(session, spec, zone.root_uri, lakehouse, autoloader).ingest(
            partition_keys, run_id)
    else:
        # A reprocess rebuilds one partition from its files: the portable engine's job.
        ingestor = BronzeIngestor(
            session, spec, zone, lakehouse, progress=progress,
            read_mode=ReadMode.DIRECT if read_mode is ReadMode.AUTOLOADER else read_mode,
        )
        report = ingestor.ingest(partition_keys, reprocess=reprocess, run_id=run_id)
    for failure in report.failures:
        warn(f"file not ingested, will retry next run: {printable(failure.uri)}: "
             f"{printable(failure.error)}")
    metadata = report_metadata(report)
    if read_mode is ReadMode.AUTOLOADER and not reprocess:
        metadata["autoloader_discovery"] = autoloader.mode.value

    quality = None
    if QUALITY_CHECK in selected_checks:
        started = time.monotonic()
        batch = committed_batch(report)
        results = evaluate_batch(session, spec, batch) if batch else None
        late, checked = unchecked_batches(
            checked_version, session, spec, report.table,
            [k for k in partition_keys if k not in (results or {})])
        for partition, earlier in late.items():
            log(f"{partition}: checking the batch of delta version {earlier.delta_version}, "
                "which an earlier run committed but did not check")
            results = {**(results or {}), **evaluate_batch(session, spec, earlier)}
        log(f"quality check of {report.records} new rows took "
            f"{time.monotonic() - started:.1f} s")
        quality = quality_evaluations(spec, partition_keys, results,
                                      late={k: b.delta_version for k, b in late.items()},
                                      checked=checked)
    drift = None
    if SCHEMA_DRIFT_CHECK in selected_checks:
        committed = {o.partition_key for o in report.outcomes if o.rows}
        drift = drift_evaluations(spec, partition_keys, schema_drift(session, report), committed)
    return BronzeStep(metadata=metadata, quality=quality, drift=drift)


def step_events(context: dg.AssetExecutionContext, spec: SourceSpec, step: BronzeStep
                ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output]:
    """The step's materialization, then each selected check's evaluations and output."""
    key = bronze_asset_key(spec)
    yield dg.MaterializeResult(asset_key=key, metadata=step.metadata)
    for name, evaluations in ((QUALITY_CHECK, step.quality), (SCHEMA_DRIFT_CHECK, step.drift)):
        if evaluations is not None:
            yield from evaluations
            yield _check_output(context, key, name)


def checked_version_in(instance: dg.DagsterInstance, spec: SourceSpec
                       ) -> Callable[[str], int]:
    """``checked_version`` for ``run_bronze``, looked up in ``instance``."""
    from manufacturing_ingest.orchestration.dagster_internals import latest_completed_check

    check = dg.AssetCheckKey(bronze_asset_key(spec), QUALITY_CHECK)

    def checked_version(partition: str) -> int:
        found = latest_completed_check(instance, check, partition)
        metadata = found[1].metadata if found else {}
        return max((int(metadata[name].value) for name in ("delta_version", CHECKED_VERSION)
                    if name in metadata and metadata[name].value is not None), default=-1)

    return checked_version


def unchecked_batches(checked_version: Callable[[str], int], spark, spec: SourceSpec, table,
                      partition_keys: list[str]
                      ) -> tuple[dict[str, CommittedBatch], dict[str, int]]:
    """The partitions among ``partition_keys`` whose last committed batch has no ``quality``
    result (the run that committed it stopped before its checks: a crash, a killed worker, a
    check that failed to run), with that batch, which the next run that touches them checks;
    and for the others, the delta version of their last batch, which is checked."""
    if not partition_keys:
        return {}, {}
    latest = latest_batches(spark, spec, table, partition_keys)
    late = {key: batch for key, batch in latest.items()
            if checked_version(key) < batch.delta_version}
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
