"""Dagster resources, chosen per environment by ``MANUFACTURING_ENV``; the keys never change.

``spark``: where bronze assets get their Spark session. ``step_launcher``: where a bronze step
runs (locally in the run's own process; on Databricks, sent to a cluster by dagster-databricks'
``databricks_pyspark_step_launcher``). ``landing``: the landing zone. ``lakehouse``: where the
Delta tables live. ``alerts``: where the alert sensor sends alerts.
"""

from __future__ import annotations

from importlib.metadata import requires
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_databricks import databricks_pyspark_step_launcher
from pyspark.sql import SparkSession

from manufacturing_ingest.alerting import AlertSink, SmtpOptions, configured_sinks
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.landing import LandingZone, landing_zone_for
from manufacturing_ingest.settings import (
    DATABRICKS_TOKEN_VAR,
    SMTP_PASSWORD_VAR,
    WEBHOOK_URL_VAR,
    AlertSettings,
    DatabricksAuth,
    DatabricksSettings,
    Environment,
    ReadMode,
    Settings,
    SparkSettings,
    default_jars_dir,
)

RESOURCE_KEYS = ("spark", "step_launcher", "landing", "lakehouse", "alerts")

# The settings a bronze step reads on the cluster; the launcher sets them there. Never secrets:
# what the cluster needs to reach S3 comes from its instance profile.
STEP_SETTINGS = ("MANUFACTURING_LANDING_URL", "MANUFACTURING_LAKEHOUSE_URL",
                 "MANUFACTURING_S3_ROLE_ARN", "MANUFACTURING_READ_MODE", "MANUFACTURING_CATALOG")

PACKAGE_DIR = Path(__file__).resolve().parents[1]

# The cluster's runtime brings its own Spark and Delta; installing ours over them breaks it.
PROVIDED_BY_THE_RUNTIME = ("pyspark", "delta-spark")


class SparkSessionResource(dg.ConfigurableResource):
    """Where a bronze asset gets its Spark session."""

    def get_session(self) -> SparkSession:
        raise NotImplementedError


class SparkResource(SparkSessionResource):
    """A local Spark session with Delta; started on first use, shared by the run's steps."""

    master: str = "local[*]"
    driver_memory: str = "4g"
    jars_dir: str = ""
    remote: str = ""  # a Spark Connect server (sc://host:port) instead of a session of our own

    def get_session(self) -> SparkSession:
        from manufacturing_ingest.engine.spark import get_spark_session

        return get_spark_session(SparkSettings(
            master=self.master,
            driver_memory=self.driver_memory,
            jars_dir=Path(self.jars_dir) if self.jars_dir else default_jars_dir(),
            remote=self.remote,
        ))


class ClusterSparkResource(SparkSessionResource):
    """The Databricks cluster's own session, Delta included; the cluster is configured there."""

    def get_session(self) -> SparkSession:
        return SparkSession.builder.getOrCreate()


class InProcessStep(dg.ConfigurableResource):
    """Not a step launcher: the bronze step runs in the run's own process.

    Used locally, and on the cluster itself, where the step the launcher sent is already running.
    """


class LandingZoneResource(dg.ConfigurableResource):
    """Where plants drop files: a local folder or ``s3://bucket/prefix``.

    S3 credentials come from the standard AWS chain of the process running the step;
    ``role_arn`` (optional) is assumed on top of them. ``queue_urls``: the SQS queue of each
    source in file notification mode (its landing sensor drains the queue instead of listing).
    ``read_mode``: how a bronze step reads the files (``MANUFACTURING_READ_MODE``, see
    settings.py); an enum in the config too, so a wrong value fails config validation with the
    allowed ones (in run config Dagster spells them by member name: ``STAGED``, ``DIRECT``,
    ``AUTOLOADER``).
    """

    url: str
    role_arn: str = ""
    queue_urls: dict[str, str] = {}
    read_mode: ReadMode = ReadMode.STAGED

    def zone(self) -> LandingZone:
        return landing_zone_for(self.url, role_arn=self.role_arn or None)

    def queue_url(self, source: str) -> str | None:
        return self.queue_urls.get(source) or None


class LakehouseResource(dg.ConfigurableResource):
    """Root folder of the Delta tables (``<root>/manufacturing_bronze/<table>``); with a
    ``catalog``, the bronze tables are ``<catalog>.manufacturing_bronze.<table>`` instead."""

    url: str
    catalog: str = ""

    def lakehouse(self) -> Lakehouse:
        return Lakehouse(self.url, catalog=self.catalog)


class AlertSinksResource(dg.ConfigurableResource):
    """The alert sinks: the JSON log line always, the webhook and email when configured.

    ``webhook_url`` and ``smtp_password`` are secrets: ``alert_sinks_resource`` sets them to
    ``dg.EnvVar``s, so Dagster keeps the variable's name in its config and the UI, never the value.
    """

    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_sender: str = ""
    smtp_recipients: list[str] = []
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    ui_url: str = "http://127.0.0.1:3000"

    def sinks(self) -> list[AlertSink]:
        smtp = None
        if self.smtp_host:
            smtp = SmtpOptions(
                host=self.smtp_host, port=self.smtp_port, sender=self.smtp_sender,
                recipients=tuple(self.smtp_recipients), username=self.smtp_username or None,
                password=self.smtp_password or None, starttls=self.smtp_starttls,
            )
        return configured_sinks(self.webhook_url or None, smtp)

    def run_url(self, run_id: str | None) -> str | None:
        """The run's page in the Dagster UI; None for events reported without a run."""
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}" if run_id else None


