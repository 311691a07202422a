"""Each sink through its real client to a loopback server: what it says, and what errors say."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from manufacturing_ingest.alerting import (
    ALERT_LOGGER,
    Alert,
    AlertBook,
    EmailSink,
    LogSink,
    SinkError,
    WebhookSink,
    configured_sinks,
    send_test_alert,
)
from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest_tests.alert_servers import free_port
from manufacturing_ingest_tests.alerting.observations import (
    RUN_URL,
    SMTP_PASSWORD,
    SMTP_USER,
    T0,
    WEBHOOK_TOKEN,
    backlog,
    sensor_tick,
)


@pytest.fixture
def alert() -> Alert:
    return Alert.failure(backlog(failing=True, at=T0))


def test_the_log_line_is_one_json_line_with_the_alert_fields(alert, caplog):
    caplog.set_level(logging.DEBUG, logger=ALERT_LOGGER)
    multiline = Alert.failure(replace(sensor_tick(failing=True, at=T0),
                                      detail="access denied\nTraceback (most recent call last):"))
    LogSink().deliver(alert)
    LogSink().deliver(multiline)

    records = [r for r in caplog.records if r.name == ALERT_LOGGER]
    assert [r.levelname for r in records] == ["WARNING", "ERROR"]
    assert all("\n" not in r.getMessage() for r in records)
    line = json.loads(records[0].getMessage())
    assert line == {
        "alert_id": alert.id,
        "kind": "check_failed",
        "severity": "warn",
        "title": "Check failed: landing_backlog on manufacturing_bronze/sensor_data 2026-01-15",
        "text": "Landed objects waiting longer than 1 h for bronze.",
        "subject": "check:manufacturing_bronze/sensor_data:landing_backlog:2026-01-15",
        "asset": "manufacturing_bronze/sensor_data",
        "check": "landing_backlog",
        "partition": "2026-01-15",
        "figures": {"uncommitted": 12, "oldest_age_minutes": 75.5},
        "run_url": RUN_URL,
        "created_at": "2026-01-15T08:00:00+00:00",
    }
    assert json.loads(records[1].getMessage())["text"].startswith("access denied\nTraceback")


def test_the_webhook_gets_slack_blocks_with_asset_check_severity_figures_and_run_link(
        webhook, alert):
    WebhookSink(webhook.url).deliver(alert)

    (request,) = webhook.requests
    assert request.headers["Content-Type"].startswith("application/json")
    body = request.body
    assert body["text"].startswith("[WARN] Check failed: landing_backlog")
    rendered = json.dumps(body["blocks"])
    for shown in ("*Severity*\\nWARN", "*Asset*\\nmanufacturing_bronze/sensor_data",
                  "*Check*\\nlanding_backlog", "*Partition*\\n2026-01-15",
                  "uncommitted: 12", "oldest_age_minutes: 75.5",
                  f"<{RUN_URL}|Open the run in Dagster>"):
        assert shown in rendered
    assert body["blocks"][0]["type"] == "header"


def test_the_email_says_the_same_to_every_recipient(smtp, smtp_options, alert):
    EmailSink(smtp_options).deliver(alert)

    (mail,) = smtp.messages
    assert mail.rcpt_tos == ["ops@plant.example", "quality@plant.example"]
    assert mail.login == SMTP_USER
    assert mail.message["Subject"] == alert.headline
    assert mail.message["Message-ID"] == f"<{alert.id}@manufacturing-ingest.alerts>"
    body = mail.message.get_content()
    for shown in ("Severity: WARN", "Asset: manufacturing_bronze/sensor_data",
                  "Check: landing_backlog", "Partition: 2026-01-15", "uncommitted: 12",
                  f"Run in Dagster: {RUN_URL}"):
        assert shown in body


def test_secrets_stay_out_of_logs_errors_state_and_alerts(webhook, smtp, smtp_options, caplog):
    caplog.set_level(logging.DEBUG)
    sinks = configured_sinks(webhook.url, smtp_options)
    errors: list[str] = []

    webhook.fail_next(1)
    book = AlertBook()
    alerts = book.observe([backlog(failing=True, at=T0)], T0)
    errors += [f.error for f in book.deliver(sinks, T0).failed]
    cursor = book.encode()
    book = AlertBook.decode(cursor)
    assert book.deliver(sinks, T0 + timedelta(minutes=1)).ok

    wrong_password = replace(smtp_options, password=SMTP_PASSWORD + "-wrong")
    broken = [
        WebhookSink(webhook.url + "-revoked"),  # 404 no_service
        WebhookSink(f"http://127.0.0.1:{free_port()}/services/T000/B000/{WEBHOOK_TOKEN}"),
        EmailSink(wrong_password),
        EmailSink(replace(smtp_options, starttls=True)),
    ]
    for sink in broken:
        with pytest.raises(SinkError) as raised:
            sink.deliver(alerts[0])
        errors.append(str(raised.value))
    with pytest.raises(ConfigurationError) as bad_url:
        WebhookSink(f"hooks.slack.com/services/{WEBHOOK_TOKEN}")

    assert errors[0] == "webhook answered HTTP 500: internal_error"
    assert errors[1] == "webhook answered HTTP 404: no_service"
    assert errors[2].startswith("webhook unreachable:")
    assert "SMTP login refused for 'dagster-alerts': 535" in errors[3]
    assert "STARTTLS" in errors[4]
    exposed = {
        "log output": caplog.text,
        "errors": "\n".join(errors) + str(bad_url.value),
        "cursor": cursor + book.encode(),
        "alerts": json.dumps([a.to_dict() for a in alerts]),
        "reprs": repr(sinks) + repr(smtp_options) + repr(broken),
        "messages": json.dumps(webhook.bodies) + "".join(str(m.message) for m in smtp.messages),
    }
    for where, text in exposed.items():
        assert WEBHOOK_TOKEN not in text, f"webhook token in {where}"
        assert SMTP_PASSWORD not in text, f"SMTP password in {where}"
    # ...and yet both secrets did their job.
    assert webhook.requests[0].path.endswith(WEBHOOK_TOKEN)
    assert ("PLAIN", SMTP_USER, SMTP_PASSWORD) in smtp.auth_attempts
    assert len(smtp.messages) == 1


def test_the_test_alert_goes_through_every_sink_and_names_the_one_that_failed(
        webhook, smtp, smtp_options, caplog):
    caplog.set_level(logging.INFO, logger=ALERT_LOGGER)
    sinks = configured_sinks(webhook.url, smtp_options)
    report = send_test_alert(sinks, T0)
    assert report.ok and [name for name, _ in report.delivered] == ["log", "webhook", "email"]
    assert webhook.bodies[0]["text"].startswith("[INFO] Test alert")
    assert smtp.messages[0].message["Subject"].startswith("[INFO] Test alert")
    (line,) = [r.getMessage() for r in caplog.records if r.name == ALERT_LOGGER]
    assert json.loads(line)["kind"] == "test"

    webhook.fail_next(1, status=403)
    report = send_test_alert(sinks, T0)
    assert [(f.sink, f.error) for f in report.failed] == [
        ("webhook", "webhook answered HTTP 403: internal_error")]
    assert len(smtp.messages) == 2, "the other sinks still got it"
