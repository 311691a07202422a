"""Dagster resources, chosen per environment by ``MANUFACTURING_ENV``; the keys never change.

``spark``: where bronze assets get their Spark session. ``landing``: the landing zone.
``lakehouse``: where the Delta tables live.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pyspark.sql import SparkSession

from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest.landing import LandingZone, landing_zone_for
from manufacturing_ingest.settings import Environment, Settings, SparkSettings, default_jars_dir

RESOURCE_KEYS = ("spark", "landing", "lakehouse")

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
    ``role_arn`` (optional) is assumed on top of them.
    """

    url: str
    role_arn: str = ""

    def zone(self) -> LandingZone:
        return landing_zone_for(self.url, role_arn=self.role_arn or None)


class LakehouseResource(dg.ConfigurableResource):
    """Root folder of the Delta tables (``<root>/manufacturing_bronze/<table>``)."""

    url: str

    def lakehouse(self) -> Lakehouse:
        return Lakehouse(self.url)


def resources_for(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of ``settings.env``, always under the keys in ``RESOURCE_KEYS``."""
    landing = LandingZoneResource(url=settings.landing_url, role_arn=settings.s3_role_arn)
    lakehouse = LakehouseResource(url=settings.lakehouse_url)
    if settings.env is Environment.DATABRICKS:
        spark: SparkSessionResource = UnavailableSparkResource(reason=DATABRICKS_NOT_READY)
    else:
        spark = SparkResource(
            master=settings.spark.master,
            driver_memory=settings.spark.driver_memory,
            jars_dir=str(settings.spark.jars_dir),
        )
    return {"spark": spark, "landing": landing, "lakehouse": lakehouse}
