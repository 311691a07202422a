"""The one place that reads the environment; everything else is handed a ``Settings``.

Checked in this order, each with a default that works on a laptop:

- ``MANUFACTURING_ENV``: ``local`` (default) or ``databricks``; selects the Dagster resources.
- ``MANUFACTURING_LANDING_URL``: landing root; a path, ``file://…``, ``s3://bucket[/prefix]`` or
  a Unity Catalog volume ``/Volumes/<catalog>/<schema>/<volume>[/prefix]`` (read through the
  Files API, ``landing/volumes.py``). Default ``.data/landing`` under the working directory.
- ``MANUFACTURING_LAKEHOUSE_URL``: root of the local Delta tables. Default ``.data/lakehouse``.
- ``MANUFACTURING_CATALOG``: a Unity Catalog (or other Spark catalog) name; when set, the bronze
  tables are the catalog tables ``<catalog>.manufacturing_bronze.<table>`` (the schema must
  exist) instead of paths under the lakehouse, which then holds only the platform's bookkeeping.
- ``MANUFACTURING_S3_ROLE_ARN``: optional IAM role to assume for an ``s3://`` landing zone,
  on top of the standard AWS credential chain.
- ``MANUFACTURING_S3_KMS_KEY_ID`` (sensitive): a KMS key id, alias or ARN; every object the
  platform writes to S3 (an ``s3://`` lakehouse, uploads) is then SSE-KMS under it
  (``s3_security.py``). Unset: the bucket's default encryption applies.
- ``MANUFACTURING_LANDING_INTERVAL_SECONDS``: how often each landing sensor lists. Default 60.
- ``MANUFACTURING_PARTITIONS_START``: the first day of every asset's partitions (``YYYY-MM-DD``,
  default 2025-01-01); move it back to load older history (``partitioning.partitions_start``).
- ``MANUFACTURING_ENCODING_<SOURCE>``: the encoding of the source's text files that carry no
  byte-order mark (a Python codec name, e.g. ``cp1252``; default UTF-8; ``engine/encoding.py``).
- ``MANUFACTURING_CORRECTIONS_<SOURCE>``: ``replace`` (default), ``append`` or ``ignore``: what a
  new version of a committed file (same key, other content) does to bronze (``Corrections``).
- ``MANUFACTURING_SCHEMA_<SOURCE>``: ``evolve`` (default), ``rescue`` or ``freeze``: what a file
  with columns the table does not have does to bronze (``SchemaContract``).
- ``MANUFACTURING_READ_MODE``: ``staged`` (each file's bytes pass the engine's process, which
  checks them whole first) or ``direct`` (Spark reads the landed objects itself and the process
  fetches only each file's header or Parquet footer), or ``autoloader`` (Databricks Auto
  Loader streams, Databricks only). Default ``direct`` on Databricks, ``staged`` elsewhere.
- ``MANUFACTURING_AUTOLOADER_DISCOVERY`` (read mode ``autoloader`` only): how Auto Loader finds
  new files: ``listing`` (default), ``file-events`` or ``notifications``, with
  ``MANUFACTURING_AUTOLOADER_REGION``, ``…_QUEUE_URL_<SOURCE>_<FORMAT>`` and
  ``…_SERVICE_CREDENTIAL`` (see ``databricks/discovery.py``).
- ``MANUFACTURING_SPARK_MASTER``: Spark master for the local engine. Default ``local[*]``.
- ``MANUFACTURING_SPARK_DRIVER_MEMORY``: driver heap for the local engine. Default ``4g``.
- ``MANUFACTURING_SPARK_REMOTE``: a Spark Connect server (``sc://host:port``) the local engine
  uses instead of starting its own JVM; master, memory and jars are then the server's.
- ``MANUFACTURING_SPARK_LOG_LEVEL``: the least severe of Spark's own log lines (log4j) the engine's
  JVMs print on stderr: ``ERROR`` (default), ``WARN`` (``manufacturing-ingest --verbose``),
  ``INFO``, ``DEBUG`` or ``OFF``.
- ``MANUFACTURING_SPARK_JARS``: folder holding the Delta jars (``manufacturing-ingest
  fetch-jars`` fills it). Default ``<virtualenv>/share/manufacturing_ingest/jars``; when it
  holds no jars, Spark resolves them from Maven Central itself at start-up.
- Table maintenance (see ``MaintenanceSettings``): ``MANUFACTURING_OPTIMIZE_TARGET_FILE_MB``,
  ``MANUFACTURING_OPTIMIZE_ZORDER``, ``MANUFACTURING_VACUUM_RETENTION_HOURS``,
  ``MANUFACTURING_VACUUM_ALLOW_SHORT_RETENTION``, ``MANUFACTURING_MAINTENANCE_LOOKBACK_DAYS`` and
  ``MANUFACTURING_PREDICTIVE_OPTIMIZATION``.
- Alerts (see ``AlertSettings``): ``MANUFACTURING_ALERT_WEBHOOK_URL``,
  ``MANUFACTURING_ALERT_SMTP_*``, ``MANUFACTURING_UI_URL`` and
  ``MANUFACTURING_ALERT_INTERVAL_SECONDS``.
- Databricks (``MANUFACTURING_ENV=databricks``, see ``databricks/settings.py``): the
  databricks-sdk's ``DATABRICKS_HOST`` and ``DATABRICKS_TOKEN`` or ``DATABRICKS_CLIENT_ID`` +
  ``DATABRICKS_CLIENT_SECRET``; ``MANUFACTURING_DATABRICKS_EXECUTION`` (``pipes-serverless``,
  the default, ``connect-serverless``, ``connect-cluster`` or ``step-launcher``) and what the
  chosen way needs: ``MANUFACTURING_DATABRICKS_WHEEL``, ``…_VOLUME``,
  ``…_ENVIRONMENT_VERSION``, ``…_CLUSTER_ID`` or a new cluster from ``…_INSTANCE_POOL_ID``,
  ``…_SPARK_VERSION``, ``…_NUM_WORKERS`` and ``…_INSTANCE_PROFILE_ARN``,
  ``…_STAGING_PREFIX`` and ``…_POLL_SECONDS``. ``DATABRICKS_RUNTIME_VERSION``, which
  Databricks sets on its clusters and serverless compute, says the process is the step running
  there, which needs none of these.

S3 credentials and endpoints come from the standard AWS chain (``AWS_PROFILE``,
``AWS_ENDPOINT_URL``, …) and are never kept here (an endpoint that is plain ``http://`` and not
loopback is refused: ``s3_security.check_endpoints``). Nor are the alert secrets (the webhook URL,
the SMTP password), the Databricks token and client secret or the KMS key id: ``Settings`` only
records whether they are set, and the Dagster resources read them with ``dg.EnvVar`` (the key:
Spark's JVM and the boto3 calls, from the environment), so their values never enter a
``Settings``, run config or log.

A process builds its ``Settings`` once (``definitions.py`` for Dagster, ``main`` for the CLI)
and passes it down.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from manufacturing_ingest.catalog import CATALOG, Corrections, SchemaContract, SourceSpec
from manufacturing_ingest.databricks.discovery import AutoLoaderDiscovery
from manufacturing_ingest.databricks.settings import (
    DATABRICKS_RUNTIME_VAR,
    DatabricksAuth,
    DatabricksSettings,
    Execution,
)
from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest.s3_security import check_endpoints, kms_key_set
from manufacturing_ingest.variables import boolean, whole_number

__all__ = ["AlertSettings", "ConfigurationError", "DatabricksAuth", "DatabricksSettings",
           "Environment", "Execution", "MaintenanceSettings", "PredictiveOptimization",
           "ReadMode", "Settings",
           "SparkSettings", "default_jars_dir"]

# The alert secrets, read through ``dg.EnvVar`` by the Dagster resources, never by ``Settings``.
WEBHOOK_URL_VAR = "MANUFACTURING_ALERT_WEBHOOK_URL"
SMTP_PASSWORD_VAR = "MANUFACTURING_ALERT_SMTP_PASSWORD"
SPARK_LOG_LEVELS = ("OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "ALL")


def _spark_log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in SPARK_LOG_LEVELS:
        raise ConfigurationError(
            f"MANUFACTURING_SPARK_LOG_LEVEL={value!r} is not one of {', '.join(SPARK_LOG_LEVELS)}")
    return level


def _spark_remote(url: str) -> str:
    if url and not url.startswith("sc://"):
        raise ConfigurationError(
            f"MANUFACTURING_SPARK_REMOTE={url!r}: expected a Spark Connect URL such as "
            "sc://127.0.0.1:15002"
        )
    return url


class ReadMode(StrEnum):
    STAGED = "staged"
    DIRECT = "direct"
    AUTOLOADER = "autoloader"  # Databricks Auto Loader (cloudFiles); Databricks only


class PredictiveOptimization(StrEnum):
    """Whether Databricks' Predictive Optimization maintains the catalog bronze tables."""

    AUTO = "auto"  # ask each catalog table (DESCRIBE TABLE EXTENDED); path tables: never
    ON = "on"  # every catalog bronze table: the maintenance job leaves them to Databricks
    OFF = "off"  # the maintenance job maintains every table


