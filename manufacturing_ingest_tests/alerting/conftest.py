"""Sinks wired to the loopback servers of the root conftest (sentinel secrets included)."""

from __future__ import annotations

import pytest

from manufacturing_ingest.alerting import AlertSink, SmtpOptions, configured_sinks
from manufacturing_ingest_tests.alert_servers import WebhookServer


@pytest.fixture
def sinks(webhook: WebhookServer, smtp_options: SmtpOptions) -> list[AlertSink]:
    return configured_sinks(webhook.url, smtp_options)
