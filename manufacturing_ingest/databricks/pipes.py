"""``pipes-serverless``: each bronze step (and each table maintenance run) is a Databricks
serverless job run, through Pipes.

dagster-databricks' ``PipesDatabricksServerlessClient`` submits a one-time run of this project's
wheel (``python_wheel_task``, entry point ``manufacturing-ingest-bronze-task``, see
``task.py``) in a serverless environment that installs the wheel and its pinned packages. The
run's context (partitions, the step's settings, which checks to run) and its messages (log
lines, the ``BronzeStep``) pass through a Unity Catalog volume with the Files API: no DBFS, no
cluster. The asset then yields the same materialization and check evaluations as a step run in
the run's own process.

Credentials: the databricks-sdk's own chain in the Dagster process (``DATABRICKS_HOST`` with
``DATABRICKS_TOKEN`` or a service principal's ``DATABRICKS_CLIENT_ID`` +
``DATABRICKS_CLIENT_SECRET``); nothing secret enters the resource's config, the job's
parameters or the staged files. The job reaches S3 through Unity Catalog's external locations.
"""

from __future__ import annotations

import dagster as dg

from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.databricks.job import pinned_requirements, step_settings
from manufacturing_ingest.databricks.settings import DatabricksSettings
from manufacturing_ingest.errors import DatabricksJobError
from manufacturing_ingest.orchestration.bronze import BronzeStep, checked_version_in
from manufacturing_ingest.orchestration.dagster_internals import (
    DagsterExecutionInterruptedError,
    DagsterPipesExecutionError,
)
from manufacturing_ingest.orchestration.names import QUALITY_CHECK, bronze_op_name
from manufacturing_ingest.orchestration.resources import RemoteJobResource
from manufacturing_ingest.printable import printable
from manufacturing_ingest.settings import Settings

TASK_ENTRY_POINT = "manufacturing-ingest-bronze-task"
MAINTENANCE_ENTRY_POINT = "manufacturing-ingest-maintenance-task"
PACKAGE_NAME = "manufacturing_ingest"
ENVIRONMENT_KEY = "bronze"
# The custom Pipes message that carries a job's result (``dg.serialize_value`` of its fields).
RESULT_MESSAGE = "result"


class ServerlessBronzeJob(RemoteJobResource):
    """Runs a bronze step as a serverless job run of the project's wheel (see the module)."""

    host: str
    volume: str
    wheel: str
    environment_version: str = "4"
    poll_seconds: float = 10.0
    # What the step reads on Databricks (step_settings): URLs and modes, never a secret.
    step_env: dict[str, str] = {}

    @property
    def remote(self) -> bool:
        return True

    def run_step(self, context: dg.AssetExecutionContext, spec: SourceSpec, reprocess: bool,
                 selected_checks: set[str]) -> BronzeStep:
        partition_keys = list(context.partition_keys)
        checked = {}
        if QUALITY_CHECK in selected_checks:
            checked_version = checked_version_in(context.instance, spec)
            checked = {key: checked_version(key) for key in partition_keys}
        extras = {"source": spec.name, "partition_keys": partition_keys, "reprocess": reprocess,
                  "checks": sorted(selected_checks), "checked_versions": checked}
        context.log.info(f"submitting {spec.name} {partition_keys[0]} … {partition_keys[-1]} "
                         "as a Databricks serverless job run")
        fields, metadata = self._run(context, bronze_op_name(spec), TASK_ENTRY_POINT, extras,
                                     f"the Databricks job of {spec.name}")
        return BronzeStep(metadata={**fields["metadata"], **metadata},
                          quality=fields["quality"], drift=fields["drift"])

    def run_maintenance(self, context: dg.OpExecutionContext, config
                        ) -> list[dg.AssetObservation | dg.Output]:
        """The maintenance op's observations and output, from a serverless job run of it."""
        context.log.info("submitting table maintenance as a Databricks serverless job run")
        fields, metadata = self._run(context, "table_maintenance", MAINTENANCE_ENTRY_POINT,
                                     {"config": config.model_dump(mode="json")},
                                     "the Databricks job of table maintenance")
        return [*fields["observations"], dg.Output(None, metadata={**fields["metadata"],
                                                                   **metadata})]

    def _run(self, context, task_key: str, entry_point: str, extras: dict, what: str
             ) -> tuple[dict, dict]:
        """Submit ``entry_point`` of the wheel as a serverless job run through Pipes; the fields
        of the result it reported, and the run's own metadata (its ID and page)."""
        from databricks.sdk.service import jobs

        client = _serverless_client()(
            client=self.workspace_client(), volume_path=self.volume,
            poll_interval_seconds=self.poll_seconds)
        task = jobs.SubmitTask.from_dict({
            "task_key": task_key,
            "environment_key": ENVIRONMENT_KEY,
            "python_wheel_task": {"package_name": PACKAGE_NAME, "entry_point": entry_point},
        })
        invocation = client.run(context=context, extras={**extras, "settings": self.step_env},
                                task=task, submit_args={
            "run_name": f"manufacturing_ingest {task_key} {context.run_id[:8]}",
            "environments": [self.environment()],
        })
        if client.interrupted:
            # The client cancelled the job and returned; the run must still stop as interrupted.
            raise DagsterExecutionInterruptedError()
        fields = _result_of(invocation.get_custom_messages())
        if fields is None:
            # The job ended without its result: nothing was reported, so nothing may look done.
            page = invocation.metadata.get("Databricks Job Run URL")
            raise DatabricksJobError(
                f"{what} ended without reporting its result (a wheel of another release than "
                f"the Dagster host's?); see its run page: {getattr(page, 'url', page)}")
        return fields, dict(invocation.metadata)

    def workspace_client(self):
        """The workspace, signed in by the databricks-sdk's own credential chain."""
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient(host=self.host)

    def environment(self):
        """The serverless environment: this wheel and the versions it is tested with."""
        from databricks.sdk.service import compute, jobs

        return jobs.JobEnvironment(environment_key=ENVIRONMENT_KEY, spec=compute.Environment(
            environment_version=self.environment_version,
            dependencies=[self.wheel, *pinned_requirements()]))


