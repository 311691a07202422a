"""The alert sensor, ticked against a real Dagster instance, a loopback webhook and a loopback
SMTP server: what becomes an alert, exactly once, and what happens when a sink is down.

Ticks are evaluated in this process with the sensor's cursor carried from tick to tick, as the
daemon does; ``test_alerts_live.py`` runs the same sensor in a real daemon.
"""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from manufacturing_ingest.alerting import ALERT_LOGGER
from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.orchestration.alerts import alert_sensor
from manufacturing_ingest.orchestration.assets import bronze_asset, landing_assets
from manufacturing_ingest.orchestration.resources import (
    AlertSinksResource,
    InProcessStep,
    LakehouseResource,
    LandingZoneResource,
    RemoteJobResource,
    SparkResource,
    alert_sinks_resource,
)
from manufacturing_ingest.settings import SMTP_PASSWORD_VAR, WEBHOOK_URL_VAR, AlertSettings
from manufacturing_ingest_tests.alerting.observations import SMTP_PASSWORD, SMTP_USER, WEBHOOK_TOKEN
from manufacturing_ingest_tests.orchestration.test_quality_checks import bad_day, materialize

SENSOR = get_source("sensor_data")
KEY = dg.AssetKey(SENSOR.asset_key_path)
UI = "https://dagster.plant.example"


