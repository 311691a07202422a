"""Dagster resources: the Spark session, the landing zone and the lakehouse location."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg
from pyspark.sql import SparkSession

from manufacturing_ingest.engine.bronze import Lakehouse
from manufacturing_ingest.engine.spark import get_spark_session
from manufacturing_ingest.landing import LandingZone, landing_zone_for
from manufacturing_ingest.settings import Settings


class SparkResource(dg.ConfigurableResource):
    """A local Spark session with Delta; started on first use, shared by the run's steps."""

    master: str = "local[*]"
    driver_memory: str = "4g"
    jars_dir: str = ""

    def get_session(self) -> SparkSession:
        settings = Settings.from_env()
        return get_spark_session(replace(
            settings,
            spark_master=self.master,
            spark_driver_memory=self.driver_memory,
            spark_jars_dir=Path(self.jars_dir) if self.jars_dir else settings.spark_jars_dir,
        ))


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
    """The same resource keys in every environment; only their configuration differs."""
    return {
        "spark": SparkResource(
            master=settings.spark_master,
            driver_memory=settings.spark_driver_memory,
            jars_dir=str(settings.spark_jars_dir),
        ),
        "landing": LandingZoneResource(url=settings.landing_url, role_arn=settings.s3_role_arn),
        "lakehouse": LakehouseResource(url=settings.lakehouse_url),
    }