def _serverless_client():
    """dagster-databricks' client, made to say why a job failed and to keep an interruption.

    Its own failure says only "Workload failed, see run output for details" (the task's error
    is in the run's output, which it does not read), and an interrupted step cancels the job,
    then returns as if it had finished.
    """
    from dagster_databricks.pipes import PipesDatabricksServerlessClient

    class ServerlessClient(PipesDatabricksServerlessClient):
        interrupted = False

        def _poll_til_success(self, context, run_id: int) -> None:
            try:
                super()._poll_til_success(context, run_id)
            except DagsterExecutionInterruptedError:
                self.interrupted = True
                raise
            except DagsterPipesExecutionError as error:
                # Unchained: the alert and the CLI quote the innermost error, which is this one.
                raise DatabricksJobError(
                    f"{error}: {_task_error(self.client, run_id)}") from None

    return ServerlessClient


def _task_error(client, run_id: int) -> str:
    """The error the job's task ended with, as the run's output has it."""
    try:
        run = client.jobs.get_run(run_id)
        task_run = run.tasks[0].run_id if run.tasks else run_id
        output = client.jobs.get_run_output(task_run)
    except Exception as error:  # noqa: BLE001 - the failure is reported either way
        return f"(its output could not be read: {error})"
    return printable(output.error or "no error in its output").strip()


def result_message(**fields) -> dict[str, str]:
    """The custom Pipes message that carries a job's result (Dagster's own serialization, so
    metadata values, check evaluations and observations arrive as the types they left as)."""
    return {RESULT_MESSAGE: dg.serialize_value(fields)}


def step_message(step: BronzeStep) -> dict[str, str]:
    return result_message(metadata=step.metadata, quality=step.quality, drift=step.drift)


def _result_of(messages) -> dict | None:
    for message in messages:
        if isinstance(message, dict) and RESULT_MESSAGE in message:
            return dg.deserialize_value(message[RESULT_MESSAGE])
    return None


def serverless_bronze_job(settings: Settings, databricks: DatabricksSettings
                          ) -> ServerlessBronzeJob:
    return ServerlessBronzeJob(host=databricks.host, volume=databricks.volume,
                               wheel=databricks.wheel,
                               environment_version=databricks.environment_version,
                               poll_seconds=databricks.poll_seconds,
                               step_env=step_settings(settings))