class Clock:
    """The sensor's "now", moved by the test so backoff can be walked through in seconds."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class AlertTicks:
    """Ticks of one alert sensor against ``instance``, carrying the cursor like the daemon."""

    def __init__(self, instance: dg.DagsterInstance, resource: AlertSinksResource):
        self.instance = instance
        self.resource = resource
        self.clock = Clock()
        self.sensor = alert_sensor(list(CATALOG.values()), clock=self.clock)
        self.cursor: str | None = None
        self.reasons: list[str] = []

    def tick(self, times: int = 1, every: float = 30) -> None:
        for _ in range(times):
            context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                              resources={"alerts": self.resource})
            result = self.sensor(context)
            self.cursor = result.cursor
            self.reasons.append(result.skip_reason.skip_message if result.skip_reason else "")
            self.clock.advance(every)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def sinks_resource(webhook, smtp, monkeypatch) -> AlertSinksResource:
    """The resource exactly as ``resources_for`` builds it: secrets through ``dg.EnvVar``."""
    monkeypatch.setenv(WEBHOOK_URL_VAR, webhook.url)
    monkeypatch.setenv(SMTP_PASSWORD_VAR, SMTP_PASSWORD)
    settings = AlertSettings.from_env({
        WEBHOOK_URL_VAR: webhook.url, SMTP_PASSWORD_VAR: SMTP_PASSWORD,
        "MANUFACTURING_ALERT_SMTP_HOST": smtp.host,
        "MANUFACTURING_ALERT_SMTP_PORT": str(smtp.port),
        "MANUFACTURING_ALERT_SMTP_SENDER": "dagster@plant.example",
        "MANUFACTURING_ALERT_SMTP_RECIPIENTS": "ops@plant.example, quality@plant.example",
        "MANUFACTURING_ALERT_SMTP_USERNAME": SMTP_USER,
        "MANUFACTURING_ALERT_SMTP_STARTTLS": "false",
        "MANUFACTURING_UI_URL": UI,
    })
    return alert_sinks_resource(settings)


def report_check(instance, check: str, partition: str | None, passed: bool,
                 severity=dg.AssetCheckSeverity.WARN, **metadata) -> None:
    """Store a check result as a run's step stores it (each under its own run id: the instance
    keeps one result per check, partition and run)."""
    evaluation = dg.AssetCheckEvaluation(
        asset_key=KEY, check_name=check, passed=passed, severity=severity,
        description="4 of 100 new rows fail a rule (4.00%): temperature_range 4" if not passed
        else "0 of 100 new rows fail a rule (0.00%)",
        metadata=metadata, partition=partition,
    )
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.ASSET_CHECK_EVALUATION.value,
                        job_name="bronze_checks", event_specific_data=evaluation),
        run_id=str(uuid.uuid4()),
    )


def headlines(webhook) -> list[str]:
    return [body["blocks"][0]["text"]["text"] for body in webhook.bodies]  # the header block


def subjects(smtp) -> list[str]:
    # A long Subject is folded onto its own line; a mail client shows it without the fold.
    return [mail.message["Subject"].strip() for mail in smtp.messages]


def test_each_failure_and_recovery_reaches_every_sink_once_across_many_ticks(
        instance, sinks_resource, webhook, smtp, caplog):
    caplog.set_level(logging.INFO, logger=ALERT_LOGGER)
    ticks = AlertTicks(instance, sinks_resource)
    report_check(instance, "quality", "2026-01-15", passed=False, rows_checked=100,
                 failing_rows=4, error_rate=0.04,
                 failing_rows_by_rule=dg.MetadataValue.json({"temperature_range": 4,
                                                             "humidity_range": 0}))
    report_check(instance, "landing_backlog", None, passed=False,
                 severity=dg.AssetCheckSeverity.ERROR, backlog_seconds=4000.0,
                 uncommitted_objects=3)
    ticks.tick(12)

    assert sorted(headlines(webhook)) == [
        "[ERROR] Check failed: landing_backlog on manufacturing_bronze.sensor_data",
        "[WARN] Check failed: quality on manufacturing_bronze.sensor_data 2026-01-15",
    ]
    assert sorted(subjects(smtp)) == sorted(headlines(webhook))
    assert all(mail.rcpt_tos == ["ops@plant.example", "quality@plant.example"]
               for mail in smtp.messages)
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == ALERT_LOGGER]
    assert sorted(line["check"] for line in logged) == ["landing_backlog", "quality"]
    quality = next(line for line in logged if line["check"] == "quality")
    assert quality["partition"] == "2026-01-15" and quality["severity"] == "warn"
    assert quality["figures"] == {"rows_checked": 100, "failing_rows": 4, "error_rate": 0.04,
                                  "failing_rows_by_rule.temperature_range": 4}
    assert "2 subjects failing, 0 alerts pending" in ticks.reasons[-1]

    # The same failure evaluated again by a later run is not news.
    report_check(instance, "quality", "2026-01-15", passed=False, rows_checked=50,
                 failing_rows=2, error_rate=0.04)
    ticks.tick(3)
    assert len(webhook.bodies) == len(smtp.messages) == 2

    report_check(instance, "quality", "2026-01-15", passed=True, rows_checked=100)
    report_check(instance, "landing_backlog", None, passed=True)
    ticks.tick(10)
    recoveries = sorted(headlines(webhook)[2:])
    assert len(webhook.bodies) == len(smtp.messages) == 4
    assert recoveries == [
        "[INFO] Recovered: landing_backlog on manufacturing_bronze.sensor_data",
        "[INFO] Recovered: quality on manufacturing_bronze.sensor_data 2026-01-15",
    ]
    assert "0 subjects failing, 0 alerts pending" in ticks.reasons[-1]


def test_a_webhook_down_gets_its_alerts_after_it_recovers_while_email_keeps_working(
        instance, sinks_resource, webhook, smtp):
    ticks = AlertTicks(instance, sinks_resource)
    webhook.fail_next(3)
    report_check(instance, "quality", "2026-01-15", passed=False, rows_checked=100,
                 failing_rows=4, error_rate=0.04)
    ticks.tick(every=10)
    assert subjects(smtp) == ["[WARN] Check failed: quality on manufacturing_bronze.sensor_data "
                              "2026-01-15"]
    assert webhook.failed == 1 and webhook.bodies == []
    assert "failed: webhook (webhook answered HTTP 500: internal_error)" in ticks.reasons[-1]

    # While the webhook backs off (30 s, 60 s, 120 s) a second failure reaches email at once.
    report_check(instance, "quality", "2026-01-16", passed=False,
                 severity=dg.AssetCheckSeverity.ERROR, rows_checked=100, failing_rows=6,
                 error_rate=0.06)
    ticks.tick(every=10)
    assert len(smtp.messages) == 2 and webhook.failed == 1
    assert "backing off: webhook" in ticks.reasons[-1]
    ticks.tick(30, every=10)  # 5 minutes of ticks
    assert webhook.failed == 3
    assert headlines(webhook) == [
        "[WARN] Check failed: quality on manufacturing_bronze.sensor_data 2026-01-15",
        "[ERROR] Check failed: quality on manufacturing_bronze.sensor_data 2026-01-16",
    ]
    assert len(smtp.messages) == 2  # nothing re-sent to the sink that worked all along
    assert "0 alerts pending" in ticks.reasons[-1]


class Killed(BaseException):
    """The daemon's process dying in the middle of a tick: nothing after it runs, no cursor is
    saved (``test_alerts_live.py`` does it for real with SIGTERM)."""


def test_a_tick_killed_after_sending_re_sends_nothing_even_twice_in_a_row(
        instance, sinks_resource, webhook, smtp, monkeypatch):
    from manufacturing_ingest.alerting.sinks.email import EmailSink

    ticks = AlertTicks(instance, sinks_resource)
    report_check(instance, "quality", "2026-01-15", passed=False, rows_checked=100,
                 failing_rows=4, error_rate=0.04)
    ticks.tick()  # a tick that ends normally: its cursor is saved
    saved = ticks.cursor
    failure = "[WARN] Check failed: quality on manufacturing_bronze.sensor_data 2026-01-15"
    assert headlines(webhook) == subjects(smtp) == [failure]

    def die(self, alert):
        raise Killed

    # A new failure; the webhook has it, then the process dies while mailing it. Twice.
    report_check(instance, "quality", "2026-01-16", passed=False,
                 severity=dg.AssetCheckSeverity.ERROR, rows_checked=100, failing_rows=6,
                 error_rate=0.06)
    second = "[ERROR] Check failed: quality on manufacturing_bronze.sensor_data 2026-01-16"
    with monkeypatch.context() as patch:
        patch.setattr(EmailSink, "deliver", die)
        for _ in range(2):
            with pytest.raises(Killed):
                ticks.tick()
            assert ticks.cursor == saved  # the daemon saved nothing of the dying tick
    assert headlines(webhook) == [failure, second]
    assert subjects(smtp) == [failure]

    ticks.tick(5)
    assert headlines(webhook) == [failure, second]  # not re-sent
    assert subjects(smtp) == [failure, second]  # owed, and sent once
    assert "2 subjects failing, 0 alerts pending" in ticks.reasons[-1]

    # A cursor reset in the UI starts from an empty book: the journal of an older tick is not
    # resumed, and the failures still failing are alerted again.
    ticks.cursor = None
    ticks.tick()
    assert sorted(headlines(webhook)[2:]) == sorted([failure, second])


@pytest.mark.spark
def test_a_real_failing_check_and_a_failed_run_alert_once_with_links_to_their_runs(
        lake, instance, sinks_resource, webhook, smtp):
    bad_day(lake, "2026-01-17", bad=6)
    checked = materialize(lake, instance, partition="2026-01-17")
    failed = dg.materialize(
        [bronze_asset(SENSOR), *landing_assets(CATALOG.values())],
        selection=[KEY], partition_key="2026-01-18", instance=instance, raise_on_error=False,
        resources={"spark": SparkResource(master="local[1]"), "step_launcher": InProcessStep(),
                   "remote_job": RemoteJobResource(),
                   "landing": LandingZoneResource(url=str(lake.root / "no-such-folder")),
                   "lakehouse": LakehouseResource(url=lake.lakehouse.root)},
    )
    assert not failed.success
    ticks = AlertTicks(instance, sinks_resource)
    ticks.tick(10)

    by_kind = {headline.split(":")[0]: body
               for headline, body in zip(headlines(webhook), webhook.bodies, strict=True)}
    assert set(by_kind) == {"[ERROR] Check failed", "[ERROR] Run failed"}
    check = json.dumps(by_kind["[ERROR] Check failed"])
    assert f"{UI}/runs/{checked.run_id}" in check
    assert "failing_rows: 6" in check and "temperature_range: 6" in check
    run = json.dumps(by_kind["[ERROR] Run failed"])
    assert f"{UI}/runs/{failed.run_id}" in run
    assert "does not exist" in run and "no-such-folder" in run  # the step's own error
    assert "2026-01-18" in run
    assert len(smtp.messages) == 2


def test_a_file_that_fails_to_ingest_is_alerted_once_naming_the_file(
        lake, instance, sinks_resource, webhook, smtp):
    day = "2026-01-19"
    bad_day(lake, day, bad=0)  # 100 good readings
    cut_off = lake.put(f"raw/sensor-data/{day.replace('-', '/')}/cut-off.csv.gz",
                       gzip.compress(b"plant_id,line_id,sensor_id,timestamp\n" * 400)[:60])
    ticks = AlertTicks(instance, sinks_resource)
    ticks.tick()  # the sensor's first tick: nothing has happened yet
    first = materialize(lake, instance, partition=day)  # the run succeeds: the rest commits
    ticks.tick(3)
    # Its bytes cannot be ingested: the next run holds it rather than fail (and alert) again.
    materialize(lake, instance, partition=day)
    ticks.tick(3)

    headline = f"[ERROR] Files not ingested: 1 file on {SENSOR.table_name} {day}"
    assert headlines(webhook) == [headline]  # once: not per run, not per tick
    (first_alert,) = (json.dumps(body) for body in webhook.bodies)
    assert f"{UI}/runs/{first.run_id}" in first_alert
    assert "cut-off.csv.gz" in first_alert and "gzip" in first_alert.lower()
    assert "files_failed: 1" in first_alert and "files_processed: 1" in first_alert
    assert subjects(smtp) == [headline]

    # Sent again, still cut off (new bytes): it is read, fails and is alerted again.
    cut_off.write_bytes(gzip.compress(b"plant_id,line_id,sensor_id,timestamp\n" * 500)[:70])
    third = materialize(lake, instance, partition=day)
    ticks.tick(3)
    assert headlines(webhook) == [headline, headline]
    assert f"{UI}/runs/{third.run_id}" in json.dumps(webhook.bodies[-1])


def test_no_secret_reaches_logs_metadata_cursor_or_run_config(
        instance, sinks_resource, webhook, smtp, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    ticks = AlertTicks(instance, sinks_resource)
    webhook.fail_next(2)
    smtp.fail_next(1)
    report_check(instance, "quality", "2026-01-15", passed=False, rows_checked=10,
                 failing_rows=1, error_rate=0.1)
    ticks.tick(12, every=60)
    assert len(webhook.bodies) == len(smtp.messages) == 1
    assert smtp.auth_attempts and smtp.auth_attempts[-1][2] == SMTP_PASSWORD  # it was used

    # Resource config as Dagster stores and shows it: the variable's name, not its value.
    config = json.dumps(sinks_resource.model_dump(), default=str)
    assert WEBHOOK_URL_VAR in config and SMTP_PASSWORD_VAR in config

    # Every byte the instance stored: event log (metadata included), runs, sensor state.
    stored = b"".join(path.read_bytes() for path in Path(instance.root_directory).rglob("*")
                      if path.is_file())
    seen = "\n".join([
        caplog.text, capsys.readouterr().err, ticks.cursor or "", *ticks.reasons, config,
        stored.decode("utf-8", "replace"),
        *(m.message.as_string() for m in smtp.messages), json.dumps(webhook.bodies),
    ])
    for secret in (WEBHOOK_TOKEN, SMTP_PASSWORD, webhook.url):
        assert secret not in seen
