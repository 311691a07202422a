"""The stand-in's driver process: a Delta-enabled Spark session first, then the task.

Databricks starts a ``spark_python_task`` on a cluster in a Python process whose Spark session is
already up (``SparkSession.builder.getOrCreate()`` returns it) and which has the notebook globals
``spark``, ``sc`` and ``dbutils``; dagster-databricks' ``databricks_step_main.py`` uses them. This
module gives the task the same: the project's local session configuration (Delta, UTC), ``sc``,
and a ``dbutils`` whose secret scopes are empty, as the launcher is configured to ask for none.

On serverless compute (``--serverless``) the task gets ``spark`` only: serverless has no
``sc`` (no SparkContext) and the stand-in gives it no ``dbutils``. A ``python_wheel_task``
(``--wheel``) runs as Databricks runs one: the entry point named in the installed distribution's
metadata (any group; ``console_scripts`` for ``[project.scripts]``), else the function
``<package_name>.<entry_point>``, called with no arguments after ``sys.argv`` is set to the
task's parameters. Its return value is ignored; an exception or ``SystemExit`` with a non-zero
code fails the run.

Usage::

    python cluster_main.py [--serverless] <python_file> [parameters…]
    python cluster_main.py [--serverless] --wheel <package_name> <entry_point> [parameters…]

The options are read only before the first positional argument, so a task's own parameters are
never taken for them.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.metadata
import os
import runpy
import sys
from collections.abc import Callable
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


def entry_point(package_name: str, name: str) -> Callable[[], object]:
    """The function a ``python_wheel_task`` runs: the distribution's entry point called
    ``name``, or, when its metadata has none, ``<package_name>.<name>`` itself."""
    try:
        points = importlib.metadata.distribution(package_name).entry_points
    except importlib.metadata.PackageNotFoundError:
        points = ()
    point = next((p for p in points if p.name == name), None)
    if point is not None:
        return point.load()
    return getattr(importlib.import_module(package_name), name)


def main(argv: list[str]) -> None:
    serverless = argv[:1] == ["--serverless"]
    argv = argv[1:] if serverless else argv
    spark = start_spark()
    builtins.spark = spark
    if not serverless:
        builtins.sc = spark.sparkContext
        builtins.dbutils = DbUtils()
    try:
        if argv[:1] == ["--wheel"]:
            _, package_name, name, *parameters = argv
            function = entry_point(package_name, name)
            sys.argv = [name, *parameters]
            function()
        else:
            python_file, *parameters = argv
            sys.argv = [python_file, *parameters]
            runpy.run_path(python_file, run_name="__main__")
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
