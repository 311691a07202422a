"""What is watched (``Observation``) and what people are told (``Alert``), as plain values.

The Dagster layer turns check evaluations, freshness states, runs and sensor ticks into
observations; ``AlertBook.observe`` turns state changes into alerts. Both are bounded in size
(long texts and many figures are cut) because pending alerts live in a sensor cursor.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from manufacturing_ingest.printable import printable

__all__ = [
    "Alert",
    "AlertKind",
    "Figure",
    "Observation",
    "Severity",
    "make_test_alert",
]

Figure = float | int | str

# Cuts that keep one alert under about 3 KB in the sensor cursor and inside Slack's limits.
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 1500
MAX_FIGURES = 20
MAX_FIGURE_CHARS = 200
MAX_SUBJECT_CHARS = 300


class Severity(StrEnum):
    ERROR = "error"
    WARN = "warn"
    INFO = "info"


class AlertKind(StrEnum):
    CHECK_FAILED = "check_failed"
    FRESHNESS_FAILED = "freshness_failed"
    RUN_FAILED = "run_failed"
    SENSOR_TICK_FAILED = "sensor_tick_failed"
    FILES_FAILED = "files_failed"
    RECOVERED = "recovered"
    TEST = "test"

    @property
    def label(self) -> str:
        """How the kind reads at the start of an alert's title."""
        return _LABELS[self]


_LABELS = {
    AlertKind.CHECK_FAILED: "Check failed",
    AlertKind.FRESHNESS_FAILED: "Freshness failed",
    AlertKind.RUN_FAILED: "Run failed",
    AlertKind.SENSOR_TICK_FAILED: "Sensor tick failed",
    AlertKind.FILES_FAILED: "Files not ingested",
    AlertKind.RECOVERED: "Recovered",
    AlertKind.TEST: "Test alert",
}

# Kinds an observation can have; RECOVERED and TEST are made here, never observed.
FAILURE_KINDS = frozenset({AlertKind.CHECK_FAILED, AlertKind.FRESHNESS_FAILED,
                           AlertKind.RUN_FAILED, AlertKind.SENSOR_TICK_FAILED,
                           AlertKind.FILES_FAILED})
# A failed run stays failed: it is alerted once and never recovers (a new run is a new subject).
ONE_SHOT_KINDS = frozenset({AlertKind.RUN_FAILED, AlertKind.FILES_FAILED})


@dataclass(frozen=True)
class Observation:
    """The current state of one watched subject, as the Dagster layer saw it.

    ``subject`` is the dedupe key and must be stable across ticks, e.g.
    ``check:manufacturing_bronze/sensor_data:landing_backlog:2026-01-15``,
    ``freshness:manufacturing_bronze/sensor_data``, ``run:<run id>``, ``sensor:<name>``.
    ``title`` names the subject the same way whether it fails or passes (the alert prefixes
    what happened); ``kind`` is the failure the subject would be, also on a passing observation.
    ``detail`` is free text for people (an error message, a check description). No secrets.
    """

    subject: str
    failing: bool
    kind: AlertKind
    severity: Severity
    title: str
    observed_at: datetime
    asset: str | None = None
    check: str | None = None
    partition: str | None = None
    figures: Mapping[str, Figure] = field(default_factory=dict)
    run_url: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FAILURE_KINDS:
            raise ValueError(f"Observation kind must be one of "
                             f"{', '.join(sorted(FAILURE_KINDS))}, not {self.kind!r}")
        _require_aware(self.observed_at, "Observation.observed_at")
        if not self.subject or len(self.subject) > MAX_SUBJECT_CHARS:
            raise ValueError(f"Observation.subject must be a stable dedupe key of 1 to "
                             f"{MAX_SUBJECT_CHARS} characters, got {len(self.subject)}")


