"""The Spark sessions a bronze step gets on Databricks.

- ``ClusterSparkResource``: the step already runs on Databricks compute (a cluster the step
  launcher started, or the serverless job of ``pipes-serverless``); its session is there.
- ``ConnectSparkResource``: the step runs in the Dagster run's process and drives serverless
  compute or a cluster through Databricks Connect (``connect-serverless``, ``connect-cluster``).
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest.orchestration.resources import SparkSessionResource

log = logging.getLogger("manufacturing_ingest")

CONNECT_EXTRA = ("databricks-connect is not installed in this environment: install the "
                 "'databricks' extra in its own Python 3.12 virtualenv (it ships its own pyspark, "
                 "which cannot sit beside the 'local' extra's), see docs/deployment.md")


class ClusterSparkResource(SparkSessionResource):
    """The Databricks compute's own session, Delta included; it is configured there."""

    def get_session(self) -> SparkSession:
        return SparkSession.builder.getOrCreate()


class ConnectSparkResource(SparkSessionResource):
    """A Databricks Connect session from the Dagster run's process.

    ``cluster_id`` empty: serverless compute. Credentials come from the databricks-sdk's own
    chain (``DATABRICKS_HOST`` with ``DATABRICKS_TOKEN`` or ``DATABRICKS_CLIENT_ID`` +
    ``DATABRICKS_CLIENT_SECRET``, or a profile), never from this config. ``remote``: a Spark
    Connect server (``sc://host:port``) to use instead of the workspace, from
    ``MANUFACTURING_SPARK_REMOTE`` (a server standing in for serverless compute, offline).
    """

    host: str
    cluster_id: str = ""
    remote: str = ""

    def get_session(self) -> SparkSession:
        from manufacturing_ingest.engine.spark import connect_session

        if self.remote:
            return connect_session(self.remote, "manufacturing_ingest bronze")
        try:
            from databricks.connect import DatabricksSession
        except ImportError:
            raise ConfigurationError(CONNECT_EXTRA) from None
        builder = DatabricksSession.builder.host(self.host)
        builder = (builder.clusterId(self.cluster_id) if self.cluster_id
                   else builder.serverless(True))
        session = builder.getOrCreate()
        log.info("Databricks Connect session on %s", self.cluster_id or "serverless compute")
        # Timestamps as the engine writes them everywhere else (UTC); serverless accepts this
        # setting from a session.
        session.conf.set("spark.sql.session.timeZone", "UTC")
        return session
