"""Settings: defaults, URLs, and refusing what cannot work."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from manufacturing_ingest.settings import (
    ConfigurationError,
    DatabricksAuth,
    Execution,
    ReadMode,
    Settings,
)

DATABRICKS = {
    "MANUFACTURING_ENV": "databricks",
    "DATABRICKS_HOST": "https://dbc-1234.cloud.databricks.com/",
    "DATABRICKS_TOKEN": "dapi-SENTINEL",
    "MANUFACTURING_DATABRICKS_CLUSTER_ID": "0101-000000-bronze",
    "MANUFACTURING_DATABRICKS_EXECUTION": "step-launcher",
    "MANUFACTURING_DATABRICKS_WHEEL": "/Volumes/main/libs/manufacturing_ingest-0.1.0-py3-none-any"
                                      ".whl",
}
# A new workspace: no DBFS, serverless jobs through Pipes (the default execution).
PIPES = {
    "MANUFACTURING_ENV": "databricks",
    "DATABRICKS_HOST": "https://dbc-1234.cloud.databricks.com",
    "DATABRICKS_CLIENT_ID": "bronze-sp",
    "DATABRICKS_CLIENT_SECRET": "sp-SENTINEL",
    "MANUFACTURING_DATABRICKS_WHEEL": "/Volumes/main/libs/manufacturing_ingest-0.1.0-py3-none-any"
                                      ".whl",
    "MANUFACTURING_DATABRICKS_VOLUME": "/Volumes/main/manufacturing/pipes/",
}


def test_defaults_are_local_and_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.env == "local"
    assert settings.landing_url == str(tmp_path / ".data" / "landing")
    assert settings.lakehouse_url == str(tmp_path / ".data" / "lakehouse")


def test_urls_keep_their_scheme_and_unknown_env_is_refused():
    settings = Settings.from_env({"MANUFACTURING_LANDING_URL": "s3://plant-bucket/landing/",
                                  **DATABRICKS})
    assert settings.landing_url == "s3://plant-bucket/landing"
    assert settings.env == "databricks"
    with pytest.raises(ConfigurationError, match="MANUFACTURING_ENV='prod'"):
        Settings.from_env({"MANUFACTURING_ENV": "prod"})



def test_alert_settings_record_whether_secrets_are_set_never_their_values():
    environ = {
        "MANUFACTURING_ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T0KEN-SENTINEL",
        "MANUFACTURING_ALERT_SMTP_HOST": "smtp.plant.example",
        "MANUFACTURING_ALERT_SMTP_SENDER": "dagster@plant.example",
        "MANUFACTURING_ALERT_SMTP_RECIPIENTS": "ops@plant.example, quality@plant.example",
        "MANUFACTURING_ALERT_SMTP_USERNAME": "alerts",
        "MANUFACTURING_ALERT_SMTP_PASSWORD": "pw-SENTINEL",
        "MANUFACTURING_UI_URL": "https://dagster.plant.example/",
    }
    alerts = Settings.from_env(environ).alerts
    assert alerts.webhook and alerts.email and alerts.smtp_password
    assert alerts.smtp_recipients == ("ops@plant.example", "quality@plant.example")
    assert (alerts.smtp_port, alerts.smtp_starttls, alerts.interval_seconds) == (587, True, 30)
    assert alerts.ui_url == "https://dagster.plant.example"
    assert "SENTINEL" not in repr(Settings.from_env(environ))

    from manufacturing_ingest.orchestration.resources import resources_for

    config = resources_for(Settings.from_env(environ))["alerts"].model_dump()
    assert config["webhook_url"] == "MANUFACTURING_ALERT_WEBHOOK_URL"  # a dg.EnvVar: the name
    assert config["smtp_password"] == "MANUFACTURING_ALERT_SMTP_PASSWORD"
    assert not Settings.from_env({}).alerts.webhook and not Settings.from_env({}).alerts.email


@pytest.mark.parametrize("environ, says", [
    ({"MANUFACTURING_ALERT_SMTP_HOST": "smtp.plant.example",
      "MANUFACTURING_ALERT_SMTP_SENDER": "dagster@plant.example"},
     "MANUFACTURING_ALERT_SMTP_RECIPIENTS"),
    ({"MANUFACTURING_ALERT_SMTP_HOST": "smtp.plant.example",
      "MANUFACTURING_ALERT_SMTP_SENDER": "dagster@plant.example",
      "MANUFACTURING_ALERT_SMTP_RECIPIENTS": "ops@plant.example",
      "MANUFACTURING_ALERT_SMTP_USERNAME": "alerts"},
     "set both MANUFACTURING_ALERT_SMTP_USERNAME and MANUFACTURING_ALERT_SMTP_PASSWORD"),
    ({"MANUFACTURING_ALERT_SMTP_PORT": "smtp"}, "MANUFACTURING_ALERT_SMTP_PORT='smtp'"),
    ({"MANUFACTURING_ALERT_SMTP_STARTTLS": "maybe"}, "is not true or false"),
    ({"MANUFACTURING_ALERT_INTERVAL_SECONDS": "0"}, "from 1 to 3600"),
    ({"MANUFACTURING_UI_URL": "dagster.plant.example"}, "MANUFACTURING_UI_URL must be"),
    ({"MANUFACTURING_LANDING_INTERVAL_SECONDS": "1"}, "from 5 to 3600"),
    ({"MANUFACTURING_SWEEP_INTERVAL_MINUTES": "daily"}, "from 1 to 43200"),
    ({"MANUFACTURING_SWEEP_BUDGET_SECONDS": "120"}, "from 1 to 40"),
    ({"MANUFACTURING_LANDING_URL": "s3://plant-landing/manufacturing",
      "MANUFACTURING_QUEUE_URL_SENSORS": "https://sqs.eu-west-1.amazonaws.com/1/q"},
     "no source 'sensors'; set one of MANUFACTURING_QUEUE_URL_SENSOR_DATA"),
    ({"MANUFACTURING_LANDING_URL": "s3://plant-landing/manufacturing",
      "MANUFACTURING_QUEUE_URL_SENSOR_DATA": "arn:aws:sqs:eu-west-1:1:q"},
     "is not an SQS queue URL"),
    ({"MANUFACTURING_QUEUE_URL_SENSOR_DATA": "https://sqs.eu-west-1.amazonaws.com/1/q"},
     "file notification mode needs an s3:// MANUFACTURING_LANDING_URL"),
    ({"MANUFACTURING_READ_MODE": "streaming"}, "is not one of staged, direct, autoloader"),
    ({"MANUFACTURING_READ_MODE": "autoloader"}, "autoloader needs MANUFACTURING_ENV=databricks"),
    ({"MANUFACTURING_SPARK_REMOTE": "127.0.0.1:15002"}, "expected a Spark Connect URL"),
    ({"MANUFACTURING_CATALOG": "main.manufacturing_bronze"}, "expected a catalog name"),
    ({"MANUFACTURING_SPARK_LOG_LEVEL": "loud"}, "'loud' is not one of OFF, FATAL, ERROR, WARN"),
])
def test_settings_that_cannot_work_are_refused(environ, says):
    with pytest.raises(ConfigurationError, match=says):
        Settings.from_env(environ)


def test_the_sweep_interval_comes_from_the_catalog_unless_settings_override_it():
    from datetime import timedelta

    from manufacturing_ingest.catalog import CATALOG
    from manufacturing_ingest.orchestration import build_definitions

    default = Settings.from_env({})
    assert (default.sweep_interval_minutes, default.sweep_budget_seconds) == (None, 20)
    assert all(default.with_sweep_interval(s).sweep_interval == timedelta(days=1)
               for s in CATALOG.values())
    hourly = Settings.from_env({"MANUFACTURING_SWEEP_INTERVAL_MINUTES": "60",
                                "MANUFACTURING_SWEEP_BUDGET_SECONDS": "5"})
    sensor = build_definitions(hourly).get_sensor_def("sensor_data_landing_sensor")
    assert "Every hour it also sweeps the whole prefix" in sensor.description
    assert "Every day it also sweeps" in build_definitions(default).get_sensor_def(
        "sensor_data_landing_sensor").description


def test_a_queue_url_puts_that_source_in_file_notification_mode():
    from manufacturing_ingest.orchestration.resources import resources_for

    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/plant-landing-sensor-data"
    settings = Settings.from_env({"MANUFACTURING_LANDING_URL": "s3://plant-landing/manufacturing",
                                  "MANUFACTURING_QUEUE_URL_SENSOR_DATA": url})
    assert dict(settings.queue_urls) == {"sensor_data": url}
    landing = resources_for(settings)["landing"]
    assert landing.queue_url("sensor_data") == url
    assert landing.queue_url("equipment_logs") is None  # still listing


def test_databricks_settings_keep_names_and_shapes_never_the_token():
    settings = Settings.from_env({**DATABRICKS, "MANUFACTURING_DATABRICKS_POLL_SECONDS": "2.5",
                                  "MANUFACTURING_DATABRICKS_STAGING_PREFIX": "dbfs:/staging/"})
    databricks = settings.databricks
    assert databricks.host == "https://dbc-1234.cloud.databricks.com"
    assert databricks.auth is DatabricksAuth.TOKEN
    assert databricks.staging_prefix == "/staging" and databricks.poll_seconds == 2.5
    assert "dapi-SENTINEL" not in repr(settings)
    principal = {k: v for k, v in DATABRICKS.items() if k != "DATABRICKS_TOKEN"}
    principal.update(DATABRICKS_CLIENT_ID="sp-id", DATABRICKS_CLIENT_SECRET="sp-SENTINEL")
    assert Settings.from_env(principal).databricks.auth is DatabricksAuth.SERVICE_PRINCIPAL
    assert Settings.from_env({"MANUFACTURING_ENV": "local"}).databricks is None


@pytest.mark.parametrize(("change", "message"), [
    ({"DATABRICKS_HOST": ""}, "set DATABRICKS_HOST to the workspace URL"),
    ({"DATABRICKS_HOST": "dbc-1234.cloud.databricks.com"}, "is not a workspace URL"),
    ({"DATABRICKS_TOKEN": ""}, "set DATABRICKS_TOKEN .* or DATABRICKS_CLIENT_ID"),
    ({"DATABRICKS_CLIENT_ID": "sp", "DATABRICKS_CLIENT_SECRET": "s"}, "not both"),
    ({"DATABRICKS_TOKEN": "", "DATABRICKS_CLIENT_ID": "sp"}, "set both DATABRICKS_CLIENT_ID"),
    ({"MANUFACTURING_DATABRICKS_WHEEL": ""}, "python -m pip wheel --no-deps -w dist ."),
    ({"MANUFACTURING_DATABRICKS_WHEEL": "s3://libs/x.whl"}, "must be a .whl under dbfs:/"),
    ({"MANUFACTURING_DATABRICKS_EXECUTION": "jobs"},
     "EXECUTION='jobs' is not one of pipes-serverless, connect-serverless, connect-cluster, "
     "step-launcher"),
    ({"MANUFACTURING_DATABRICKS_CLUSTER_ID": ""},
     "MANUFACTURING_DATABRICKS_INSTANCE_POOL_ID, MANUFACTURING_DATABRICKS_SPARK_VERSION, "
     "MANUFACTURING_DATABRICKS_INSTANCE_PROFILE_ARN for a new job cluster"),
    ({"MANUFACTURING_DATABRICKS_CLUSTER_ID": "", "MANUFACTURING_DATABRICKS_INSTANCE_POOL_ID": "p",
      "MANUFACTURING_DATABRICKS_SPARK_VERSION": "17.3.x-scala2.13",
      "MANUFACTURING_DATABRICKS_INSTANCE_PROFILE_ARN": "bronze-role"},
     "not an instance profile ARN"),
    ({"MANUFACTURING_DATABRICKS_NUM_WORKERS": "many"}, "NUM_WORKERS='many' is not a whole"),
    ({"MANUFACTURING_DATABRICKS_POLL_SECONDS": "0"}, "POLL_SECONDS='0' is not a number"),
    ({"MANUFACTURING_DATABRICKS_STAGING_PREFIX": "staging"}, "must be an absolute DBFS folder"),
])
def test_databricks_settings_refuse_what_cannot_work_in_one_line(change, message):
    with pytest.raises(ConfigurationError, match=message) as raised:
        Settings.from_env({**DATABRICKS, **change})
    assert "\n" not in str(raised.value) and "SENTINEL" not in str(raised.value)


def test_pipes_serverless_is_the_default_and_needs_a_volume_and_a_volume_wheel():
    settings = Settings.from_env(PIPES)
    databricks = settings.databricks
    assert databricks.execution is Execution.PIPES_SERVERLESS
    assert databricks.volume == "/Volumes/main/manufacturing/pipes"
    assert databricks.environment_version == "4"
    assert databricks.auth is DatabricksAuth.SERVICE_PRINCIPAL
    assert settings.read_mode is ReadMode.DIRECT and "SENTINEL" not in repr(settings)


@pytest.mark.parametrize(("change", "message"), [
    ({"MANUFACTURING_DATABRICKS_VOLUME": ""},
     "pipes-serverless: set MANUFACTURING_DATABRICKS_VOLUME to a Unity Catalog volume"),
    ({"MANUFACTURING_DATABRICKS_VOLUME": "/Volumes/main/pipes"}, "is not a volume path"),
    ({"MANUFACTURING_DATABRICKS_VOLUME": "dbfs:/pipes"}, "is not a volume path"),
    ({"MANUFACTURING_DATABRICKS_WHEEL": "dbfs:/libs/manufacturing_ingest-0.1.0-py3-none-any.whl"},
     "must be a .whl under /Volumes/, where pipes-serverless can install it"),
    ({"MANUFACTURING_DATABRICKS_WHEEL": ""}, "pipes-serverless: set MANUFACTURING_DATABRICKS_WHE"),
    ({"MANUFACTURING_DATABRICKS_EXECUTION": "connect-cluster"},
     "connect-cluster: set MANUFACTURING_DATABRICKS_CLUSTER_ID"),
    ({"MANUFACTURING_LANDING_URL": "s3://plant-landing/manufacturing"},
     "serverless job cannot read S3 with AWS credentials of its own; put an external volume"),
    ({"DATABRICKS_HOST": "http://dbc-1234.cloud.databricks.com"}, "is plain http: use the"),
    ({"MANUFACTURING_DATABRICKS_EXECUTION": "connect-serverless",
      "MANUFACTURING_READ_MODE": "staged"}, "staged cannot work with MANUFACTURING_DATABRICKS_EXE"),
])
def test_each_execution_refuses_what_it_cannot_work_with_in_one_line(change, message):
    with pytest.raises(ConfigurationError, match=message) as raised:
        Settings.from_env({**PIPES, **change})
    assert "\n" not in str(raised.value) and "SENTINEL" not in str(raised.value)


def test_connect_needs_neither_wheel_nor_volume():
    serverless = Settings.from_env({**PIPES, "MANUFACTURING_DATABRICKS_EXECUTION":
                                    "Connect-Serverless", "MANUFACTURING_DATABRICKS_WHEEL": "",
                                    "MANUFACTURING_DATABRICKS_VOLUME": ""})
    assert serverless.databricks.execution is Execution.CONNECT_SERVERLESS
    assert serverless.read_mode is ReadMode.DIRECT
    cluster = Settings.from_env({**PIPES, "MANUFACTURING_DATABRICKS_EXECUTION": "connect-cluster",
                                 "MANUFACTURING_DATABRICKS_CLUSTER_ID": "0101-000000-bronze"})
    assert cluster.databricks.cluster_id == "0101-000000-bronze"


def test_spark_reads_landed_objects_itself_on_databricks_and_through_the_engine_locally():
    assert Settings.from_env({}).read_mode is ReadMode.STAGED
    cluster = {"MANUFACTURING_ENV": "databricks", "DATABRICKS_RUNTIME_VERSION": "17.3"}
    assert Settings.from_env(cluster).read_mode is ReadMode.DIRECT
    assert Settings.from_env({**cluster, "MANUFACTURING_READ_MODE": "Staged"}).read_mode \
        is ReadMode.STAGED
    assert Settings.from_env({**cluster, "MANUFACTURING_READ_MODE": "autoloader"}).read_mode \
        is ReadMode.AUTOLOADER
    assert Settings.from_env({"MANUFACTURING_SPARK_REMOTE": "sc://127.0.0.1:15002"}) \
        .spark.remote == "sc://127.0.0.1:15002"


def test_on_a_databricks_cluster_the_step_needs_no_workspace_settings():
    settings = Settings.from_env({"MANUFACTURING_ENV": "databricks",
                                  "DATABRICKS_RUNTIME_VERSION": "17.3"})
    assert settings.on_databricks_cluster and settings.databricks is None


def test_spark_logs_errors_only_unless_asked_and_the_jvm_is_told_so():
    from manufacturing_ingest.engine.spark import session_conf

    assert Settings.from_env({}).spark.log_level == "ERROR"
    spark = Settings.from_env({"MANUFACTURING_SPARK_LOG_LEVEL": "warn"}).spark
    assert spark.log_level == "WARN"
    options = session_conf(spark)["spark.driver.extraJavaOptions"].split()
    config = [o for o in options if o.startswith("-Dlog4j2.configurationFile=")]
    assert len(config) == 1 and "-Dderby.system.home=/tmp/manufacturing_ingest_derby" in options
    text = Path(urlparse(config[0].partition("=")[2]).path).read_text()
    assert "rootLogger.level = WARN" in text and "target = SYSTEM_ERR" in text


def test_corrections_encodings_and_schema_contracts_are_chosen_per_source():
    from manufacturing_ingest.catalog import CATALOG, Corrections, SchemaContract

    settings = Settings.from_env({"MANUFACTURING_CORRECTIONS_SENSOR_DATA": "Append",
                                  "MANUFACTURING_CORRECTIONS_EQUIPMENT_LOGS": "ignore",
                                  "MANUFACTURING_ENCODING_QUALITY_METRICS": "Windows-1252",
                                  "MANUFACTURING_SCHEMA_EQUIPMENT_LOGS": "Freeze",
                                  "MANUFACTURING_SCHEMA_QUALITY_METRICS": "rescue"})
    specs = {name: settings.configured(spec) for name, spec in CATALOG.items()}
    assert specs["sensor_data"].corrections is Corrections.APPEND
    assert specs["equipment_logs"].corrections is Corrections.IGNORE
    assert specs["quality_metrics"].corrections is Corrections.REPLACE  # the default
    assert specs["quality_metrics"].encoding == "cp1252"  # Python's name for it
    assert specs["sensor_data"].encoding == "utf-8"
    assert specs["sensor_data"].schema_contract is SchemaContract.EVOLVE  # the default
    assert specs["equipment_logs"].schema_contract is SchemaContract.FREEZE
    assert specs["quality_metrics"].schema_contract is SchemaContract.RESCUE


@pytest.mark.parametrize("environ, says", [
    ({"MANUFACTURING_CORRECTIONS_SENSOR_DATA": "merge"}, "not one of replace, append, ignore"),
    ({"MANUFACTURING_CORRECTIONS_SENSORS": "append"}, "no source 'sensors'"),
    ({"MANUFACTURING_ENCODING_SENSOR_DATA": "klingon"}, "not an encoding Python knows"),
    ({"MANUFACTURING_ENCODING_PLC": "cp1252"}, "MANUFACTURING_ENCODING_SENSOR_DATA"),
    ({"MANUFACTURING_SCHEMA_SENSOR_DATA": "strict"}, "not one of evolve, rescue, freeze"),
])
def test_a_wrong_per_source_choice_is_refused_with_what_to_set(environ, says):
    with pytest.raises(ConfigurationError, match=says):
        Settings.from_env(environ)


@pytest.mark.parametrize("url", ["/Volumes/main/plant/landing/",
                                 "dbfs:/Volumes/main/plant/landing"])
def test_a_volume_landing_zone_is_kept_as_databricks_names_it(url):
    # Never resolved against this machine's folders: the Files API reads it.
    assert Settings.from_env({"MANUFACTURING_LANDING_URL": url}).landing_url == url.rstrip("/")


def test_a_lakehouse_in_a_volume_is_refused_since_the_dagster_host_reads_its_ledger():
    with pytest.raises(ConfigurationError, match="use an s3:// location") as raised:
        Settings.from_env({"MANUFACTURING_LAKEHOUSE_URL": "/Volumes/main/plant/lakehouse"})
    assert "\n" not in str(raised.value)
