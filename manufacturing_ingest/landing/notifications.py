"""File notification mode: S3 event notifications in an SQS queue instead of listing.

The bucket sends ``s3:ObjectCreated:*`` events for the source's prefix to a queue; the landing
sensor drains it each tick. A tick costs SQS requests in proportion to new objects, with no LIST
at all, whatever the prefix layout, and a late object under an old date prefix is found at once.

Notifications are at-least-once and unordered, so:

- objects are told apart by key and ETag (their fingerprint), against the fingerprints the
  sensor's cursor keeps and the file ledger; a duplicated notification starts nothing;
- a message is deleted only after its run request is recorded: a tick receives messages and
  keeps their receipt handles in its cursor, which the daemon saves together with the tick's
  run requests; the next tick deletes them first. A sensor that dies in between has saved no
  cursor: the messages come back when their visibility timeout ends (three sensor intervals)
  and are requested again. A message that comes back for another reason (a daemon down for
  longer) is a duplicate, and starts nothing.

The reconciliation sweep (``sweep.py``) still runs behind it, for anything a notification never
told (events lost to a misconfigured filter, objects that landed before the queue existed).

``find_notified`` is one tick of it: delete, drain, then ``merge_notified`` (a pure function)
turns the old cursor and what the drain found into the new objects and the cursor to save.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.errors import ConfigurationError, LandingZoneError
from manufacturing_ingest.landing.base import LandedObject, LandingZone, ignore_reason
from manufacturing_ingest.landing.s3 import RETRY_CONFIG, S3LandingZone, explain
from manufacturing_ingest.landing.scan import Found, LandingCursor

__all__ = ["MAX_MESSAGES_PER_TICK", "Drained", "NotificationQueue", "Notified", "find_notified",
           "merge_notified", "visibility_timeout"]

log = logging.getLogger(__name__)

# Per tick: bounds the tick's time and the receipt handles its cursor keeps (~250 KB at most).
MAX_MESSAGES_PER_TICK = 1000


def visibility_timeout(interval_seconds: float) -> int:
    """How long a received message stays hidden: until the next tick or two have deleted it,
    and short enough that a message of a tick that died comes back within minutes."""
    return int(min(12 * 3600, max(30, 3 * interval_seconds)))


@dataclass
class Drained:
    """What one drain of the queue found."""

    objects: list[LandedObject] = field(default_factory=list)  # created objects of the source
    handles: list[str] = field(default_factory=list)  # receipt handles of every message read
    messages: int = 0
    duplicates: int = 0  # events for an object already in this drain
    foreign: int = 0  # events for keys outside the source's prefix, other buckets, test events
    unreadable: int = 0  # messages that are not S3 event notifications, or unreadable events


class NotificationQueue:
    """The SQS queue that receives the S3 events of one source's prefix in ``zone``'s bucket."""

    def __init__(self, queue_url: str, zone: S3LandingZone):
        self.queue_url = queue_url
        self.zone = zone
        self._client = None
        self.requests = 0  # SQS requests made, for SkipReasons and benchmarks

    @property
    def client(self):
        if self._client is None:
            self._client = self.zone.session().client("sqs", config=RETRY_CONFIG)
        return self._client

    def delete(self, handles: list[str]) -> int:
        """Delete the messages of ``handles`` (their run requests are recorded); how many were
        already gone or expired (they come back and are deduplicated then)."""
        stale = 0
        for start in range(0, len(handles), 10):
            batch = handles[start:start + 10]
            entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(batch)]
            answer = self._call("deleting messages from", self.client.delete_message_batch,
                                QueueUrl=self.queue_url, Entries=entries)
            for failure in answer.get("Failed", []):
                stale += 1
                log.info("message not deleted from %s (%s): it is delivered again and "
                         "deduplicated then", self.queue_url, failure.get("Code"))
        return stale

    def drain(self, spec: SourceSpec, budget_seconds: float, visibility_seconds: int,
              clock: Callable[[], float] = time.monotonic) -> Drained:
        """Receive messages until the queue is empty, ``MAX_MESSAGES_PER_TICK`` or the budget;
        they stay hidden for ``visibility_seconds`` (``visibility_timeout``)."""
        drained = Drained()
        found: dict[str, LandedObject] = {}
        deadline = clock() + budget_seconds
        while drained.messages < MAX_MESSAGES_PER_TICK and clock() < deadline:
            answer = self._call(
                "receiving messages from", self.client.receive_message,
                QueueUrl=self.queue_url, WaitTimeSeconds=1,
                VisibilityTimeout=visibility_seconds,
                MaxNumberOfMessages=min(10, MAX_MESSAGES_PER_TICK - drained.messages),
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                drained.messages += 1
                drained.handles.append(message["ReceiptHandle"])
                self._read(spec, message, found, drained)
        drained.objects = list(found.values())
        return drained

    def _read(self, spec: SourceSpec, message: dict, found: dict[str, LandedObject],
              drained: Drained) -> None:
        """Add the objects ``message`` announces to ``found``. Nothing in a message stops the
        tick: what cannot be read is counted, logged and deleted with the rest (the sweep finds
        any object it was about)."""
        records = _event_records(message.get("Body"))
        if records is None:
            drained.unreadable += 1
            log.warning("message %s in %s is not an S3 event notification; deleted (the sweep "
                        "finds any object it was about)", message.get("MessageId"),
                        self.queue_url)
            return
        if not records:
            drained.foreign += 1  # a test event, or an event that is not an object creation
        for record in records:
            try:
                obj = self._object(spec, record)
            except _Unreadable as exc:
                drained.unreadable += 1
                log.warning("an event of message %s in %s cannot be read (%s); deleted (the "
                            "sweep finds any object it was about)", message.get("MessageId"),
                            self.queue_url, exc)
                continue
            if obj is None:
                drained.foreign += 1
            elif obj.fingerprint in found:
                drained.duplicates += 1
            else:
                found[obj.fingerprint] = obj

    def _object(self, spec: SourceSpec, record: dict) -> LandedObject | None:
        """The landed object a record announces; None if not an object creation of the source
        in this zone; ``_Unreadable`` if it says so without a usable key, time or ETag."""
        if not isinstance(record, dict):
            raise _Unreadable(f"an event record is a {type(record).__name__}")
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            return None
        try:
            s3 = record["s3"]
            if s3["bucket"]["name"] != self.zone.bucket:
                return None
            raw_key = s3["object"]["key"]
            if not isinstance(raw_key, str) or not raw_key:
                raise _Unreadable(f"object key {raw_key!r}")
            # S3 event notifications URL-encode the key; EventBridge events do not.
            full_key = raw_key if record.get(_RAW_KEY) else unquote_plus(raw_key)
            key = self.zone.relative_key(full_key)
            if key is None or not key.startswith(f"{spec.landing_prefix}/"):
                return None
            when = datetime.fromisoformat(str(record["eventTime"]).replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            etag = s3["object"].get("eTag")
            if not isinstance(etag, str) or not etag.strip('"'):
                raise _Unreadable(f"ETag {etag!r}")
            return LandedObject(key=key, uri=self.zone.uri_for(key), etag=etag.strip('"'),
                                size=int(s3["object"].get("size") or 0),
                                last_modified=when.astimezone(UTC))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _Unreadable(f"{type(exc).__name__}: {exc}") from None

    def _call(self, what: str, method, **kwargs) -> dict:
        self.requests += 1
        try:
            return method(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            hint = _SQS_FATAL.get(code)
            if hint is None:
                raise explain(exc, f"{what} {self.queue_url}") from exc
            raise LandingZoneError(f"{what} {self.queue_url}: {hint} ({exc})") from exc
        except (NoCredentialsError, BotoCoreError) as exc:
            raise explain(exc, f"{what} {self.queue_url}") from exc


class _Unreadable(ValueError):
    """An event record that announces an object creation but cannot be read."""


# Set on the records made from EventBridge events, whose object keys are not URL-encoded.
_RAW_KEY = "manufacturing_ingest/raw_key"


def _event_records(body: object) -> list[dict] | None:
    """The S3 event records of a message body: S3 -> SQS, S3 -> SNS -> SQS, or S3 ->
    EventBridge -> SQS (made into the same record shape). ``[]`` for a message that is about
    nothing to ingest (S3's test event, an EventBridge event other than Object Created); None
    for one that is not an S3 event notification at all."""
    try:
        message = json.loads(body) if isinstance(body, str | bytes) else None
        if isinstance(message, dict) and "Records" not in message and isinstance(
                message.get("Message"), str):
            message = json.loads(message["Message"])  # delivered through SNS
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    if message.get("Event") == "s3:TestEvent":
        return []
    if message.get("source") == "aws.s3" and isinstance(message.get("detail"), dict):
        return _from_eventbridge(message)
    records = message.get("Records")
    return records if isinstance(records, list) else None


def _from_eventbridge(event: dict) -> list[dict]:
    """An EventBridge S3 event as an S3 event record (``[]`` unless it is Object Created)."""
    if event.get("detail-type") != "Object Created":
        return []
    detail = event["detail"]
    obj = detail.get("object") if isinstance(detail.get("object"), dict) else {}
    return [{
        "eventName": f"ObjectCreated:{detail.get('reason') or 'Put'}",
        "eventTime": event.get("time"),
        "s3": {"bucket": detail.get("bucket"),
               "object": {"key": obj.get("key"), "eTag": obj.get("etag"),
                          "size": obj.get("size")}},
        _RAW_KEY: True,
    }]


@dataclass(frozen=True)
class Notified:
    """What one drain adds to the landing sensor's cursor (``merge_notified``)."""

    new_objects: list[LandedObject]  # oldest first
    cursor: LandingCursor
    repeated: int  # notifications of an object already in the drain or in the cursor
    ignored: int  # markers or in-flight files


def merge_notified(cursor: LandingCursor, drained: Drained, now: datetime,
                   lookback: timedelta) -> Notified:
    """The objects of ``drained`` that ``cursor`` has not seen, and the cursor to save after
    them: their fingerprints added (stamped ``now``), fingerprints older than ``lookback``
    dropped, the high-water mark moved on, and the receipt handles of every message read kept
    for the next tick to delete. Pure: ``cursor`` and ``drained`` are left unchanged."""
    horizon = (now - lookback).timestamp()
    seen = {mark: at for mark, at in cursor.seen.items() if at >= horizon}
    new: list[LandedObject] = []
    repeated = drained.duplicates
    ignored = 0
    for obj in sorted(drained.objects, key=lambda o: (o.last_modified, o.key)):
        if ignore_reason(obj):
            ignored += 1
        elif obj.fingerprint in seen:
            repeated += 1  # notifications are at-least-once
        else:
            seen[obj.fingerprint] = now.timestamp()
            new.append(obj)
    high_water = max([o.last_modified for o in new]
                     + ([cursor.high_water] if cursor.high_water else []), default=None)
    next_cursor = LandingCursor(high_water=high_water, seen=seen,
                                misfiled_scan_at=cursor.misfiled_scan_at, sweep=cursor.sweep,
                                delete=list(drained.handles))
    return Notified(new, next_cursor, repeated, ignored)


def find_notified(spec: SourceSpec, zone: LandingZone, queue_url: str, cursor: LandingCursor,
                  now: datetime, budget_seconds: float, visibility_seconds: int) -> Found:
    """One tick in file notification mode: delete the messages the last tick requested runs
    for, then drain the queue (no LIST) and merge what it told into the cursor."""
    if not isinstance(zone, S3LandingZone):
        raise ConfigurationError(f"{spec.name}: file notification mode ({queue_url}) needs an "
                                 f"s3:// landing zone, not {zone.root_uri}")
    queue = NotificationQueue(queue_url, zone)
    stale = queue.delete(cursor.delete) if cursor.delete else 0
    drained = queue.drain(spec, budget_seconds, visibility_seconds)
    merged = merge_notified(cursor, drained, now, spec.sensor_lookback)
    note = (f"{drained.messages} notifications from {queue_url} in {queue.requests} SQS "
            f"requests, no LIST"
            + (f"; deleted {len(cursor.delete) - stale} handled last tick" if cursor.delete
               else "")
            + (f", {merged.repeated} duplicate(s)" if merged.repeated else "")
            + (f", {merged.ignored} markers or in-flight files ignored" if merged.ignored else "")
            + (f", {drained.foreign} not about {spec.landing_prefix}/" if drained.foreign else "")
            + (f", {drained.unreadable} unreadable" if drained.unreadable else ""))
    return Found(merged.new_objects, merged.cursor, note, "No new objects")


_SQS_FATAL = {
    "AWS.SimpleQueueService.NonExistentQueue": "the queue does not exist; check "
                                               "MANUFACTURING_QUEUE_URL_<SOURCE>",
    "QueueDoesNotExist": "the queue does not exist; check MANUFACTURING_QUEUE_URL_<SOURCE>",
    "AccessDenied": "access denied; the role needs sqs:ReceiveMessage and sqs:DeleteMessage on "
                    "the queue (see the IAM policy in the README)",
    "AccessDeniedException": "access denied; the role needs sqs:ReceiveMessage and "
                             "sqs:DeleteMessage on the queue (see the IAM policy in the README)",
}
