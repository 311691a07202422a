"""The stream's rounds one at a time (``BronzeStream.step``), on the S3 API server: in file
notification mode it lists once at start (so a file whose notification another reader took is
still found), then drains the queue and deletes what it handled; a burst is taken in bounded
micro-batches; a window check judges every commit since the last."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.landing import landing_zone_for
from manufacturing_ingest.orchestration.dagster_internals import latest_completed_check
from manufacturing_ingest.orchestration.names import bronze_asset_key
from manufacturing_ingest.orchestration.stream import BronzeStream, StreamOptions
from manufacturing_ingest.settings import ReadMode
from manufacturing_ingest_tests.samples import numbered_sensor_csv

SPEC = get_source("sensor_data")
TODAY = datetime.now(UTC).date()
FOLDER = f"{SPEC.landing_prefix}/{TODAY:%Y/%m/%d}"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _stream(spark, bucket, tmp_path, instance, queue_url: str | None = None,
            **options) -> BronzeStream:
    return BronzeStream(spark, [SPEC], landing_zone_for(bucket.url),
                        Lakehouse(str(tmp_path / "lakehouse")), ReadMode.STAGED,
                        {SPEC.name: queue_url} if queue_url else {}, instance,
                        StreamOptions(**options))


def _rows_by_file(tmp_path) -> dict[str, int]:
    table = DeltaTable(str(tmp_path / "lakehouse" / "manufacturing_bronze" / SPEC.name))
    files = table.to_pyarrow_table(columns=["_source_file"])["_source_file"].to_pylist()
    return {name: files.count(name) for name in set(files)}


def _queued(queue_url: str) -> int:
    sqs = boto3.client("sqs", region_name="us-east-1")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    found = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(found[n]) for n in names)


def test_notification_mode_lists_once_then_drains_and_deletes(spark, bucket, tmp_path,
                                                                 instance):
    queue_url = bucket.notify(f"{SPEC.landing_prefix}/")
    bucket.put(f"{FOLDER}/before-start.csv", numbered_sensor_csv("a", 4, TODAY))
    # Another reader took that file's notification (a stream killed after reading it).
    boto3.client("sqs", region_name="us-east-1").purge_queue(QueueUrl=queue_url)
    stream = _stream(spark, bucket, tmp_path, instance, queue_url)

    stream.step()  # the start's listing
    assert _rows_by_file(tmp_path) == {f"{bucket.url}/{FOLDER}/before-start.csv": 4}

    bucket.put(f"{FOLDER}/notified.csv", numbered_sensor_csv("b", 3, TODAY))
    stream.step()  # the queue, with no listing
    stream.step()  # deletes what the last round handled
    assert _rows_by_file(tmp_path) == {f"{bucket.url}/{FOLDER}/before-start.csv": 4,
                                       f"{bucket.url}/{FOLDER}/notified.csv": 3}
    assert _queued(queue_url) == 0
    records = instance.fetch_materializations(bronze_asset_key(SPEC), limit=10).records
    assert sorted(r.asset_materialization.metadata["records"].value for r in records) == [3, 4]
    assert {r.run_id for r in records} == {stream.run_id}


def test_a_burst_is_taken_in_bounded_micro_batches_and_checked_as_one_window(
        spark, bucket, tmp_path, instance):
    for i in range(7):
        rows = numbered_sensor_csv(f"c{i}", 5, TODAY)
        if i == 3:  # one reading out of range: 1 failing row in the window's 35
            rows = rows.replace(",20,40,101,2\n", ",999,40,101,2\n", 1)
        bucket.put(f"{FOLDER}/burst-{i}.csv", rows)
    batches = []
    stream = _stream(spark, bucket, tmp_path, instance, max_files=3,
                     check_window_seconds=3600)
    stream.on_batch = batches.append

    assert stream.step() is True  # files left: the next round starts at once
    stream.step()
    assert stream.step() is False
    assert [b.files for b in batches] == [3, 3, 1]
    assert sum(_rows_by_file(tmp_path).values()) == 35

    (source,) = stream.sources
    source.check()  # the window's check, as the stream does when it is due or stops
    record, evaluation = latest_completed_check(
        instance, dg.AssetCheckKey(bronze_asset_key(SPEC), "quality"), TODAY.isoformat())
    assert evaluation.metadata["rows_checked"].value == 35
    assert evaluation.metadata["failing_rows"].value == 1
    assert evaluation.metadata["delta_version"].value == batches[-1].report.delta_version
    assert record.run_id == f"{stream.run_id}-check-1"
