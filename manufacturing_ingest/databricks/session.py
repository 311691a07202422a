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
    ``MANUFACTURING_SPARK_REMOTE`` (a server standing in for serverless compute, offline); the
    ``databricks`` extra's client talks to it as to Databricks, and without the extra plain
    pyspark's Connect client does.
    """

    host: str
    cluster_id: str = ""
    remote: str = ""

    def get_session(self) -> SparkSession:
        try:
            from databricks.connect import DatabricksSession
        except ImportError:
            DatabricksSession = None  # noqa: N806 - the class, when the extra is installed
        if DatabricksSession is None:
            if self.remote:
                from manufacturing_ingest.engine.spark import connect_session

                return connect_session(self.remote, "manufacturing_ingest bronze")
            raise ConfigurationError(CONNECT_EXTRA)
        if self.remote:
            builder = DatabricksSession.builder.remote(self.remote)
        else:
            builder = DatabricksSession.builder.host(self.host)
            builder = (builder.clusterId(self.cluster_id) if self.cluster_id
                       else builder.serverless(True))
        session = builder.getOrCreate()
        log.info("Databricks Connect session on %s",
                 self.remote or self.cluster_id or "serverless compute")
        # Timestamps as the engine writes them everywhere else: in UTC, as Parquet's
        # microsecond timestamps (what delta-rs reads the ledger with). Serverless compute
        # refuses some session settings; the engine then runs with the compute's own.
        for key, value in (("spark.sql.session.timeZone", "UTC"),
                           ("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")):
            try:
                session.conf.set(key, value)
            except Exception as error:  # noqa: BLE001 - the server's refusal, whatever its class
                log.warning("Databricks Connect: %s stays the compute's own (%s)", key,
                            str(error).splitlines()[0][:200])
        return session