@dataclass(frozen=True)
class Alert:
    """One message for people: a new failure, a recovery, or a test.

    ``id`` is derived from the subject, the kind and the time of the change, so the same
    change always makes the same id (receivers can de-duplicate on it, emails carry it as
    their Message-ID).
    """

    id: str
    kind: AlertKind
    severity: Severity
    title: str
    text: str
    subject: str
    created_at: datetime
    asset: str | None = None
    check: str | None = None
    partition: str | None = None
    figures: Mapping[str, Figure] = field(default_factory=dict)
    run_url: str | None = None

    @classmethod
    def failure(cls, obs: Observation) -> Alert:
        """The alert for ``obs`` turning from passing or unknown to failing."""
        return cls._make(obs, obs.kind, obs.severity, obs.detail)

    @classmethod
    def recovery(cls, obs: Observation, failing_since: datetime) -> Alert:
        """The notice that ``obs``'s subject, failing since ``failing_since``, passes again."""
        lasted = _duration(obs.observed_at - failing_since)
        since = f"{failing_since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        text = f"Passes again after failing for {lasted} (since {since})."
        if obs.detail:
            text = f"{text}\n{obs.detail}"
        return cls._make(obs, AlertKind.RECOVERED, Severity.INFO, text)

    @classmethod
    def escalation(cls, obs: Observation, was: Severity, failing_since: datetime) -> Alert:
        """The alert for ``obs``'s subject, failing since ``failing_since`` at severity ``was``,
        failing worse now."""
        since = f"{failing_since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        text = f"Now {obs.severity.upper()}, failing at {was.upper()} since {since}."
        if obs.detail:
            text = f"{text}\n{obs.detail}"
        return cls._make(obs, obs.kind, obs.severity, text)

    @classmethod
    def _make(cls, obs: Observation, kind: AlertKind, severity: Severity, text: str) -> Alert:
        created_at = obs.observed_at.astimezone(UTC)
        return cls(
            id=alert_id(obs.subject, kind, created_at),
            kind=kind,
            severity=severity,
            # One line: it becomes an email Subject and a Slack header.
            title=_cut(printable(" ".join(f"{kind.label}: {obs.title}".split())),
                       MAX_TITLE_CHARS),
            # Names from the landing zone in it (files, columns) are shown escaped.
            text=_cut(printable(text, keep_newlines=True), MAX_TEXT_CHARS),
            subject=obs.subject,
            created_at=created_at,
            asset=obs.asset,
            check=obs.check,
            partition=obs.partition,
            figures=_bounded_figures(obs.figures),
            run_url=obs.run_url,
        )

    @property
    def headline(self) -> str:
        """One line for a chat message's fallback text or an email subject."""
        return f"[{self.severity.upper()}] {self.title}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``from_dict`` reads it back."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "title": self.title,
            "text": self.text,
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "asset": self.asset,
            "check": self.check,
            "partition": self.partition,
            "figures": dict(self.figures),
            "run_url": self.run_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        return cls(
            id=data["id"],
            kind=AlertKind(data["kind"]),
            severity=Severity(data["severity"]),
            title=data["title"],
            text=data["text"],
            subject=data["subject"],
            created_at=datetime.fromisoformat(data["created_at"]),
            asset=data.get("asset"),
            check=data.get("check"),
            partition=data.get("partition"),
            figures=dict(data.get("figures") or {}),
            run_url=data.get("run_url"),
        )


def make_test_alert(now: datetime, run_url: str | None = None) -> Alert:
    """The alert ``manufacturing-ingest alerts test`` sends to show every sink works."""
    _require_aware(now, "now")
    created_at = now.astimezone(UTC)
    subject = f"test:{created_at.isoformat()}"
    return Alert(
        id=alert_id(subject, AlertKind.TEST, created_at),
        kind=AlertKind.TEST,
        severity=Severity.INFO,
        title=f"{AlertKind.TEST.label}: manufacturing-ingest alerting works",
        text="A test alert, sent on request. If you can read this, this sink is configured.",
        subject=subject,
        created_at=created_at,
        run_url=run_url,
    )


def alert_id(subject: str, kind: AlertKind, at: datetime) -> str:
    digest = hashlib.sha256(f"{subject}\n{kind.value}\n{at.isoformat()}".encode())
    return digest.hexdigest()[:20]


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, e.g. datetime.now(UTC)")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded_figures(figures: Mapping[str, Figure]) -> dict[str, Figure]:
    """At most ``MAX_FIGURES`` figures; NaN and infinities become text, which JSON can carry."""
    bounded: dict[str, Figure] = {}
    for name, value in list(figures.items())[:MAX_FIGURES]:
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        elif isinstance(value, str):
            value = _cut(value, MAX_FIGURE_CHARS)
        bounded[_cut(str(name), MAX_FIGURE_CHARS)] = value
    return bounded


def _duration(delta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"
