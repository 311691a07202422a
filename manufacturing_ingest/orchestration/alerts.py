"""The alert sensor: Dagster OSS alerts on none of this by itself.

Each tick it reads what changed (``watch.Watcher``: check results, freshness, failed runs,
landing-sensor ticks), lets the ``AlertBook`` turn state changes into alerts (one per new
failure, one recovery notice), delivers them through the configured sinks, and saves the book
with the read positions in its cursor. The cursor is saved by the daemon with the tick, so a
daemon restart re-sends nothing; a sink that fails keeps its alerts and is retried with backoff.

No ``from __future__ import annotations``: Dagster reads the sensor function's annotations to
inject resources.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from manufacturing_ingest.alerting import AlertBook, DeliveryReport
from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.orchestration.resources import AlertSinksResource
from manufacturing_ingest.orchestration.watch import Watcher, Watermarks

__all__ = ["ALERT_SENSOR", "AlertCursor", "alert_sensor"]

ALERT_SENSOR = "alert_sensor"
_FORMAT = 1


@dataclass
class AlertCursor:
    """The alert sensor's memory: the book (failing subjects, undelivered alerts, sink backoff)
    and how far the watcher has read."""

    book: AlertBook = field(default_factory=AlertBook)
    marks: Watermarks = field(default_factory=Watermarks)

    def encode(self) -> str:
        return json.dumps({
            "v": _FORMAT,
            "book": json.loads(self.book.encode()),
            "checks_after": self.marks.checks_after,
            "runs_after": self.marks.runs_after,
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
            marks = Watermarks(
                checks_after=int(checks_after) if checks_after is not None else None,
                runs_after=float(runs_after) if runs_after is not None else None,
            )
            book_text = json.dumps(state["book"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"the {ALERT_SENSOR} cursor is not one it wrote ({exc}); reset the "
                             "cursor in the UI to start from an empty book") from None
        return cls(AlertBook.decode(book_text), marks)


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
        cursor = AlertCursor.decode(context.cursor)
        book = cursor.book
        watcher = Watcher(context.instance, specs, alerts.run_url)
        failing = book.failing_subjects
        observations = watcher.observe(cursor.marks, now, failing)
        new = book.observe(observations, now)
        # Check results are read only when they change: a failing one not re-read is unchanged.
        book.keep((s for s in failing if s.startswith("check:")), now)
        report = book.deliver(sinks, now)
        for alert in new:
            context.log.info(f"alert {alert.id}: {alert.headline}")
        for failure in report.failed:
            retry = f"{failure.retry_at:%H:%M:%S} UTC" if failure.retry_at else "the next tick"
            context.log.warning(f"sink {failure.sink} failed ({failure.attempt} in a row): "
                                f"{failure.error}; alert {failure.alert_id} kept, retried "
                                f"after {retry}")
        return dg.SensorResult(skip_reason=_summary(len(observations), new, report, book),
                               cursor=cursor.encode())

    return _sensor


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
