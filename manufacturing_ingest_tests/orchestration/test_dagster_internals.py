"""Pins what the project takes from Dagster beyond its public API (``dagster_internals``).

When a Dagster upgrade moves or changes one of these, this file fails and says which; the alert
sensor, the landing sensor and ``manufacturing-ingest quality`` would otherwise fail at run time.
No Spark: tiny in-process runs on a throwaway instance.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator

import dagster as dg
import pytest

from manufacturing_ingest.orchestration import dagster_internals as internals
from manufacturing_ingest.orchestration.dagster_internals import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
    AssetCheckExecutionRecordStatus,
    FreshnessState,
    InstigatorType,
    PartitionKeyFilter,
    TickStatus,
    latest_completed_check,
    report_asset_event,
)

DAILY = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as it:
        yield it


def test_the_pinned_dagster_is_the_one_installed():
    # Upgrading Dagster: re-run this file, fix dagster_internals, then move the pin.
    assert dg.__version__ == internals.DAGSTER_VERSION == "1.13.27"


def test_every_name_of_the_module_resolves():
    for name in internals.__all__:
        assert getattr(internals, name) is not None, name


def test_the_tags_of_a_sensors_run_are_the_ones_the_ui_reads():
    # The Runs page shows a run with these tags as launched by the sensor.
    assert (internals.SENSOR_NAME_TAG, internals.RUN_KEY_TAG) == (
        "dagster/sensor_name", "dagster/run_key")


def test_the_enum_members_the_code_compares_against_exist():
    assert {FreshnessState.PASS, FreshnessState.FAIL, FreshnessState.WARN,
            FreshnessState.UNKNOWN} <= set(FreshnessState)
    assert InstigatorType.SENSOR in set(InstigatorType)
    assert {TickStatus.STARTED, TickStatus.FAILURE, TickStatus.SUCCESS,
            TickStatus.SKIPPED} <= set(TickStatus)
    assert {AssetCheckExecutionRecordStatus.PLANNED, AssetCheckExecutionRecordStatus.FAILED,
            AssetCheckExecutionRecordStatus.SUCCEEDED} <= set(AssetCheckExecutionRecordStatus)
    # "Completed" must leave out an execution still running, and keep passes and failures.
    assert set(COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES) == {
        AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}


def test_a_partition_key_filter_is_built_with_a_key_or_none():
    assert PartitionKeyFilter(key="2026-01-15").key == "2026-01-15"
    assert PartitionKeyFilter(key=None).key is None


# The non-public instance and storage methods the package calls, with the keyword arguments it
# passes (see the dagster_internals docstring); ``None``: an attribute, not called.
INSTANCE_CALLS = {
    "get_freshness_state_records": {"keys": []},
    "all_instigator_state": {"instigator_type": None},
    "get_ticks": {"origin_id": "o", "selector_id": "s", "limit": 5},
    "all_logs": {"run_id": "r", "of_type": dg.DagsterEventType.STEP_FAILURE},
    "global_op_concurrency_default_limit": None,
}
EVENT_LOG_STORAGE_CALLS = {
    "get_asset_check_partition_info": {"keys": [], "after_storage_id": None},
    "get_asset_check_execution_history": {
        "check_key": None, "limit": 1, "status": set(), "partition_filter": None},
    "get_concurrency_keys": {},
    "initialize_concurrency_limit_to_default": {"concurrency_key": "pool"},
}
RUN_STORAGE_CALLS = {
    "get_cursor_values": {"keys": set()},
    "set_cursor_values": {"pairs": {}},
}


@pytest.mark.parametrize("owner, calls", [
    ("instance", INSTANCE_CALLS),
    ("event_log_storage", EVENT_LOG_STORAGE_CALLS),
    ("run_storage", RUN_STORAGE_CALLS),
])
def test_the_instance_methods_the_code_calls_take_its_arguments(owner, calls):
    instance = dg.DagsterInstance.ephemeral()
    target = instance if owner == "instance" else getattr(instance, owner)
    for name, kwargs in calls.items():
        assert hasattr(target, name), f"{owner}.{name} is gone"
        if kwargs is not None:
            inspect.signature(getattr(target, name)).bind(**kwargs)  # raises on a renamed arg


def test_the_record_fields_the_code_reads_exist():
    from dagster._core.definitions.freshness import FreshnessStateRecord
    from dagster._core.scheduler.instigation import InstigatorState, InstigatorTick
    from dagster._core.storage.asset_check_execution_record import AssetCheckPartitionInfo

    read = {
        FreshnessStateRecord: ("freshness_state", "updated_at"),
        InstigatorState: ("instigator_name", "is_running", "instigator_origin_id", "selector_id"),
        InstigatorTick: ("status", "timestamp", "error"),
        AssetCheckPartitionInfo: ("check_key", "partition_key", "latest_execution_status",
                                  "latest_check_event_storage_id"),
        internals.AssetCheckExecutionRecord: ("event", "run_id", "create_timestamp"),
    }
    for cls, fields in read.items():
        for field in fields:
            assert hasattr(cls, field), f"{cls.__name__}.{field} is gone"


def _range_run_with_partitioned_checks(instance: dg.DagsterInstance) -> None:
    """As the bronze asset does: one run over a range (the range tags), one check evaluation per
    partition (a partitioned check spec, a preview API in 1.13), and an asset-wide check."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        check_spec = dg.AssetCheckSpec("rows", asset="table", partitions_def=DAILY)

    @dg.multi_asset(specs=[dg.AssetSpec("table")], check_specs=[check_spec],
                    partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(),
                    can_subset=True)
    def table(context):  # not annotated: this module postpones annotations
        yield dg.MaterializeResult(asset_key="table")
        for key in context.partition_keys:
            yield dg.AssetCheckEvaluation(asset_key=dg.AssetKey("table"), check_name="rows",
                                          passed=key != "2026-01-16", partition=key,
                                          description=f"rows of {key}")

    @dg.asset_check(asset="table", name="backlog")
    def backlog() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True, description="every object ingested")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dg.materialize([table], instance=instance, tags={
            "dagster/asset_partition_range_start": "2026-01-15",
            "dagster/asset_partition_range_end": "2026-01-16",
        })
        # Its own run, as the landing_backlog checks job does.
        dg.materialize([table, backlog], instance=instance,
                       selection=dg.AssetSelection.checks(backlog))


