"""The alert sensor: Dagster OSS alerts on none of this by itself.

Each tick it reads what changed (``watch.Watcher``: check results, freshness, failed runs,
landing-sensor ticks), lets the ``AlertBook`` turn state changes into alerts (one per new
failure, one recovery notice), delivers them through the configured sinks, and saves the book
with the read positions in its cursor. A sink that fails keeps its alerts and is retried with
backoff.

Nothing is re-sent after a daemon restart, even one in the middle of a tick. The daemon saves
the cursor only when a tick ends, so after every successful send the sensor also writes the
state to the instance's key-value store (``AlertJournal``), tagged with the token of the cursor
the tick started from. The next tick resumes from that journal when its cursor still has the
same token (the tick that wrote it never saved its cursor), and from the cursor otherwise.

No ``from __future__ import annotations``: Dagster reads the sensor function's annotations to
inject resources.
"""

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from manufacturing_ingest.alerting import AlertBook, DeliveryReport
from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.orchestration.names import ALERT_SENSOR
from manufacturing_ingest.orchestration.resources import AlertSinksResource
from manufacturing_ingest.orchestration.watch import Watcher, Watermarks

__all__ = ["ALERT_SENSOR", "AlertCursor", "AlertJournal", "alert_sensor"]

logger = logging.getLogger(__name__)

_FORMAT = 1


@dataclass
class AlertCursor:
    """The alert sensor's memory: the book (failing subjects, undelivered alerts, sink backoff)
    and how far the watcher has read."""

    book: AlertBook = field(default_factory=AlertBook)
    marks: Watermarks = field(default_factory=Watermarks)
    # Names this saved state, so a journal can tell which cursor it continues; None before the
    # first tick (and in cursors written before the journal existed).
    token: str | None = None

    def encode(self) -> str:
        return json.dumps({
            "v": _FORMAT,
            "token": self.token,
            "book": json.loads(self.book.encode()),
            "checks_after": self.marks.checks_after,
            "runs_after": self.marks.runs_after,
            "files_after": self.marks.files_after,
        }, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, text: str | None) -> "AlertCursor":
        if not text:
            return cls()
        try:
            state = json.loads(text)
            if state.get("v") != _FORMAT:
                raise ValueError(f"version {state.get('v')!r}, expected {_FORMAT}")
            checks_after, runs_after = state["checks_after"], state["runs_after"]
            files_after = state.get("files_after")  # absent in cursors of older versions
            marks = Watermarks(
                checks_after=int(checks_after) if checks_after is not None else None,
                runs_after=float(runs_after) if runs_after is not None else None,
                files_after=int(files_after) if files_after is not None else None,
            )
            book_text = json.dumps(state["book"])
            token = state.get("token")
            if token is not None and not isinstance(token, str):
                raise ValueError(f"token {token!r} is not a string")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"the {ALERT_SENSOR} cursor is not one it wrote ({exc}); reset the "
                             "cursor in the UI to start from an empty book") from None
        return cls(AlertBook.decode(book_text), marks, token)


class AlertJournal:
    """The alert state as of the last send of a tick, in the instance's key-value store.

    ``write`` stores the state with the token of the cursor the tick started from; ``resume``
    returns that state if the daemon never saved the tick's cursor (the cursor still has that
    token), else the cursor. So a tick that dies after sending and before the daemon saves its
    cursor re-sends nothing, two such ticks in a row included, and a cursor reset in the UI
    still starts from an empty book (its token no longer matches).
    """

    def __init__(self, instance: dg.DagsterInstance, repository: str | None, sensor: str):
        self.instance = instance
        self.key = f"manufacturing_ingest/{repository or '__repository__'}/{sensor}/journal"

    def resume(self, cursor_text: str | None) -> AlertCursor:
        cursor = AlertCursor.decode(cursor_text)
        text = self.instance.run_storage.get_cursor_values({self.key}).get(self.key)
        if not text:
            return cursor
        try:
            entry = json.loads(text)
            base, state = entry["base"], entry["state"]
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring the alert journal %s: not one the sensor wrote (%s)",
                           self.key, exc)
            return cursor
        if base != cursor.token:
            return cursor  # the tick that wrote it saved its cursor after (or it was reset)
        resumed = AlertCursor.decode(state)
        resumed.token = cursor.token  # the saved cursor is still the base of what follows
        return resumed

    def write(self, base: str | None, cursor: AlertCursor) -> None:
        """Save ``cursor`` as the continuation of the saved cursor with token ``base``."""
        entry = {"base": base, "state": cursor.encode()}
        self.instance.run_storage.set_cursor_values(
            {self.key: json.dumps(entry, separators=(",", ":"), ensure_ascii=False)})


