"""The Dagster layer: everything Dagster sees, built from ``Settings`` and the catalog.

- ``assets.py``: landing (external) and bronze assets, one pair per source; ``bronze.py``: a
  bronze step's work (ingest, then checks), run in the run's process or by a Databricks job.
- ``checks.py``: asset checks; ``sensors.py``: landing sensors; ``jobs.py``: jobs and schedules
  (the ``bronze_stream`` job runs ``stream.py``, the streaming pattern, from the UI).
- ``maintenance.py``: the ``table_maintenance`` job (compaction, VACUUM) and its schedule.
- ``alerts.py``: the alert sensor; ``watch.py``: what it reads from the instance.
- ``resources.py``: the resources of each environment, under the same keys (the Databricks
  ones live in ``manufacturing_ingest/databricks/``).
- ``runs.py``: materialize bronze partitions in-process (the CLI and benchmarks use it).
"""

from collections.abc import Iterable

import dagster as dg

from manufacturing_ingest.catalog import CATALOG, SourceSpec
from manufacturing_ingest.orchestration.alerts import alert_sensor
from manufacturing_ingest.orchestration.assets import bronze_assets, landing_assets
from manufacturing_ingest.orchestration.checks import backlog_checks
from manufacturing_ingest.orchestration.jobs import (
    backlog_checks_job,
    backlog_checks_schedule,
    stream_job,
)
from manufacturing_ingest.orchestration.maintenance import maintenance_job, maintenance_schedule
from manufacturing_ingest.orchestration.resources import resources_for
from manufacturing_ingest.orchestration.sensors import landing_sensors
from manufacturing_ingest.settings import Settings


def build_definitions(settings: Settings,
                      sources: Iterable[SourceSpec] | None = None) -> dg.Definitions:
    """Assets, checks, sensors, jobs and resources for ``sources`` (default: the catalog)."""
    specs = [settings.configured(spec)
             for spec in (CATALOG.values() if sources is None else sources)]
    checks = backlog_checks(specs)
    job = backlog_checks_job(checks)
    maintenance = maintenance_job(specs, settings.maintenance)
    return dg.Definitions(
        assets=[*landing_assets(specs), *bronze_assets(specs)],
        asset_checks=checks,
        # The stream runs the local engine (on Databricks, Auto Loader is the stream).
        jobs=[job, maintenance, *([stream_job(specs)] if settings.databricks is None else [])],
        schedules=[backlog_checks_schedule(job), maintenance_schedule(maintenance)],
        sensors=[*landing_sensors(specs, interval_seconds=settings.landing_interval_seconds,
                                  sweep_budget_seconds=settings.sweep_budget_seconds),
                 alert_sensor(specs, interval_seconds=settings.alerts.interval_seconds)],
        resources=resources_for(settings),
    )


__all__ = ["build_definitions"]