def test_check_results_are_read_per_partition_and_after_an_event_id(instance):
    _range_run_with_partitioned_checks(instance)
    rows = dg.AssetCheckKey(dg.AssetKey("table"), "rows")
    backlog = dg.AssetCheckKey(dg.AssetKey("table"), "backlog")

    storage = instance.event_log_storage
    infos = {(i.check_key.name, i.partition_key): i
             for i in storage.get_asset_check_partition_info([rows, backlog])}
    assert set(infos) == {("rows", "2026-01-15"), ("rows", "2026-01-16"), ("backlog", None)}
    assert infos["rows", "2026-01-16"].latest_execution_status \
        is AssetCheckExecutionRecordStatus.FAILED
    assert infos["rows", "2026-01-15"].latest_execution_status \
        is AssetCheckExecutionRecordStatus.SUCCEEDED
    newest = max(i.latest_check_event_storage_id for i in infos.values())
    assert storage.get_asset_check_partition_info([rows, backlog], after_storage_id=newest) == []

    found = latest_completed_check(instance, rows, "2026-01-16")
    assert found is not None
    record, evaluation = found
    assert (evaluation.passed, evaluation.partition) == (False, "2026-01-16")
    assert evaluation.description == "rows of 2026-01-16" and record.run_id
    assert latest_completed_check(instance, rows, "2026-01-15")[1].passed
    assert latest_completed_check(instance, rows, "2026-01-17") is None  # never evaluated
    asset_wide = latest_completed_check(instance, backlog, None)
    assert asset_wide is not None and asset_wide[1].passed


def test_the_key_value_store_and_pool_limits_the_sensors_use(instance):
    instance.run_storage.set_cursor_values({"manufacturing_ingest/test": "v"})
    assert instance.run_storage.get_cursor_values({"manufacturing_ingest/test"}) == {
        "manufacturing_ingest/test": "v"}

    storage = instance.event_log_storage
    assert instance.global_op_concurrency_default_limit == 1
    assert "manufacturing_bronze.t" not in storage.get_concurrency_keys()
    storage.initialize_concurrency_limit_to_default("manufacturing_bronze.t")
    assert "manufacturing_bronze.t" in storage.get_concurrency_keys()
    assert storage.get_concurrency_info("manufacturing_bronze.t").slot_count == 1


def test_an_empty_instance_has_no_freshness_states_and_no_sensor_states(instance):
    assert instance.get_freshness_state_records([dg.AssetKey("table")]) == {}
    assert list(instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)) == []


def test_a_stream_records_many_evaluations_of_a_partition_under_its_run_id(instance):
    # A second runless evaluation of one partition fails in Dagster 1.13 (its check-execution
    # index is unique on run id "" and the partition): the reason report_asset_event exists.
    key = dg.AssetKey("table")

    def evaluation(passed: bool) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(asset_key=key, check_name="rows", passed=passed,
                                       partition="2026-01-15", metadata={"delta_version": 3})

    instance.report_runless_asset_event(evaluation(True))
    with pytest.raises(Exception, match="UNIQUE constraint failed"):
        instance.report_runless_asset_event(evaluation(False))

    check = dg.AssetCheckKey(key, "rows")
    report_asset_event(instance, evaluation(False), "stream-abc")
    assert latest_completed_check(instance, check, "2026-01-15")[1].passed is False
    report_asset_event(instance, evaluation(True), "stream-abc")
    record, latest = latest_completed_check(instance, check, "2026-01-15")
    assert latest.passed and record.run_id == "stream-abc"

    report_asset_event(instance, dg.AssetMaterialization(
        asset_key=key, partition="2026-01-15", metadata={"records": 7}), "stream-abc")
    report_asset_event(instance, dg.AssetObservation(asset_key=dg.AssetKey("raw"),
                                                     metadata={"files": 1}), "stream-abc")
    (materialized,) = instance.fetch_materializations(key, limit=5).records
    assert (materialized.run_id, materialized.partition_key) == ("stream-abc", "2026-01-15")
    assert materialized.asset_materialization.metadata["records"].value == 7
    assert instance.fetch_observations(dg.AssetKey("raw"), limit=5).records[0].run_id \
        == "stream-abc"
