"""Alerts from a live Dagster daemon (``dagster-daemon run`` on loopback, its own instance):
a landing sensor that cannot list, freshness going to FAIL and back, a daemon restart, all
delivered to a real webhook and SMTP server, each exactly once (a daemon stopped in the middle
of a delivering tick included), with no secret left behind.

One test, several minutes: Dagster's shortest freshness window is one minute (the sensors tick
every 5 or 10 s here). Each bronze run is a fresh process on the session's warm Spark Connect
server, as under ``make dev``.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.orchestration.alerts import ALERT_SENSOR, AlertCursor, AlertJournal
from manufacturing_ingest.settings import SMTP_PASSWORD_VAR, WEBHOOK_URL_VAR
from manufacturing_ingest_tests.alerting.observations import SMTP_PASSWORD, SMTP_USER, WEBHOOK_TOKEN
from manufacturing_ingest_tests.clock import clear_of_midnight
from manufacturing_ingest_tests.daemon import BIN, Daemon, wait_for
from manufacturing_ingest_tests.samples import sensor_csv

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

SENSOR = get_source("sensor_data")
KEY = dg.AssetKey(SENSOR.asset_key_path)
TABLE = SENSOR.table_name
FRESHNESS = f"freshness:{KEY.to_user_string()}"

# sensor_data with Dagster's shortest freshness window, so FAIL comes a minute after a run.
DEFINITIONS = textwrap.dedent("""
    import dataclasses

    from manufacturing_ingest.catalog import get_source
    from manufacturing_ingest.orchestration import build_definitions
    from manufacturing_ingest.settings import Settings

    spec = dataclasses.replace(get_source("sensor_data"), freshness_minutes=1)
    defs = build_definitions(Settings.from_env(), sources=[spec])