def alert_sinks_resource(alerts: AlertSettings) -> AlertSinksResource:
    """The sinks ``alerts`` configures, with the secrets as ``dg.EnvVar``s."""
    return AlertSinksResource(
        webhook_url=dg.EnvVar(WEBHOOK_URL_VAR) if alerts.webhook else "",
        smtp_host=alerts.smtp_host,
        smtp_port=alerts.smtp_port,
        smtp_sender=alerts.smtp_sender,
        smtp_recipients=list(alerts.smtp_recipients),
        smtp_username=alerts.smtp_username,
        smtp_password=dg.EnvVar(SMTP_PASSWORD_VAR) if alerts.smtp_password else "",
        smtp_starttls=alerts.smtp_starttls,
        ui_url=alerts.ui_url,
    )


def step_settings(settings: Settings) -> dict[str, str]:
    """The environment a bronze step needs on the cluster to build the same definitions."""
    values = (settings.landing_url, settings.lakehouse_url, settings.s3_role_arn,
              settings.read_mode.value, settings.catalog)
    env = {name: value for name, value in zip(STEP_SETTINGS, values, strict=True) if value}
    return {"MANUFACTURING_ENV": Environment.DATABRICKS.value, **env}


def cluster_libraries(databricks: DatabricksSettings) -> list[dict[str, Any]]:
    """This project's wheel and the exact versions it is tested with (its pinned dependencies)."""
    pinned = [requirement for requirement in requires("manufacturing_ingest") or []
              if "extra ==" not in requirement
              and not requirement.startswith(PROVIDED_BY_THE_RUNTIME)]
    return [{"whl": databricks.wheel}, *({"pypi": {"package": p}} for p in pinned)]


def cluster_spec(databricks: DatabricksSettings) -> dict[str, Any]:
    """An existing cluster, or a new job cluster from the instance pool with the S3 role."""
    if databricks.cluster_id:
        return {"existing": databricks.cluster_id}
    return {"new": {
        "size": {"num_workers": databricks.num_workers},
        "spark_version": databricks.spark_version,
        "nodes": {"instance_pool_id": databricks.instance_pool_id},
        "aws_attributes": {"instance_profile_arn": databricks.instance_profile_arn},
        "custom_tags": [{"key": "project", "value": "manufacturing_ingest"}],
    }}


def databricks_step_launcher(settings: Settings, databricks: DatabricksSettings
                             ) -> dg.ResourceDefinition:
    """dagster-databricks' launcher, configured from ``settings``, secrets by variable name only.

    A token is passed as ``{"env": "DATABRICKS_TOKEN"}`` (the config form of ``dg.EnvVar``), read
    when a run starts the resource. The launcher's OAuth fields take no variable, so for a service
    principal it gets no credentials at all and the databricks-sdk reads
    ``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET`` from the environment itself.
    """
    token = ({"env": DATABRICKS_TOKEN_VAR} if databricks.auth is DatabricksAuth.TOKEN
             else None)
    return databricks_pyspark_step_launcher.configured({
        "run_config": {
            "run_name": "manufacturing_ingest bronze step",
            "cluster": cluster_spec(databricks),
            "libraries": cluster_libraries(databricks),
        },
        "permissions": {},
        "databricks_host": databricks.host,
        "databricks_token": token,
        "env_variables": step_settings(settings),
        # Secrets stay out of the step: S3 access comes from the cluster's instance profile.
        "secrets_to_env_variables": [],
        "staging_prefix": databricks.staging_prefix,
        # The cluster imports the package from the wheel; the launcher also insists on zipping
        # the code it runs, which then sits beside it, unused.
        "local_pipeline_package_path": str(PACKAGE_DIR),
        "poll_interval_sec": databricks.poll_seconds,
        "verbose_logs": False,
    })


def resources_for(settings: Settings) -> dict[str, Any]:
    """The resources of ``settings.env``, always under the keys in ``RESOURCE_KEYS``."""
    landing = LandingZoneResource(url=settings.landing_url, role_arn=settings.s3_role_arn,
                                  queue_urls=dict(settings.queue_urls),
                                  read_mode=settings.read_mode)
    lakehouse = LakehouseResource(url=settings.lakehouse_url, catalog=settings.catalog)
    alerts = alert_sinks_resource(settings.alerts)
    step_launcher: Any = InProcessStep()
    if settings.env is Environment.DATABRICKS:
        spark: SparkSessionResource = ClusterSparkResource()
        if settings.databricks is not None:
            step_launcher = databricks_step_launcher(settings, settings.databricks)
    else:
        spark = SparkResource(
            master=settings.spark.master,
            driver_memory=settings.spark.driver_memory,
            jars_dir=str(settings.spark.jars_dir),
            remote=settings.spark.remote,
        )
    return {"spark": spark, "step_launcher": step_launcher, "landing": landing,
            "lakehouse": lakehouse, "alerts": alerts}
