"""``pipes-serverless``: a bronze range materialized as a Databricks serverless job run.

The operator's command (``manufacturing-ingest ingest``) runs against the stand-in workspace,
which plays a workspace without DBFS: the project's real wheel is uploaded to a volume, the
Pipes context and messages go through the Files API, and the serverless "compute" runs the
wheel's entry point with real Spark and Delta. The token is a sentinel, so the tests can show
it never leaves the Authorization header.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.databricks.pipes import TASK_ENTRY_POINT
from manufacturing_ingest.orchestration.checks import QUALITY_CHECK, SCHEMA_DRIFT_CHECK
from manufacturing_ingest.orchestration.resources import resources_for
from manufacturing_ingest.settings import Settings
from manufacturing_ingest_tests.databricks.operator_runs import OperatorRun
from manufacturing_ingest_tests.databricks.standin import DatabricksWorkspace
from manufacturing_ingest_tests.samples import numbered_sensor_csv

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

TOKEN = f"dapi-sentinel-{uuid.uuid4().hex}"
# Set on the Dagster host for its own S3 writes; a Databricks job never receives it.
KMS_KEY = f"arn:aws:kms:eu-west-1:123456789012:key/sentinel-{uuid.uuid4().hex}"
ASSET = dg.AssetKey(["manufacturing_bronze", "sensor_data"])
DAYS = ("2026-01-15", "2026-01-16")
REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS = "/Volumes/main/manufacturing/artifacts"
PIPES_VOLUME = "/Volumes/main/manufacturing/pipes"


@dataclass
class ServerlessRun(OperatorRun):
    """An operator's command with the default execution, and the rows it landed."""

    rows: int = 0


def upload_wheel(workspace: DatabricksWorkspace, folder: Path) -> str:
    """Build the project's wheel and put it in the artifacts volume, as a deployment does."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(folder), str(REPOSITORY)], check=True, capture_output=True,
                   timeout=300)
    (wheel,) = folder.glob("manufacturing_ingest-*.whl")
    workspace.create_volume("main", "manufacturing", "artifacts")
    target = workspace.volume_local_path(f"{ARTIFACTS}/{wheel.name}")
    target.write_bytes(wheel.read_bytes())
    return f"{ARTIFACTS}/{wheel.name}"


def serverless_env(workspace: DatabricksWorkspace, root: Path, wheel: str, lakehouse: Path,
                   home: Path, **settings: str) -> dict[str, str]:
    """The Dagster host's environment for pipes-serverless (the default execution)."""
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABRICKS_", "MANUFACTURING_", "DAGSTER_"))}
    env.update({
        "MANUFACTURING_ENV": "databricks",
        "DATABRICKS_HOST": workspace.host,
        "DATABRICKS_TOKEN": TOKEN,
        "MANUFACTURING_S3_KMS_KEY_ID": KMS_KEY,
        "MANUFACTURING_DATABRICKS_WHEEL": wheel,
        "MANUFACTURING_DATABRICKS_VOLUME": PIPES_VOLUME,
        "MANUFACTURING_DATABRICKS_POLL_SECONDS": "0.5",
        "MANUFACTURING_LANDING_URL": str(root / "landing"),
        "MANUFACTURING_LAKEHOUSE_URL": str(lakehouse),
        "DAGSTER_HOME": str(home),
        **settings,
    })
    return env


def ingest_serverless(workspace: DatabricksWorkspace, root: Path, wheel: str,
                      lakehouse: Path, **settings: str) -> ServerlessRun:
    landing = root / "landing"
    rows = 0
    for day in DAYS:
        folder = landing / "raw" / "sensor-data" / day.replace("-", "/")
        folder.mkdir(parents=True)
        for n in range(2):
            (folder / f"line-{n}.csv").write_text(numbered_sensor_csv(f"S{n}", 15))
            rows += 15
    home = root / "dagster_home"
    env = serverless_env(workspace, root, wheel, lakehouse, home, **settings)
    first = len(workspace.requests)
    process = subprocess.run(
        [str(Path(sys.executable).with_name("manufacturing-ingest")), "ingest",
         "--source", "sensor_data", "--partition", DAYS[0], "--to", DAYS[-1]],
        env=env, cwd=root, capture_output=True, text=True, timeout=600,
    )
    return ServerlessRun(process, workspace.requests[first:],
                         dg.DagsterInstance.from_config(str(home)), lakehouse, rows)


