"""The Delta jars Spark needs, fetched once into the environment with Maven.

Spark's own resolver (``spark.jars.packages``) cannot reach Maven Central on every network where
Maven can, and it resolves again on every fresh machine; a folder of jars handed to
``spark.jars`` starts the same way everywhere.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import pyspark

SCALA_VERSION = "2.13"


def delta_artifacts() -> list[str]:
    """Maven coordinates matching the installed pyspark and delta-spark."""
    delta_version = metadata.version("delta-spark")
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return [
        f"io.delta:delta-spark_{spark_minor}_{SCALA_VERSION}:{delta_version}",
        f"io.delta:delta-storage:{delta_version}",
    ]


def jar_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jar")) if folder.is_dir() else []


def fetch_jars(folder: Path, artifacts: list[str] | None = None) -> list[Path]:
    """Copy the artifacts' jars (not their dependencies, which Spark ships) into ``folder``."""
    artifacts = artifacts or delta_artifacts()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(
            "Maven (mvn) is needed to fetch the Delta jars; install it (apt-get install maven) "
            "or let Spark resolve them by leaving MANUFACTURING_SPARK_JARS empty"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for artifact in artifacts:
            name = artifact.split(":")[1] + "-" + artifact.split(":")[2] + ".jar"
            if (folder / name).exists():
                continue
            result = subprocess.run(
                [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={artifact}",
                 f"-DoutputDirectory={folder}"],
                cwd=scratch, capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"mvn could not fetch {artifact}:\n{result.stdout[-2000:]}")
    return jar_files(folder)
