"""Jobs and schedules that are not a landing sensor's runs."""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest.orchestration.names import BACKLOG_CHECKS_JOB, STREAM_JOB
from manufacturing_ingest.orchestration.resources import (
    LakehouseResource,
    LandingZoneResource,
    SparkSessionResource,
)


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


class StreamConfig(dg.Config):
    """The ``bronze_stream`` job's launchpad settings (as ``manufacturing-ingest stream``'s)."""

    sources: list[str] = Field(default_factory=list,
                               description="source names; empty: every source")
    poll_seconds: float = Field(default=1.0, gt=0,
                                description="how often each source looks for new files")
    max_files: int = Field(default=500, ge=1,
                           description="files per micro-batch and source at most (a burst is "
                                       "taken this many at a time)")
    check_window_seconds: float = Field(default=60.0, gt=0,
                                        description="seconds of micro-batches the quality check "
                                                    "judges together")
    retry_seconds: float = Field(default=60.0, gt=0,
                                 description="how long a failed file waits before it is read "
                                             "again")


def stream_job(specs: list[SourceSpec]) -> dg.JobDefinition:
    """``bronze_stream``: the stream (``orchestration/stream.py``) as a run an operator launches
    from the UI and stops with Terminate; the run lasts as long as the stream. It reports each
    micro-batch as the CLI does, in this run's event log (the run's page lists them)."""
    by_name = {spec.name: spec for spec in specs}

    @dg.op(name="stream_landing_to_bronze",
           description="Commits new landed files to bronze in micro-batches until the run is "
                       "terminated (the micro-batch under way finishes first).")
    def _stream(context: dg.OpExecutionContext, config: StreamConfig,
                spark: SparkSessionResource, landing: LandingZoneResource,
                lakehouse: LakehouseResource) -> None:
        from manufacturing_ingest.orchestration.stream import (
            BronzeStream,
            StreamOptions,
            stop_on_signals,
        )

        unknown = sorted(set(config.sources) - set(by_name))
        if unknown:
            raise ConfigurationError(f"no source named {', '.join(unknown)}; the sources are "
                                     f"{', '.join(by_name)}")
        chosen = [by_name[name] for name in config.sources] or list(by_name.values())
        options = StreamOptions(poll_seconds=config.poll_seconds, max_files=config.max_files,
                                check_window_seconds=config.check_window_seconds,
                                retry_seconds=config.retry_seconds)
        stop = threading.Event()
        instance, run_id = context.instance, context.run_id

        def watch_for_termination() -> None:
            # Terminate in the UI marks the run CANCELING (and interrupts the process, which
            # stop_on_signals turns into the same stop).
            while not stop.wait(2.0):
                run = instance.get_run_by_id(run_id)
                if run is None or run.status in (dg.DagsterRunStatus.CANCELING,
                                                 dg.DagsterRunStatus.CANCELED):
                    context.log.info("run terminated: stopping after the micro-batch under way")
                    stop.set()

        watcher = threading.Thread(target=watch_for_termination, daemon=True)
        with stop_on_signals(stop), _forwarded_to(context.log):
            watcher.start()
            try:
                stream = BronzeStream(
                    spark.get_session(), chosen, landing.zone(), lakehouse.lakehouse(),
                    landing.read_mode, dict(landing.queue_urls), instance, options, stop,
                    run_id=run_id)
                stream.run()
            finally:
                stop.set()

    @dg.job(name=STREAM_JOB, executor_def=dg.in_process_executor,
            description="The streaming pattern: launch to commit new files within seconds "
                        "(one warm Spark session, micro-batches through the claim/commit "
                        "protocol, beside the landing sensors and backfills); Terminate to "
                        "stop. Each micro-batch is a materialization of its partitions.")
    def _job():
        _stream()

    return _job


class _Forward(logging.Handler):
    def __init__(self, target):
        super().__init__(logging.INFO)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.log(record.levelno, record.getMessage())


@contextmanager
def _forwarded_to(dagster_log) -> Iterator[None]:
    """The stream's log lines (a line per micro-batch and window check, the stop) into the
    run's event log, where the UI shows them, while the op runs."""
    logger = logging.getLogger("manufacturing_ingest.stream")
    handler, level = _Forward(dagster_log), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
