"""Real loopback servers for the sinks, with sentinel secrets that must never leak."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from manufacturing_ingest.alerting import AlertSink, SmtpOptions, configured_sinks
from manufacturing_ingest_tests.alert_servers import SmtpServer, WebhookServer
from manufacturing_ingest_tests.alerting.observations import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_TOKEN,
)


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer(path=f"/services/T000/B000/{WEBHOOK_TOKEN}") as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(SMTP_USER, SMTP_PASSWORD) as server:
        yield server


@pytest.fixture
def smtp_options(smtp: SmtpServer) -> SmtpOptions:
    return SmtpOptions(host=smtp.host, port=smtp.port, sender="dagster@plant.example",
                       recipients=["ops@plant.example", "quality@plant.example"],
                       username=SMTP_USER, password=SMTP_PASSWORD, starttls=False, timeout=5)


@pytest.fixture
def sinks(webhook: WebhookServer, smtp_options: SmtpOptions) -> list[AlertSink]:
    return configured_sinks(webhook.url, smtp_options)
