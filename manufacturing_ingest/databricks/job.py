"""What a bronze step needs on Databricks, whichever way it is sent: its settings and packages."""

from __future__ import annotations

from importlib.metadata import requires
from typing import Any

from manufacturing_ingest.databricks.settings import DatabricksSettings
from manufacturing_ingest.settings import (
    CORRECTIONS_VAR,
    ENCODING_VAR,
    SCHEMA_VAR,
    Environment,
    Settings,
)

# The settings a bronze step reads on Databricks; the launcher or the job sets them there.
# Never secrets: what the compute needs to reach S3 comes from its instance profile or Unity
# Catalog's external locations.
STEP_SETTINGS = ("MANUFACTURING_LANDING_URL", "MANUFACTURING_LAKEHOUSE_URL",
                 "MANUFACTURING_S3_ROLE_ARN", "MANUFACTURING_READ_MODE", "MANUFACTURING_CATALOG")

# The runtime brings its own Spark and Delta (serverless: its Databricks Connect client);
# installing ours over them breaks it.
PROVIDED_BY_THE_RUNTIME = ("pyspark", "delta-spark")


def step_settings(settings: Settings) -> dict[str, str]:
    """The environment a bronze step needs on Databricks to build the same definitions and read
    each source as configured here (corrections, encodings, schema contracts, Auto Loader's
    discovery)."""
    values = (settings.landing_url, settings.lakehouse_url, settings.s3_role_arn,
              settings.read_mode.value, settings.catalog)
    env = {name: value for name, value in zip(STEP_SETTINGS, values, strict=True) if value}
    for prefix, chosen in ((CORRECTIONS_VAR, settings.corrections),
                           (ENCODING_VAR, settings.encodings),
                           (SCHEMA_VAR, settings.schema_contracts)):
        env.update({prefix + source.upper(): str(value) for source, value in chosen.items()})
    # How Auto Loader finds new files (MANUFACTURING_AUTOLOADER_*), when it is not the default.
    env.update(settings.autoloader.env())
    return {"MANUFACTURING_ENV": Environment.DATABRICKS.value, **env}


def pinned_requirements() -> list[str]:
    """The exact versions this project is tested with, but for what the runtime provides."""
    return [requirement for requirement in requires("manufacturing_ingest") or []
            if "extra ==" not in requirement
            and not requirement.startswith(PROVIDED_BY_THE_RUNTIME)]


def cluster_libraries(databricks: DatabricksSettings) -> list[dict[str, Any]]:
    """This project's wheel and its pinned dependencies, as a cluster installs libraries."""
    return [{"whl": databricks.wheel}, *({"pypi": {"package": p}} for p in pinned_requirements())]


def cluster_spec(databricks: DatabricksSettings) -> dict[str, Any]:
    """An existing cluster, or a new job cluster from the instance pool with the S3 role."""
    if databricks.cluster_id:
        return {"existing": databricks.cluster_id}
    return {"new": {
        "size": {"num_workers": databricks.num_workers},
        "spark_version": databricks.spark_version,
        "nodes": {"instance_pool_id": databricks.instance_pool_id},
        "aws_attributes": {"instance_profile_arn": databricks.instance_profile_arn},
        "custom_tags": [{"key": "project", "value": "manufacturing_ingest"}],
    }}
