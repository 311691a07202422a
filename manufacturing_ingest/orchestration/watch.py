"""What the alert sensor watches, read from the Dagster instance and turned into ``Observation``s.

Five kinds of subject, each read the cheapest way the instance allows:

- **check results** (``landing_backlog``, ``quality``, ``schema_drift``) per partition: only the
  results stored after the cursor's event id (``get_asset_check_partition_info``), so a tick
  costs O(new results). A check that failed stays failing until a newer result says otherwise.
- **freshness**: the latest ``FRESHNESS_STATE_CHANGE`` per bronze asset (the FreshnessDaemon
  writes them); FAIL is failing, PASS passing, WARN and UNKNOWN say nothing.
- **failed runs** of the bronze assets or their checks, or of the ``bronze_stream`` job, updated
  after the cursor's timestamp.
- **files not ingested**: bronze materializations stored after the cursor's event id whose
  ``files_failed`` is above 0 (a broken file is recorded failed and retried while the rest of
  its batch commits, so the run itself succeeds): one alert per run, naming the files.
- **landing-sensor ticks**: the latest finished tick of each running landing sensor.

Dagster 1.13 has public types for none of these reads' results (freshness states, tick and
check-execution statuses); they come from its private modules through ``dagster_internals``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from manufacturing_ingest.alerting import AlertKind, Figure, Observation, Severity
from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.orchestration.dagster_internals import (
    AssetCheckExecutionRecordStatus,
    FreshnessState,
    InstigatorType,
    TickStatus,
    latest_completed_check,
)
from manufacturing_ingest.orchestration.names import (
    ASSET_CHECKS,
    PARTITION_CHECKS,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    STREAM_JOB,
    STREAM_RUN_PREFIX,
    asset_path,
    bronze_asset_key,
    bronze_check_key,
    landing_sensor_name,
)

__all__ = ["RUN_LOOKBACK", "WATCHED_CHECKS", "Watcher", "Watermarks", "check_subject"]

WATCHED_CHECKS = (*ASSET_CHECKS, *PARTITION_CHECKS)
# A new alert sensor (no cursor yet) reports runs that failed this recently, not older ones.
RUN_LOOKBACK = timedelta(hours=1)
_RUNS_PER_TICK = 100
_MATERIALIZATIONS_PER_TICK = 500
_MAX_DICT_FIGURE = 10  # a short name -> type dict is a figure; the table's full schema is not
_SEVERITY = {dg.AssetCheckSeverity.WARN: Severity.WARN, dg.AssetCheckSeverity.ERROR: Severity.ERROR}


def check_subject(spec: SourceSpec, check: str, partition: str | None) -> str:
    subject = f"check:{_asset(spec)}:{check}"
    return f"{subject}:{partition}" if partition else subject


@dataclass
class Watermarks:
    """How far the watcher has read; kept in the alert sensor's cursor."""

    checks_after: int | None = None  # event storage id of the newest check result seen
    runs_after: float | None = None  # update timestamp of the newest failed run seen
    files_after: int | None = None  # event storage id of the newest materialization seen


