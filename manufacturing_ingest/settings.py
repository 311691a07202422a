"""The one place that reads the environment; everything else is handed a ``Settings``.

Checked in this order, each with a default that works on a laptop:

- ``MANUFACTURING_ENV``: ``local`` (default) or ``databricks``; selects the Dagster resources.
- ``MANUFACTURING_LANDING_URL``: landing root; a path, ``file://…`` or ``s3://bucket[/prefix]``.
  Default ``.data/landing`` under the working directory.
- ``MANUFACTURING_LAKEHOUSE_URL``: root of the local Delta tables. Default ``.data/lakehouse``.
- ``MANUFACTURING_S3_ROLE_ARN``: optional IAM role to assume for an ``s3://`` landing zone,
  on top of the standard AWS credential chain.
- ``MANUFACTURING_SPARK_MASTER``: Spark master for the local engine. Default ``local[*]``.
- ``MANUFACTURING_SPARK_DRIVER_MEMORY``: driver heap for the local engine. Default ``4g``.
- ``MANUFACTURING_SPARK_JARS``: folder holding the Delta jars (``manufacturing-ingest
  fetch-jars`` fills it). Default ``<virtualenv>/share/manufacturing_ingest/jars``; when it
  holds no jars, Spark resolves them from Maven Central itself at start-up.

S3 credentials and endpoints come from the standard AWS chain (``AWS_PROFILE``,
``AWS_ENDPOINT_URL``, …) and are never read here. A process builds its ``Settings`` once
(``definitions.py`` for Dagster, ``main`` for the CLI) and passes it down.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from manufacturing_ingest.errors import ConfigurationError

__all__ = ["ConfigurationError", "Environment", "Settings", "SparkSettings", "default_jars_dir"]


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


@dataclass(frozen=True)
class Settings:
    env: Environment
    landing_url: str
    lakehouse_url: str
    s3_role_arn: str
    spark: SparkSettings

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
        return cls(
            env=env,
            landing_url=landing_url,
            lakehouse_url=lakehouse_url,
            s3_role_arn=environ.get("MANUFACTURING_S3_ROLE_ARN", "").strip(),
            spark=SparkSettings(
                master=environ.get("MANUFACTURING_SPARK_MASTER") or "local[*]",
                driver_memory=environ.get("MANUFACTURING_SPARK_DRIVER_MEMORY") or "4g",
                jars_dir=Path(environ.get("MANUFACTURING_SPARK_JARS") or default_jars_dir()),
            ),
        )


def _url_or_path(value: str | None, default: str) -> str:
    """Turn a plain or relative path into an absolute one; leave URLs with a scheme alone."""
    value = (value or "").strip() or default
    if value.startswith("file://"):
        return str(Path(value[len("file://") :]).resolve())
    if "://" in value:
        return value.rstrip("/")
    return str(Path(value).expanduser().resolve())


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
