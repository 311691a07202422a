"""The local Spark session: Delta enabled, UTC, sized for a laptop."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from manufacturing_ingest.engine.jars import jar_files, s3a_jar_files
from manufacturing_ingest.s3_security import spark_encryption_conf, spark_transport_conf
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
    # HotSpot leaves a method over 8,000 bytes of bytecode to the interpreter. Whole-stage code
    # above that size (a source with many columns: bronze's projection grows with each) then
    # runs its operators on their own generated, split code instead, about twice as fast
    # (Spark's documented setting for HotSpot; its default, 65535, is the JVM's hard limit).
    "spark.sql.codegen.hugeMethodLimit": "8000",
    "spark.driver.extraJavaOptions": "-Dderby.system.home=/tmp/manufacturing_ingest_derby",
}


# Spark's own logging (log4j2) in the JVMs the engine starts: ``MANUFACTURING_SPARK_LOG_LEVEL``
# and above, on stderr. The default, ERROR, keeps start-up WARN lines and log4j's banner out of
# the CLI's and `make demo`'s output; `manufacturing-ingest --verbose` shows WARN.
LOG4J2_PROPERTIES = """\
# Written by manufacturing_ingest (engine/spark.py) for the Spark JVMs it starts.
rootLogger.level = {level}
rootLogger.appenderRef.stderr.ref = stderr
# PySpark's JVM counts as a shell: without a level of its own for the class that starts it,
# Spark prints "Setting default log level to WARN" and lowers the console threshold to WARN.
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = {level}
logger.submit.name = org.apache.spark.deploy.SparkSubmit
logger.submit.level = {level}
# A failed task is logged with its stack trace by each of these, for every task, before the
# driver raises the same error to the engine, which reports it (a full disk: ~1,000 lines).
# Shown from WARN (`--verbose`), like the rest of Spark's detail.
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = {task_level}
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = {task_level}
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = {task_level}
logger.writer.name = org.apache.spark.sql.execution.datasources.FileFormatWriter
logger.writer.level = {task_level}
logger.deltawriter.name = org.apache.spark.sql.delta.files.DeltaFileFormatWriter
logger.deltawriter.level = {task_level}
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{{HH:mm:ss}} %p %c{{1}}: %m%n%ex
"""


def log4j2_file(level: str) -> Path:
    """A log4j2 configuration for the Spark JVMs at ``level``, written once per level."""
    folder = Path(tempfile.gettempdir()) / "manufacturing_ingest"
    path = folder / f"log4j2-{level.lower()}.properties"
    task_level = "FATAL" if level.upper() in ("ERROR", "FATAL", "OFF") else level
    text = LOG4J2_PROPERTIES.format(level=level, task_level=task_level)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(text)
        scratch.replace(path)  # atomic: concurrent runs never read half a file
    return path


def session_conf(settings: SparkSettings) -> dict[str, str]:
    """Every setting the local session starts with (benchmarks reuse it for a fair comparison)."""
    conf = {**DELTA_SESSION_CONF, **LOCAL_SESSION_CONF}
    conf["spark.driver.extraJavaOptions"] += (
        f" -Dlog4j2.configurationFile={log4j2_file(settings.log_level).as_uri()}")
    conf["spark.driver.memory"] = settings.driver_memory
    # Python workers (createDataFrame of ledger rows) run the interpreter of this environment.
    conf["spark.pyspark.python"] = sys.executable
    jars = jar_files(settings.jars_dir)
    if jars:
        conf["spark.jars"] = ",".join(str(jar) for jar in jars)
    conf.update(s3a_conf(settings))
    return conf


# hadoop-aws' S3A for s3:// as well: Databricks' name for the scheme, which the lakehouse uses.
S3A_FILESYSTEM_CONF = {
    "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
    # The standard AWS chain (variables, profile, SSO, web identity, instance role), as boto3.
    "spark.hadoop.fs.s3a.aws.credentials.provider":
        "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
}


def s3a_conf(settings: SparkSettings, environ: Mapping[str, str] | None = None
             ) -> dict[str, str]:
    """The S3A settings of a local session: the endpoint and TLS, SSE-KMS when a key is
    configured (the key only as the ``${env.…}`` reference, see ``s3_security``), and, when
    ``fetch-jars --s3a`` fetched hadoop-aws, its jars on the JVM's class path (not
    ``spark.jars``, which would copy 700 MB into every session), the ``s3://`` scheme and the
    credential chain."""
    environ = os.environ if environ is None else environ
    # Endpoint, TLS and encryption whatever the jars: hadoop-aws put on the class path another
    # way (a folder of one's own in MANUFACTURING_SPARK_JARS) writes encrypted all the same.
    conf = {**spark_transport_conf(environ), **spark_encryption_conf(environ)}
    jars = s3a_jar_files(settings.jars_dir)
    if jars:
        path = os.pathsep.join(str(jar) for jar in jars)
        conf.update({"spark.driver.extraClassPath": path, "spark.executor.extraClassPath": path,
                     **S3A_FILESYSTEM_CONF})
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
        with _jvm_stderr_filtered():
            session = builder.getOrCreate()
        session.sparkContext.setLogLevel(settings.log_level)
        return session


# What the JVM itself prints on stderr, outside log4j: Spark 4 loads the incubating Vector API
# module, and Java warns about it on every start; the AWS SDK bundle (S3A) shades an SLF4J 1 of
# its own, which finds no binding of its own kind and says so (the SDK's logging is then off)
# on the first S3 access.
_JVM_NOISE = (b"WARNING: Using incubator modules:",
              b'SLF4J: Failed to load class "org.slf4j.impl.StaticLoggerBinder"',
              b"SLF4J: Defaulting to no-operation (NOP) logger implementation",
              b"SLF4J: See http://www.slf4j.org/codes.html#StaticLoggerBinder")


@contextmanager
def _jvm_stderr_filtered():
    """Start the JVM with a pipe as its stderr, relayed to this process's stderr by a daemon
    thread without the lines in ``_JVM_NOISE``; everything else (log4j's lines at the chosen
    level, crashes) passes unchanged. This process's stderr is its own again on return."""
    read_end, write_end = os.pipe()
    relay = threading.Thread(target=_relay, args=(read_end, os.dup(2)), daemon=True,
                             name="spark-jvm-stderr")
    relay.start()
    saved = os.dup(2)
    os.dup2(write_end, 2)  # the JVM, started now, inherits the pipe as its stderr
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write_end)  # the JVM keeps its own copy; the relay ends when the JVM does


def _relay(read_end: int, target: int) -> None:
    with os.fdopen(read_end, "rb") as source, os.fdopen(target, "wb", buffering=0) as sink:
        for line in source:
            if not line.startswith(_JVM_NOISE):
                sink.write(line)


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