class Watcher:
    """Reads the instance for ``specs`` and returns what it saw as observations."""

    def __init__(self, instance: dg.DagsterInstance, specs: Sequence[SourceSpec],
                 run_url: Callable[[str | None], str | None]):
        self.instance = instance
        self.specs = {_asset(spec): spec for spec in specs}
        self.run_url = run_url

    def _run_url(self, run_id: str | None) -> str | None:
        """The UI page of a run; None without one (a runless event, or a
        ``manufacturing-ingest stream`` process's, whose run id names no run)."""
        if not run_id or run_id.startswith(STREAM_RUN_PREFIX):
            return None
        return self.run_url(run_id)

    def observe(self, marks: Watermarks, now: datetime,
                failing: Iterable[str] = ()) -> list[Observation]:
        """Everything new since ``marks`` (which it moves on), plus the current freshness and
        landing-sensor states. ``failing``: subjects the book holds as failing, so a check that
        passes again is read in full for its recovery notice."""
        failing = set(failing)
        return [
            *self.checks(marks, failing),
            *self.freshness(now),
            *self.failed_runs(marks, now),
            *self.failed_files(marks, now),
            *self.landing_ticks(),
        ]

    def checks(self, marks: Watermarks, failing: set[str]) -> list[Observation]:
        keys = [bronze_check_key(spec, name)
                for spec in self.specs.values() for name in WATCHED_CHECKS]
        storage = self.instance.event_log_storage
        infos = storage.get_asset_check_partition_info(keys, after_storage_id=marks.checks_after)
        observations = []
        for info in sorted(infos, key=lambda i: i.latest_check_event_storage_id or 0):
            if info.latest_check_event_storage_id is not None:
                marks.checks_after = max(marks.checks_after or 0,
                                         info.latest_check_event_storage_id)
            status = info.latest_execution_status
            if status is AssetCheckExecutionRecordStatus.PLANNED:
                continue  # still running; its result comes with a newer event id
            spec = self.specs[_asset_of(info.check_key.asset_key)]
            subject = check_subject(spec, info.check_key.name, info.partition_key)
            is_failing = status is AssetCheckExecutionRecordStatus.FAILED
            if not is_failing and subject not in failing:
                continue  # passing and never alerted: nothing to say, nothing to read
            latest = latest_completed_check(self.instance, info.check_key, info.partition_key)
            if latest is None:
                continue
            record, evaluation = latest
            observations.append(Observation(
                subject=subject,
                failing=not evaluation.passed,
                kind=AlertKind.CHECK_FAILED,
                severity=_SEVERITY.get(evaluation.severity, Severity.ERROR),
                title=(f"{info.check_key.name} on {spec.table_name}"
                       + (f" {info.partition_key}" if info.partition_key else "")),
                observed_at=datetime.fromtimestamp(record.create_timestamp, UTC),
                asset=_asset(spec),
                check=info.check_key.name,
                partition=info.partition_key,
                figures=_figures(evaluation.metadata),
                run_url=self._run_url(record.run_id),
                detail=evaluation.description or "",
            ))
        return observations

    def freshness(self, now: datetime) -> list[Observation]:
        keys = [bronze_asset_key(spec) for spec in self.specs.values()]
        records = self.instance.get_freshness_state_records(keys)
        observations = []
        for key, record in records.items():
            state = record.freshness_state
            if state not in (FreshnessState.FAIL, FreshnessState.PASS):
                continue
            spec = self.specs[_asset_of(key)]
            latest = self.instance.get_latest_materialization_event(key)
            figures: dict[str, Figure] = {"freshness_window_minutes": spec.freshness_minutes}
            if latest is not None:
                last = datetime.fromtimestamp(latest.timestamp, UTC)
                figures["last_materialized"] = f"{last:%Y-%m-%d %H:%M:%S} UTC"
                figures["minutes_since_last_materialization"] = round(
                    (now - last).total_seconds() / 60, 1)
            detail = (
                f"Nothing new committed to {spec.table_name} for more than "
                f"{spec.freshness_minutes} minutes: ingestion has stopped or nothing landed. "
                "Check the landing sensor, the landing zone and the latest runs."
                if state is FreshnessState.FAIL
                else f"{spec.table_name} received new data.")
            observations.append(Observation(
                subject=f"freshness:{_asset(spec)}",
                failing=state is FreshnessState.FAIL,
                kind=AlertKind.FRESHNESS_FAILED,
                severity=Severity.ERROR,
                title=f"freshness of {spec.table_name}",
                observed_at=record.updated_at.astimezone(UTC),
                asset=_asset(spec),
                figures=figures,
                run_url=self._run_url(latest.run_id if latest is not None else None),
                detail=detail,
            ))
        return observations

    def failed_runs(self, marks: Watermarks, now: datetime) -> list[Observation]:
        after = (datetime.fromtimestamp(marks.runs_after, UTC) if marks.runs_after is not None
                 else now - RUN_LOOKBACK)
        records = self.instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=after),
            limit=_RUNS_PER_TICK, order_by="update_timestamp", ascending=True,
        )
        observations = []
        for record in records:
            marks.runs_after = max(marks.runs_after or 0.0, record.update_timestamp.timestamp())
            run = record.dagster_run
            specs = self._specs_of_run(run)
            if not specs:
                continue
            tags = run.tags
            first = tags.get(RANGE_START_TAG) or tags.get(PARTITION_TAG)
            last = tags.get(RANGE_END_TAG) or first
            partition = (first if first == last else f"{first}…{last}") if first else None
            tables = ", ".join(spec.table_name for spec in specs)
            observations.append(Observation(
                subject=f"run:{run.run_id}",
                failing=True,
                kind=AlertKind.RUN_FAILED,
                severity=Severity.ERROR,
                title=f"run {run.run_id[:8]} of {tables}",
                observed_at=record.update_timestamp.astimezone(UTC),
                asset=_asset(specs[0]) if len(specs) == 1 else None,
                partition=partition,
                figures={"job": run.job_name, "run_id": run.run_id},
                run_url=self.run_url(run.run_id),
                detail=self._run_failure(run.run_id),
            ))
        return observations

    def failed_files(self, marks: Watermarks, now: datetime) -> list[Observation]:
        """One observation per run whose materializations report files not ingested."""
        since = (now - RUN_LOOKBACK).timestamp()
        newest = marks.files_after
        by_run: dict[tuple[str, str], list] = {}
        for asset, spec in self.specs.items():
            records = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=bronze_asset_key(spec),
                                      after_storage_id=marks.files_after),
                limit=_MATERIALIZATIONS_PER_TICK, ascending=True).records
            for record in records:
                newest = max(newest or 0, record.storage_id)
                if marks.files_after is None and record.timestamp < since:
                    continue  # a new sensor reports recent failures only, as for runs
                materialization = record.asset_materialization
                metadata = materialization.metadata if materialization else {}
                failed = metadata.get("files_failed")
                if failed is not None and (failed.value or 0) > 0:
                    # A stream's micro-batches share its run id; each is alerted on its own.
                    batch = metadata.get("micro_batch")
                    run = record.run_id + (f"#{batch.value}" if batch is not None else "")
                    by_run.setdefault((asset, run), []).append(record)
        marks.files_after = newest
        observations = []
        for (asset, run_id), records in by_run.items():
            spec = self.specs[asset]
            partitions = sorted({r.partition_key for r in records if r.partition_key})
            partition = (None if not partitions else partitions[0] if len(partitions) == 1
                         else f"{partitions[0]}…{partitions[-1]}")
            metadata = records[-1].asset_materialization.metadata
            failed = metadata["files_failed"].value
            listing = metadata.get("failed_files")
            observations.append(Observation(
                subject=f"files:{asset}:{run_id}",
                failing=True,
                kind=AlertKind.FILES_FAILED,
                severity=Severity.ERROR,
                title=(f"{failed} file{'s' if failed != 1 else ''} on {spec.table_name}"
                       + (f" {partition}" if partition else "")),
                observed_at=datetime.fromtimestamp(records[-1].timestamp, UTC),
                asset=asset,
                partition=partition,
                figures={"files_failed": failed,
                         "files_processed": metadata["files_processed"].value
                         if "files_processed" in metadata else 0},
                run_url=self._run_url(run_id.split("#", 1)[0]),
                detail=((str(listing.value).strip() if listing is not None else "")
                        + "\nThe rest of the batch committed; these files are retried by "
                          "the next run of the partition.").strip(),
            ))
        return observations

    def landing_ticks(self) -> list[Observation]:
        names = {landing_sensor_name(spec): spec for spec in self.specs.values()}
        observations = []
        for state in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            spec = names.get(state.instigator_name)
            if spec is None or not state.is_running:
                continue
            ticks = self.instance.get_ticks(state.instigator_origin_id, state.selector_id,
                                            limit=5)
            tick = next((t for t in ticks if t.status is not TickStatus.STARTED), None)
            if tick is None:
                continue
            failing = tick.status is TickStatus.FAILURE
            detail = (_error_text(tick.error) if failing and tick.error is not None
                      else "the sensor lists the landing zone again")
            observations.append(Observation(
                subject=f"sensor:{state.instigator_name}",
                failing=failing,
                kind=AlertKind.SENSOR_TICK_FAILED,
                severity=Severity.ERROR,
                title=f"landing sensor {state.instigator_name}",
                observed_at=datetime.fromtimestamp(tick.timestamp, UTC),
                asset=_asset(spec),
                figures={"landing_prefix": spec.landing_prefix},
                detail=detail,
            ))
        return observations

    def _specs_of_run(self, run: dg.DagsterRun) -> list[SourceSpec]:
        if run.job_name == STREAM_JOB:  # an op job: it names no asset, and writes them all
            return list(self.specs.values())
        keys = {_asset_of(key) for key in run.asset_selection or ()}
        keys |= {_asset_of(check.asset_key) for check in run.asset_check_selection or ()}
        if not keys:  # a job of all its assets records no selection; its plan names them
            for kind in (dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                         dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED):
                for entry in self.instance.all_logs(run.run_id, of_type=kind):
                    event = entry.dagster_event
                    key = event and (event.asset_key
                                     or getattr(event.event_specific_data, "asset_key", None))
                    if key is not None:
                        keys.add(_asset_of(key))
        return [spec for asset, spec in self.specs.items() if asset in keys]

    def _run_failure(self, run_id: str) -> str:
        """The first step's error (its root cause), or the run's own failure message."""
        for entry in self.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            event = entry.dagster_event
            if event is not None and event.step_failure_data is not None:
                return f"Step {event.step_key} failed: {_error_text(event.step_failure_data.error)}"
        for entry in self.instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
            if entry.dagster_event is not None and entry.dagster_event.message:
                return entry.dagster_event.message
        return "The run failed; its event log in the Dagster UI says why."


def _asset(spec: SourceSpec) -> str:
    return asset_path(spec)


def _asset_of(key: dg.AssetKey) -> str:
    return key.to_user_string()


def _error_text(error) -> str:
    """The root cause's message: what the user's code raised, not Dagster's wrapper around it."""
    if error is None:
        return ""
    while error.cause is not None:
        error = error.cause
    return (error.message or "").strip()


def _figures(metadata: Mapping[str, dg.MetadataValue]) -> dict[str, Figure]:
    """Plain figures of a check's metadata; per-rule counts flattened, examples left out."""
    figures: dict[str, Figure] = {}
    for name, entry in metadata.items():
        value = entry.value if isinstance(entry, dg.MetadataValue) else entry
        if isinstance(value, bool):
            figures[name] = str(value)
        elif isinstance(value, int | float | str):
            figures[name] = value
        elif isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values()):
            figures.update({f"{name}.{k}": v for k, v in value.items() if v})
        elif (isinstance(value, dict) and len(value) <= _MAX_DICT_FIGURE
              and all(isinstance(v, str) for v in value.values())):
            figures[name] = ", ".join(f"{k} {v}" for k, v in value.items())  # e.g. added columns
    return figures
