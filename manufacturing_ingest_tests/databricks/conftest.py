"""One stand-in Databricks workspace on loopback for the whole session."""

from __future__ import annotations

import pytest

from manufacturing_ingest_tests.databricks.standin import DatabricksWorkspace


@pytest.fixture(scope="session")
def databricks_workspace(tmp_path_factory):
    workspace = DatabricksWorkspace(tmp_path_factory.mktemp("databricks_workspace"))
    yield workspace
    workspace.stop()
