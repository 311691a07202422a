"""The stand-in cluster's driver: a Delta-enabled Spark session first, then the task's file.

Databricks starts a ``spark_python_task`` in a Python process whose Spark session is already up
(``SparkSession.builder.getOrCreate()`` returns it) and which has the notebook globals ``sc``
and ``dbutils``; dagster-databricks' ``databricks_step_main.py`` uses both. This module gives
the task the same: the project's local session configuration (Delta, UTC), ``sc``, and a
``dbutils`` whose secret scopes are empty, as the launcher is configured to ask for none.

Usage: ``python cluster_main.py <python_file> [parameters…]``.
"""

from __future__ import annotations

import builtins
import os
import runpy
import sys
from pathlib import Path


class NoSecrets:
    """``dbutils.secrets`` of a workspace without secret scopes."""

    def get(self, scope: str, key: str) -> str:
        raise KeyError(f"Secret does not exist with scope: {scope} and key: {key}")


class DbUtils:
    secrets = NoSecrets()


def start_spark():
    """A cluster's session: Delta enabled, small, on loopback."""
    from manufacturing_ingest.engine.spark import get_spark_session
    from manufacturing_ingest.settings import SparkSettings, default_jars_dir

    jars = os.environ.get("MANUFACTURING_SPARK_JARS")
    settings = SparkSettings(master="local[2]", driver_memory="1g",
                             jars_dir=Path(jars) if jars else default_jars_dir())
    return get_spark_session(settings, app_name="databricks-standin-cluster")


def main(argv: list[str]) -> None:
    python_file, *parameters = argv
    spark = start_spark()
    builtins.spark = spark
    builtins.sc = spark.sparkContext
    builtins.dbutils = DbUtils()
    sys.argv = [python_file, *parameters]
    try:
        runpy.run_path(python_file, run_name="__main__")
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
