"""MANUFACTURING_ENV selects the resources; the keys are the same in every environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from manufacturing_ingest.cli import main
from manufacturing_ingest.databricks.session import ClusterSparkResource
from manufacturing_ingest.orchestration import build_definitions
from manufacturing_ingest.orchestration.resources import (
    RESOURCE_KEYS,
    InProcessStep,
    LandingZoneResource,
    SparkResource,
    resources_for,
)
from manufacturing_ingest.settings import ReadMode, Settings

# Placeholders: loading definitions reads no secret and calls no workspace.
DATABRICKS = {
    "MANUFACTURING_ENV": "databricks",
    "DATABRICKS_HOST": "https://dbc-placeholder.cloud.databricks.com",
    "DATABRICKS_TOKEN": "placeholder-token",
    "MANUFACTURING_DATABRICKS_EXECUTION": "step-launcher",
    "MANUFACTURING_DATABRICKS_CLUSTER_ID": "0000-000000-placeholder",
    "MANUFACTURING_DATABRICKS_WHEEL": "dbfs:/libs/manufacturing_ingest-0.1.0-py3-none-any.whl",
}
# The other three ways a bronze step reaches Databricks (MANUFACTURING_DATABRICKS_EXECUTION).
PIPES_SERVERLESS = {
    **{k: v for k, v in DATABRICKS.items() if k != "MANUFACTURING_DATABRICKS_CLUSTER_ID"},
    "MANUFACTURING_DATABRICKS_EXECUTION": "pipes-serverless",
    "MANUFACTURING_DATABRICKS_WHEEL": "/Volumes/main/manufacturing/artifacts/"
                                      "manufacturing_ingest-0.1.0-py3-none-any.whl",
    "MANUFACTURING_DATABRICKS_VOLUME": "/Volumes/main/manufacturing/pipes",
}
CONNECT_SERVERLESS = {
    **{k: v for k, v in DATABRICKS.items() if not k.startswith("MANUFACTURING_DATABRICKS_")},
    "MANUFACTURING_DATABRICKS_EXECUTION": "connect-serverless",
}
CONNECT_CLUSTER = {**CONNECT_SERVERLESS, "MANUFACTURING_DATABRICKS_EXECUTION": "connect-cluster",
                   "MANUFACTURING_DATABRICKS_CLUSTER_ID": "0000-000000-placeholder"}
ENVIRONMENTS = {"local": {"MANUFACTURING_ENV": "local"}, "step-launcher": DATABRICKS,
                "pipes-serverless": PIPES_SERVERLESS, "connect-serverless": CONNECT_SERVERLESS,
                "connect-cluster": CONNECT_CLUSTER}


def test_each_environment_gets_its_own_spark_and_step_launcher_under_the_same_keys():
    local = resources_for(Settings.from_env({"MANUFACTURING_SPARK_MASTER": "local[3]"}))
    databricks = resources_for(Settings.from_env(DATABRICKS))
    assert tuple(local) == tuple(databricks) == RESOURCE_KEYS
    assert isinstance(local["spark"], SparkResource) and local["spark"].master == "local[3]"
    assert isinstance(local["step_launcher"], InProcessStep)
    assert isinstance(databricks["spark"], ClusterSparkResource)
    assert isinstance(databricks["step_launcher"], dg.ResourceDefinition)


def test_the_databricks_launcher_takes_the_token_by_name_and_forwards_no_secret(monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-SENTINEL")
    settings = Settings.from_env({**DATABRICKS, "DATABRICKS_TOKEN": "dapi-SENTINEL",
                                  "MANUFACTURING_LANDING_URL": "s3://plant/landing",
                                  "MANUFACTURING_LAKEHOUSE_URL": "s3://plant/lakehouse"})
    assert "dapi-SENTINEL" not in repr(settings)
    with dg.build_resources({"launcher": resources_for(settings)["step_launcher"]}) as built:
        launcher = built.launcher
    assert isinstance(launcher, dg.StepLauncher)
    assert launcher.databricks_token == "dapi-SENTINEL"  # read from the variable at start
    assert launcher.secrets == []
    # On the cluster Spark reads the landed objects itself (the direct reader).
    assert launcher.env_variables == {"MANUFACTURING_ENV": "databricks",
                                      "MANUFACTURING_LANDING_URL": "s3://plant/landing",
                                      "MANUFACTURING_LAKEHOUSE_URL": "s3://plant/lakehouse",
                                      "MANUFACTURING_READ_MODE": "direct"}


def test_a_new_job_cluster_comes_from_the_pool_with_the_instance_profile(monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", DATABRICKS["DATABRICKS_TOKEN"])
    settings = Settings.from_env({
        **{k: v for k, v in DATABRICKS.items() if k != "MANUFACTURING_DATABRICKS_CLUSTER_ID"},
        "MANUFACTURING_DATABRICKS_INSTANCE_POOL_ID": "pool-1",
        "MANUFACTURING_DATABRICKS_SPARK_VERSION": "17.3.x-scala2.13",
        "MANUFACTURING_DATABRICKS_NUM_WORKERS": "3",
        "MANUFACTURING_DATABRICKS_INSTANCE_PROFILE_ARN":
            "arn:aws:iam::123456789012:instance-profile/bronze",
    })
    with dg.build_resources({"launcher": resources_for(settings)["step_launcher"]}) as built:
        cluster = built.launcher.run_config["cluster"]
    assert cluster["new"]["nodes"] == {"instance_pool_id": "pool-1"}
    assert cluster["new"]["size"] == {"num_workers": 3}
    assert cluster["new"]["spark_version"] == "17.3.x-scala2.13"
    assert cluster["new"]["aws_attributes"] == {
        "instance_profile_arn": "arn:aws:iam::123456789012:instance-profile/bronze"}


def test_on_the_cluster_the_step_runs_where_it_is_with_the_clusters_session():
    # Databricks sets DATABRICKS_RUNTIME_VERSION; the step needs no workspace settings there.
    on_cluster = resources_for(Settings.from_env({"MANUFACTURING_ENV": "databricks",
                                                  "DATABRICKS_RUNTIME_VERSION": "17.3"}))
    assert tuple(on_cluster) == RESOURCE_KEYS
    assert isinstance(on_cluster["step_launcher"], InProcessStep)
    assert isinstance(on_cluster["spark"], ClusterSparkResource)


def test_the_read_mode_reaches_the_landing_resource_as_its_enum():
    # The variable keeps its spelling; the resource holds the enum, not a string to re-parse.
    local = resources_for(Settings.from_env({"MANUFACTURING_READ_MODE": "direct"}))["landing"]
    assert local.read_mode is ReadMode.DIRECT
    assert resources_for(Settings.from_env(DATABRICKS))["landing"].read_mode is ReadMode.DIRECT
    assert resources_for(Settings.from_env({}))["landing"].read_mode is ReadMode.STAGED


def test_a_wrong_read_mode_in_config_fails_validation_with_the_allowed_values():
    with pytest.raises(Exception, match="'staged', 'direct' or 'autoloader'"):
        LandingZoneResource(url="/landing", read_mode="streaming")

    @dg.asset(required_resource_keys={"landing"})
    def mode(context) -> str:  # not annotated: this module postpones annotations
        read_mode = context.resources.landing.read_mode
        assert isinstance(read_mode, ReadMode)
        return read_mode.value

    def run(value: str):
        config = {"url": "/landing", "read_mode": value}
        return dg.materialize([mode],
                              resources={"landing": LandingZoneResource.configure_at_launch()},
                              run_config={"resources": {"landing": {"config": config}}})

    with pytest.raises(dg.DagsterInvalidConfigError, match="not in enum type ReadMode") as error:
        run("streaming")
    allowed = error.value.errors[0].error_data.config_type_snap.enum_values
    assert [v.value for v in allowed] == ["STAGED", "DIRECT", "AUTOLOADER"]
    # In run config Dagster spells an enum by its member names; the asset gets the enum.
    assert run("DIRECT").output_for_node("mode") == "direct"


def test_definitions_load_in_every_environment_with_the_same_surface():
    surfaces = []
    for environ in ENVIRONMENTS.values():
        defs = build_definitions(Settings.from_env(environ))
        graph = defs.resolve_asset_graph()
        surfaces.append((
            sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
            sorted(str(k) for k in graph.asset_check_keys),
            sorted(s.name for s in defs.sensors or []),
            sorted(defs.resources or {}),
        ))
    assert all(surface == surfaces[0] for surface in surfaces), surfaces
    assert surfaces[0][3] == sorted(RESOURCE_KEYS)
    assert len(surfaces[0][0]) == 6 and len(surfaces[0][1]) >= 6  # raw + bronze; their checks


def test_each_databricks_execution_gets_its_own_session_and_runner():
    from manufacturing_ingest.databricks.pipes import ServerlessBronzeJob
    from manufacturing_ingest.databricks.session import ConnectSparkResource

    pipes = resources_for(Settings.from_env(PIPES_SERVERLESS))
    assert isinstance(pipes["spark"], ClusterSparkResource)  # what the job's session is
    assert isinstance(pipes["step_launcher"], InProcessStep)
    job = pipes["remote_job"]
    assert isinstance(job, ServerlessBronzeJob) and job.remote
    assert job.volume == "/Volumes/main/manufacturing/pipes"
    assert job.step_env["MANUFACTURING_READ_MODE"] == "direct"
    assert job.environment().spec.dependencies[0] == PIPES_SERVERLESS[
        "MANUFACTURING_DATABRICKS_WHEEL"]
    assert not any(d.startswith(("pyspark", "delta-spark"))
                   for d in job.environment().spec.dependencies)
    for environ, cluster_id in ((CONNECT_SERVERLESS, ""), (CONNECT_CLUSTER,
                                                           "0000-000000-placeholder")):
        connect = resources_for(Settings.from_env(environ))
        assert isinstance(connect["spark"], ConnectSparkResource)
        assert connect["spark"].cluster_id == cluster_id
        assert isinstance(connect["step_launcher"], InProcessStep)
        assert not connect["remote_job"].remote
    for environ in ENVIRONMENTS.values():
        assert "placeholder-token" not in repr(resources_for(Settings.from_env(environ)))


@pytest.mark.subprocess
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_dagster_validates_the_definitions_in_every_environment(env, tmp_path):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATABRICKS_", "MANUFACTURING_", "DAGSTER_HOME"))}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate",
         "-m", "manufacturing_ingest.definitions"],
        env={**environ, **ENVIRONMENTS[env]}, cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_the_cli_names_the_dagster_command_that_runs_through_the_launcher(monkeypatch, capsys,
                                                                         tmp_path):
    for name, value in DATABRICKS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MANUFACTURING_LANDING_URL", str(tmp_path / "landing"))
    monkeypatch.setenv("MANUFACTURING_LAKEHOUSE_URL", str(tmp_path / "lakehouse"))
    assert main(["ingest", "--source", "sensor_data", "--partition", "2026-01-15"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: MANUFACTURING_DATABRICKS_EXECUTION=step-launcher")
    assert ("'dagster asset materialize -m manufacturing_ingest.definitions --select "
            "manufacturing_bronze/sensor_data --partition 2026-01-15'") in err[0]
    assert not (tmp_path / "lakehouse").exists()