class Environment(StrEnum):
    LOCAL = "local"
    DATABRICKS = "databricks"


def default_jars_dir() -> Path:
    return Path(sys.prefix) / "share" / "manufacturing_ingest" / "jars"


@dataclass(frozen=True)
class SparkSettings:
    """How the local engine starts its Spark session."""

    master: str = "local[*]"
    driver_memory: str = "4g"
    jars_dir: Path = field(default_factory=default_jars_dir)
    remote: str = ""  # a Spark Connect URL (sc://host:port); empty: start a local session
    log_level: str = "ERROR"  # Spark's own log lines at this level and above, on stderr


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go besides the JSON log line, which is always on.

    - ``MANUFACTURING_ALERT_WEBHOOK_URL`` (secret): a Slack-compatible incoming webhook.
    - ``MANUFACTURING_ALERT_SMTP_HOST`` turns email on; with it ``…_SMTP_SENDER`` and
      ``…_SMTP_RECIPIENTS`` (comma-separated) are required, ``…_SMTP_PORT`` (587),
      ``…_SMTP_STARTTLS`` (true), ``…_SMTP_USERNAME`` and ``…_SMTP_PASSWORD`` (secret) optional.
    - ``MANUFACTURING_UI_URL``: the Dagster UI, for links to runs (``http://127.0.0.1:3000``).
    - ``MANUFACTURING_ALERT_INTERVAL_SECONDS``: how often the alert sensor looks (30).
    """

    webhook: bool = False  # whether MANUFACTURING_ALERT_WEBHOOK_URL is set; never its value
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_sender: str = ""
    smtp_recipients: tuple[str, ...] = ()
    smtp_username: str = ""
    smtp_password: bool = False  # whether MANUFACTURING_ALERT_SMTP_PASSWORD is set
    smtp_starttls: bool = True
    ui_url: str = "http://127.0.0.1:3000"
    interval_seconds: int = 30

    @property
    def email(self) -> bool:
        return bool(self.smtp_host)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AlertSettings:
        def get(name: str) -> str:
            return environ.get(f"MANUFACTURING_{name}", "").strip()

        host = get("ALERT_SMTP_HOST")
        recipients = tuple(r.strip() for r in get("ALERT_SMTP_RECIPIENTS").split(",")
                           if r.strip())
        settings = cls(
            webhook=bool(environ.get(WEBHOOK_URL_VAR, "").strip()),
            smtp_host=host,
            smtp_port=whole_number(get("ALERT_SMTP_PORT"), 587, "MANUFACTURING_ALERT_SMTP_PORT", 1,
                           65535),
            smtp_sender=get("ALERT_SMTP_SENDER"),
            smtp_recipients=recipients,
            smtp_username=get("ALERT_SMTP_USERNAME"),
            smtp_password=bool(environ.get(SMTP_PASSWORD_VAR, "")),
            smtp_starttls=boolean(get("ALERT_SMTP_STARTTLS"), True,
                                "MANUFACTURING_ALERT_SMTP_STARTTLS"),
            ui_url=(get("UI_URL") or "http://127.0.0.1:3000").rstrip("/"),
            interval_seconds=whole_number(get("ALERT_INTERVAL_SECONDS"), 30,
                                  "MANUFACTURING_ALERT_INTERVAL_SECONDS", 1, 3600),
        )
        if host and (not settings.smtp_sender or "@" not in settings.smtp_sender):
            raise ConfigurationError("MANUFACTURING_ALERT_SMTP_HOST is set: also set "
                                     "MANUFACTURING_ALERT_SMTP_SENDER to the From address")
        if host and (not recipients or any("@" not in r for r in recipients)):
            raise ConfigurationError("MANUFACTURING_ALERT_SMTP_HOST is set: also set "
                                     "MANUFACTURING_ALERT_SMTP_RECIPIENTS to one or more "
                                     "comma-separated addresses")
        if host and bool(settings.smtp_username) != settings.smtp_password:
            raise ConfigurationError("set both MANUFACTURING_ALERT_SMTP_USERNAME and "
                                     f"{SMTP_PASSWORD_VAR}, or neither")
        if not settings.ui_url.startswith(("http://", "https://")):
            raise ConfigurationError("MANUFACTURING_UI_URL must be the http(s):// address of "
                                     "the Dagster UI, e.g. https://dagster.plant.example")
        return settings


# Delta's own VACUUM safety check refuses a retention below the table's
# delta.deletedFileRetentionDuration, 7 days unless changed.
DELTA_SAFE_RETENTION_HOURS = 168


@dataclass(frozen=True)
class MaintenanceSettings:
    """How the ``table_maintenance`` job compacts and vacuums the tables (see
    ``engine/maintenance.py``).

    - ``MANUFACTURING_OPTIMIZE_TARGET_FILE_MB``: the file size compaction aims at (1024: Delta's
      and Databricks' default, the top of the original design's 128 MB – 1 GB guidance); files
      under a quarter of it are "small" and are what compaction merges.
    - ``MANUFACTURING_OPTIMIZE_ZORDER``: also Z-ORDER each compacted partition by the source's
      key columns (false: it rewrites the whole partition, and bronze is read by partition).
    - ``MANUFACTURING_VACUUM_RETENTION_HOURS``: how long files a newer version no longer needs
      are kept for time travel (168, Delta's default). Below 168 only with
      ``MANUFACTURING_VACUUM_ALLOW_SHORT_RETENTION=true``: a reader or a run older than the
      retention could lose its files.
    - ``MANUFACTURING_MAINTENANCE_LOOKBACK_DAYS``: how far back closed partitions are examined
      and compacted (7); older ones only with ``manufacturing-ingest maintain --since``.
    - ``MANUFACTURING_PREDICTIVE_OPTIMIZATION``: ``auto`` (default: a catalog table whose
      ``DESCRIBE TABLE EXTENDED`` says Predictive Optimization is enabled is left to it),
      ``on`` (every catalog bronze table is) or ``off`` (the job maintains every table).
    """

    target_file_mb: int = 1024
    zorder: bool = False
    vacuum_retention_hours: int = DELTA_SAFE_RETENTION_HOURS
    allow_short_retention: bool = False
    lookback_days: int = 7
    predictive_optimization: PredictiveOptimization = PredictiveOptimization.AUTO
    # Tasks Delta's VACUUM lists a table's folders with. Spark's default (10 000) suits a
    # cluster; on a laptop it is minutes of empty tasks, so the local engine uses a few.
    listing_parallelism: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], env: Environment) -> MaintenanceSettings:
        def get(name: str) -> str:
            return environ.get(f"MANUFACTURING_{name}", "").strip()

        settings = cls(
            target_file_mb=whole_number(get("OPTIMIZE_TARGET_FILE_MB"), 1024,
                                "MANUFACTURING_OPTIMIZE_TARGET_FILE_MB", 1, 16384),
            zorder=boolean(get("OPTIMIZE_ZORDER"), False, "MANUFACTURING_OPTIMIZE_ZORDER"),
            vacuum_retention_hours=whole_number(get("VACUUM_RETENTION_HOURS"),
                                        DELTA_SAFE_RETENTION_HOURS,
                                        "MANUFACTURING_VACUUM_RETENTION_HOURS", 0, 24 * 365),
            allow_short_retention=boolean(get("VACUUM_ALLOW_SHORT_RETENTION"), False,
                                        "MANUFACTURING_VACUUM_ALLOW_SHORT_RETENTION"),
            lookback_days=whole_number(get("MAINTENANCE_LOOKBACK_DAYS"), 7,
                               "MANUFACTURING_MAINTENANCE_LOOKBACK_DAYS", 1, 3650),
            predictive_optimization=_predictive_optimization(get("PREDICTIVE_OPTIMIZATION")),
            listing_parallelism=8 if env is Environment.LOCAL else None,
        )
        check_retention(settings.vacuum_retention_hours, settings.allow_short_retention)
        return settings


def _predictive_optimization(value: str) -> PredictiveOptimization:
    try:
        return PredictiveOptimization(value.lower() or "auto")
    except ValueError:
        raise ConfigurationError(f"MANUFACTURING_PREDICTIVE_OPTIMIZATION={value!r} is not one of "
                                 "auto, on, off") from None


def check_retention(hours: float, allow_short: bool) -> None:
    """Refuse a VACUUM retention below Delta's safety check unless it is explicitly allowed."""
    if hours < DELTA_SAFE_RETENTION_HOURS and not allow_short:
        raise ConfigurationError(
            f"MANUFACTURING_VACUUM_RETENTION_HOURS={hours:g} is below Delta's safety check "
            f"({DELTA_SAFE_RETENTION_HOURS} hours): VACUUM would delete files that time travel, "
            "a reprocess within the window or a long-running reader still needs. Use at least "
            f"{DELTA_SAFE_RETENTION_HOURS}, or set MANUFACTURING_VACUUM_ALLOW_SHORT_RETENTION=true "
            "if nothing reads older versions")


@dataclass(frozen=True)
class Settings:
    env: Environment
    landing_url: str
    lakehouse_url: str
    s3_role_arn: str
    spark: SparkSettings
    alerts: AlertSettings = field(default_factory=AlertSettings)
    maintenance: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    landing_interval_seconds: int = 60
    # None: each source's catalog ``sweep_interval`` (daily).
    sweep_interval_minutes: int | None = None
    sweep_budget_seconds: int = 20
    # source name -> SQS queue of its S3 event notifications (file notification mode)
    queue_urls: Mapping[str, str] = field(default_factory=dict)
    # source name -> what a corrected file does (MANUFACTURING_CORRECTIONS_<SOURCE>)
    corrections: Mapping[str, Corrections] = field(default_factory=dict)
    # source name -> encoding of its text files without a BOM (MANUFACTURING_ENCODING_<SOURCE>)
    encodings: Mapping[str, str] = field(default_factory=dict)
    # source name -> what files with new columns do (MANUFACTURING_SCHEMA_<SOURCE>)
    schema_contracts: Mapping[str, SchemaContract] = field(default_factory=dict)
    read_mode: ReadMode = ReadMode.STAGED
    catalog: str = ""  # bronze tables as <catalog>.manufacturing_bronze.<table>; "": by path
    # MANUFACTURING_ENV=databricks, outside Databricks: how the steps get there.
    databricks: DatabricksSettings | None = None
    # This process is a step running on Databricks compute (DATABRICKS_RUNTIME_VERSION is set).
    on_databricks_cluster: bool = False
    s3_kms_key: bool = False  # whether MANUFACTURING_S3_KMS_KEY_ID is set; never its value
    # How Auto Loader finds new files (MANUFACTURING_AUTOLOADER_*; read mode autoloader only)
    autoloader: AutoLoaderDiscovery = field(default_factory=AutoLoaderDiscovery)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        name = environ.get("MANUFACTURING_ENV", "").strip().lower() or Environment.LOCAL
        try:
            env = Environment(name)
        except ValueError:
            raise ConfigurationError(
                f"MANUFACTURING_ENV={name!r} is not one of "
                f"{', '.join(e.value for e in Environment)}"
            ) from None
        landing_url = _url_or_path(environ.get("MANUFACTURING_LANDING_URL"), ".data/landing")
        lakehouse_url = _url_or_path(environ.get("MANUFACTURING_LAKEHOUSE_URL"),
                                     ".data/lakehouse")
        _refuse_nesting(landing_url, lakehouse_url)
        _refuse_volume_lakehouse(lakehouse_url)
        check_endpoints(environ)
        on_cluster = bool(environ.get(DATABRICKS_RUNTIME_VAR, "").strip())
        databricks = (DatabricksSettings.from_env(environ)
                      if env is Environment.DATABRICKS and not on_cluster else None)
        queue_urls = _queue_urls(environ, landing_url)
        read_mode = _read_mode(environ.get("MANUFACTURING_READ_MODE", "").strip().lower(), env,
                               databricks)
        catalog = _catalog(environ.get("MANUFACTURING_CATALOG", "").strip())
        maintenance = MaintenanceSettings.from_env(environ, env)
        if maintenance.predictive_optimization is PredictiveOptimization.ON and not catalog:
            raise ConfigurationError(
                "MANUFACTURING_PREDICTIVE_OPTIMIZATION=on concerns catalog tables only "
                "(Databricks runs it on Unity Catalog managed tables); set MANUFACTURING_CATALOG, "
                "or use auto or off")
        return cls(
            env=env,
            landing_url=landing_url,
            lakehouse_url=lakehouse_url,
            s3_role_arn=environ.get("MANUFACTURING_S3_ROLE_ARN", "").strip(),
            s3_kms_key=kms_key_set(environ),
            spark=SparkSettings(
                master=environ.get("MANUFACTURING_SPARK_MASTER") or "local[*]",
                driver_memory=environ.get("MANUFACTURING_SPARK_DRIVER_MEMORY") or "4g",
                jars_dir=Path(environ.get("MANUFACTURING_SPARK_JARS") or default_jars_dir()),
                remote=_spark_remote(environ.get("MANUFACTURING_SPARK_REMOTE") or ""),
                log_level=_spark_log_level(environ.get("MANUFACTURING_SPARK_LOG_LEVEL") or "ERROR"),
            ),
            alerts=AlertSettings.from_env(environ),
            maintenance=maintenance,
            landing_interval_seconds=whole_number(
                environ.get("MANUFACTURING_LANDING_INTERVAL_SECONDS", "").strip(), 60,
                "MANUFACTURING_LANDING_INTERVAL_SECONDS", 5, 3600),
            sweep_interval_minutes=whole_number(
                environ.get("MANUFACTURING_SWEEP_INTERVAL_MINUTES", "").strip(), 0,
                "MANUFACTURING_SWEEP_INTERVAL_MINUTES", 1, 30 * 24 * 60) or None,
            sweep_budget_seconds=whole_number(
                environ.get("MANUFACTURING_SWEEP_BUDGET_SECONDS", "").strip(), 20,
                "MANUFACTURING_SWEEP_BUDGET_SECONDS", 1, 40),
            queue_urls=queue_urls,
            corrections=_corrections(environ),
            encodings=_encodings(environ),
            schema_contracts=_schema_contracts(environ),
            catalog=catalog,
            read_mode=read_mode,
            autoloader=AutoLoaderDiscovery.from_env(environ, read_mode is ReadMode.AUTOLOADER,
                                                    landing_url, queue_urls),
            databricks=databricks,
            on_databricks_cluster=on_cluster,
        )

    def with_sweep_interval(self, spec: SourceSpec) -> SourceSpec:
        """``spec`` with the sweep interval these settings override, if they do."""
        if self.sweep_interval_minutes is None:
            return spec
        return dataclasses.replace(spec, sweep_interval=timedelta(
            minutes=self.sweep_interval_minutes))

    def configured(self, spec: SourceSpec) -> SourceSpec:
        """``spec`` with everything these settings override (sweep interval, corrections,
        encoding, schema contract)."""
        spec = self.with_sweep_interval(spec)
        if spec.name in self.corrections:
            spec = dataclasses.replace(spec, corrections=self.corrections[spec.name])
        if spec.name in self.encodings:
            spec = dataclasses.replace(spec, encoding=self.encodings[spec.name])
        if spec.name in self.schema_contracts:
            spec = dataclasses.replace(spec, schema_contract=self.schema_contracts[spec.name])
        return spec


QUEUE_URL_VAR = "MANUFACTURING_QUEUE_URL_"
CORRECTIONS_VAR = "MANUFACTURING_CORRECTIONS_"
ENCODING_VAR = "MANUFACTURING_ENCODING_"
SCHEMA_VAR = "MANUFACTURING_SCHEMA_"


def _per_source(environ: Mapping[str, str], prefix: str) -> dict[str, tuple[str, str]]:
    """``<prefix><SOURCE>`` variables that are set: source -> (variable, value)."""
    found = {}
    for name, value in environ.items():
        if not name.startswith(prefix) or not value.strip():
            continue
        source = name[len(prefix):].lower()
        if source not in CATALOG:
            raise ConfigurationError(
                f"{name}: no source {source!r}; set one of "
                + ", ".join(prefix + s.upper() for s in CATALOG))
        found[source] = (name, value.strip())
    return found


def _encodings(environ: Mapping[str, str]) -> dict[str, str]:
    """``MANUFACTURING_ENCODING_<SOURCE>=cp1252`` (any Python codec), per source."""
    chosen = {}
    for source, (name, value) in _per_source(environ, ENCODING_VAR).items():
        try:
            chosen[source] = codecs.lookup(value).name
        except LookupError:
            raise ConfigurationError(f"{name}={value!r} is not an encoding Python knows "
                                     "(e.g. utf-8, cp1252, latin-1, utf-16-le)") from None
    return chosen


def _corrections(environ: Mapping[str, str]) -> dict[str, Corrections]:
    """``MANUFACTURING_CORRECTIONS_<SOURCE>=replace|append|ignore``, per source."""
    return _choices(environ, CORRECTIONS_VAR, Corrections)


def _schema_contracts(environ: Mapping[str, str]) -> dict[str, SchemaContract]:
    """``MANUFACTURING_SCHEMA_<SOURCE>=evolve|rescue|freeze``, per source."""
    return _choices(environ, SCHEMA_VAR, SchemaContract)


_Choice = TypeVar("_Choice", bound=StrEnum)


def _choices(environ: Mapping[str, str], prefix: str, choices: type[_Choice]
             ) -> dict[str, _Choice]:
    chosen: dict[str, _Choice] = {}
    for source, (name, value) in _per_source(environ, prefix).items():
        try:
            chosen[source] = choices(value.lower())
        except ValueError:
            raise ConfigurationError(
                f"{name}={value!r} is not one of "
                + ", ".join(c.value for c in choices)) from None
    return chosen


def _catalog(name: str) -> str:
    if name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigurationError(
            f"MANUFACTURING_CATALOG={name!r}: expected a catalog name (letters, digits, _), "
            "e.g. main; the schema manufacturing_bronze and the table names are fixed")
    return name


def _read_mode(value: str, env: Environment, databricks: DatabricksSettings | None
               ) -> ReadMode:
    if not value:
        return ReadMode.DIRECT if env is Environment.DATABRICKS else ReadMode.STAGED
    try:
        mode = ReadMode(value)
    except ValueError:
        raise ConfigurationError(
            f"MANUFACTURING_READ_MODE={value!r} is not one of "
            f"{', '.join(m.value for m in ReadMode)}") from None
    if mode is ReadMode.AUTOLOADER and env is not Environment.DATABRICKS:
        raise ConfigurationError(
            "MANUFACTURING_READ_MODE=autoloader needs MANUFACTURING_ENV=databricks: Auto Loader "
            "(cloudFiles) exists only on Databricks; use staged or direct here")
    if mode is ReadMode.STAGED and databricks is not None and databricks.execution.connect:
        raise ConfigurationError(
            f"MANUFACTURING_READ_MODE=staged cannot work with MANUFACTURING_DATABRICKS_EXECUTION="
            f"{databricks.execution.value}: staged reads hand Spark files on this machine's "
            "disk, which Databricks compute cannot read; use direct (the default) or autoloader")
    return mode


def _queue_urls(environ: Mapping[str, str], landing_url: str) -> dict[str, str]:
    """``MANUFACTURING_QUEUE_URL_<SOURCE>``: the sources in file notification mode."""
    urls: dict[str, str] = {}
    for source, (name, value) in _per_source(environ, QUEUE_URL_VAR).items():
        if not value.startswith(("https://", "http://")):
            raise ConfigurationError(f"{name}={value!r} is not an SQS queue URL "
                                     "(https://sqs.<region>.amazonaws.com/<account>/<queue>)")
        urls[source] = value
    if urls and not landing_url.startswith("s3://"):
        raise ConfigurationError(f"{', '.join(QUEUE_URL_VAR + s.upper() for s in urls)}: file "
                                 "notification mode needs an s3:// MANUFACTURING_LANDING_URL")
    return dict(sorted(urls.items()))


def _url_or_path(value: str | None, default: str) -> str:
    """Turn a plain or relative path into an absolute one; leave URLs with a scheme alone."""
    value = (value or "").strip() or default
    if value.startswith("file://"):
        return str(Path(value[len("file://") :]).resolve())
    if "://" in value or value.startswith("dbfs:"):
        return value.rstrip("/")
    if value.startswith("/Volumes/"):
        return value.rstrip("/")  # a Unity Catalog volume, never a folder of this machine
    return str(Path(value).expanduser().resolve())


def _refuse_volume_lakehouse(lakehouse_url: str) -> None:
    """The lakehouse holds the file ledger, which the Dagster host's sensors and backlog checks
    read with delta-rs; outside Databricks compute nothing can read a volume that way, so the
    sensors would see an empty ledger and ask for every file again."""
    if lakehouse_url.startswith(("/Volumes/", "dbfs:")):
        raise ConfigurationError(
            f"MANUFACTURING_LAKEHOUSE_URL={lakehouse_url}: the lakehouse holds the file ledger "
            "the Dagster host reads directly, which it cannot do in a volume; use an s3:// "
            "location (a Unity Catalog external location), and MANUFACTURING_CATALOG to make the "
            "bronze tables Unity Catalog tables")


def _refuse_nesting(landing_url: str, lakehouse_url: str) -> None:
    """A lakehouse inside the landing folder would ingest its own files, and the reverse."""
    if "://" in landing_url or "://" in lakehouse_url:
        return
    landing, lakehouse = Path(landing_url), Path(lakehouse_url)
    if landing == lakehouse or landing in lakehouse.parents or lakehouse in landing.parents:
        raise ConfigurationError(
            f"MANUFACTURING_LAKEHOUSE_URL={lakehouse} and MANUFACTURING_LANDING_URL={landing} "
            "overlap: a lakehouse inside the landing folder would ingest its own files (and "
            "the reverse mixes landed files with tables); keep them in separate folders"
        )
