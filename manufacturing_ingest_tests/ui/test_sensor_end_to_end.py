"""From an object landing in S3 to an alert, on the live daemon: the landing sensor's next tick
starts a run, the rows reach bronze, the checks run, and bad files end in alerts at the loopback
webhook: a file of bad readings fails the quality check, a cut-off file is named as not
ingested."""

from __future__ import annotations

import gzip
import time
from datetime import timedelta

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.generate import GenerateOptions
from manufacturing_ingest.orchestration.dagster_internals import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
    PartitionKeyFilter,
)
from manufacturing_ingest.orchestration.sensors import RANGE_START_TAG
from manufacturing_ingest_tests.clock import clear_of_midnight
from manufacturing_ingest_tests.live_ui import wait_until
from manufacturing_ingest_tests.ui.conftest import LANDING_INTERVAL_SECONDS

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

SPEC = get_source("sensor_data")
KEY = dg.AssetKey(SPEC.asset_key_path)
SENSOR = f"{SPEC.name}_landing_sensor"


def _sensor_runs(instance, partition: str) -> list[dg.RunRecord]:
    return list(instance.get_run_records(filters=dg.RunsFilter(tags={
        "dagster/sensor_name": SENSOR, RANGE_START_TAG: partition})))


def _ticks(instance):
    state = next(s for s in instance.all_instigator_state()
                 if s.instigator_name == SENSOR)
    return instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200)


def _tick_of(instance, run_id: str):
    return next((t for t in _ticks(instance) if run_id in t.run_ids), None)


def _quality(instance, partition: str, after: float):
    """The newest completed ``quality`` evaluation of ``partition`` stored after ``after``."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(KEY, "quality"), limit=1,
        status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
        partition_filter=PartitionKeyFilter(key=partition))
    if not records or records[0].create_timestamp < after or records[0].event is None:
        return None
    data = records[0].event.dagster_event.event_specific_data
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def _bronze_rows(deployment, partition: str) -> dict[str, int]:
    """Rows in bronze for ``partition``, per source file name."""
    table = DeltaTable(str(deployment.root / "lakehouse" / "manufacturing_bronze" / SPEC.name))
    rows: dict[str, int] = {}
    for row in table.to_pyarrow_table(columns=[SPEC.partition_column, "_source_file"]).to_pylist():
        if str(row[SPEC.partition_column]) == partition:
            name = row["_source_file"].rsplit("/", 1)[-1]
            rows[name] = rows.get(name, 0) + 1
    return rows


def test_a_landed_file_is_ingested_on_the_next_tick_and_a_bad_file_is_alerted(live, ui_webhook):
    deployment, landing = live
    instance = deployment.instance()
    # Every reading lies in the past; the sensor must see the same yesterday throughout.
    day = (clear_of_midnight(timedelta(minutes=10)) - timedelta(days=1)).date()
    partition = day.isoformat()
    before = {r.dagster_run.run_id for r in _sensor_runs(instance, partition)}

    # A good file lands: the landing sensor's next tick asks for a run.
    landed_at = time.time()
    good = landing.land_generated(SPEC.name, day, options=GenerateOptions(
        files=1, rows_per_file=300, seed=11), tag="good")
    run = wait_until("a run started by the landing sensor", lambda: next(
        (r for r in _sensor_runs(instance, partition) if r.dagster_run.run_id not in before),
        None), deployment, timeout=LANDING_INTERVAL_SECONDS * 4)
    tick = wait_until("the tick that asked for the run",
                      lambda: _tick_of(instance, run.dagster_run.run_id), deployment, timeout=60)
    # The run comes from the sensor's next tick: no tick began between the landing and the one
    # that asked for the run, and that one began within an interval of the landing (the daemon
    # starts a sensor's tick an interval after the last one began; on a busy machine a little
    # later, hence the slack).
    between = [t for t in _ticks(instance) if landed_at < t.timestamp < tick.timestamp]
    assert between == [], [(t.timestamp - landed_at, t.status) for t in between]
    assert tick.timestamp - landed_at <= LANDING_INTERVAL_SECONDS + 10, (
        tick.timestamp - landed_at, LANDING_INTERVAL_SECONDS)

    done = wait_until("the run to finish", lambda: (
        r := instance.get_run_record_by_id(run.dagster_run.run_id)).dagster_run.is_finished and r,
        deployment, timeout=300)
    assert done.dagster_run.status == dg.DagsterRunStatus.SUCCESS, deployment.tail()
    good_name = next(iter(good)).rsplit("/", 1)[-1]
    assert _bronze_rows(deployment, partition).get(good_name) == next(iter(good.values()))
    # The checks ran in the run, on the partition, and the good file passes.
    evaluation = _quality(instance, partition, after=landed_at)
    assert evaluation is not None and evaluation.passed, evaluation

    # A file of bad readings lands (a third of them out of range or not numbers): its rows
    # still land, the quality check fails with ERROR, and the alert reaches the webhook.
    bad_landed_at = time.time()
    bad = landing.land_generated(SPEC.name, day, options=GenerateOptions(
        files=1, rows_per_file=300, anomaly_rate=0.35, seed=12), tag="bad")
    bad_name = next(iter(bad)).rsplit("/", 1)[-1]
    assert bad_name != good_name
    # And a file cut off in the middle of its upload, which cannot be read at all.
    broken = f"{SPEC.landing_prefix}/{day:%Y/%m/%d}/gateway-7-cut-off.csv.gz"
    landing.put(broken, gzip.compress(b"plant_id,line_id,sensor_id,timestamp\n" * 500)[:70])
    wait_until("the bad file's rows in bronze",
               lambda: _bronze_rows(deployment, partition).get(bad_name) == next(iter(
                   bad.values())), deployment, timeout=300, interval=3)
    # The check runs in the same step after the commit: on a loaded machine (both test workers
    # running live deployments) that took over 120 s once, as long as the other waits here.
    failed = wait_until("the failed quality check",
                        lambda: _quality(instance, partition, after=bad_landed_at),
                        deployment, timeout=300)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["error_rate"].value > 0.05

    headline = f"[ERROR] Check failed: quality on {SPEC.table_name} {partition}"
    alert = wait_until("the quality alert at the webhook", lambda: next(
        (b for b in ui_webhook.bodies if b["blocks"][0]["text"]["text"] == headline), None),
        deployment, timeout=60)
    text = str(alert["blocks"])
    assert "failing_rows" in text and "error_rate" in text
    assert f"{deployment.url}/runs/" in text  # the link opens the run in this UI

    # The unreadable file is named in its own alert; the run that met it still succeeded.
    files = wait_until("the alert for the unreadable file", lambda: next(
        (b for b in ui_webhook.bodies
         if b["blocks"][0]["text"]["text"].startswith("[ERROR] Files not ingested: ")
         and "gateway-7-cut-off.csv.gz" in str(b["blocks"])), None), deployment, timeout=60)
    assert f"on {SPEC.table_name} {partition}" in files["blocks"][0]["text"]["text"]

