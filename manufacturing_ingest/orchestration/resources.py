"""Dagster resources, chosen by ``MANUFACTURING_ENV`` and, on Databricks, by
``MANUFACTURING_DATABRICKS_EXECUTION``; the keys never change.

``spark``: where bronze assets get their Spark session (local, the Databricks compute's own, or
Databricks Connect). ``step_launcher``: dagster-databricks' DBFS step launcher with
``step-launcher``, else a placeholder (the step runs in the run's process). ``remote_job``: the
serverless job a bronze step becomes with ``pipes-serverless``, else a placeholder.
``landing``: the landing zone. ``lakehouse``: where the Delta tables live. ``alerts``: where the
alert sensor sends alerts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pyspark.sql import SparkSession

from manufacturing_ingest.alerting import AlertSink, SmtpOptions, configured_sinks
from manufacturing_ingest.databricks.discovery import AutoLoaderDiscovery, Discovery
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.landing import LandingZone, landing_zone_for
from manufacturing_ingest.settings import (
    SMTP_PASSWORD_VAR,
    WEBHOOK_URL_VAR,
    AlertSettings,
    Environment,
    Execution,
    ReadMode,
    Settings,
    SparkSettings,
    default_jars_dir,
)

RESOURCE_KEYS = ("spark", "step_launcher", "remote_job", "landing", "lakehouse", "alerts")


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


class InProcessStep(dg.ConfigurableResource):
    """Not a step launcher: the bronze step runs in the run's own process.

    Used locally, and on Databricks compute itself, where the step sent there is already running.
    """


class RemoteJobResource(dg.ConfigurableResource):
    """Where the bronze step's engine runs when not in this process: here, nowhere else.

    ``pipes-serverless`` replaces it with ``databricks.pipes.ServerlessBronzeJob``, whose
    ``remote`` is true: the step then becomes a Databricks serverless job run.
    """

    @property
    def remote(self) -> bool:
        return False


class LandingZoneResource(dg.ConfigurableResource):
    """Where plants drop files: a local folder or ``s3://bucket/prefix``.

    S3 credentials come from the standard AWS chain of the process running the step;
    ``role_arn`` (optional) is assumed on top of them. ``queue_urls``: the SQS queue of each
    source in file notification mode (its landing sensor drains the queue instead of listing).
    ``read_mode``: how a bronze step reads the files (``MANUFACTURING_READ_MODE``, see
    settings.py); an enum in the config too, so a wrong value fails config validation with the
    allowed ones (in run config Dagster spells them by member name: ``STAGED``, ``DIRECT``,
    ``AUTOLOADER``). ``autoloader_*``: how Auto Loader finds new files in read mode
    ``autoloader`` (``MANUFACTURING_AUTOLOADER_*``, see ``databricks/discovery.py``); the queue
    URLs are keyed by stream, ``<source>/<format>``.
    """

    url: str
    role_arn: str = ""
    queue_urls: dict[str, str] = {}
    read_mode: ReadMode = ReadMode.STAGED
    autoloader_discovery: Discovery = Discovery.LISTING
    autoloader_region: str = ""
    autoloader_queue_urls: dict[str, str] = {}
    autoloader_service_credential: str = ""

    def zone(self) -> LandingZone:
        return landing_zone_for(self.url, role_arn=self.role_arn or None)

    def queue_url(self, source: str) -> str | None:
        return self.queue_urls.get(source) or None

    def autoloader(self) -> AutoLoaderDiscovery:
        return AutoLoaderDiscovery(mode=self.autoloader_discovery, region=self.autoloader_region,
                                   queue_urls=dict(self.autoloader_queue_urls),
                                   service_credential=self.autoloader_service_credential)


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


def resources_for(settings: Settings) -> dict[str, Any]:
    """The resources of ``settings``, always under the keys in ``RESOURCE_KEYS``."""
    discovery = settings.autoloader
    landing = LandingZoneResource(url=settings.landing_url, role_arn=settings.s3_role_arn,
                                  queue_urls=dict(settings.queue_urls),
                                  read_mode=settings.read_mode,
                                  autoloader_discovery=discovery.mode,
                                  autoloader_region=discovery.region,
                                  autoloader_queue_urls=dict(discovery.queue_urls),
                                  autoloader_service_credential=discovery.service_credential)
    lakehouse = LakehouseResource(url=settings.lakehouse_url, catalog=settings.catalog)
    alerts = alert_sinks_resource(settings.alerts)
    step_launcher: Any = InProcessStep()
    remote_job: RemoteJobResource = RemoteJobResource()
    if settings.env is Environment.DATABRICKS:
        spark, step_launcher, remote_job = _databricks_resources(settings, step_launcher,
                                                                 remote_job)
    else:
        spark = SparkResource(
            master=settings.spark.master,
            driver_memory=settings.spark.driver_memory,
            jars_dir=str(settings.spark.jars_dir),
            remote=settings.spark.remote,
        )
    return {"spark": spark, "step_launcher": step_launcher, "remote_job": remote_job,
            "landing": landing, "lakehouse": lakehouse, "alerts": alerts}


def _databricks_resources(settings: Settings, step_launcher: Any, remote_job: RemoteJobResource
                          ) -> tuple[SparkSessionResource, Any, RemoteJobResource]:
    """``spark``, ``step_launcher`` and ``remote_job`` for the execution chosen; on Databricks
    compute itself (``settings.databricks`` is None) the step runs where it is."""
    from manufacturing_ingest.databricks.session import ClusterSparkResource, ConnectSparkResource

    databricks = settings.databricks
    if databricks is None:
        return ClusterSparkResource(), step_launcher, remote_job
    if databricks.execution.connect:
        spark = ConnectSparkResource(host=databricks.host, cluster_id=(
            databricks.cluster_id if databricks.execution is Execution.CONNECT_CLUSTER else ""),
            remote=settings.spark.remote)
        return spark, step_launcher, remote_job
    if databricks.execution is Execution.STEP_LAUNCHER:
        from manufacturing_ingest.databricks.launcher import databricks_step_launcher

        return ClusterSparkResource(), databricks_step_launcher(settings, databricks), remote_job
    from manufacturing_ingest.databricks.pipes import serverless_bronze_job

    return ClusterSparkResource(), step_launcher, serverless_bronze_job(settings, databricks)
