"""The bronze step as a Databricks serverless job runs it (``pipes-serverless``).

Entry point ``manufacturing-ingest-bronze-task`` of the wheel (``python_wheel_task``); the
table maintenance op runs the same way as ``manufacturing-ingest-maintenance-task``. It opens
Pipes on the Unity Catalog volume the Dagster run staged its context in, takes the step's
settings, partitions and checks from the context's extras, runs ``run_bronze`` on the
serverless session, forwards its log lines, and reports the ``BronzeStep`` back as one custom
message (``pipes.step_message``).
"""

from __future__ import annotations

import os


def main() -> None:
    """``manufacturing-ingest-bronze-task``: one bronze step."""
    _serve(_run)


def maintenance_main() -> None:
    """``manufacturing-ingest-maintenance-task``: one run of the table maintenance op."""
    _serve(_maintain)


def _serve(work) -> None:
    from dagster_pipes import (
        PipesCliArgsParamsLoader,
        PipesUnityCatalogVolumesContextLoader,
        PipesUnityCatalogVolumesMessageWriter,
        open_dagster_pipes,
    )

    with open_dagster_pipes(context_loader=PipesUnityCatalogVolumesContextLoader(),
                            message_writer=PipesUnityCatalogVolumesMessageWriter(),
                            params_loader=PipesCliArgsParamsLoader()) as pipes:
        extras = pipes.extras
        # The job's own settings (URLs and modes, no secret), before anything reads them.
        os.environ.update(extras["settings"])
        pipes.report_custom_message(work(pipes, extras))


def _maintain(pipes, extras) -> dict[str, str]:
    import dagster as dg
    from pyspark.sql import SparkSession

    from manufacturing_ingest.catalog import CATALOG
    from manufacturing_ingest.databricks.pipes import result_message
    from manufacturing_ingest.engine.lakehouse import Lakehouse
    from manufacturing_ingest.orchestration.maintenance import (
        TableMaintenanceConfig,
        maintenance_events,
    )
    from manufacturing_ingest.settings import Settings

    settings = Settings.from_env()
    catalog = {name: settings.configured(spec) for name, spec in CATALOG.items()}
    events = list(maintenance_events(
        SparkSession.builder.getOrCreate(),
        Lakehouse(settings.lakehouse_url, catalog=settings.catalog),
        TableMaintenanceConfig(**extras["config"]), catalog, log=pipes.log.info))
    (output,) = [e for e in events if isinstance(e, dg.Output)]
    return result_message(
        observations=[e for e in events if isinstance(e, dg.AssetObservation)],
        metadata=dict(output.metadata))


def _run(pipes, extras) -> dict[str, str]:
    from pyspark.sql import SparkSession

    from manufacturing_ingest.catalog import get_source
    from manufacturing_ingest.databricks.pipes import step_message
    from manufacturing_ingest.engine.lakehouse import Lakehouse
    from manufacturing_ingest.landing import landing_zone_for
    from manufacturing_ingest.orchestration.bronze import run_bronze
    from manufacturing_ingest.settings import Settings

    settings = Settings.from_env()
    spec = settings.configured(get_source(extras["source"]))
    checked = extras["checked_versions"]
    step = run_bronze(
        SparkSession.builder.getOrCreate(), spec,
        landing_zone_for(settings.landing_url, role_arn=settings.s3_role_arn or None),
        settings.read_mode, Lakehouse(settings.lakehouse_url, catalog=settings.catalog),
        list(extras["partition_keys"]), pipes.run_id, bool(extras["reprocess"]),
        set(extras["checks"]), lambda key: int(checked.get(key, -1)),
        log=pipes.log.info, warn=pipes.log.warning, autoloader=settings.autoloader)
    return step_message(step)


if __name__ == "__main__":
    main()
