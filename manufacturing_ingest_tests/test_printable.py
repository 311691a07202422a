"""Names from the landing zone are shown escaped wherever people read them: a file name cannot
clear the terminal, forge a line, reverse the text after it or crash an encoder, and every
letter of every script is shown as it is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from manufacturing_ingest.alerting.alert import Alert, AlertKind, Observation, Severity
from manufacturing_ingest.engine.progress import Phase, ProgressEvent
from manufacturing_ingest.printable import printable

HOSTILE = {
    "evil\x1b[2J.csv": "evil\\x1b[2J.csv",  # ESC: clears the screen
    "a\ncommitted 40 1 forged.csv": "a\\ncommitted 40 1 forged.csv",  # a forged line
    "over\rwrite.csv": "over\\rwrite.csv",
    "bell\x07\x00nul\x7fdel.csv": "bell\\x07\\x00nul\\x7fdel.csv",
    "c1\x9b31mcsi.csv": "c1\\x9b31mcsi.csv",  # the 8-bit CSI, a one-character ESC [
    "invoice\u202egpj.exe": "invoice\\u202egpj.exe",  # right-to-left override
    "isolate\u2066x\u2069.csv": "isolate\\u2066x\\u2069.csv",
    "line\u2028sep.csv": "line\\u2028sep.csv",
    "Pr\udcfcfprotokoll.csv": "Pr\\xfcfprotokoll.csv",  # Latin-1 bytes in a UTF-8 world
}
KEPT = ["温度_湿度.csv", "Dicke µm.csv", "Prüfprotokoll.csv", "датчик 1.csv", "مستشعر.csv",
        "sensor (copy) [2].csv", "tab-free plain.csv"]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_control_and_invisible_characters_are_escaped(name):
    shown = printable(name)
    assert shown == HOSTILE[name]
    assert shown.isprintable()
    shown.encode("utf-8")  # no lone surrogate left to crash a writer


@pytest.mark.parametrize("name", KEPT)
def test_letters_of_every_script_are_shown_as_they_are(name):
    assert printable(name) == name


def test_a_multi_line_alert_keeps_its_lines_and_escapes_the_rest():
    assert printable("one\ntwo\x1b[0m", keep_newlines=True) == "one\ntwo\\x1b[0m"


def test_progress_lines_show_a_hostile_name_escaped():
    event = ProgressEvent("sensor_data", Phase.FILE_FAILED,
                          {"uri": "file:///l/a\x1b[2J\ncommitted.csv", "error": "bad\rgzip"})
    assert event.message() == ("sensor_data: FAILED file:///l/a\\x1b[2J\\ncommitted.csv: "
                               "bad\\rgzip")
    assert "\x1b" not in event.to_json() and "\n" not in event.to_json()


def test_an_alert_about_a_hostile_file_is_escaped_in_its_title_and_text():
    obs = Observation(
        subject="check:manufacturing_bronze/sensor_data:schema_drift:2026-11-20", failing=True,
        kind=AlertKind.CHECK_FAILED, severity=Severity.WARN,
        title="schema_drift on manufacturing_bronze.sensor_data \x1b[31mcol\u202e",
        observed_at=datetime(2026, 11, 20, tzinfo=UTC),
        detail="new column 'x\x1b]0;owned\x07'\nfrom evil\ncommitted.csv")
    alert = Alert.failure(obs)
    assert "\x1b" not in alert.title + alert.text and "\u202e" not in alert.title
    assert alert.title.endswith("\\x1b[31mcol\\u202e")
    assert alert.text.splitlines() == ["new column 'x\\x1b]0;owned\\x07'", "from evil",
                                       "committed.csv"]
