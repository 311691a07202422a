"""Alert transports, one module each, all ``AlertSink``s: log (always on), webhook, email."""

from __future__ import annotations

from manufacturing_ingest.alerting.sinks.base import AlertSink, SinkError
from manufacturing_ingest.alerting.sinks.email import EmailSink, SmtpOptions
from manufacturing_ingest.alerting.sinks.log import ALERT_LOGGER, LogSink
from manufacturing_ingest.alerting.sinks.webhook import WebhookSink

__all__ = ["ALERT_LOGGER", "AlertSink", "EmailSink", "LogSink", "SinkError", "SmtpOptions",
           "WebhookSink", "configured_sinks"]


def configured_sinks(webhook_url: str | None = None,
                     smtp: SmtpOptions | None = None) -> list[AlertSink]:
    """The log sink, always, then the webhook and email sinks that are configured."""
    sinks: list[AlertSink] = [LogSink()]
    if webhook_url:
        sinks.append(WebhookSink(webhook_url))
    if smtp is not None:
        sinks.append(EmailSink(smtp))
    return sinks
