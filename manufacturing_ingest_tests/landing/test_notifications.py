"""File notification mode against a real S3 API server process that sends S3 event
notifications to its SQS queue: the landing sensor drains the queue instead of listing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.orchestration.resources import LakehouseResource, LandingZoneResource
from manufacturing_ingest.orchestration.sensors import landing_sensor
from manufacturing_ingest_tests.s3_server import FaultProxy, is_list_request
from manufacturing_ingest_tests.samples import numbered_sensor_csv
from manufacturing_ingest_tests.sensor_results import skip_message as message
from manufacturing_ingest_tests.sensor_results import spans

pytestmark = pytest.mark.s3

NOW = datetime.now(UTC)
SPEC = get_source("sensor_data")
OLD = NOW - timedelta(days=30)
LATE_KEY = f"raw/sensor-data/{OLD:%Y/%m/%d}/gateway-7.csv"


@pytest.fixture
def proxy(aws_env, monkeypatch) -> Iterator[FaultProxy]:
    """Every S3 and SQS request of the sensor goes through a counting proxy."""
    counting = FaultProxy(aws_env.port, slow_down=0, delay=0, reset=0)
    monkeypatch.setenv("AWS_ENDPOINT_URL", counting.endpoint)
    yield counting
    counting.stop()


class Ticks:
    """Ticks of the sensor_data landing sensor in notification mode, carrying the cursor."""

    def __init__(self, bucket, queue_url: str, instance, interval_seconds: int = 60):
        self.sensor = landing_sensor(SPEC, interval_seconds=interval_seconds)
        self.resources = {
            "landing": LandingZoneResource(url=bucket.url, queue_urls={SPEC.name: queue_url}),
            "lakehouse": LakehouseResource(url="/nonexistent/lakehouse"),
        }
        self.instance = instance
        self.cursor: str | None = None

    def tick(self, save: bool = True):
        result = self.sensor(dg.build_sensor_context(cursor=self.cursor, instance=self.instance,
                                                     resources=self.resources))
        if save:  # what the daemon does with the tick's run requests, unless it died first
            self.cursor = result.cursor
        return result


def in_queue(queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def test_a_late_object_is_found_in_one_tick_with_no_list_request(bucket, instance, proxy):
    queue_url = bucket.notify(f"{SPEC.landing_prefix}/")
    ticks = Ticks(bucket, queue_url, instance)
    first = ticks.tick()  # the first sweep lists the (empty) prefix; S3's test event is read
    assert "Sweep complete: 0 objects" in message(first)
    assert "1 not about raw/sensor-data/" in message(first)
    assert any(map(is_list_request, proxy.requests))  # the sweep's LIST, seen by the proxy

    bucket.put(LATE_KEY, numbered_sensor_csv("g7", 5, OLD))  # a 30-day-old date prefix
    proxy.requests.clear()
    found = ticks.tick()
    assert spans(found) == {(f"{OLD:%Y-%m-%d}", f"{OLD:%Y-%m-%d}"): 1}
    assert not any(map(is_list_request, proxy.requests)), proxy.requests
    actions = [action for _, _, action in proxy.requests]
    assert "ReceiveMessage" in actions and set(actions) <= {"ReceiveMessage",
                                                            "DeleteMessageBatch"}
    # Deleted only by the next tick, once the run request is saved with the cursor.
    assert in_queue(queue_url) == (0, 1)
    idle = ticks.tick()
    assert not idle.run_requests
    assert "deleted 1 handled last tick" in message(idle)
    assert in_queue(queue_url) == (0, 0)


def test_a_duplicated_notification_starts_no_second_run(bucket, instance):
    queue_url = bucket.notify(f"{SPEC.landing_prefix}/")
    ticks = Ticks(bucket, queue_url, instance)
    ticks.tick()
    bucket.put(LATE_KEY, numbered_sensor_csv("g7", 5, OLD))
    sqs = boto3.client("sqs", region_name="us-east-1")
    (event,) = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1,
                                   VisibilityTimeout=0)["Messages"]
    # S3 delivers at least once: the same event twice in one drain, and once more later.
    sqs.send_message(QueueUrl=queue_url, MessageBody=event["Body"])
    first = ticks.tick()
    assert spans(first) == {(f"{OLD:%Y-%m-%d}", f"{OLD:%Y-%m-%d}"): 1}  # one object, once
    sqs.send_message(QueueUrl=queue_url, MessageBody=event["Body"])
    again = ticks.tick()
    assert not again.run_requests
    assert "1 duplicate(s)" in message(again)
    assert json.loads(event["Body"])["Records"][0]["s3"]["object"]["key"].endswith(
        "gateway-7.csv")


def test_a_sensor_killed_between_reading_and_deleting_loses_nothing(bucket, instance):
    queue_url = bucket.notify(f"{SPEC.landing_prefix}/")
    ticks = Ticks(bucket, queue_url, instance, interval_seconds=5)  # messages hidden for 30 s
    ticks.tick()
    bucket.put(LATE_KEY, numbered_sensor_csv("g7", 5, OLD))
    lost = ticks.tick(save=False)  # read the message, then died before the daemon saved
    assert spans(lost) == {(f"{OLD:%Y-%m-%d}", f"{OLD:%Y-%m-%d}"): 1}
    assert in_queue(queue_url) == (0, 1)  # not deleted

    deadline = time.monotonic() + 90
    while in_queue(queue_url)[0] == 0 and time.monotonic() < deadline:
        time.sleep(2)  # the visibility timeout runs out
    restarted = ticks.tick()
    assert spans(restarted) == spans(lost)
    assert [r.run_key for r in restarted.run_requests] == [r.run_key for r in lost.run_requests]
    ticks.tick()
    assert in_queue(queue_url) == (0, 0)


def test_an_object_the_sweep_asked_for_starts_no_second_run_when_its_event_comes_late(
        bucket, instance):
    # It landed before the queue existed; its event is delivered only later.
    put = bucket.put(LATE_KEY, numbered_sensor_csv("g7", 5, OLD))
    queue_url = bucket.notify(f"{SPEC.landing_prefix}/")
    ticks = Ticks(bucket, queue_url, instance)
    swept = ticks.tick()  # the first sweep finds it
    assert spans(swept) == {(f"{OLD:%Y-%m-%d}", f"{OLD:%Y-%m-%d}"): 1}
    event = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "eventTime": NOW.isoformat().replace("+00:00", "Z"),
        "s3": {"bucket": {"name": bucket.name},
               "object": {"key": f"landing/{LATE_KEY}", "size": 100, "eTag": put["ETag"]}},
    }]}
    boto3.client("sqs", region_name="us-east-1").send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(event))
    late = ticks.tick()
    assert not late.run_requests
    assert "1 duplicate(s)" in message(late)


def test_malformed_messages_are_counted_and_deleted_and_the_valid_ones_beside_them_run(
        bucket, instance):
    queue_url = bucket.notify(f"{SPEC.landing_prefix}/")
    ticks = Ticks(bucket, queue_url, instance)
    ticks.tick()  # the first sweep; S3's test event
    put = bucket.put(LATE_KEY, numbered_sensor_csv("g7", 5, OLD))  # its real S3 event
    other_key = f"raw/sensor-data/{OLD - timedelta(days=1):%Y/%m/%d}/gateway 8.csv"
    other = bucket.put(other_key, numbered_sensor_csv("g8", 5, OLD - timedelta(days=1)))
    # ... and what a misconfigured rule, a hand-sent test or a buggy forwarder puts beside it.
    record = {"eventName": "ObjectCreated:Put", "eventTime": NOW.isoformat(),
              "s3": {"bucket": {"name": bucket.name}, "object": {"key": None, "eTag": "x"}}}
    malformed = ['{"Records": null}', "42", "not json", '{"Records": [7, "text"]}',
                 json.dumps({"Records": [record]}), '{"Message": "{\\"Records\\": 3}"}']
    sqs = boto3.client("sqs", region_name="us-east-1")
    for body in malformed:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    # The same object as the real event, as S3 -> EventBridge -> SQS delivers it (a raw key).
    eventbridge = {
        "version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "time": NOW.isoformat().replace("+00:00", "Z"),
        "detail": {"bucket": {"name": bucket.name}, "reason": "PutObject",
                   "object": {"key": f"landing/{other_key}", "size": 100,
                              "etag": other["ETag"].strip('"')}}}
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(eventbridge))
    deleted = {**eventbridge, "detail-type": "Object Deleted"}
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(deleted))

    found = ticks.tick()
    old, older = f"{OLD:%Y-%m-%d}", f"{OLD - timedelta(days=1):%Y-%m-%d}"
    assert spans(found) == {(older, old): 2}, message(found)  # both objects, one run
    assert put["ETag"] != other["ETag"]
    after = ticks.tick()  # deletes every message read, the malformed ones too
    assert not after.run_requests
    assert "10 notifications" not in message(after) and "deleted 10 handled last tick" in \
        message(after)
    assert in_queue(queue_url) == (0, 0)

    # Alone, they are counted in the tick's summary, and deleted the tick after.
    for body in [*malformed, json.dumps(deleted)]:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    counted = ticks.tick()
    assert not counted.run_requests
    assert "7 notifications" in message(counted), message(counted)
    assert "7 unreadable" in message(counted) and "1 not about" in message(counted)
    ticks.tick()
    assert in_queue(queue_url) == (0, 0)
