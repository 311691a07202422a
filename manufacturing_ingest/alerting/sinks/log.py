"""The sink that is always on: one JSON line per alert on the ``manufacturing_ingest.alerts`` log.

Log collectors (Databricks, CloudWatch, Loki) can alert on these lines without any other sink
being configured. The line is JSON on one line so it is parsed, not scraped.
"""

from __future__ import annotations

import json
import logging

from manufacturing_ingest.alerting.alert import Alert, Severity
from manufacturing_ingest.alerting.sinks.base import AlertSink

__all__ = ["ALERT_LOGGER", "LogSink", "alert_log_record"]

ALERT_LOGGER = "manufacturing_ingest.alerts"

_LEVELS = {Severity.ERROR: logging.ERROR, Severity.WARN: logging.WARNING,
           Severity.INFO: logging.INFO}


def alert_log_record(alert: Alert) -> dict[str, object]:
    """The fields of an alert's log line."""
    return {
        "alert_id": alert.id,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "title": alert.title,
        "text": alert.text,
        "subject": alert.subject,
        "asset": alert.asset,
        "check": alert.check,
        "partition": alert.partition,
        "figures": dict(alert.figures),
        "run_url": alert.run_url,
        "created_at": alert.created_at.isoformat(),
    }


class LogSink(AlertSink):
    """Writes each alert as one JSON line, at the level of its severity."""

    def __init__(self, logger: logging.Logger | None = None, name: str = "log"):
        self.name = name
        self._logger = logger or logging.getLogger(ALERT_LOGGER)

    def deliver(self, alert: Alert) -> None:
        # json.dumps escapes newlines inside values, so the record is always a single line.
        line = json.dumps(alert_log_record(alert), ensure_ascii=False, sort_keys=True)
        self._logger.log(_LEVELS[alert.severity], "%s", line)
