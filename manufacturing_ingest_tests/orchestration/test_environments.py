"""MANUFACTURING_ENV selects the resources; the keys are the same in every environment."""

from __future__ import annotations

import pytest

from manufacturing_ingest.cli import main
from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest.orchestration import build_definitions
from manufacturing_ingest.orchestration.resources import (
    RESOURCE_KEYS,
    SparkResource,
    UnavailableSparkResource,
    resources_for,
)
from manufacturing_ingest.settings import Settings


def test_each_environment_gets_its_own_spark_resource_under_the_same_keys():
    local = resources_for(Settings.from_env({"MANUFACTURING_SPARK_MASTER": "local[3]"}))
    databricks = resources_for(Settings.from_env({"MANUFACTURING_ENV": "databricks"}))
    assert tuple(local) == tuple(databricks) == RESOURCE_KEYS
    assert isinstance(local["spark"], SparkResource) and local["spark"].master == "local[3]"
    assert isinstance(databricks["spark"], UnavailableSparkResource)
    with pytest.raises(ConfigurationError, match="MANUFACTURING_ENV=databricks"):
        databricks["spark"].get_session()


def test_definitions_load_in_every_environment_with_the_same_surface():
    surfaces = []
    for env in ("local", "databricks"):
        defs = build_definitions(Settings.from_env({"MANUFACTURING_ENV": env}))
        graph = defs.resolve_asset_graph()
        surfaces.append((
            sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
            sorted(str(k) for k in graph.asset_check_keys),
            sorted(s.name for s in defs.sensors or []),
            sorted(defs.resources or {}),
        ))
    assert surfaces[0] == surfaces[1]


def test_the_cli_refuses_to_run_databricks_locally_with_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MANUFACTURING_ENV", "databricks")
    monkeypatch.setenv("MANUFACTURING_LANDING_URL", str(tmp_path / "landing"))
    monkeypatch.setenv("MANUFACTURING_LAKEHOUSE_URL", str(tmp_path / "lakehouse"))
    assert main(["ingest", "--source", "sensor_data", "--partition", "2026-01-15"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: MANUFACTURING_ENV=databricks")
    assert not (tmp_path / "lakehouse").exists()
