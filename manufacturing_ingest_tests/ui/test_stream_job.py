"""The stream as an operator drives it from the UI: the ``bronze_stream`` job launched with the
``launchRun`` mutation the Launchpad sends, a file landing while it runs, and the run's
Terminate button (``terminateRun``) stopping it after its micro-batch."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.generate import GenerateOptions
from manufacturing_ingest.orchestration.names import STREAM_JOB, bronze_asset_key
from manufacturing_ingest_tests.live_ui import wait_until

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

# No other UI test lands quality_metrics files of the current hour: the stream has them alone.
SPEC = get_source("quality_metrics")

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
  }
}
"""

TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
    ... on RunNotFoundError { message }
  }
}
"""

STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } }
}
"""


def test_the_stream_job_starts_from_the_launchpad_and_stops_with_terminate(live):
    deployment, landing = live
    params = {
        "selector": {"repositoryLocationName": "manufacturing_ingest",
                     "repositoryName": "__repository__", "jobName": STREAM_JOB},
        "runConfigData": {"ops": {"stream_landing_to_bronze": {"config": {
            "sources": [SPEC.name], "poll_seconds": 1.0, "check_window_seconds": 5.0}}}},
    }
    launched = deployment.graphql(LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def status() -> str:
        return deployment.graphql(STATUS, {"runId": run_id})["runOrError"]["status"]

    wait_until("stream run started", lambda: status() == "STARTED", deployment, timeout=180)
    now = datetime.now(UTC)
    landed = landing.land_generated(SPEC.name, now.date(), now.hour,
                                    GenerateOptions(files=1, rows_per_file=50, file_format="csv"),
                                    tag="stream")
    partition = SPEC.partitions.key_at(now)
    instance = deployment.instance()

    def streamed():
        records = instance.fetch_materializations(bronze_asset_key(SPEC), limit=20).records
        return [r for r in records if r.run_id == run_id]

    records = wait_until("a micro-batch of the stream run", streamed, deployment, timeout=180)
    assert records[0].partition_key == partition
    assert records[0].asset_materialization.metadata["records"].value == sum(landed.values())

    terminated = deployment.graphql(TERMINATE, {"runId": run_id})["terminateRun"]
    assert terminated["__typename"] == "TerminateRunSuccess", terminated
    final = wait_until("the stream run's end",
                       lambda: (s := status()) in ("CANCELED", "SUCCESS", "FAILURE") and s,
                       deployment, timeout=120)
    # The stream stops cleanly (its micro-batch committed, its window checked): the run succeeds.
    assert final == "SUCCESS"
    messages = [e.user_message for e in instance.all_logs(run_id)]
    assert any("stopping after the micro-batch under way" in m for m in messages), messages[-20:]
    assert any("micro-batch 1: 1 of 1 files committed" in m for m in messages), messages[-20:]
    assert any(m.startswith(f"stream {run_id}: stopped after") for m in messages), messages[-20:]
    # Its open check window was judged before it stopped: the partition's quality result,
    # under the window check's own id, named after the run.
    check = dg.AssetCheckKey(bronze_asset_key(SPEC), "quality")
    history = instance.event_log_storage.get_asset_check_execution_history(check, limit=10)
    mine = [r for r in history if r.run_id.startswith(f"stream-{run_id}-check-")]
    assert mine and mine[0].event.dagster_event.event_specific_data.partition == partition
