"""Everything this project takes from Dagster's private modules (``dagster._*``), in one place.

The project pins ``dagster==1.13.27``; none of these names is exported by ``import dagster as
dg`` in that version, and a Dagster upgrade may move or change any of them. Nothing else in the
package imports ``dagster._``, and ``test_dagster_internals.py`` (in
``manufacturing_ingest_tests/orchestration/``) pins each name and the behaviour the code relies
on, so an upgrade breaks that one test loudly instead of an alert sensor tick in production.

Why each is needed (all read the Dagster instance; Dagster 1.13 writes these, but has no public
type to compare them with):

- ``FreshnessState``: the state in ``instance.get_freshness_state_records`` (what the
  FreshnessDaemon wrote); the alert sensor treats ``FAIL`` as failing and ``PASS`` as passing.
- ``InstigatorType`` and ``TickStatus``: ``instance.all_instigator_state(instigator_type=SENSOR)``
  lists the landing sensors; a tick's ``STARTED`` / ``FAILURE`` status tells a running tick from
  a failed one.
- ``AssetCheckExecutionRecordStatus`` and ``COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES``:
  the status of a stored check execution (``PLANNED`` is still running); the completed set
  filters out executions still running.
- ``PartitionKeyFilter``: the only way to ask the event-log storage for one partition's check
  history (``get_asset_check_execution_history(partition_filter=...)``); ``key=None`` asks for the
  executions without a partition (the asset-wide ``landing_backlog`` check).
- ``SENSOR_NAME_TAG`` and ``RUN_KEY_TAG``: the tags the daemon gives a run a sensor requested;
  ``make demo`` runs the landing sensor's request itself and tags the run the same way, so the
  UI's Runs page shows the sensor that launched it.
- ``DagsterEvent``, ``DagsterEventType``, ``StepMaterializationData``, ``AssetObservationData``
  and ``RUNLESS_JOB_NAME``: ``report_asset_event`` records the stream's events as
  ``report_runless_asset_event`` does, but under a run id of the stream's own (see there).
- ``DagsterExecutionInterruptedError`` and ``DagsterPipesExecutionError``: what
  dagster-databricks' serverless Pipes client raises from its ``_poll_til_success`` (a method
  ``databricks/pipes.py`` overrides to add the task's error and keep an interruption) when a
  run is interrupted or a job fails.

The same code also calls instance and storage methods that Dagster does not mark public (no
import needed, so they are not here): ``instance.event_log_storage``
(``get_asset_check_partition_info``, ``get_asset_check_execution_history``,
``get_concurrency_keys``, ``initialize_concurrency_limit_to_default``), ``instance.run_storage``
(``get_cursor_values``, ``set_cursor_values``: the key-value store), and
``instance.get_freshness_state_records``, ``all_instigator_state``, ``get_ticks``, ``all_logs``,
``global_op_concurrency_default_limit``. The test pins their names and the keyword arguments
passed to them too.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.errors import DagsterExecutionInterruptedError, DagsterPipesExecutionError
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.events import (
    AssetObservationData,
    DagsterEvent,
    DagsterEventType,
    StepMaterializationData,
)
from dagster._core.instance.utils import RUNLESS_JOB_NAME
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

__all__ = [
    "COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES",
    "DAGSTER_VERSION",
    "AssetCheckExecutionRecord",
    "AssetCheckExecutionRecordStatus",
    "DagsterExecutionInterruptedError",
    "DagsterPipesExecutionError",
    "FreshnessState",
    "InstigatorType",
    "PartitionKeyFilter",
    "RUN_KEY_TAG",
    "SENSOR_NAME_TAG",
    "TickStatus",
    "latest_completed_check",
    "report_asset_event",
]

# The version these imports were checked against (pyproject.toml pins it).
DAGSTER_VERSION = "1.13.27"


def latest_completed_check(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey,
                           partition: str | None
                           ) -> tuple[AssetCheckExecutionRecord, dg.AssetCheckEvaluation] | None:
    """The latest completed execution of ``check_key`` on ``partition`` (None: the executions
    without a partition) and its evaluation; None if it has none (never evaluated, or still
    running)."""
    records: Sequence[AssetCheckExecutionRecord] = (
        instance.event_log_storage.get_asset_check_execution_history(
            check_key, limit=1, status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
            partition_filter=PartitionKeyFilter(key=partition)))
    record = next(iter(records), None)
    if record is None or record.event is None or record.event.dagster_event is None:
        return None
    evaluation = record.event.dagster_event.event_specific_data
    if not isinstance(evaluation, dg.AssetCheckEvaluation):
        return None
    return record, evaluation


def report_asset_event(instance: dg.DagsterInstance,
                       event: dg.AssetMaterialization | dg.AssetObservation
                       | dg.AssetCheckEvaluation, run_id: str) -> None:
    """``event`` stored as ``instance.report_runless_asset_event`` stores it, under ``run_id``
    (no run of that id need exist).

    Why not runless: Dagster 1.13 indexes check executions uniquely by (asset, check, run id,
    partition), and a runless evaluation is inserted with run id "", so the second runless
    evaluation of a partition fails with an IntegrityError. Under a run id, an evaluation
    updates that run's execution of the partition or inserts one. The stream gives each
    micro-batch and each window check an id of its own (``stream-…``), so every one is an
    execution in the check's history and a failed-files alert names its micro-batch.
    """
    if isinstance(event, dg.AssetMaterialization):
        kind, data = DagsterEventType.ASSET_MATERIALIZATION, StepMaterializationData(event)
    elif isinstance(event, dg.AssetObservation):
        kind, data = DagsterEventType.ASSET_OBSERVATION, AssetObservationData(event)
    else:
        kind, data = DagsterEventType.ASSET_CHECK_EVALUATION, event
    instance.report_dagster_event(
        DagsterEvent(event_type_value=kind.value, event_specific_data=data,
                     job_name=RUNLESS_JOB_NAME),
        run_id=run_id)
