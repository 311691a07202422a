"""Data at rest in S3 is SSE-KMS under the configured key; S3 is reached over TLS.

The end-to-end test runs the real CLI, with its own local Spark (hadoop-aws' S3A) writing an
``s3://`` lakehouse on the loopback S3 server (moto, which records each object's encryption as
S3 does), and then asks S3 how every object it wrote is encrypted. The key id is a sentinel
that must show nowhere else: not in the CLI's output, the Dagster instance (run config, event
log, compute logs), the objects' contents or the Spark settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from manufacturing_ingest.engine.jars import s3a_jar_files
from manufacturing_ingest.engine.spark import connect_server_command, session_conf
from manufacturing_ingest.s3_security import KMS_KEY_VAR, put_object_encryption
from manufacturing_ingest.settings import (
    ConfigurationError,
    Settings,
    SparkSettings,
    default_jars_dir,
)

DAY = "2026-01-15"
SENTINEL_KEY = "arn:aws:kms:us-east-1:123456789012:key/0badc0de-5e17-4e1a-9c0d-5e171e15e17e"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "manufacturing-ingest"
    return subprocess.run([str(script), *args], env=env, capture_output=True, text=True,
                          timeout=400)


@pytest.mark.spark
@pytest.mark.subprocess
def test_an_s3_lakehouse_is_written_sse_kms_under_the_configured_key_which_shows_nowhere(
        aws_env, tmp_path):
    import boto3
    import dagster as dg

    assert s3a_jar_files(default_jars_dir()), (
        "no S3A jars: run `manufacturing-ingest fetch-jars --s3a` (make test does)")

    endpoint = aws_env.endpoint
    # A real key of the server's KMS (S3 needs none to exist, but a key id is what is set).
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
    key = kms.create_key(Description="bronze at rest")["KeyMetadata"]
    key_arn, key_id = key["Arn"], key["KeyId"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = f"lake-{key_id[:8]}"
    s3.create_bucket(Bucket=bucket)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ,
           "MANUFACTURING_LANDING_URL": str(tmp_path / "landing"),
           "MANUFACTURING_LAKEHOUSE_URL": f"s3://{bucket}/lakehouse",
           KMS_KEY_VAR: key_arn,
           "DAGSTER_HOME": str(home)}
    env.pop("MANUFACTURING_SPARK_REMOTE", None)  # this run's own JVM, with S3A

    generated = _cli(env, "generate", "--source", "sensor_data", "--date", DAY, "--files", "2",
                     "--rows", "30")
    assert generated.returncode == 0, generated.stderr
    # --verbose: Spark's WARN lines too, so more of what the engine's JVM says is looked at.
    ingested = _cli(env, "--verbose", "ingest", "--source", "sensor_data", "--partition", DAY)
    assert ingested.returncode == 0, ingested.stderr
    assert "sensor_data: 60 rows from 2 files" in ingested.stdout

    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    bronze = "lakehouse/manufacturing_bronze/sensor_data/"
    ledger = "lakehouse/_manufacturing_ingest/file_ledger/"
    for prefix in (bronze, ledger):
        assert any(k.startswith(prefix) and k.endswith(".parquet") for k in keys), keys
        assert any(k.startswith(prefix + "_delta_log/") and k.endswith(".json") for k in keys)
    for k in keys:
        head = s3.head_object(Bucket=bucket, Key=k)
        assert head.get("ServerSideEncryption") == "aws:kms", k
        assert head.get("SSEKMSKeyId") == key_arn, k

    # The key id is in S3's metadata of each object, and nowhere else.
    for text in (generated.stdout, generated.stderr, ingested.stdout, ingested.stderr):
        assert key_id not in text
    for k in keys:
        assert key_id.encode() not in s3.get_object(Bucket=bucket, Key=k)["Body"].read(), k
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        for run in runs:
            assert key_id not in repr(run.run_config) + repr(run.tags)
            assert not [e for e in instance.all_logs(run.run_id) if key_id in repr(e)]
    stored = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in stored)  # the run and event log storage
    for path in stored:
        assert key_id.encode() not in path.read_bytes(), path


def test_the_key_is_recorded_as_set_and_spark_gets_a_reference_never_the_value(tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv(KMS_KEY_VAR, SENTINEL_KEY)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.plant.example")
    settings = Settings.from_env()
    assert settings.s3_kms_key is True
    assert SENTINEL_KEY not in repr(settings)
    assert Settings.from_env({}).s3_kms_key is False

    (tmp_path / "s3a").mkdir()
    (tmp_path / "s3a" / "hadoop-aws-3.5.0.jar").write_bytes(b"")
    spark = SparkSettings(jars_dir=tmp_path)
    conf = session_conf(spark)
    assert conf["spark.hadoop.fs.s3a.encryption.algorithm"] == "SSE-KMS"
    # Resolved by the JVM (Hadoop's ${env.NAME}) from its own environment.
    assert conf["spark.hadoop.fs.s3a.encryption.key"] == "${env.MANUFACTURING_S3_KMS_KEY_ID}"
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert str(tmp_path / "s3a" / "hadoop-aws-3.5.0.jar") in conf["spark.driver.extraClassPath"]
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "https://s3.plant.example"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    # The Connect server's command line (readable by any local user in ps) has no key either.
    assert not [a for a in connect_server_command(spark, 15002) if SENTINEL_KEY in a]
    assert not [v for v in conf.values() if SENTINEL_KEY in v]

    assert put_object_encryption() == {"ServerSideEncryption": "aws:kms",
                                       "SSEKMSKeyId": SENTINEL_KEY}
    assert put_object_encryption({}) == {}


def test_without_a_key_nothing_asks_for_encryption_and_no_endpoint_means_tls(monkeypatch):
    for name in (KMS_KEY_VAR, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    conf = session_conf(SparkSettings())
    assert not [k for k in conf if "encryption" in k]
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert "spark.hadoop.fs.s3a.endpoint" not in conf


def test_a_loopback_http_endpoint_is_allowed_and_s3a_then_speaks_http(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for endpoint in ("http://127.0.0.1:5000", "http://localhost:9000", "http://[::1]:9000",
                     "https://s3.eu-west-1.amazonaws.com"):
        Settings.from_env({"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ENDPOINT_URL": endpoint})
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")
    conf = session_conf(SparkSettings())
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:5000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"


@pytest.mark.parametrize("name, value", [
    ("AWS_ENDPOINT_URL", "http://s3.plant.example:9000"),
    ("AWS_ENDPOINT_URL_S3", "http://10.0.0.5"),
    ("AWS_ENDPOINT_URL_STS", "http://sts.plant.example"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1.nip.io"),
    ("AWS_ENDPOINT_URL_S3", "ftp://s3.plant.example"),
])
def test_an_endpoint_that_is_not_tls_is_refused_in_one_line_naming_the_variable(name, value):
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({name: value})
    message = str(refused.value)
    assert message.startswith(f"{name}={value!r}") and "\n" not in message


@pytest.mark.parametrize("value", [" arn:aws:kms:x", "alias/a b", "${env.OTHER}"])
def test_a_key_id_that_cannot_be_one_is_refused_without_repeating_it(value):
    with pytest.raises(ConfigurationError, match=KMS_KEY_VAR) as refused:
        Settings.from_env({KMS_KEY_VAR: value})
    assert value.strip() not in str(refused.value)


def test_a_databricks_step_never_receives_the_key():
    from manufacturing_ingest.databricks.job import step_settings

    settings = Settings.from_env({
        "MANUFACTURING_ENV": "databricks",
        "DATABRICKS_HOST": "https://dbc-1234.cloud.databricks.com",
        "DATABRICKS_TOKEN": "dapi-SENTINEL",
        "MANUFACTURING_DATABRICKS_EXECUTION": "step-launcher",
        "MANUFACTURING_DATABRICKS_CLUSTER_ID": "0101-000000-bronze",
        "MANUFACTURING_DATABRICKS_WHEEL": "/Volumes/main/libs/manufacturing_ingest-0.1.0-py3-none-"
                                          "any.whl",
        "MANUFACTURING_LAKEHOUSE_URL": "s3://plant-lakehouse/lakehouse",
        KMS_KEY_VAR: SENTINEL_KEY,
    })
    env = step_settings(settings)
    assert KMS_KEY_VAR not in env and SENTINEL_KEY not in repr(env)


def test_generate_uploads_to_an_s3_landing_zone_sse_kms_under_the_key(bucket, monkeypatch,
                                                                        capsys):
    from manufacturing_ingest.cli import main

    monkeypatch.setenv("MANUFACTURING_LANDING_URL", bucket.url)
    monkeypatch.setenv(KMS_KEY_VAR, SENTINEL_KEY)
    assert main(["generate", "--source", "equipment_logs", "--date", DAY, "--files", "2",
                 "--rows", "5"]) == 0
    output = capsys.readouterr()
    assert "uploaded 2 files" in output.out and SENTINEL_KEY not in output.out + output.err
    listed = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix="landing/raw/")
    assert len(listed["Contents"]) == 2
    for item in listed["Contents"]:
        head = bucket.client.head_object(Bucket=bucket.name, Key=item["Key"])
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == SENTINEL_KEY
