"""The Dagster definitions ``dagster dev`` and ``workspace.yaml`` load."""

from manufacturing_ingest.orchestration import build_definitions
from manufacturing_ingest.settings import Settings

defs = build_definitions(Settings.from_env())
