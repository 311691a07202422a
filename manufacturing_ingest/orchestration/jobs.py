"""Jobs and schedules that are not a landing sensor's runs."""

import dagster as dg

from manufacturing_ingest.orchestration.names import BACKLOG_CHECKS_JOB


def backlog_checks_job(checks: list[dg.AssetChecksDefinition]):
    return dg.define_asset_job(
        BACKLOG_CHECKS_JOB,
        selection=dg.AssetSelection.checks(*checks),
        description="Backlog checks of every source, without ingesting anything.",
    )


def backlog_checks_schedule(job) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        job=job,
        cron_schedule="*/10 * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