""")


@pytest.fixture
def daemon(tmp_path, webhook, smtp, spark_server) -> Iterator[Daemon]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "MANUFACTURING_LANDING_URL": str(tmp_path / "landing"),  # missing until the test lands
        "MANUFACTURING_LAKEHOUSE_URL": str(tmp_path / "lakehouse"),
        "MANUFACTURING_SPARK_REMOTE": spark_server.url,
        WEBHOOK_URL_VAR: webhook.url,
        "MANUFACTURING_ALERT_SMTP_HOST": smtp.host,
        "MANUFACTURING_ALERT_SMTP_PORT": str(smtp.port),
        "MANUFACTURING_ALERT_SMTP_SENDER": "dagster@plant.example",
        "MANUFACTURING_ALERT_SMTP_RECIPIENTS": "ops@plant.example",
        "MANUFACTURING_ALERT_SMTP_USERNAME": SMTP_USER,
        SMTP_PASSWORD_VAR: SMTP_PASSWORD,
        "MANUFACTURING_ALERT_SMTP_STARTTLS": "false",
        "MANUFACTURING_ALERT_INTERVAL_SECONDS": "5",
        "MANUFACTURING_LANDING_INTERVAL_SECONDS": "10",
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": "5",
    }
    for name in ("MANUFACTURING_ENV", "MANUFACTURING_UI_URL"):
        env.pop(name, None)
    running = Daemon(tmp_path, env, DEFINITIONS)
    running.start()
    yield running
    running.stop()


def headlines(webhook) -> list[str]:
    return [body["blocks"][0]["text"]["text"] for body in webhook.bodies]


def test_a_live_daemon_alerts_once_per_change_and_survives_a_restart(daemon, webhook, smtp,
                                                                      tmp_path):
    tick_failed = "[ERROR] Sensor tick failed: landing sensor sensor_data_landing_sensor"
    tick_recovered = "[INFO] Recovered: landing sensor sensor_data_landing_sensor"
    stale = f"[ERROR] Freshness failed: freshness of {TABLE}"
    fresh_again = f"[INFO] Recovered: freshness of {TABLE}"
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster_home"))
    # Every sample reading lies in the past; the sensor must see the same yesterday throughout.
    day = clear_of_midnight(timedelta(minutes=10)) - timedelta(days=1)
    landing = tmp_path / "landing" / SENSOR.landing_prefix / f"{day:%Y/%m/%d}"

    # The landing folder does not exist: the landing sensor's ticks fail, and someone is told.
    wait_for("alert for the failing landing sensor", lambda: tick_failed in headlines(webhook),
             daemon, timeout=120)
    alert = next(b for b in webhook.bodies if b["blocks"][0]["text"]["text"] == tick_failed)
    assert "does not exist" in str(alert["blocks"])

    # Files land: the sensor recovers, starts a run, and the table is fresh.
    landing.mkdir(parents=True)
    (landing / "first.csv").write_text(sensor_csv("S-1", "S-2", day=day.date()))
    wait_for("recovery of the landing sensor", lambda: tick_recovered in headlines(webhook),
             daemon, timeout=150)
    wait_for("a materialization by the sensor's run",
             lambda: instance.get_latest_materialization_event(KEY) is not None,
             daemon, timeout=300)

    # Nothing more lands: a minute later the freshness policy fails and that is alerted. The
    # mail relay is slow, so the daemon dies (SIGKILL, with its code server) in the middle of
    # the tick that delivers it: after the webhook has it, before the email is sent and before
    # the daemon saves the tick's cursor.
    smtp.stall(8)
    wait_for("the freshness alert", lambda: stale in headlines(webhook), daemon, timeout=240)
    # The webhook has it when its request arrives; the send counts once the sensor has its
    # answer and has journaled it. A kill before that is the in-flight window, where the README
    # says a copy may arrive (receivers drop it by alert id): not what this test is about.
    wait_for("the journaled webhook send",
             lambda: FRESHNESS in _journaled(instance).book.failing_subjects, daemon, timeout=30)
    daemon.kill()
    smtp.stall(0)
    freshness = next(b for b in webhook.bodies if b["blocks"][0]["text"]["text"] == stale)
    assert "freshness_window_minutes: 1" in str(freshness["blocks"])
    assert stale not in [m.message["Subject"].strip() for m in smtp.messages]
    saved = _alert_cursor(instance)
    assert FRESHNESS not in saved.book.failing_subjects, (
        "the daemon saved the delivering tick's cursor: the stop came too late to test a "
        "restart in the middle of a tick")

    # The restarted daemon resumes from what the dying tick recorded after each send: the
    # webhook is not sent the alert again, and the email it still owed goes out once.
    sent = len(webhook.bodies)
    daemon.start()
    wait_for("the owed email", lambda: stale in [m.message["Subject"].strip()
                                                 for m in smtp.messages], daemon, timeout=120)
    alert_ticks = _alert_ticks(instance)
    wait_for("three more alert sensor ticks",
             lambda: _alert_ticks(instance) >= alert_ticks + 3, daemon, timeout=120)
    assert len(webhook.bodies) == sent

    # Data flows again: one recovery notice.
    (landing / "second.csv").write_text(sensor_csv("S-3", day=day.date()))
    wait_for("the freshness recovery", lambda: fresh_again in headlines(webhook), daemon,
             timeout=360)
    time.sleep(12)  # two more alert ticks: nothing else arrives

    expected = [tick_failed, tick_recovered, stale, fresh_again]
    assert sorted(headlines(webhook)) == sorted(expected)
    assert sorted(m.message["Subject"].strip() for m in smtp.messages) == sorted(expected)

    daemon.stop()
    leftovers = [daemon.log, *(tmp_path / "dagster_home").rglob("*")]
    for path in (p for p in leftovers if p.is_file()):
        data = path.read_bytes()
        for secret in (WEBHOOK_TOKEN, SMTP_PASSWORD):
            assert secret.encode() not in data, f"{secret} found in {path}"


def _alert_state(instance: dg.DagsterInstance):
    from manufacturing_ingest.orchestration.dagster_internals import InstigatorType

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == ALERT_SENSOR:
            return state
    return None


def _alert_ticks(instance: dg.DagsterInstance) -> int:
    state = _alert_state(instance)
    if state is None:
        return 0
    return len(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000))


def _journaled(instance: dg.DagsterInstance) -> AlertCursor:
    """What the next tick would resume from: the journal of the tick in progress, if any."""
    state = _alert_state(instance)
    if state is None:
        return AlertCursor()
    repository = state.origin.repository_origin.repository_name
    journal = AlertJournal(instance, repository, ALERT_SENSOR)
    return journal.resume(state.instigator_data.cursor if state.instigator_data else None)


def _alert_cursor(instance: dg.DagsterInstance) -> AlertCursor:
    """The cursor the daemon saved with the alert sensor's last finished tick."""
    state = _alert_state(instance)
    return AlertCursor.decode(state.instigator_data.cursor if state else None)
