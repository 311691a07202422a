"""dagster-databricks' DBFS step launcher, for workspaces that still have DBFS.

It pickles each bronze step, stages it with the project's code in DBFS, submits a one-time run
on a cluster and reads the step's events back from DBFS. Workspaces created without DBFS (the
default for new accounts) use ``pipes-serverless`` or a Connect session instead
(``MANUFACTURING_DATABRICKS_EXECUTION``, see ``settings.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from dagster_databricks import databricks_pyspark_step_launcher

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.databricks.job import cluster_libraries, cluster_spec, step_settings
from manufacturing_ingest.databricks.settings import (
    DATABRICKS_TOKEN_VAR,
    DatabricksAuth,
    DatabricksSettings,
)
from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest.orchestration.names import asset_path, bronze_op_name
from manufacturing_ingest.settings import Settings

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def databricks_step_launcher(settings: Settings, databricks: DatabricksSettings
                             ) -> dg.ResourceDefinition:
    """dagster-databricks' launcher, configured from ``settings``, secrets by variable name only.

    A token is passed as ``{"env": "DATABRICKS_TOKEN"}`` (the config form of ``dg.EnvVar``), read
    when a run starts the resource. The launcher's OAuth fields take no variable, so for a service
    principal it gets no credentials at all and the databricks-sdk reads
    ``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET`` from the environment itself.
    """
    token = ({"env": DATABRICKS_TOKEN_VAR} if databricks.auth is DatabricksAuth.TOKEN
             else None)
    return databricks_pyspark_step_launcher.configured({
        "run_config": {
            "run_name": "manufacturing_ingest bronze step",
            "cluster": cluster_spec(databricks),
            "libraries": cluster_libraries(databricks),
        },
        "permissions": {},
        "databricks_host": databricks.host,
        "databricks_token": token,
        "env_variables": step_settings(settings),
        # Secrets stay out of the step: S3 access comes from the cluster's instance profile.
        "secrets_to_env_variables": [],
        "staging_prefix": databricks.staging_prefix,
        # The cluster imports the package from the wheel; the launcher also insists on zipping
        # the code it runs, which then sits beside it, unused.
        "local_pipeline_package_path": str(PACKAGE_DIR),
        "poll_interval_sec": databricks.poll_seconds,
        "verbose_logs": False,
    })


def databricks_runs_elsewhere(source_names: list[str], first: str, last: str | None,
                              reprocess: bool) -> ConfigurationError:
    """Why this process cannot run step-launcher steps, and the commands that can.

    The step launcher sends a step to the cluster as a pointer to the definitions module, which
    needs a run Dagster can rebuild in another process; ``dg.materialize`` runs in-process
    definitions, so the CLI names the ``dagster asset materialize`` commands instead.
    """
    commands = []
    for name in source_names:
        spec = get_source(name)
        start, end = spec.partitions.widen(first, last)
        partition = f"--partition {start}" if start == end else f"--partition-range {start}...{end}"
        command = ("dagster asset materialize -m manufacturing_ingest.definitions --select "
                   f"{asset_path(spec)} {partition}")
        if reprocess:
            ops = {bronze_op_name(spec): {"config": {"reprocess": True}}}
            command += f" --config-json '{json.dumps({'ops': ops})}'"
        commands.append(f"'{command}'")
    return ConfigurationError(
        "MANUFACTURING_DATABRICKS_EXECUTION=step-launcher: the bronze steps run on Databricks "
        "through the step launcher, which this command cannot drive; run "
        f"{' then '.join(commands)}, or launch the runs from the Dagster UI")
