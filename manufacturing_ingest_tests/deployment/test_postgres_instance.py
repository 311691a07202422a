"""The production instance config (deploy/dagster.yaml, copied unmodified into DAGSTER_HOME)
against a real PostgreSQL server on loopback that only accepts TLS with a password, and the S3
API server for the compute logs: Dagster's CLI sees the Postgres storage, a bronze
materialization run by ``dagster asset materialize`` and a landing-sensor tick of a live
``dagster-daemon`` are recorded in Postgres, the run's step logs are in the compute-log bucket,
and the password is written nowhere under DAGSTER_HOME nor in those logs.

One Spark run (a fresh ``dagster asset materialize`` process); the server, the instance and that
run are shared by the module's tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.orchestration.sensors import landing_sensor_name
from manufacturing_ingest_tests.clock import clear_of_midnight
from manufacturing_ingest_tests.daemon import BIN, Daemon, wait_for
from manufacturing_ingest_tests.postgres_server import PostgresServer
from manufacturing_ingest_tests.samples import sensor_csv

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deploy" / "dagster.yaml"
SENSOR = get_source("sensor_data")
KEY = dg.AssetKey(SENSOR.asset_key_path)
LANDING_SENSOR = landing_sensor_name(SENSOR)
STORAGE_CLASSES = ("run_storage: PostgresRunStorage", "event_log_storage: PostgresEventLogStorage",
                   "schedule_storage: PostgresScheduleStorage")

# What the daemon loads: the project's definitions, as workspace.yaml does in production.
DEFINITIONS = "from manufacturing_ingest.definitions import defs  # noqa: F401\n"


@dataclass
class Deployment:
    root: Path
    home: Path
    env: dict[str, str]
    server: PostgresServer
    day: date
    compute_logs: object  # a boto3 S3 client on the S3 API server
    bucket: str

    def dagster(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "dagster"), *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def query(self, sql: str, *params) -> list[tuple]:
        with self.server.connect() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        connection.close()
        return rows


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, spark_server, moto_server) -> Iterator[Deployment]:
    import boto3

    root = tmp_path_factory.mktemp("postgres_instance")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(SHIPPED, home / "dagster.yaml")
    server = PostgresServer()
    # The compute-log bucket on the S3 API server; credentials through AWS's standard variables.
    bucket = f"dagster-compute-logs-{uuid.uuid4().hex[:8]}"
    aws = {"AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    client = boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=bucket)
    dagster_env = {**server.env(), "DAGSTER_COMPUTE_LOG_BUCKET": bucket, **aws}
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("MANUFACTURING_", "DAGSTER_"))}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        **dagster_env,
        "MANUFACTURING_LANDING_URL": str(root / "landing"),
        "MANUFACTURING_LAKEHOUSE_URL": str(root / "lakehouse"),
        "MANUFACTURING_SPARK_REMOTE": spark_server.url,  # the warm server, as `make dev`
        "MANUFACTURING_LANDING_INTERVAL_SECONDS": "5",
    })
    # The instance is opened in this process too (DagsterInstance, the Daemon helper), and
    # dagster.yaml's `env:` fields are read from this process's environment.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dagster_env.items():
            patch.setenv(name, value)
        # Yesterday as the daemon's sensor will see it, minutes later, in the last test.
        yesterday = (clear_of_midnight(timedelta(minutes=10)) - timedelta(days=1)).date()
        try:
            yield Deployment(root, home, env, server, day=yesterday, compute_logs=client,
                             bucket=bucket)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def materialized(deployment) -> subprocess.CompletedProcess:
    """One sensor_data file landed yesterday, materialized by the Dagster CLI."""
    day = deployment.day
    folder = deployment.root / "landing" / SENSOR.landing_prefix / f"{day:%Y/%m/%d}"
    folder.mkdir(parents=True)
    (folder / "line1-0900.csv").write_text(sensor_csv("S-1", "S-2", "S-3", day=day))
    result = deployment.dagster("asset", "materialize", "-m", "manufacturing_ingest.definitions",
                                "--select", KEY.to_user_string(), "--partition", f"{day:%Y-%m-%d}")
    assert result.returncode == 0, f"materialize failed:\n{result.stdout}\n{result.stderr[-6000:]}"
    return result


def test_the_cli_uses_the_postgres_storage_and_only_over_tls(deployment):
    assert (deployment.home / "dagster.yaml").read_bytes() == SHIPPED.read_bytes()

    info = deployment.dagster("instance", "info", timeout=120)

    assert info.returncode == 0, info.stderr[-4000:]
    for line in STORAGE_CLASSES:
        assert line in info.stdout, info.stdout
    assert "max_concurrent_runs: 6" in info.stdout
    assert deployment.server.password not in info.stdout + info.stderr
    # The server has no plain TCP entry: the CLI's sessions were encrypted because the file
    # asks for sslmode=require, and a client that does not ask is turned away.
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        deployment.server.connect(sslmode="disable")
    sessions = deployment.server.authorized_sessions()
    assert sessions, deployment.server.log_tail()
    assert all("SSL enabled" in line for line in sessions), sessions


def test_a_materialization_is_recorded_in_postgres(deployment, materialized):
    partition = f"{deployment.day:%Y-%m-%d}"
    runs = deployment.query("SELECT run_id, status, partition FROM runs")
    assert [(status, p) for _, status, p in runs] == [("SUCCESS", partition)], runs
    run_id = runs[0][0]
    materializations = deployment.query(
        "SELECT run_id, partition FROM event_logs "
        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s",
        KEY.to_string())
    assert materializations == [(run_id, partition)]
    assert deployment.server.password not in materialized.stdout + materialized.stderr

    # What the UI and the sensors read: the same records through Dagster's own instance.
    with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        record = instance.get_latest_materialization_event(KEY)
        assert record is not None and record.run_id == run_id
        metadata = record.asset_materialization.metadata
        assert metadata["records"].value == 3
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS


def test_the_steps_logs_are_in_the_compute_log_bucket_without_the_password(deployment,
                                                                          materialized):
    (run_id,) = deployment.query("SELECT run_id FROM runs")[0]
    logs = _compute_logs(deployment)
    ours = {key: body for key, body in logs.items() if f"/{run_id}/" in key}
    assert {key.rsplit(".", 1)[-1] for key in ours} >= {"out", "err"}, sorted(logs)
    for key in ours:
        head = deployment.compute_logs.head_object(Bucket=deployment.bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256", key
    # The bronze step's lines, as the UI shows them under the step.
    step = KEY.to_python_identifier()
    text = b"".join(ours.values())
    assert f'Finished execution of step "{step}"'.encode() in text, text[-3000:]
    assert deployment.server.password.encode() not in text

    # What the webserver reads the logs with.
    with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"


def test_a_live_daemon_records_its_landing_sensor_tick_in_postgres(deployment, materialized):
    (deployment.root / "daemon").mkdir()
    daemon = Daemon(deployment.root / "daemon", deployment.env, DEFINITIONS)
    daemon.start()
    try:
        wait_for(f"a finished {LANDING_SENSOR} tick in Postgres",
                 lambda: _finished_ticks(deployment), daemon, timeout=150)
    finally:
        daemon.stop()

    status, body = _finished_ticks(deployment)[0]
    # The file the CLI run committed is listed and recognized from the file ledger: no run.
    assert status == "SKIPPED", body
    assert "1 new objects, 1 already committed: 0 run(s)" in body["skip_reason"], body
    heartbeats = {daemon_type for (daemon_type,) in deployment.query(
        "SELECT daemon_type FROM daemon_heartbeats")}
    assert {"SENSOR", "QUEUED_RUN_COORDINATOR"} <= heartbeats
    with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
        sensor = next(state for state in instance.all_instigator_state()
                      if state.instigator_name == LANDING_SENSOR)
        ticks = instance.get_ticks(sensor.instigator_origin_id, sensor.selector_id)
        assert ticks[-1].skip_reason == body["skip_reason"]
        assert len(instance.get_runs()) == 1, "the daemon started a run for a committed file"

    # Everything Dagster wrote, on this host and in the compute-log bucket: no password, only
    # the variable's name.
    written = {str(path): path.read_bytes()
               for path in [daemon.log, *(p for p in deployment.home.rglob("*") if p.is_file())]}
    written |= {f"s3://{deployment.bucket}/{key}": body
                for key, body in _compute_logs(deployment).items()}
    assert len(written) > 2
    for where, data in written.items():
        assert deployment.server.password.encode() not in data, where
    assert "env: DAGSTER_PG_PASSWORD" in (deployment.home / "dagster.yaml").read_text()


def _finished_ticks(deployment: Deployment) -> list[tuple[str, dict]]:
    """(status, body) of the landing sensor's ticks that have ended, oldest first (the body is
    Dagster's serialized TickData, which stores the sensor's name as ``job_name``)."""
    rows = deployment.query(
        "SELECT status, tick_body FROM job_ticks WHERE type = 'SENSOR' ORDER BY id")
    ticks = [(status, json.loads(body)) for status, body in rows]
    return [(status, body) for status, body in ticks
            if body.get("job_name") == LANDING_SENSOR and status != "STARTED"]


def _compute_logs(deployment: Deployment) -> dict[str, bytes]:
    """Every object under the compute-log prefix of the deployment's bucket, by key."""
    client, bucket = deployment.compute_logs, deployment.bucket
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                             Prefix="dagster/compute-logs/")
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for page in pages for o in page.get("Contents", [])}