def alert_sensor(specs: Sequence[SourceSpec], interval_seconds: int = 30,
                 clock: Callable[[], datetime] | None = None) -> dg.SensorDefinition:
    """The sensor for the sources ``specs``; ``clock`` (UTC now) is for tests of the backoff."""
    now_of = clock or (lambda: datetime.now(UTC))
    specs = list(specs)
    tables = ", ".join(spec.table_name for spec in specs)

    @dg.sensor(
        name=ALERT_SENSOR,
        description=(
            f"Alerts on {tables}: failed checks (quality, schema_drift, landing_backlog), "
            "freshness failing and passing again, failed runs, and failing landing-sensor ticks. "
            "One alert per new failure and one recovery notice, to the JSON log line and to the "
            "webhook and email when configured."
        ),
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, alerts: AlertSinksResource):
        sinks = alerts.sinks()  # a misconfigured sink fails the tick before anything is read
        now = now_of()
        journal = AlertJournal(context.instance, context.repository_name, ALERT_SENSOR)
        cursor = journal.resume(context.cursor)
        base = cursor.token
        book = cursor.book
        watcher = Watcher(context.instance, specs, alerts.run_url)
        failing = book.failing_subjects
        observations = watcher.observe(cursor.marks, now, failing)
        new = book.observe(observations, now)
        # Check results are read only when they change: a failing one not re-read is unchanged.
        book.keep((s for s in failing if s.startswith("check:")), now)
        report = book.deliver(sinks, now, on_delivered=lambda: _save(journal, base, cursor))
        for alert in new:
            context.log.info(f"alert {alert.id}: {alert.headline}")
        for failure in report.failed:
            retry = f"{failure.retry_at:%H:%M:%S} UTC" if failure.retry_at else "the next tick"
            context.log.warning(f"sink {failure.sink} failed ({failure.attempt} in a row): "
                                f"{failure.error}; alert {failure.alert_id} kept, retried "
                                f"after {retry}")
        cursor.token = uuid.uuid4().hex
        return dg.SensorResult(skip_reason=_summary(len(observations), new, report, book),
                               cursor=cursor.encode())

    return _sensor


def _save(journal: AlertJournal, base: str | None, cursor: AlertCursor) -> None:
    try:
        journal.write(base, cursor)
    except Exception as exc:  # noqa: BLE001 - the tick's cursor still records the send
        # Failing the tick would lose its cursor too and re-send everything it delivered.
        logger.warning("could not save the alert journal %s (%s): a restart before this tick "
                       "ends may re-send its alerts", journal.key, type(exc).__name__)


def _summary(observed: int, new: list, report: DeliveryReport, book: AlertBook) -> str:
    parts = [f"{observed} states read, {len(new)} new alerts"]
    if report.delivered:
        sent: dict[str, int] = {}
        for sink, _ in report.delivered:
            sent[sink] = sent.get(sink, 0) + 1
        parts.append("delivered " + ", ".join(f"{n} to {sink}" for sink, n in sent.items()))
    if report.failed:
        parts.append("failed: " + ", ".join(f"{f.sink} ({f.error})" for f in report.failed))
    if report.waiting:
        parts.append("backing off: " + ", ".join(report.waiting))
    parts.append(f"{len(book.failing_subjects)} subjects failing, {report.pending} alerts pending")
    return "; ".join(parts)
