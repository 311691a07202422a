"""The dedupe policy and the outbox: one alert per new failure, one notice when it passes again.

``AlertBook`` is the alert sensor's whole memory and is meant to live in its cursor:

- which subjects are failing (since when, last seen), so a failure that persists across ticks
  is alerted once and its recovery once (and once more if it gets worse, WARN to ERROR);
  failed runs are one-shot (alerted once, no recovery);
- the outbox: alerts not yet delivered to every configured sink, and per sink how many times in
  a row it failed and when to try it again (``SINK_BACKOFF``). A failing sink is retried on later
  ticks; it neither loses alerts nor holds up the others.

Each ``deliver`` records what was delivered, so a book decoded from the last saved cursor
re-sends nothing that was delivered and still holds everything that was not; its
``on_delivered`` hook lets the caller save the book after every send, so even a process that
dies in the middle of a ``deliver`` re-sends nothing but the send it died in (alert ids are
stable, so receivers can tell). The book is bounded: ``MAX_SUBJECTS`` remembered subjects
(least recently seen go first; subjects unseen for ``FORGET_AFTER`` are forgotten) and
``MAX_OUTBOX`` undelivered alerts (the oldest are dropped, with an error log), about 200 KB of
cursor at worst.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from manufacturing_ingest.alerting.alert import (
    ONE_SHOT_KINDS,
    Alert,
    Observation,
    Severity,
    make_test_alert,
)
from manufacturing_ingest.alerting.sinks.base import AlertSink, SinkError
from manufacturing_ingest.retry import Backoff

__all__ = [
    "FORGET_AFTER",
    "MAX_OUTBOX",
    "MAX_SENDS_PER_TICK",
    "MAX_SUBJECTS",
    "SINK_BACKOFF",
    "AlertBook",
    "DeliveryReport",
    "SinkFailure",
    "send_test_alert",
]

logger = logging.getLogger(__name__)

MAX_SUBJECTS = 1000
MAX_OUTBOX = 100
FORGET_AFTER = timedelta(days=7)
# Per sink and ``deliver`` call, so a backlog of alerts cannot run a sensor tick into its timeout.
MAX_SENDS_PER_TICK = 20
# 30 s after the first failure, doubling to at most 30 min; ``attempts`` is unused because the
# book keeps retrying until the alert is delivered or pushed out of the outbox.
SINK_BACKOFF = Backoff(attempts=0, base=15.0, cap=30 * 60.0)

_FORMAT = 1
_RANK = {Severity.INFO: 0, Severity.WARN: 1, Severity.ERROR: 2}


@dataclass
class _Subject:
    since: int  # epoch seconds: when it started failing
    seen: int  # epoch seconds: last observed failing
    one_shot: bool
    severity: Severity = Severity.ERROR  # the highest seen while failing


@dataclass
class _Pending:
    alert: Alert
    done: set[str]  # names of the sinks that have it


@dataclass
class _SinkState:
    failures: int  # in a row
    retry_at: int  # epoch seconds


@dataclass(frozen=True)
class SinkFailure:
    """A sink that failed this time, and when the book will try it again."""

    sink: str
    alert_id: str
    attempt: int
    error: str
    retry_at: datetime | None  # None: not retried (a test alert)


@dataclass(frozen=True)
class DeliveryReport:
    """What one ``deliver`` did: ``(sink, alert id)`` pairs sent, failures, sinks backing off."""

    delivered: tuple[tuple[str, str], ...] = ()
    failed: tuple[SinkFailure, ...] = ()
    waiting: tuple[str, ...] = ()
    pending: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def delivered_to(self, sink: str) -> list[str]:
        """The ids of the alerts ``sink`` received."""
        return [alert_id for name, alert_id in self.delivered if name == sink]


class AlertBook:
    """Failing subjects and undelivered alerts; ``encode`` it into the sensor cursor each tick.

    Example::

        book = AlertBook.decode(context.cursor)
        book.observe(observations, now)
        report = book.deliver(sinks, now)
        context.update_cursor(book.encode())
    """

    def __init__(self) -> None:
        self._subjects: dict[str, _Subject] = {}
        self._outbox: list[_Pending] = []
        self._sinks: dict[str, _SinkState] = {}

    def observe(self, observations: Iterable[Observation], now: datetime) -> list[Alert]:
        """Alerts for the subjects whose state changed; they wait in the outbox for ``deliver``.

        Failing after passing or unknown: the failure alert. Failing worse than alerted so far
        (WARN, then ERROR): an escalation alert. Passing after failing: a recovery notice.
        Anything else, including a repeat of the same failure: nothing.
        """
        now_s = _epoch(now)
        alerts: list[Alert] = []
        for obs in observations:
            known = self._subjects.get(obs.subject)
            if obs.failing:
                if known is None:
                    alerts.append(Alert.failure(obs))
                    self._subjects[obs.subject] = _Subject(
                        since=int(obs.observed_at.timestamp()), seen=now_s,
                        one_shot=obs.kind in ONE_SHOT_KINDS, severity=obs.severity)
                else:
                    known.seen = now_s
                    if _RANK[obs.severity] > _RANK[known.severity]:
                        # Worse than what was alerted (WARN to ERROR): that is news. Back down
                        # and up again is not, so a rate flapping around 5 % pages once.
                        alerts.append(Alert.escalation(
                            obs, known.severity, datetime.fromtimestamp(known.since, UTC)))
                        known.severity = obs.severity
            elif known is not None and not known.one_shot:
                del self._subjects[obs.subject]
                alerts.append(Alert.recovery(obs, datetime.fromtimestamp(known.since, UTC)))
        self._outbox.extend(_Pending(alert, set()) for alert in alerts)
        self._bound(now_s)
        return alerts

    def keep(self, subjects: Iterable[str], now: datetime) -> None:
        """Mark ``subjects`` as still failing though not observed this time (a watcher that
        reports only changes, like check results read after a cursor), so they are not
        forgotten after ``FORGET_AFTER`` and their recovery is still noticed."""
        now_s = _epoch(now)
        for subject in subjects:
            if (known := self._subjects.get(subject)) is not None:
                known.seen = now_s

    def deliver(self, sinks: Sequence[AlertSink], now: datetime,
                on_delivered: Callable[[], None] | None = None) -> DeliveryReport:
        """Send every undelivered alert to each sink that is not backing off, in order.

        A sink stops at its first failure this call and is tried again after
        ``SINK_BACKOFF``; the alert stays in the outbox until every configured sink has it.
        ``on_delivered`` runs after each successful send, with the book already recording it:
        the place to save the book, so a process that dies later in the call re-sends nothing.
        """
        names = [sink.name for sink in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"alert sinks need unique names, got {names}")
        now_s = _epoch(now)
        delivered: list[tuple[str, str]] = []
        failed: list[SinkFailure] = []
        waiting: list[str] = []
        for sink in sinks:
            owed = [p for p in self._outbox if sink.name not in p.done]
            state = self._sinks.get(sink.name)
            if state is not None and state.retry_at > now_s:
                if owed:
                    waiting.append(sink.name)
                continue
            for pending in owed[:MAX_SENDS_PER_TICK]:
                error = _attempt(sink, pending.alert)
                if error is None:
                    pending.done.add(sink.name)
                    delivered.append((sink.name, pending.alert.id))
                    self._sinks.pop(sink.name, None)
                    if on_delivered is not None:
                        on_delivered()
                    continue
                failed.append(self._reschedule(sink.name, pending.alert, error, now))
                break
        configured = set(names)
        self._outbox = [p for p in self._outbox if not configured <= p.done]
        for pending in self._outbox:  # a removed sink owes nothing and takes no room
            pending.done &= configured
        self._sinks = {name: s for name, s in self._sinks.items() if name in configured}
        return DeliveryReport(tuple(delivered), tuple(failed), tuple(waiting), len(self._outbox))

    @property
    def failing_subjects(self) -> list[str]:
        """Subjects currently failing (failed runs, which never recover, excluded)."""
        return [subject for subject, s in self._subjects.items() if not s.one_shot]

    @property
    def pending_alerts(self) -> list[Alert]:
        """Alerts some configured sink does not have yet, oldest first."""
        return [p.alert for p in self._outbox]

    def encode(self) -> str:
        """Compact JSON for the sensor cursor; ``AlertBook.decode`` reads it back."""
        state = {
            "v": _FORMAT,
            "subjects": {k: [s.since, s.seen, int(s.one_shot), s.severity.value]
                         for k, s in self._subjects.items()},
            "outbox": [{"alert": p.alert.to_dict(), "done": sorted(p.done)} for p in self._outbox],
            "sinks": {k: [s.failures, s.retry_at] for k, s in self._sinks.items()},
        }
        return json.dumps(state, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, text: str | None) -> AlertBook:
        """The book ``encode`` wrote; an empty book for a new sensor (no cursor yet)."""
        book = cls()
        if not text:
            return book
        try:
            state: dict[str, Any] = json.loads(text)
            if state.get("v") != _FORMAT:
                raise ValueError(f"version {state.get('v')!r}, expected {_FORMAT}")
            # A subject saved without its severity counts as ERROR: no escalation after upgrade.
            book._subjects = {k: _Subject(int(v[0]), int(v[1]), bool(v[2]),
                                          Severity(v[3]) if len(v) > 3 else Severity.ERROR)
                              for k, v in state["subjects"].items()}
            book._outbox = [_Pending(Alert.from_dict(p["alert"]), set(p["done"]))
                            for p in state["outbox"]]
            book._sinks = {k: _SinkState(int(v[0]), int(v[1])) for k, v in state["sinks"].items()}
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"the alert sensor's cursor is not an alert book ({exc}); reset "
                             "the cursor to start from an empty book") from None
        return book

    def _reschedule(self, sink: str, alert: Alert, error: str, now: datetime) -> SinkFailure:
        state = self._sinks.get(sink)
        failures = (state.failures if state else 0) + 1
        retry_at = now + timedelta(seconds=SINK_BACKOFF.delay(failures))
        self._sinks[sink] = _SinkState(failures, math.ceil(retry_at.timestamp()))
        logger.warning("alert sink %s failed (%d in a row), alert %s kept, next try at %s: %s",
                       sink, failures, alert.id, f"{retry_at:%H:%M:%S}", error)
        return SinkFailure(sink, alert.id, failures, error, retry_at)

    def _bound(self, now_s: int) -> None:
        horizon = now_s - int(FORGET_AFTER.total_seconds())
        self._subjects = {k: s for k, s in self._subjects.items() if s.seen >= horizon}
        if len(self._subjects) > MAX_SUBJECTS:
            # A stable sort: among equals, the later observed (inserted) subject is kept.
            ranked = sorted(self._subjects.items(), key=lambda kv: (kv[1].seen, kv[1].since))
            logger.warning("alert book forgets %d subjects to stay within %d; if they still "
                           "fail they will be alerted again", len(ranked) - MAX_SUBJECTS,
                           MAX_SUBJECTS)
            self._subjects = dict(ranked[-MAX_SUBJECTS:])
        if len(self._outbox) > MAX_OUTBOX:
            dropped = self._outbox[: len(self._outbox) - MAX_OUTBOX]
            self._outbox = self._outbox[-MAX_OUTBOX:]
            titles = [p.alert.title for p in dropped]
            logger.error("alert book dropped %d undelivered alerts to stay within %d: %s%s",
                         len(dropped), MAX_OUTBOX, "; ".join(titles[:5]),
                         "; …" if len(titles) > 5 else "")


def send_test_alert(sinks: Sequence[AlertSink], now: datetime,
                    run_url: str | None = None) -> DeliveryReport:
    """Send one test alert through every sink now, once, without retries or a book."""
    alert = make_test_alert(now, run_url)
    delivered: list[tuple[str, str]] = []
    failed: list[SinkFailure] = []
    for sink in sinks:
        error = _attempt(sink, alert)
        if error is None:
            delivered.append((sink.name, alert.id))
        else:
            failed.append(SinkFailure(sink.name, alert.id, 1, error, None))
    return DeliveryReport(tuple(delivered), tuple(failed))


def _attempt(sink: AlertSink, alert: Alert) -> str | None:
    """``None`` once delivered, else why not."""
    try:
        sink.deliver(alert)
    except SinkError as exc:
        return str(exc) or type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - one broken sink must not silence the others
        # Only the type: an unexpected error's message may carry the sink's secret.
        logger.error("alert sink %s raised %s; sinks should raise SinkError", sink.name,
                     type(exc).__name__)
        return f"{type(exc).__name__} (an unexpected error in the sink)"
    return None


def _epoch(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware, e.g. datetime.now(UTC)")
    return int(now.timestamp())
