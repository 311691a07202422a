"""Where and how the bronze steps run on Databricks (``MANUFACTURING_ENV=databricks``).

``MANUFACTURING_DATABRICKS_EXECUTION`` picks one of four ways (``Execution``). Every variable
here is checked whenever it is set, and required only by the ways that use it;
``DatabricksSettings.from_env`` refuses a combination that cannot work in one line that names
the variable to set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest.s3_security import is_loopback
from manufacturing_ingest.variables import seconds, whole_number

# The databricks-sdk's own variables; the secrets among them reach Dagster only as ``dg.EnvVar``
# or through the SDK's own credential chain.
DATABRICKS_HOST_VAR = "DATABRICKS_HOST"
DATABRICKS_TOKEN_VAR = "DATABRICKS_TOKEN"
DATABRICKS_CLIENT_ID_VAR = "DATABRICKS_CLIENT_ID"
DATABRICKS_CLIENT_SECRET_VAR = "DATABRICKS_CLIENT_SECRET"
# Set by Databricks on its clusters and serverless compute: this process is the bronze step
# running there.
DATABRICKS_RUNTIME_VAR = "DATABRICKS_RUNTIME_VERSION"
EXECUTION_VAR = "MANUFACTURING_DATABRICKS_EXECUTION"

# /Volumes/<catalog>/<schema>/<volume>[/folder…]: a Unity Catalog volume, as Databricks names it.
VOLUME_PATH = re.compile(r"/Volumes/[^/]+/[^/]+/[^/]+(/[^/]+)*")


class Execution(StrEnum):
    """How a bronze step reaches Databricks compute.

    - ``pipes-serverless`` (default): the step is a serverless job run of this project's wheel,
      started by dagster-databricks' ``PipesDatabricksServerlessClient``; its context and
      results pass through a Unity Catalog volume. No DBFS, no cluster to start or pay for idle.
    - ``connect-serverless`` / ``connect-cluster``: the step runs in the Dagster run's own
      process on a Databricks Connect session (serverless compute, or an existing cluster);
      needs the ``databricks`` extra (``databricks-connect``) in Dagster's environment.
    - ``step-launcher``: dagster-databricks' ``databricks_pyspark_step_launcher``, which stages
      the step in DBFS; only for workspaces that still have DBFS.
    """

    PIPES_SERVERLESS = "pipes-serverless"
    CONNECT_SERVERLESS = "connect-serverless"
    CONNECT_CLUSTER = "connect-cluster"
    STEP_LAUNCHER = "step-launcher"

    @property
    def connect(self) -> bool:
        return self in (Execution.CONNECT_SERVERLESS, Execution.CONNECT_CLUSTER)


class DatabricksAuth(StrEnum):
    """How Dagster signs in to the workspace; the secret itself stays in its variable."""

    TOKEN = "token"  # a personal access token in DATABRICKS_TOKEN
    SERVICE_PRINCIPAL = "service_principal"  # OAuth M2M: DATABRICKS_CLIENT_ID + _CLIENT_SECRET


@dataclass(frozen=True)
class DatabricksSettings:
    """Where and how the bronze steps run on Databricks.

    - ``DATABRICKS_HOST``: the workspace URL. ``DATABRICKS_TOKEN`` (a personal access token) or
      ``DATABRICKS_CLIENT_ID`` + ``DATABRICKS_CLIENT_SECRET`` (an OAuth service principal).
    - ``MANUFACTURING_DATABRICKS_EXECUTION``: ``pipes-serverless`` (default),
      ``connect-serverless``, ``connect-cluster`` or ``step-launcher`` (``Execution``).
    - ``MANUFACTURING_DATABRICKS_WHEEL`` (pipes, step launcher): this project's wheel, uploaded
      to a ``/Volumes/…`` path (or ``dbfs:/…`` for the step launcher); the job installs it with
      the pinned packages.
    - ``MANUFACTURING_DATABRICKS_VOLUME`` (pipes): the volume folder
      (``/Volumes/<catalog>/<schema>/<volume>[/…]``) where each run's Pipes context and
      messages are staged.
    - ``MANUFACTURING_DATABRICKS_ENVIRONMENT_VERSION`` (pipes): the serverless environment
      version the job runs in (``4``: Python 3.12, Spark 4).
    - ``MANUFACTURING_DATABRICKS_CLUSTER_ID`` (connect cluster, step launcher): run on this
      existing cluster. Without it the step launcher starts a new job cluster for each step from
      ``MANUFACTURING_DATABRICKS_INSTANCE_POOL_ID`` with ``…_SPARK_VERSION`` (a Spark 4
      runtime such as ``17.3.x-scala2.13``), ``…_NUM_WORKERS`` (1) and
      ``…_INSTANCE_PROFILE_ARN``, the IAM role through which the cluster reads S3.
    - ``MANUFACTURING_DATABRICKS_STAGING_PREFIX`` (step launcher): DBFS folder for each step's
      code and events (``/manufacturing_ingest/staging``).
    - ``MANUFACTURING_DATABRICKS_POLL_SECONDS`` (pipes, step launcher): how often the run asks
      about the job (10).
    """

    host: str
    auth: DatabricksAuth
    execution: Execution = Execution.PIPES_SERVERLESS
    wheel: str = ""
    volume: str = ""
    environment_version: str = "4"
    cluster_id: str = ""
    instance_pool_id: str = ""
    spark_version: str = ""
    num_workers: int = 1
    instance_profile_arn: str = ""
    staging_prefix: str = "/manufacturing_ingest/staging"
    poll_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DatabricksSettings:
        def get(name: str) -> str:
            return environ.get(name, "").strip()

        execution = _execution(get(EXECUTION_VAR))
        settings = cls(
            host=_databricks_host(get(DATABRICKS_HOST_VAR)),
            auth=_databricks_auth(environ),
            execution=execution,
            wheel=get("MANUFACTURING_DATABRICKS_WHEEL"),
            volume=get("MANUFACTURING_DATABRICKS_VOLUME").rstrip("/"),
            environment_version=get("MANUFACTURING_DATABRICKS_ENVIRONMENT_VERSION") or "4",
            cluster_id=get("MANUFACTURING_DATABRICKS_CLUSTER_ID"),
            instance_pool_id=get("MANUFACTURING_DATABRICKS_INSTANCE_POOL_ID"),
            spark_version=get("MANUFACTURING_DATABRICKS_SPARK_VERSION"),
            num_workers=whole_number(get("MANUFACTURING_DATABRICKS_NUM_WORKERS"), 1,
                                     "MANUFACTURING_DATABRICKS_NUM_WORKERS", 0, 1000),
            instance_profile_arn=get("MANUFACTURING_DATABRICKS_INSTANCE_PROFILE_ARN"),
            staging_prefix=_staging_prefix(get("MANUFACTURING_DATABRICKS_STAGING_PREFIX")),
            poll_seconds=seconds(get("MANUFACTURING_DATABRICKS_POLL_SECONDS"), 10.0,
                                 "MANUFACTURING_DATABRICKS_POLL_SECONDS", 0.1, 600.0),
        )
        if execution is Execution.STEP_LAUNCHER:
            _databricks_wheel(settings.wheel, execution)
            if not settings.cluster_id:
                _require_new_cluster(settings)
        elif execution is Execution.PIPES_SERVERLESS:
            _databricks_wheel(settings.wheel, execution)
            _pipes_volume(settings.volume)
            _serverless_landing(get("MANUFACTURING_LANDING_URL"))
        elif execution is Execution.CONNECT_CLUSTER and not settings.cluster_id:
            raise ConfigurationError(f"{EXECUTION_VAR}=connect-cluster: set "
                                     "MANUFACTURING_DATABRICKS_CLUSTER_ID to the cluster the "
                                     "session runs on, or use connect-serverless")
        return settings


def _execution(value: str) -> Execution:
    if not value:
        return Execution.PIPES_SERVERLESS
    try:
        return Execution(value.lower())
    except ValueError:
        raise ConfigurationError(f"{EXECUTION_VAR}={value!r} is not one of "
                                 f"{', '.join(e.value for e in Execution)}") from None


def _databricks_host(host: str) -> str:
    if not host:
        raise ConfigurationError(f"MANUFACTURING_ENV=databricks: set {DATABRICKS_HOST_VAR} to the "
                                 "workspace URL, e.g. https://dbc-1234.cloud.databricks.com")
    if not host.startswith(("https://", "http://")):
        raise ConfigurationError(f"{DATABRICKS_HOST_VAR}={host!r} is not a workspace URL; use "
                                 "https://<workspace>.cloud.databricks.com")
    if host.startswith("http://") and not is_loopback(urlsplit(host).hostname or ""):
        # The token or OAuth secret would cross the network in clear text.
        raise ConfigurationError(f"{DATABRICKS_HOST_VAR}={host!r} is plain http: use the "
                                 "workspace's https:// URL (plain http only on loopback)")
    return host.rstrip("/")


def _databricks_auth(environ: Mapping[str, str]) -> DatabricksAuth:
    """Exactly one way to sign in, so Dagster never picks one the operator did not mean."""
    token = bool(environ.get(DATABRICKS_TOKEN_VAR, "").strip())
    client_id = bool(environ.get(DATABRICKS_CLIENT_ID_VAR, "").strip())
    client_secret = bool(environ.get(DATABRICKS_CLIENT_SECRET_VAR, "").strip())
    if client_id != client_secret:
        raise ConfigurationError(f"set both {DATABRICKS_CLIENT_ID_VAR} and "
                                 f"{DATABRICKS_CLIENT_SECRET_VAR} for a service principal, or "
                                 "neither")
    if token and client_id:
        raise ConfigurationError(f"set {DATABRICKS_TOKEN_VAR} or {DATABRICKS_CLIENT_ID_VAR} + "
                                 f"{DATABRICKS_CLIENT_SECRET_VAR}, not both")
    if not (token or client_id):
        raise ConfigurationError(f"MANUFACTURING_ENV=databricks: set {DATABRICKS_TOKEN_VAR} (a "
                                 f"personal access token) or {DATABRICKS_CLIENT_ID_VAR} + "
                                 f"{DATABRICKS_CLIENT_SECRET_VAR} (a service principal)")
    return DatabricksAuth.TOKEN if token else DatabricksAuth.SERVICE_PRINCIPAL


def _databricks_wheel(wheel: str, execution: Execution) -> None:
    where = "a volume" if execution is Execution.PIPES_SERVERLESS else "DBFS or a volume"
    example = ("/Volumes/main/manufacturing_ingest/artifacts/dev/.internal"
               if execution is Execution.PIPES_SERVERLESS else "dbfs:/libs")
    if not wheel:
        raise ConfigurationError(f"{EXECUTION_VAR}={execution.value}: set "
                                 "MANUFACTURING_DATABRICKS_WHEEL to this project's wheel on "
                                 f"{where} ('databricks bundle deploy' uploads it; or build it "
                                 "with 'python -m pip wheel --no-deps -w dist .' and upload "
                                 f"dist/*.whl), e.g. {example}/"
                                 "manufacturing_ingest-0.1.0-py3-none-any.whl")
    prefixes = (("/Volumes/",) if execution is Execution.PIPES_SERVERLESS
                else ("dbfs:/", "/Volumes/"))
    if not wheel.startswith(prefixes) or not wheel.endswith(".whl"):
        raise ConfigurationError(f"MANUFACTURING_DATABRICKS_WHEEL={wheel!r} must be a .whl under "
                                 f"{' or '.join(prefixes)}, where {execution.value} can install "
                                 "it")


def _pipes_volume(volume: str) -> None:
    if not volume:
        raise ConfigurationError(f"{EXECUTION_VAR}=pipes-serverless: set "
                                 "MANUFACTURING_DATABRICKS_VOLUME to a Unity Catalog volume "
                                 "folder for each run's Pipes context and messages, e.g. "
                                 "/Volumes/main/manufacturing/pipes")
    if not VOLUME_PATH.fullmatch(volume):
        raise ConfigurationError(f"MANUFACTURING_DATABRICKS_VOLUME={volume!r} is not a volume "
                                 "path: /Volumes/<catalog>/<schema>/<volume>[/folder]")


def _serverless_landing(landing_url: str) -> None:
    """Serverless compute has no AWS credentials of its own: the job reads landed files through
    Unity Catalog (a volume, or Spark under an external location), never with boto3."""
    if landing_url.startswith("s3://"):
        raise ConfigurationError(
            f"MANUFACTURING_LANDING_URL={landing_url} with {EXECUTION_VAR}=pipes-serverless: the "
            "serverless job cannot read S3 with AWS credentials of its own; put an external "
            "volume over that prefix and land through it (MANUFACTURING_LANDING_URL=/Volumes/"
            "<catalog>/<schema>/<volume>), or use connect-serverless")


def _staging_prefix(prefix: str) -> str:
    if not prefix:
        return "/manufacturing_ingest/staging"
    if prefix.startswith("dbfs:/"):
        prefix = "/" + prefix[len("dbfs:/"):].lstrip("/")
    if not prefix.startswith("/") or prefix.rstrip("/") == "":
        raise ConfigurationError(f"MANUFACTURING_DATABRICKS_STAGING_PREFIX={prefix!r} must be an "
                                 "absolute DBFS folder, e.g. /manufacturing_ingest/staging")
    return prefix.rstrip("/")


def _require_new_cluster(settings: DatabricksSettings) -> None:
    """Without an existing cluster, each step needs everything a new job cluster is made from."""
    missing = [name for name, value in (
        ("MANUFACTURING_DATABRICKS_INSTANCE_POOL_ID", settings.instance_pool_id),
        ("MANUFACTURING_DATABRICKS_SPARK_VERSION", settings.spark_version),
        ("MANUFACTURING_DATABRICKS_INSTANCE_PROFILE_ARN", settings.instance_profile_arn),
    ) if not value]
    if missing:
        raise ConfigurationError(f"{EXECUTION_VAR}=step-launcher: set "
                                 "MANUFACTURING_DATABRICKS_CLUSTER_ID to run on an existing "
                                 f"cluster, or {', '.join(missing)} for a new job cluster")
    if not settings.instance_profile_arn.startswith("arn:aws:iam::"):
        raise ConfigurationError(
            f"MANUFACTURING_DATABRICKS_INSTANCE_PROFILE_ARN={settings.instance_profile_arn!r} is "
            "not an instance profile ARN (arn:aws:iam::<account>:instance-profile/<name>)")
