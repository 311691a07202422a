"""Dagster resources, chosen per environment by ``MANUFACTURING_ENV``; the keys never change.

``spark``: where bronze assets get their Spark session. ``landing``: the landing zone.
``lakehouse``: where the Delta tables live. ``alerts``: where the alert sensor sends alerts.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pyspark.sql import SparkSession

from manufacturing_ingest.alerting import AlertSink, SmtpOptions, configured_sinks
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest.landing import LandingZone, landing_zone_for
from manufacturing_ingest.settings import (
    SMTP_PASSWORD_VAR,
    WEBHOOK_URL_VAR,
    AlertSettings,
    Environment,
    Settings,
    SparkSettings,
    default_jars_dir,
)

RESOURCE_KEYS = ("spark", "landing", "lakehouse", "alerts")

DATABRICKS_NOT_READY = (
    "MANUFACTURING_ENV=databricks: running the bronze assets on Databricks (through the "
    "Databricks step launcher) is not available in this version yet; unset MANUFACTURING_ENV "
    "(or set it to local) to run on the local engine"
)


class SparkSessionResource(dg.ConfigurableResource):
    """Where a bronze asset gets its Spark session."""

    def get_session(self) -> SparkSession:
        raise NotImplementedError


class SparkResource(SparkSessionResource):
    """A local Spark session with Delta; started on first use, shared by the run's steps."""

    master: str = "local[*]"
    driver_memory: str = "4g"
    jars_dir: str = ""

    def get_session(self) -> SparkSession:
        from manufacturing_ingest.engine.spark import get_spark_session

        return get_spark_session(SparkSettings(
            master=self.master,
            driver_memory=self.driver_memory,
            jars_dir=Path(self.jars_dir) if self.jars_dir else default_jars_dir(),
        ))


class UnavailableSparkResource(SparkSessionResource):
    """Stands where an environment's engine is not available; using it says why."""

    reason: str

    def get_session(self) -> SparkSession:
        raise ConfigurationError(self.reason)


class LandingZoneResource(dg.ConfigurableResource):
    """Where plants drop files: a local folder or ``s3://bucket/prefix``.

    S3 credentials come from the standard AWS chain of the process running the step;
    ``role_arn`` (optional) is assumed on top of them. ``queue_urls``: the SQS queue of each
    source in file notification mode (its landing sensor drains the queue instead of listing).
    """

    url: str
    role_arn: str = ""
    queue_urls: dict[str, str] = {}

    def zone(self) -> LandingZone:
        return landing_zone_for(self.url, role_arn=self.role_arn or None)

    def queue_url(self, source: str) -> str | None:
        return self.queue_urls.get(source) or None


class LakehouseResource(dg.ConfigurableResource):
    """Root folder of the Delta tables (``<root>/manufacturing_bronze/<table>``)."""

    url: str

    def lakehouse(self) -> Lakehouse:
        return Lakehouse(self.url)


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


def resources_for(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of ``settings.env``, always under the keys in ``RESOURCE_KEYS``."""
    landing = LandingZoneResource(url=settings.landing_url, role_arn=settings.s3_role_arn,
                                  queue_urls=dict(settings.queue_urls))
    lakehouse = LakehouseResource(url=settings.lakehouse_url)
    alerts = alert_sinks_resource(settings.alerts)
    if settings.env is Environment.DATABRICKS:
        spark: SparkSessionResource = UnavailableSparkResource(reason=DATABRICKS_NOT_READY)
    else:
        spark = SparkResource(
            master=settings.spark.master,
            driver_memory=settings.spark.driver_memory,
            jars_dir=str(settings.spark.jars_dir),
        )
    return {"spark": spark, "landing": landing, "lakehouse": lakehouse, "alerts": alerts}
