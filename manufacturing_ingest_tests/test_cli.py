"""The console script as a user runs it: generate, ingest, then inspect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from manufacturing_ingest.cli import main
from manufacturing_ingest_tests import hostile_corpus as corpus

FORGING_NAME = "evil\x1b[2J\ncommitted       40     1  forged.csv.gz"


def run(env, *args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "manufacturing-ingest"  # the installed console script
    return subprocess.run([str(script), *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.spark
@pytest.mark.subprocess
def test_generate_ingest_and_inspect(tmp_path: Path, spark_server):
    # Each command is its own process on the warm server (no JVM start per command).
    env = {**os.environ, "MANUFACTURING_LANDING_URL": str(tmp_path / "landing"),
           "MANUFACTURING_LAKEHOUSE_URL": str(tmp_path / "lakehouse"),
           "MANUFACTURING_SPARK_REMOTE": spark_server.url}
    env.pop("DAGSTER_HOME", None)
    generated = run(env, "generate", "--source", "sensor_data", "--date", "2026-01-15",
                    "--files", "3", "--rows", "40", "--gzip", "--extra-columns")
    assert generated.returncode == 0, generated.stderr
    assert "sensor_data: wrote 3 files" in generated.stdout
    day = tmp_path / "landing/raw/sensor-data/2026/01/15"
    (day / "broken.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    # A name that would clear the screen and forge a "committed" line if printed raw.
    (day / FORGING_NAME).write_bytes(b"\x1f\x8b\x08\x00garbage")

    ingested = run(env, "ingest", "--source", "sensor_data", "--partition", "2026-01-15")

    assert ingested.returncode == 1  # a failed file is reported, and the exit code says so
    assert "sensor_data: 120 rows from 3 files (0 already in, 2 failed, 0 ignored)" \
        in ingested.stdout
    assert "claimed batch 0" in ingested.stderr  # progress is shown while it works
    assert "says why and whether they will be retried on the next run" in ingested.stderr
    assert "\x1b" not in ingested.stdout + ingested.stderr
    assert "FAILED file://" in ingested.stderr and "\\x1b[2J\\ncommitted" in ingested.stderr

    files = run(env, "files", "sensor_data", "2026-01-15")
    assert files.returncode == 0, files.stderr
    assert "\x1b" not in files.stdout
    lines = files.stdout.splitlines()
    assert sum(line.startswith("committed") for line in lines) == 3
    assert sum(line.startswith("committed") and " 40 " in line for line in lines) == 3
    failed = [line for line in lines if line.startswith("failed")]
    assert len(failed) == 2 and all("gzip" in line for line in failed)
    assert any("broken.csv.gz" in line for line in failed)
    assert any("evil\\x1b[2J\\ncommitted" in line for line in failed), failed

    history = run(env, "history", "sensor_data")
    assert history.returncode == 0, history.stderr
    (commit,) = [line for line in history.stdout.splitlines() if line.strip().startswith("0 ")]
    assert "120" in commit and "firmware_version" in commit

    rows = run(env, "rows")
    assert "manufacturing_bronze.sensor_data" in rows.stdout and " 120 " in rows.stdout


@pytest.mark.s3
def test_generate_uploads_sample_files_to_an_s3_landing_zone(bucket, monkeypatch, capsys):
    monkeypatch.setenv("MANUFACTURING_LANDING_URL", bucket.url)
    assert main(["generate", "--source", "equipment_logs", "--date", "2026-01-15",
                 "--files", "2", "--rows", "5", "--gzip"]) == 0
    assert f"uploaded 2 files to {bucket.url}" in capsys.readouterr().out
    listed = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix="landing/raw/")
    keys = sorted(item["Key"] for item in listed["Contents"])
    assert len(keys) == 2
    assert all(k.startswith("landing/raw/equipment-logs/2026/01/15/") and k.endswith(".jsonl.gz")
               for k in keys)



@pytest.mark.parametrize("env, args, says", [
    ({"MANUFACTURING_ENV": "prod"}, ["rows"], "MANUFACTURING_ENV='prod' is not one of"),
    ({}, ["files", "no_such_source", "2026-01-15"], "unknown source 'no_such_source'"),
    ({"MANUFACTURING_LANDING_URL": "ftp://plant/landing"}, ["generate"],
     "the landing zone must be a folder"),
    ({"MANUFACTURING_ALERT_SMTP_HOST": "smtp.plant.example"}, ["alerts", "test"],
     "also set MANUFACTURING_ALERT_SMTP_SENDER"),
    ({"MANUFACTURING_ALERT_WEBHOOK_URL": "hooks.example/T0KEN-SENTINEL"}, ["alerts", "test"],
     "the alert webhook URL must be an http(s):// URL"),
    ({"DAGSTER_HOME": ""}, ["quality", "sensor_data", "2026-01-15"], "set DAGSTER_HOME"),
])
def test_configuration_errors_are_one_line_and_exit_2(monkeypatch, capsys, env, args, says):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err


@pytest.mark.s3
def test_landing_zone_errors_reach_the_user_as_one_line(bucket, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MANUFACTURING_LANDING_URL", f"s3://{bucket.name}-missing/landing")
    monkeypatch.setenv("MANUFACTURING_LAKEHOUSE_URL", str(tmp_path / "lakehouse"))
    assert main(["generate", "--source", "sensor_data", "--files", "1", "--rows", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the bucket does not exist" in err[0], err


@pytest.mark.s3
@pytest.mark.spark
def test_a_landing_zone_error_inside_a_run_is_one_line_too(bucket, spark, monkeypatch, capsys,
                                                          tmp_path):
    monkeypatch.setenv("MANUFACTURING_LANDING_URL", f"s3://{bucket.name}-missing/landing")
    monkeypatch.setenv("MANUFACTURING_LAKEHOUSE_URL", str(tmp_path / "lakehouse"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["ingest", "--source", "sensor_data", "--partition", "2026-01-15"]) == 2
    said = capsys.readouterr().err
    err = [line for line in said.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and "the bucket does not exist" in err[0], said
    assert "Traceback" not in said and "Stack Trace" not in said, said


@pytest.mark.parametrize("expect", corpus.case18_cli(Path("/tmp/placeholder")).cli,
                         ids=lambda e: e.stderr.replace(" ", "_"))
def test_misuse_of_ingest_is_one_line_and_exit_2(expect, tmp_path, monkeypatch, capsys):
    (case,) = [c for c in corpus.case18_cli(tmp_path).cli if c.stderr == expect.stderr]
    for name, value in case.env.items():
        monkeypatch.setenv(name, value.replace("/tmp/placeholder", str(tmp_path)))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(case.argv) == case.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and case.stderr.lower() in err[0].lower(), err
    assert not (tmp_path / "lake").exists()  # refused before anything was written


def test_alerts_test_reaches_every_configured_sink_and_names_the_one_that_fails(
        webhook, smtp, monkeypatch, capsys):
    from manufacturing_ingest_tests.alerting.observations import (
        SMTP_PASSWORD,
        SMTP_USER,
        WEBHOOK_TOKEN,
    )

    for name, value in {
        "MANUFACTURING_ALERT_WEBHOOK_URL": webhook.url,
        "MANUFACTURING_ALERT_SMTP_HOST": smtp.host,
        "MANUFACTURING_ALERT_SMTP_PORT": str(smtp.port),
        "MANUFACTURING_ALERT_SMTP_SENDER": "dagster@plant.example",
        "MANUFACTURING_ALERT_SMTP_RECIPIENTS": "ops@plant.example",
        "MANUFACTURING_ALERT_SMTP_USERNAME": SMTP_USER,
        "MANUFACTURING_ALERT_SMTP_PASSWORD": SMTP_PASSWORD,
        "MANUFACTURING_ALERT_SMTP_STARTTLS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["alerts", "test"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["log", "delivered"], ["webhook", "delivered"], ["email", "delivered"]]
    assert webhook.bodies[0]["text"].startswith("[INFO] Test alert")
    assert smtp.messages[0].message["Subject"].strip().startswith("[INFO] Test alert")

    webhook.fail_next(1, status=403)
    assert main(["alerts", "test"]) == 1
    captured = capsys.readouterr()
    assert "webhook  FAILED: webhook answered HTTP 403" in captured.out
    assert len(smtp.messages) == 2  # email still got it
    for secret in (WEBHOOK_TOKEN, SMTP_PASSWORD):
        assert secret not in captured.out + captured.err


@pytest.mark.spark
def test_quality_prints_the_latest_check_results_of_a_partition(spark, tmp_path, monkeypatch,
                                                                capsys):
    from manufacturing_ingest_tests.quality.test_rules import sensor_file, sensor_row

    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MANUFACTURING_LANDING_URL", str(tmp_path / "landing"))
    monkeypatch.setenv("MANUFACTURING_LAKEHOUSE_URL", str(tmp_path / "lakehouse"))
    day = tmp_path / "landing/raw/sensor-data/2026/01/15"
    day.mkdir(parents=True)
    rows = [sensor_row(i, timestamp=f"2026-01-15T11:{i // 60:02d}:{i % 60:02d}Z",
                       temperature="151" if i < 7 else "21.5") for i in range(100)]
    (day / "readings.csv").write_text(sensor_file(rows))

    assert main(["quality", "sensor_data", "2026-01-15"]) == 1
    assert "no check results for manufacturing_bronze.sensor_data 2026-01-15" in \
        capsys.readouterr().out
    assert main(["ingest", "--source", "sensor_data", "--partition", "2026-01-15"]) == 0
    capsys.readouterr()

    assert main(["quality", "sensor_data", "2026-01-15"]) == 1  # an ERROR-severity failure
    lines = capsys.readouterr().out.splitlines()
    (quality,) = [line for line in lines if line.startswith("quality ")]
    assert " ERROR " in quality and "7 of 100 new rows fail a rule (7.00%)" in quality
    assert any("rows checked 100, failing 7 (7.00%), delta version 0" in line for line in lines)
    assert any(line.strip() == "temperature_range: 7 rows" for line in lines)
    assert sum(line.strip().startswith("e.g. temperature_range:") for line in lines) == 5
    (drift,) = [line for line in lines if line.startswith("schema_drift ")]
    assert " passed " in drift and "no new columns" in drift
