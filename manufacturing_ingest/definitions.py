"""The Dagster definitions ``dagster dev`` and ``workspace.yaml`` load."""

import dagster as dg

from manufacturing_ingest.assets import BRONZE_ASSETS, LANDING_ASSETS
from manufacturing_ingest.checks import BACKLOG_CHECKS, backlog_checks_job, backlog_checks_schedule
from manufacturing_ingest.resources import resources_for
from manufacturing_ingest.sensors import LANDING_SENSORS
from manufacturing_ingest.settings import Settings

defs = dg.Definitions(
    assets=[*LANDING_ASSETS, *BRONZE_ASSETS],
    asset_checks=BACKLOG_CHECKS,
    jobs=[backlog_checks_job],
    schedules=[backlog_checks_schedule],
    sensors=LANDING_SENSORS,
    resources=resources_for(Settings.from_env()),
)
