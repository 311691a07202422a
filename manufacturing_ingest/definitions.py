"""The Dagster definitions ``dagster dev`` and ``workspace.yaml`` load."""

import dagster as dg

from manufacturing_ingest.assets import BRONZE_ASSETS, LANDING_ASSETS
from manufacturing_ingest.resources import resources_for
from manufacturing_ingest.settings import Settings

defs = dg.Definitions(
    assets=[*LANDING_ASSETS, *BRONZE_ASSETS],
    resources=resources_for(Settings.from_env()),
)
