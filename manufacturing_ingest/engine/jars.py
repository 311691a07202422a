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

# hadoop-aws (the S3A connector, for an ``s3://`` lakehouse on the local engine) must match the
# Hadoop that pyspark ships; the AWS SDK bundle and the analytics stream library it needs, at
# the versions that Hadoop release names (hadoop-project's pom: aws-java-sdk-v2.version,
# amazon-s3-analyticsaccelerator-s3.version).
S3A_DEPENDENCIES = {
    "3.5.0": ("software.amazon.awssdk:bundle:2.35.4",
              "software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:1.3.1"),
}
S3A_FOLDER = "s3a"  # under the jars folder; kept apart from the Delta jars every session loads


def delta_artifacts() -> list[str]:
    """Maven coordinates matching the installed pyspark and delta-spark."""
    delta_version = metadata.version("delta-spark")
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return [
        f"io.delta:delta-spark_{spark_minor}_{SCALA_VERSION}:{delta_version}",
        f"io.delta:delta-storage:{delta_version}",
    ]


def hadoop_version() -> str:
    """The Hadoop version of the installed pyspark (its ``hadoop-client-api`` jar)."""
    jars = Path(pyspark.__file__).parent / "jars"
    for jar in jars.glob("hadoop-client-api-*.jar"):
        return jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    raise RuntimeError(f"no hadoop-client-api jar in {jars}: is pyspark installed whole?")


def s3a_artifacts() -> list[str]:
    """hadoop-aws for the installed pyspark's Hadoop, and the AWS SDK it was released with."""
    version = hadoop_version()
    if version not in S3A_DEPENDENCIES:
        raise RuntimeError(
            f"pyspark ships Hadoop {version}, for which S3A_DEPENDENCIES (engine/jars.py) names "
            "no AWS SDK: add the versions from that release's hadoop-project pom")
    return [f"org.apache.hadoop:hadoop-aws:{version}", *S3A_DEPENDENCIES[version]]


def s3a_jar_files(folder: Path) -> list[Path]:
    """The S3A jars ``fetch-jars --s3a`` put under the jars folder, if it did."""
    return jar_files(folder / S3A_FOLDER)


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
