"""The one interface every alert transport implements, and the error it raises."""

from __future__ import annotations

import abc

from manufacturing_ingest.alerting.alert import Alert

__all__ = ["AlertSink", "SinkError"]


class SinkError(RuntimeError):
    """A sink could not deliver an alert; the book keeps the alert and retries later.

    The message is logged and shown in the Dagster UI, so it never holds a secret (a webhook
    URL, an SMTP password): say "webhook answered HTTP 500", not where it was sent.
    """


class AlertSink(abc.ABC):
    """Somewhere alerts go: a log, a chat webhook, a mailbox.

    ``name`` keys the sink's deliveries and backoff in the ``AlertBook``; keep it stable across
    restarts and unique among the configured sinks. ``deliver`` either delivers or raises
    ``SinkError``; it must not block for long (the alert sensor calls every sink each tick).
    """

    name: str

    @abc.abstractmethod
    def deliver(self, alert: Alert) -> None:
        """Send ``alert`` once; raise ``SinkError`` with a secret-free message on failure."""