@pytest.fixture(scope="module")
def wheel(databricks_workspace, tmp_path_factory) -> str:
    databricks_workspace.create_volume("main", "manufacturing", "pipes")
    return upload_wheel(databricks_workspace, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def succeeded(databricks_workspace, wheel, tmp_path_factory) -> ServerlessRun:
    root = tmp_path_factory.mktemp("serverless_success")
    return ingest_serverless(databricks_workspace, root, wheel, root / "lakehouse")


@pytest.fixture(scope="module")
def failed(databricks_workspace, wheel, tmp_path_factory) -> ServerlessRun:
    # A catalog the job's compute does not have: only the job can find that out.
    root = tmp_path_factory.mktemp("serverless_failure")
    return ingest_serverless(databricks_workspace, root, wheel, root / "lakehouse",
                             MANUFACTURING_CATALOG="no_such_catalog")


def test_a_range_runs_as_one_serverless_job_of_the_wheel_and_lands_in_delta(
        succeeded, databricks_workspace, wheel):
    assert succeeded.process.returncode == 0, succeeded.process.stderr[-3000:]
    data = DeltaTable(str(succeeded.lakehouse / "manufacturing_bronze" / "sensor_data")
                      ).to_pyarrow_table()
    assert data.num_rows == succeeded.rows == 60
    column = get_source("sensor_data").partition_column
    assert {str(d) for d in data.column(column).to_pylist()} == set(DAYS)

    (submit,) = [r for r in succeeded.requests if r.path.endswith("/jobs/runs/submit")]
    (job_run,) = [r for r in databricks_workspace.runs.values()
                  if r.task["task_key"] == submit.json()["tasks"][0]["task_key"]
                  and r.environment and r.environment["spec"]["dependencies"][0] == wheel]
    assert job_run.serverless and job_run.reported[-1] == "TERMINATED"
    assert job_run.task["python_wheel_task"]["entry_point"] == TASK_ENTRY_POINT
    dependencies = job_run.environment["spec"]["dependencies"]
    assert "dagster==1.13.27" in dependencies
    assert not any(d.startswith(("pyspark", "delta-spark")) for d in dependencies)


def test_the_instance_holds_each_partitions_materialization_and_checks(succeeded,
                                                                     databricks_workspace):
    assert succeeded.process.returncode == 0, succeeded.process.stderr[-3000:]
    materializations = succeeded.events(dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert sorted(m.partition for m in materializations) == list(DAYS)
    metadata = materializations[0].event_specific_data.materialization.metadata
    assert metadata["records"].value == 60 and metadata["run_partitions"].value == 2
    assert metadata["records_by_partition"].value == {day: 30 for day in DAYS}
    assert metadata["Databricks Job Run URL"].value.startswith(databricks_workspace.host)
    evaluations = [e.event_specific_data
                   for e in succeeded.events(dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    assert {(e.asset_check_key.name, e.partition, e.passed) for e in evaluations} == {
        (check, day, True) for check in (QUALITY_CHECK, SCHEMA_DRIFT_CHECK) for day in DAYS}
    # The job's log lines come back through Pipes into the run's log.
    messages = [entry.user_message for entry in succeeded.instance.all_logs(succeeded.run.run_id)]
    assert any("quality check of 60 new rows" in m for m in messages)
    assert succeeded.run.status == dg.DagsterRunStatus.SUCCESS


def test_no_request_touches_dbfs_and_the_context_goes_through_the_volume(succeeded):
    assert succeeded.process.returncode == 0, succeeded.process.stderr[-3000:]
    paths = [f"{r.method} {r.path}" for r in succeeded.requests]
    assert not [p for p in paths if "/api/2.0/dbfs" in p]
    assert any(p.startswith(f"PUT /api/2.0/fs/files{PIPES_VOLUME}/") for p in paths)
    assert any(p.startswith(f"GET /api/2.0/fs/files{PIPES_VOLUME}/") for p in paths)


def test_the_token_appears_only_in_the_authorization_header(succeeded, databricks_workspace):
    assert succeeded.process.returncode == 0, succeeded.process.stderr[-3000:]
    for request in succeeded.requests:
        assert TOKEN not in request.path + json.dumps(request.query)
        assert TOKEN.encode() not in request.body
        assert all(TOKEN not in value for name, value in request.headers.items()
                   if name.lower() != "authorization")
    for sentinel in (TOKEN, KMS_KEY):
        assert sentinel not in succeeded.process.stdout + succeeded.process.stderr
        assert sentinel not in json.dumps(succeeded.run.run_config)
        for entry in succeeded.instance.all_logs(succeeded.run.run_id):
            assert sentinel not in dg.serialize_value(entry)


def test_the_kms_key_id_never_reaches_the_workspace(succeeded, databricks_workspace):
    assert succeeded.process.returncode == 0, succeeded.process.stderr[-3000:]
    for request in succeeded.requests:
        assert KMS_KEY not in request.path + json.dumps(request.query) + json.dumps(
            request.headers)
        assert KMS_KEY.encode() not in request.body
    # Staged Pipes files, the job's driver logs: nothing the workspace keeps holds a secret.
    kept = [*databricks_workspace.volume_local_path(PIPES_VOLUME).rglob("*"),
            *databricks_workspace.driver_logs.rglob("*")]
    assert any(p.is_file() for p in kept)
    for path in kept:
        if path.is_file():
            data = path.read_bytes()
            assert TOKEN.encode() not in data and KMS_KEY.encode() not in data, path


def test_an_error_in_the_job_fails_the_run_with_the_remote_error_text(failed):
    assert failed.process.returncode != 0
    assert any(r.path.endswith("/jobs/runs/submit") for r in failed.requests)
    assert not failed.events(dg.DagsterEventType.ASSET_MATERIALIZATION)
    (failure,) = failed.events(dg.DagsterEventType.STEP_FAILURE)
    error = failure.step_failure_data.error
    while error.cause is not None:  # what the alert quotes: the innermost error
        error = error.cause
    assert "Error running Databricks job: Workload failed" in error.message
    assert "no_such_catalog" in error.message  # the task's own error, from the run's output
    # The CLI says it in one line, as for any error a user can fix, without a traceback.
    lines = failed.process.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "no_such_catalog" in lines[-1]
    assert "Traceback" not in failed.process.stderr
    assert failed.run.status == dg.DagsterRunStatus.FAILURE


def test_a_service_principal_signs_in_with_the_sdks_own_variables(databricks_workspace, wheel,
                                                                   monkeypatch):
    secret = f"sp-secret-{uuid.uuid4().hex}"
    environ = {"MANUFACTURING_ENV": "databricks", "DATABRICKS_HOST": databricks_workspace.host,
               "DATABRICKS_CLIENT_ID": "bronze-sp", "DATABRICKS_CLIENT_SECRET": secret,
               "MANUFACTURING_DATABRICKS_WHEEL": wheel,
               "MANUFACTURING_DATABRICKS_VOLUME": PIPES_VOLUME}
    for name in ("DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    job = resources_for(Settings.from_env(environ))["remote_job"]
    assert secret not in repr(job)
    first = len(databricks_workspace.requests)
    client = job.workspace_client()
    client.files.get_directory_metadata(PIPES_VOLUME)
    requests = databricks_workspace.requests[first:]
    (token_request,) = [r for r in requests if r.path == "/oidc/v1/token"]
    basic = base64.b64decode(token_request.headers["Authorization"].split()[1]).decode()
    assert basic == f"bronze-sp:{secret}"
    (volume_request,) = [r for r in requests
                         if r.path == f"/api/2.0/fs/directories{PIPES_VOLUME}"]
    assert volume_request.method == "HEAD"
    assert volume_request.headers["Authorization"].startswith("Bearer standin-oauth-")


@pytest.fixture(scope="module")
def maintained(databricks_workspace, wheel, succeeded) -> ServerlessRun:
    """The table_maintenance job, as its schedule runs it, on the bronze table just written."""
    root = succeeded.lakehouse.parent
    env = serverless_env(databricks_workspace, root, wheel, succeeded.lakehouse,
                         root / "maintenance_home")
    # The test's partitions are months old: widen the look-back so they are examined. The one
    # table written here; the bookkeeping tables' maintenance is the same code, tested locally.
    config = root / "maintenance.yaml"
    config.write_text(json.dumps({"ops": {"maintain_tables": {"config": {
        "lookback_days": 3650, "sources": ["sensor_data"], "bookkeeping": False}}}}))
    first = len(databricks_workspace.requests)
    process = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "job", "execute",
         "-m", "manufacturing_ingest.definitions", "-j", "table_maintenance",
         "--config", str(config)],
        env=env, cwd=root, capture_output=True, text=True, timeout=600,
    )
    return ServerlessRun(process, databricks_workspace.requests[first:],
                         dg.DagsterInstance.from_config(env["DAGSTER_HOME"]), succeeded.lakehouse,
                         succeeded.rows)


def test_table_maintenance_runs_as_a_serverless_job_too(maintained, databricks_workspace):
    assert maintained.process.returncode == 0, maintained.process.stderr[-3000:]
    assert maintained.run.status == dg.DagsterRunStatus.SUCCESS
    (submit,) = [r for r in maintained.requests if r.path.endswith("/jobs/runs/submit")]
    (task,) = submit.json()["tasks"]
    assert task["python_wheel_task"]["entry_point"] == "manufacturing-ingest-maintenance-task"
    assert not [r for r in maintained.requests if "/api/2.0/dbfs" in r.path]
    observations = maintained.events(dg.DagsterEventType.ASSET_OBSERVATION)
    assert sorted(o.event_specific_data.asset_observation.partition for o in observations) == [
        *DAYS]
    assert all(o.event_specific_data.asset_observation.asset_key == ASSET for o in observations)
    (output,) = maintained.events(dg.DagsterEventType.STEP_OUTPUT)
    metadata = output.event_specific_data.metadata
    assert metadata["sensor_data_files_before"].value >= 2
    assert "Databricks Job Run URL" in metadata
    # The job changed files, never rows.
    data = DeltaTable(str(maintained.lakehouse / "manufacturing_bronze" / "sensor_data"))
    assert data.to_pyarrow_table().num_rows == maintained.rows
