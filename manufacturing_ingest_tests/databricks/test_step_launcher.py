"""Bronze partitions materialized through dagster-databricks' step launcher.

Each run is a real ``dagster asset materialize`` process with ``MANUFACTURING_ENV=databricks``
against the stand-in workspace, whose "cluster" runs the step with real Spark and Delta. The
token is a sentinel, so the tests can show it never leaves the Authorization header.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.orchestration.checks import QUALITY_CHECK, SCHEMA_DRIFT_CHECK
from manufacturing_ingest.orchestration.resources import resources_for
from manufacturing_ingest.settings import Settings
from manufacturing_ingest_tests.databricks.operator_runs import OperatorRun
from manufacturing_ingest_tests.databricks.standin import CLUSTER_ID, DatabricksWorkspace, Request
from manufacturing_ingest_tests.samples import numbered_sensor_csv

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

TOKEN = f"dapi-sentinel-{uuid.uuid4().hex}"
WHEEL = "dbfs:/libs/manufacturing_ingest-0.1.0-py3-none-any.whl"
STAGING = "/manufacturing_ingest/staging"
ASSET = dg.AssetKey(["manufacturing_bronze", "sensor_data"])
PARTITION = "2026-01-15"


def land_sensor_files(landing: Path, files: int = 2, rows: int = 25) -> int:
    folder = landing / "raw" / "sensor-data" / PARTITION.replace("-", "/")
    folder.mkdir(parents=True)
    for n in range(files):
        (folder / f"line-{n}.csv").write_text(numbered_sensor_csv(f"S{n}", rows))
    return files * rows


def materialize_on_databricks(workspace: DatabricksWorkspace, root: Path,
                              lakehouse: Path) -> OperatorRun:
    """Materialize the sensor_data partition as an operator would, through the launcher."""
    home = root / "dagster_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABRICKS_", "MANUFACTURING_", "DAGSTER_"))}
    env.update({
        "MANUFACTURING_ENV": "databricks",
        "MANUFACTURING_DATABRICKS_EXECUTION": "step-launcher",
        "DATABRICKS_HOST": workspace.host,
        "DATABRICKS_TOKEN": TOKEN,
        "MANUFACTURING_DATABRICKS_CLUSTER_ID": CLUSTER_ID,
        "MANUFACTURING_DATABRICKS_WHEEL": WHEEL,
        "MANUFACTURING_DATABRICKS_STAGING_PREFIX": STAGING,
        "MANUFACTURING_DATABRICKS_POLL_SECONDS": "0.5",
        "MANUFACTURING_LANDING_URL": str(root / "landing"),
        "MANUFACTURING_LAKEHOUSE_URL": str(lakehouse),
        "DAGSTER_HOME": str(home),
    })
    first = len(workspace.requests)
    process = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "asset", "materialize",
         "-m", "manufacturing_ingest.definitions", "--select", ASSET.to_user_string(),
         "--partition", PARTITION],
        env=env, cwd=root, capture_output=True, text=True, timeout=600,
    )
    return OperatorRun(process, workspace.requests[first:],
                       dg.DagsterInstance.from_config(str(home)), lakehouse)


@pytest.fixture(scope="module")
def landed_rows(tmp_path_factory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("databricks_success")
    return root, land_sensor_files(root / "landing")


@pytest.fixture(scope="module")
def succeeded(databricks_workspace, landed_rows) -> OperatorRun:
    root, _ = landed_rows
    return materialize_on_databricks(databricks_workspace, root, root / "lakehouse")


@pytest.fixture(scope="module")
def failed(databricks_workspace, tmp_path_factory) -> OperatorRun:
    root = tmp_path_factory.mktemp("databricks_failure")
    land_sensor_files(root / "landing", files=1, rows=3)
    not_a_folder = root / "lakehouse"
    not_a_folder.write_text("a file where the lakehouse should be")
    return materialize_on_databricks(databricks_workspace, root, not_a_folder)


def test_a_partition_goes_upload_submit_poll_and_its_events_come_back(succeeded,
                                                                     databricks_workspace):
    assert succeeded.process.returncode == 0, succeeded.process.stderr[-3000:]
    paths = succeeded.paths()
    uploads = [r.json()["path"] for r in succeeded.requests
               if r.path == "/api/2.0/dbfs/create"]
    step = f"{STAGING}/{succeeded.run.run_id}/manufacturing_bronze__sensor_data"
    assert {f"{step}/{name}" for name in ("databricks_step_main.py", "code.zip",
                                          "step_run_ref.pkl", "config.pkl")} <= set(uploads)
    submit = paths.index("POST /api/2.2/jobs/runs/submit")
    assert max(i for i, p in enumerate(paths) if p == "POST /api/2.0/dbfs/close") < submit
    polls = [i for i, p in enumerate(paths) if p == "GET /api/2.2/jobs/runs/get"]
    reads = [r.query["path"] for r in succeeded.requests if r.path == "/api/2.0/dbfs/read"]
    assert len(polls) >= 2 and polls[0] > submit
    assert f"{step}/0_events.pkl" in reads and f"{step}/stderr" in reads
    # The session's workspace also ran other modules' jobs (serverless wheel tasks among them).
    (job_run,) = [r for r in databricks_workspace.runs.values()
                  if step in r.task.get("spark_python_task", {}).get("python_file", "")]
    assert job_run.reported[0] == "PENDING" and job_run.reported[-1] == "TERMINATED"
    assert "RUNNING" in job_run.reported

    (task,) = succeeded.requests[submit].json()["tasks"]
    assert task["existing_cluster_id"] == CLUSTER_ID
    assert {"whl": WHEEL} in task["libraries"]
    assert {"pypi": {"package": "pandera==0.35.0"}} in task["libraries"]
    packages = {lib["pypi"]["package"].split("=")[0] for lib in task["libraries"]
                if "pypi" in lib}
    assert "pyspark" not in packages and "delta-spark" not in packages  # the runtime's own
    assert task["spark_python_task"]["parameters"][0].startswith("/dbfs/")
    states = [r for r in succeeded.requests if r.path == "/api/2.2/jobs/runs/get"]
    assert states and all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in states)


def test_the_rows_land_in_delta_and_the_instance_records_metadata_and_checks(succeeded,
                                                                            landed_rows):
    assert succeeded.process.returncode == 0, succeeded.process.stderr[-3000:]
    _, rows = landed_rows
    table = DeltaTable(str(succeeded.lakehouse / "manufacturing_bronze" / "sensor_data"))
    data = table.to_pyarrow_table()
    assert data.num_rows == rows
    assert {"_source_file", "_ingested_at", "_rescued_data"} <= set(data.column_names)

    materialization = succeeded.instance.get_latest_materialization_event(ASSET)
    metadata = materialization.asset_materialization.metadata
    assert materialization.asset_materialization.partition == PARTITION
    assert metadata["records"].value == rows
    assert metadata["files_processed"].value == 2
    assert metadata["delta_version"].value == table.version()

    evaluations = succeeded.events(dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    checks = {e.event_specific_data.asset_check_key.name for e in evaluations}
    assert {QUALITY_CHECK, SCHEMA_DRIFT_CHECK} <= checks  # evaluated on the cluster
    assert succeeded.run.status == dg.DagsterRunStatus.SUCCESS


def test_an_error_on_the_cluster_fails_the_step_with_the_remote_error_text(failed):
    assert failed.process.returncode != 0
    assert "POST /api/2.2/jobs/runs/submit" in failed.paths()
    (failure,) = failed.events(dg.DagsterEventType.STEP_FAILURE)
    error = failure.step_failure_data.error.to_string()
    assert f"lakehouse {failed.lakehouse}" in error and "is not a folder" in error
    assert "point MANUFACTURING_LAKEHOUSE_URL at a folder" in error
    assert failed.run.status == dg.DagsterRunStatus.FAILURE


def test_the_token_appears_only_in_the_authorization_header(succeeded, databricks_workspace):
    assert succeeded.process.returncode == 0, succeeded.process.stderr[-3000:]
    for request in succeeded.requests:
        assert TOKEN not in request.path + json.dumps(request.query)
        assert TOKEN not in request.body.decode(errors="replace")
        assert all(TOKEN not in value for name, value in request.headers.items()
                   if name.lower() != "authorization")
        for block in _uploaded_blocks(request):
            assert TOKEN.encode() not in block
    for staged in databricks_workspace.dbfs_root.rglob("*"):
        if staged.is_file():
            assert TOKEN.encode() not in staged.read_bytes(), staged
            if staged.suffix == ".zip":
                with zipfile.ZipFile(staged) as archive:
                    for name in archive.namelist():
                        assert TOKEN.encode() not in archive.read(name), name
    assert TOKEN not in succeeded.process.stdout + succeeded.process.stderr
    assert TOKEN not in json.dumps(succeeded.run.run_config)
    for entry in succeeded.instance.all_logs(succeeded.run.run_id):
        assert TOKEN not in dg.serialize_value(entry)


def _uploaded_blocks(request: Request) -> list[bytes]:
    """What a DBFS upload carried, decoded (zips opened), to search it for the token."""
    if request.path not in ("/api/2.0/dbfs/add-block", "/api/2.0/dbfs/put"):
        return []
    body = request.json()
    data = base64.b64decode(body.get("data") or body.get("contents") or "")
    blocks = [data]
    if data.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                blocks += [archive.read(name) for name in archive.namelist()]
        except zipfile.BadZipFile:
            pass  # a block of a zip larger than one block; the staged file is searched whole
    return blocks


def test_a_service_principal_signs_in_with_the_sdks_own_variables(databricks_workspace,
                                                                   monkeypatch):
    secret = f"sp-secret-{uuid.uuid4().hex}"
    environ = {"MANUFACTURING_ENV": "databricks", "DATABRICKS_HOST": databricks_workspace.host,
               "DATABRICKS_CLIENT_ID": "bronze-sp", "DATABRICKS_CLIENT_SECRET": secret,
               "MANUFACTURING_DATABRICKS_EXECUTION": "step-launcher",
               "MANUFACTURING_DATABRICKS_CLUSTER_ID": CLUSTER_ID,
               "MANUFACTURING_DATABRICKS_WHEEL": WHEEL}
    for name in ("DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    launcher_def = resources_for(Settings.from_env(environ))["step_launcher"]
    first = len(databricks_workspace.requests)
    with dg.build_resources({"launcher": launcher_def}) as built:
        client = built.launcher.databricks_runner.client.workspace_client
        assert client.clusters.get(CLUSTER_ID).cluster_id == CLUSTER_ID
    requests = databricks_workspace.requests[first:]
    (token_request,) = [r for r in requests if r.path == "/oidc/v1/token"]
    basic = base64.b64decode(token_request.headers["Authorization"].split()[1]).decode()
    assert basic == f"bronze-sp:{secret}"
    (cluster_request,) = [r for r in requests if r.path == "/api/2.1/clusters/get"]
    assert cluster_request.headers["Authorization"].startswith("Bearer standin-oauth-")
    assert all(secret not in r.body.decode(errors="replace") for r in requests)


def test_a_task_that_crashes_on_the_cluster_fails_its_run_with_the_error_in_the_output(
        databricks_workspace, tmp_path):
    from dagster_databricks.databricks import DatabricksError, DatabricksJobRunner

    runner = DatabricksJobRunner(host=databricks_workspace.host, token=TOKEN,
                                 poll_interval_sec=0.5)
    crash = io.BytesIO(b"import sys\nraise SystemExit('cluster library missing: ' + sys.argv[1])\n")
    runner.client.put_file(crash, "dbfs://tasks/crash.py", overwrite=True)
    run_id = runner.submit_run(
        {"cluster": {"existing": CLUSTER_ID}, "install_default_libraries": False},
        {"spark_python_task": {"python_file": "dbfs:/tasks/crash.py",
                               "parameters": ["/dbfs/tasks/crash.py"]}},
    )
    with pytest.raises(DatabricksError, match=r"result state: .*FAILED.*Workload failed"):
        runner.client.wait_for_run_to_complete(logging.getLogger(__name__), run_id, 0.5, 300)
    output = runner.client.workspace_client.jobs.get_run_output(run_id)
    local_file = databricks_workspace.dbfs_root / "tasks" / "crash.py"
    assert output.error == f"cluster library missing: {local_file}"  # /dbfs/ read through FUSE
    reported = databricks_workspace.runs[run_id].reported
    assert reported[0] == "PENDING" and "RUNNING" in reported and reported[-1] == "TERMINATED"
