"""The Databricks Asset Bundle (databricks.yml) agrees with the code it deploys for.

``databricks bundle validate`` needs a workspace, so these check what can be checked offline:
the settings the bundle's header tells an operator to set are accepted as they stand, and the
names it deploys are the ones the code uses.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from manufacturing_ingest.databricks.pipes import PACKAGE_NAME, TASK_ENTRY_POINT
from manufacturing_ingest.databricks.settings import DatabricksSettings, Execution
from manufacturing_ingest.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_TEXT = (ROOT / "databricks.yml").read_text()
BUNDLE = yaml.safe_load(BUNDLE_TEXT)
CATALOG = BUNDLE["variables"]["catalog"]["default"]


def documented_settings() -> dict[str, str]:
    """The ``MANUFACTURING_…=value`` lines of the bundle's header comment."""
    return dict(re.findall(r"^#\s+(MANUFACTURING_\w+)=(\S+)", BUNDLE_TEXT, re.MULTILINE))


def test_the_settings_the_header_gives_are_a_working_pipes_serverless_configuration():
    documented = documented_settings()
    settings = Settings.from_env({**documented, "DATABRICKS_HOST": "https://dbc-1.example.com",
                                  "DATABRICKS_TOKEN": "placeholder"})
    assert settings.databricks.execution is Execution.PIPES_SERVERLESS
    assert settings.catalog == CATALOG
    assert settings.lakehouse_url.startswith("s3://")  # written by the jobs, read by the host
    volumes = BUNDLE["resources"]["volumes"]
    pipes, landing = volumes["pipes"], volumes["landing"]
    assert settings.databricks.volume == (
        f"/Volumes/{CATALOG}/{pipes['schema_name']}/{pipes['name']}")
    assert settings.landing_url == (
        f"/Volumes/{CATALOG}/{landing['schema_name']}/{landing['name']}")
    artifact_path = BUNDLE["workspace"]["artifact_path"].replace(
        "${var.catalog}", CATALOG).replace("${bundle.target}", "dev")
    assert settings.databricks.wheel.startswith(f"{artifact_path}/.internal/manufacturing_ingest-")


def test_the_bundle_deploys_the_bronze_schema_and_an_environment_the_jobs_use():
    assert BUNDLE["resources"]["schemas"]["manufacturing_bronze"]["name"] == "manufacturing_bronze"
    assert (BUNDLE["variables"]["environment_version"]["default"]
            == DatabricksSettings.environment_version)
    (environment,) = BUNDLE["resources"]["jobs"]["environment_check"]["environments"]
    assert environment["spec"]["environment_version"] == "${var.environment_version}"
    (task,) = BUNDLE["resources"]["jobs"]["environment_check"]["tasks"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert task["python_wheel_task"]["package_name"] == PACKAGE_NAME
    assert task["python_wheel_task"]["entry_point"] in scripts
    assert TASK_ENTRY_POINT in scripts  # what the bronze job runs
    assert set(BUNDLE["targets"]) == {"dev", "prod"} and BUNDLE["targets"]["dev"]["default"]


def _closure(requirements: list[str]) -> set[str]:
    """Every distribution ``requirements`` install, through their own dependencies (as this
    environment has them installed), extras' dependencies left out."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [Requirement(r).name for r in requirements]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dependencies = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [Requirement(d).name for d in dependencies if "extra ==" not in d]
    return seen


def test_what_databricks_compute_installs_never_pulls_in_pyspark():
    # The wheel's own dependencies go into every serverless environment and cluster with it:
    # a pyspark among them would replace the runtime's Spark client and break the session.
    from manufacturing_ingest.databricks.job import pinned_requirements

    installed = _closure(pinned_requirements())
    assert "dagster" in installed and "deltalake" in installed
    assert not {"pyspark", "delta-spark", "dagster-pyspark", "dagster-databricks"} & installed
