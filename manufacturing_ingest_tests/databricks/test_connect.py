"""``connect-serverless``: the bronze step runs in the Dagster run's process on a Connect session.

Databricks Connect is Spark Connect with Databricks' sign-in in front. Offline there is no
Databricks compute, so a local Spark Connect server (``manufacturing-ingest spark-server``)
stands in for serverless compute: ``MANUFACTURING_SPARK_REMOTE`` points the Connect resource at
it instead of at the workspace. Each case runs twice: with this environment's pyspark Connect
client, and from ``.venv-databricks`` (``scripts/setup-databricks-connect``: Python 3.12 with the
``databricks`` extra), where the session is ``DatabricksSession`` of databricks-connect itself.

What this proves: with ``MANUFACTURING_ENV=databricks`` and a Connect execution, the CLI and the
definitions run the step on the Connect session with direct reads (the default there: Spark
reads the landed objects itself), and the asset, its checks and its metadata are the same as
locally. What it cannot prove offline: Databricks' own sign-in and serverless session start
(``DatabricksSession.builder.serverless()``), which need a workspace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.orchestration.checks import QUALITY_CHECK, SCHEMA_DRIFT_CHECK
from manufacturing_ingest_tests.samples import numbered_sensor_csv

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

TOKEN = f"dapi-sentinel-{uuid.uuid4().hex}"
ASSET = dg.AssetKey(["manufacturing_bronze", "sensor_data"])
PARTITION = "2026-01-15"
REPOSITORY = Path(__file__).resolve().parents[2]
# The CLI of each client's environment.
CLIENTS = {
    "pyspark": Path(sys.executable).with_name("manufacturing-ingest"),
    "databricks-connect": REPOSITORY / ".venv-databricks" / "bin" / "manufacturing-ingest",
}


@pytest.fixture(scope="module", params=CLIENTS)
def connect_run(request, tmp_path_factory, spark_server, databricks_workspace):
    cli = CLIENTS[request.param]
    assert cli.exists(), f"{cli} is missing: run scripts/setup-databricks-connect"
    root = tmp_path_factory.mktemp("connect_serverless")
    folder = root / "landing" / "raw" / "sensor-data" / PARTITION.replace("-", "/")
    folder.mkdir(parents=True)
    for n in range(3):
        (folder / f"line-{n}.csv").write_text(numbered_sensor_csv(f"C{n}", 20))
    home = root / "dagster_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABRICKS_", "MANUFACTURING_", "DAGSTER_"))}
    env.update({
        "MANUFACTURING_ENV": "databricks",
        "MANUFACTURING_DATABRICKS_EXECUTION": "connect-serverless",
        "DATABRICKS_HOST": databricks_workspace.host,
        "DATABRICKS_TOKEN": TOKEN,
        "MANUFACTURING_SPARK_REMOTE": spark_server.url,
        "MANUFACTURING_LANDING_URL": str(root / "landing"),
        "MANUFACTURING_LAKEHOUSE_URL": str(root / "lakehouse"),
        "DAGSTER_HOME": str(home),
    })
    first = len(databricks_workspace.requests)
    # As an operator runs it: the CLI materializes the partition through the definitions.
    process = subprocess.run(
        [str(cli), "ingest", "--source", "sensor_data", "--partition", PARTITION],
        env=env, cwd=root, capture_output=True, text=True, timeout=600,
    )
    return (process, root, dg.DagsterInstance.from_config(str(home)),
            databricks_workspace.requests[first:])


def test_the_bronze_asset_runs_end_to_end_on_a_connect_session(connect_run):
    process, root, instance, _ = connect_run
    assert process.returncode == 0, process.stderr[-3000:]
    table = DeltaTable(str(root / "lakehouse" / "manufacturing_bronze" / "sensor_data"))
    data = table.to_pyarrow_table()
    assert data.num_rows == 60
    folder = root / "landing" / "raw" / "sensor-data" / "2026" / "01" / "15"
    assert {Path(uri.removeprefix("file:")).name
            for uri in data.column("_source_file").to_pylist()} == {
        f"line-{n}.csv" for n in range(3)}
    assert all(str(folder) in uri for uri in data.column("_source_file").to_pylist())

    (run,) = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    materialization = instance.get_latest_materialization_event(ASSET).asset_materialization
    assert materialization.partition == PARTITION
    assert materialization.metadata["records"].value == 60
    assert materialization.metadata["files_processed"].value == 3
    assert materialization.metadata["delta_version"].value == table.version()
    evaluations = [e.dagster_event.event_specific_data for e in instance.all_logs(run.run_id)
                   if e.dagster_event and e.dagster_event.event_type
                   == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    assert {(e.asset_check_key.name, e.partition, e.passed) for e in evaluations} >= {
        (QUALITY_CHECK, PARTITION, True), (SCHEMA_DRIFT_CHECK, PARTITION, True)}


def test_the_connect_path_calls_no_dbfs_and_keeps_the_token_to_itself(connect_run):
    process, _, instance, requests = connect_run
    assert process.returncode == 0, process.stderr[-3000:]
    # The session is the Connect server's; the workspace's REST API is not called at all.
    assert not any(r.path.startswith("/api/2.0/dbfs") for r in requests)
    (run,) = instance.get_runs()
    assert TOKEN not in process.stdout + process.stderr
    assert TOKEN not in str(run.run_config)
    for entry in instance.all_logs(run.run_id):
        assert TOKEN not in dg.serialize_value(entry)
