"""Telling people: alerts, their de-duplication, and one sink per transport (log, webhook, email).

No Dagster here. The Dagster layer (``orchestration/``) watches runs, checks and freshness and
hands what it finds to this package as plain values; a new transport is one new module here.

Each alert sensor tick::

    book = AlertBook.decode(context.cursor)              # failing subjects + undelivered alerts
    book.observe(observations, now)                      # state changes -> alerts (deduped)
    report = book.deliver(sinks, now)                    # each sink independently, with backoff
    context.update_cursor(book.encode())

``sinks`` is ``configured_sinks(webhook_url, smtp)``: the JSON log line always, the webhook and
email when configured. Secrets (the webhook URL, the SMTP password) go to the sinks only; they
never enter an ``Alert``, the book, an error message or a log line.
"""

from manufacturing_ingest.alerting.alert import (
    Alert,
    AlertKind,
    Figure,
    Observation,
    Severity,
    make_test_alert,
)
from manufacturing_ingest.alerting.policy import (
    AlertBook,
    DeliveryReport,
    SinkFailure,
    send_test_alert,
)
from manufacturing_ingest.alerting.sinks import (
    ALERT_LOGGER,
    AlertSink,
    EmailSink,
    LogSink,
    SinkError,
    SmtpOptions,
    WebhookSink,
    configured_sinks,
)

__all__ = [
    "ALERT_LOGGER",
    "Alert",
    "AlertBook",
    "AlertKind",
    "AlertSink",
    "DeliveryReport",
    "EmailSink",
    "Figure",
    "LogSink",
    "Observation",
    "Severity",
    "SinkError",
    "SinkFailure",
    "SmtpOptions",
    "WebhookSink",
    "configured_sinks",
    "make_test_alert",
    "send_test_alert",
]
