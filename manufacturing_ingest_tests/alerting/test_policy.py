"""The alert book against real loopback sinks: what reaches people, how often, and after what."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from manufacturing_ingest.alerting import ALERT_LOGGER, Alert, AlertBook, Severity
from manufacturing_ingest.alerting.policy import MAX_OUTBOX, MAX_SUBJECTS
from manufacturing_ingest.alerting.sinks.webhook import slack_payload
from manufacturing_ingest_tests.alerting.observations import (
    T0,
    backlog,
    freshness,
    run_failed,
    sensor_tick,
)

TICK = timedelta(seconds=30)


def _headers(webhook) -> list[str]:
    return [body["text"] for body in webhook.bodies]


def _subjects(smtp) -> list[str]:
    return [mail.message["Subject"] for mail in smtp.messages]


def _alert_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ALERT_LOGGER]


def test_a_lasting_failure_alerts_once_recovers_once_and_a_new_failure_alerts_again(
        webhook, smtp, sinks, caplog):
    caplog.set_level(logging.INFO, logger=ALERT_LOGGER)
    book = AlertBook()
    now = T0
    for _ in range(12):
        book.observe([backlog(failing=True, at=now), sensor_tick(failing=False, at=now)], now)
        assert book.deliver(sinks, now).ok
        now += TICK
    failed = "[WARN] Check failed: landing_backlog on manufacturing_bronze/sensor_data 2026-01-15"
    assert _headers(webhook) == [f"{failed} — {backlog(True, T0).run_url}"]
    assert _subjects(smtp) == [failed]

    for _ in range(12):
        book.observe([backlog(failing=False, at=now)], now)
        assert book.deliver(sinks, now).ok
        now += TICK
    recovered = "[INFO] Recovered: landing_backlog on manufacturing_bronze/sensor_data 2026-01-15"
    assert _subjects(smtp) == [failed, recovered]
    assert [h.split(" — ")[0] for h in _headers(webhook)] == [failed, recovered]
    assert "Passes again after failing for 6 min" in smtp.messages[1].message.get_content()
    assert book.failing_subjects == []

    for _ in range(12):
        book.observe([backlog(failing=True, at=now)], now)
        book.deliver(sinks, now)
        now += TICK
    assert _subjects(smtp) == [failed, recovered, failed]
    ids = [line["alert_id"] for line in _alert_lines(caplog)]
    assert len(ids) == len(set(ids)) == 3, "the new failure is a new alert, not a repeat"


def test_a_failing_webhook_is_retried_with_backoff_and_email_is_not_held_up(
        webhook, smtp, sinks):
    webhook.fail_next(3)
    book = AlertBook()
    book.observe([backlog(failing=True, at=T0)], T0)
    first = book.deliver(sinks, T0)
    assert [(f.sink, f.error) for f in first.failed] == [
        ("webhook", "webhook answered HTTP 500: internal_error")]
    assert first.failed[0].retry_at == T0 + timedelta(seconds=30)
    assert len(smtp.messages) == 1, "email delivered in the same tick"

    retry_ats = [first.failed[0].retry_at]
    now = T0
    while now < T0 + timedelta(minutes=15):
        now += timedelta(seconds=10)
        if now == T0 + timedelta(seconds=60):  # a second failure while the webhook is down
            book.observe([freshness(failing=True, at=now)], now)
            report = book.deliver(sinks, now)
            assert report.waiting == ("webhook",)
            assert len(smtp.messages) == 2, "email not held up by the webhook's backoff"
        else:
            book.observe([backlog(failing=True, at=now)], now)
            report = book.deliver(sinks, now)
        retry_ats += [f.retry_at for f in report.failed]
        if now < T0 + timedelta(seconds=30):
            assert webhook.failed == 1 and report.waiting == ("webhook",)

    assert webhook.failed == 3
    assert [r - T0 for r in retry_ats] == [timedelta(seconds=30), timedelta(seconds=90),
                                           timedelta(seconds=210)]
    assert [h.split(" — ")[0] for h in _headers(webhook)] == _subjects(smtp) == [
        "[WARN] Check failed: landing_backlog on manufacturing_bronze/sensor_data 2026-01-15",
        "[ERROR] Freshness failed: manufacturing_bronze/machine_events"]
    assert book.pending_alerts == []


def test_a_restart_resends_nothing_delivered_and_still_delivers_what_was_pending(
        webhook, smtp, sinks, caplog):
    caplog.set_level(logging.INFO, logger=ALERT_LOGGER)
    webhook.fail_next(1)
    book = AlertBook()
    book.observe([backlog(failing=True, at=T0), run_failed("5c1e0c6a2f4b", T0)], T0)
    book.deliver(sinks, T0)
    assert len(smtp.messages) == 2 and webhook.requests == []

    cursor = book.encode()
    for minute in range(1, 4):  # three daemon restarts, a tick each
        now = T0 + timedelta(minutes=minute)
        book = AlertBook.decode(cursor)
        book.observe([backlog(failing=True, at=now), run_failed("5c1e0c6a2f4b", now)], now)
        book.deliver(sinks, now)
        cursor = book.encode()

    assert len(smtp.messages) == 2
    assert len(webhook.requests) == 2, "the pending webhook deliveries survived the restart"
    assert webhook.bodies[0] == slack_payload(Alert.failure(backlog(failing=True, at=T0)))
    assert len(_alert_lines(caplog)) == 2
    assert AlertBook.decode(cursor).pending_alerts == []


def test_a_failed_run_alerts_once_and_never_recovers(webhook, smtp, sinks):
    book = AlertBook()
    for minute in range(10):
        now = T0 + timedelta(minutes=minute)
        book.observe([run_failed("5c1e0c6a2f4b", now)], now)
        book.deliver(sinks, now)
    now = T0 + timedelta(minutes=11)
    book.observe([run_failed("9d0e1f2a3b4c", now), run_failed("5c1e0c6a2f4b", now)], now)
    book.deliver(sinks, now)
    assert _subjects(smtp) == [
        "[ERROR] Run failed: manufacturing_bronze/sensor_data run 5c1e0c6a",
        "[ERROR] Run failed: manufacturing_bronze/sensor_data run 9d0e1f2a"]
    assert "DeltaConcurrentModificationException" in smtp.messages[0].message.get_content()
    assert book.failing_subjects == []


def test_the_book_stays_small_enough_for_a_sensor_cursor(caplog):
    # Three months of hourly partitions failing at once, with long error texts: over both caps.
    partitions = [f"{T0 + timedelta(hours=i):%Y-%m-%d-%H:00}" for i in range(1500)]
    observations = [replace(backlog(failing=True, at=T0, partition=p), detail="x" * 10_000)
                    for p in partitions]
    book = AlertBook()
    assert len(book.observe(observations, T0)) == 1500
    assert len(book.failing_subjects) == MAX_SUBJECTS
    assert len(book.pending_alerts) == MAX_OUTBOX
    assert len(book.encode().encode()) < 400_000
    assert all(len(alert.text) <= 1500 for alert in book.pending_alerts)
    assert "dropped 1400 undelivered alerts" in caplog.text

    book = AlertBook.decode(book.encode())
    now = T0 + TICK
    assert book.observe([backlog(failing=True, at=now, partition=partitions[-1])], now) == []
    assert len(book.observe([backlog(failing=True, at=now, partition=partitions[0])], now)) == 1

    # Subjects nobody reports for a week are forgotten: the book empties itself.
    book.observe([], now + timedelta(days=8))
    assert book.failing_subjects == []


def test_a_new_sensor_starts_empty_and_a_foreign_cursor_says_how_to_recover():
    assert AlertBook.decode(None).pending_alerts == []
    assert AlertBook.decode("").failing_subjects == []
    with pytest.raises(ValueError, match="reset the cursor"):
        AlertBook.decode('{"since_key": "raw/2026/01/15/a.csv"}')


def test_a_failure_read_only_when_it_changes_is_kept_past_the_forget_horizon():
    from manufacturing_ingest.alerting.policy import FORGET_AFTER

    book = AlertBook()
    assert len(book.observe([backlog(True, T0)], T0)) == 1
    later = T0 + FORGET_AFTER + timedelta(days=1)
    book.keep([backlog(True, T0).subject], T0 + FORGET_AFTER - timedelta(hours=1))
    book.observe([], later)  # the check was not re-read: nothing new came since
    assert book.failing_subjects == [backlog(True, T0).subject]
    (recovery,) = book.observe([backlog(False, later)], later)
    assert recovery.title.startswith("Recovered:")

    forgetful = AlertBook()
    forgetful.observe([backlog(True, T0)], T0)
    forgetful.observe([], later)  # not kept: forgotten, so its recovery would pass unnoticed
    assert forgetful.failing_subjects == []


def test_a_failure_that_gets_worse_is_alerted_once_more_and_flapping_pages_once():
    book = AlertBook()
    warn = backlog(True, T0)
    error = replace(warn, severity=Severity.ERROR, observed_at=T0 + TICK)
    assert [a.severity for a in book.observe([warn], T0)] == [Severity.WARN]
    assert book.observe([warn], T0 + TICK) == []
    (escalation,) = book.observe([error], T0 + 2 * TICK)
    assert escalation.severity is Severity.ERROR and escalation.title.startswith("Check failed")
    assert escalation.text.startswith("Now ERROR, failing at WARN since 2026-01-15 08:00 UTC.")
    better = replace(warn, observed_at=T0 + 3 * TICK)
    assert book.observe([better], T0 + 3 * TICK) == []  # better, still failing: not news
    assert book.observe([replace(error, observed_at=T0 + 4 * TICK)], T0 + 4 * TICK) == []

    restored = AlertBook.decode(book.encode())  # the severity survives the cursor
    assert restored.observe([replace(error, observed_at=T0 + 5 * TICK)], T0 + 5 * TICK) == []
    (recovery,) = restored.observe([backlog(False, T0 + 6 * TICK)], T0 + 6 * TICK)
    assert recovery.title.startswith("Recovered")
