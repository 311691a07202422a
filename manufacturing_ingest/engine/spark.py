"""The local Spark session: Delta enabled, UTC, sized for a laptop."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from pyspark.sql import SparkSession

from manufacturing_ingest.engine.jars import jar_files
from manufacturing_ingest.settings import SparkSettings

log = logging.getLogger(__name__)
_lock = threading.Lock()

DELTA_SESSION_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

LOCAL_SESSION_CONF = {
    "spark.ui.enabled": "false",
    # The driver talks to its executors on loopback only.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    # Delta rebuilds table state with a shuffle; the default 50 partitions cost seconds per
    # commit on small local tables.
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.databricks.delta.stats.collect": "true",
    "spark.sql.sources.partitionOverwriteMode": "static",
    # Spark's default INT96 cannot hold years past 2262 for other readers (delta-rs reads them
    # as nanoseconds and fails); standard microsecond timestamps can.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.driver.extraJavaOptions": "-Dderby.system.home=/tmp/manufacturing_ingest_derby",
}


def session_conf(settings: SparkSettings) -> dict[str, str]:
    """Every setting the local session starts with (benchmarks reuse it for a fair comparison)."""
    conf = {**DELTA_SESSION_CONF, **LOCAL_SESSION_CONF}
    conf["spark.driver.memory"] = settings.driver_memory
    # Python workers (createDataFrame of ledger rows) run the interpreter of this environment.
    conf["spark.pyspark.python"] = sys.executable
    jars = jar_files(settings.jars_dir)
    if jars:
        conf["spark.jars"] = ",".join(str(jar) for jar in jars)
    return conf


def get_spark_session(settings: SparkSettings, app_name: str = "manufacturing_ingest"
                      ) -> SparkSession:
    """The process's Spark session, started on first use (or a Spark Connect session)."""
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        if settings.remote:
            return connect_session(settings.remote, app_name)
        builder = SparkSession.builder.master(settings.master).appName(app_name)
        conf = session_conf(settings)
        for key, value in conf.items():
            builder = builder.config(key, value)
        if "spark.jars" not in conf:
            from delta import configure_spark_with_delta_pip

            log.info(
                "no Delta jars in %s; Spark resolves them from Maven Central",
                settings.jars_dir,
            )
            builder = configure_spark_with_delta_pip(builder)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return session


def connect_session(url: str, app_name: str = "manufacturing_ingest") -> SparkSession:
    """A Spark Connect session on ``url``: the server holds the JVM, Delta and the data.

    The engine's runtime settings ride on the session, since the server's defaults are not ours.
    """
    session = SparkSession.builder.remote(url).appName(app_name).getOrCreate()
    if "SPARK_CONNECT_LOG_LEVEL" not in os.environ:
        # The client logs every failed request at ERROR before raising it, including the
        # "no table here yet" answers the engine expects and handles; a logging setup that
        # re-enables existing loggers (Dagster's) would put them in every run's log. Failures
        # still reach the caller as exceptions.
        logging.getLogger("pyspark.sql.connect.logging").setLevel(logging.CRITICAL)
    for key in ("spark.sql.session.timeZone", "spark.sql.parquet.outputTimestampType"):
        session.conf.set(key, LOCAL_SESSION_CONF[key])
    return session


def connect_server_command(settings: SparkSettings, port: int, host: str = "127.0.0.1"
                           ) -> list[str]:
    """``spark-submit`` of a Spark Connect server with this project's Delta session settings."""
    conf = {**session_conf(settings), "spark.master": settings.master,
            "spark.connect.grpc.binding.address": host,
            "spark.connect.grpc.binding.port": str(port)}
    command = [str(Path(sys.executable).with_name("spark-submit")),
               "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
               "--name", "manufacturing_ingest Spark Connect server"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return command
