"""A partition backfill launched the way the UI launches it: the ``launchPartitionBackfill``
mutation on the live webserver, over three days of ``equipment_logs`` landed in S3."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.generate import GenerateOptions
from manufacturing_ingest_tests.live_ui import wait_until

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

SPEC = get_source("equipment_logs")

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions
      error { message }
      runs(limit: 20) { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""

DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def test_a_three_day_backfill_from_graphql_lands_every_row_in_one_run(live):
    deployment, landing = live
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in (12, 11, 10)]
    expected: Counter[str] = Counter()
    for day in days:
        landed = landing.land_generated("equipment_logs", day,
                                        options=GenerateOptions(files=2, rows_per_file=150))
        expected[day.isoformat()] = sum(landed.values())

    params = {
        "partitionNames": [d.isoformat() for d in days],
        "assetSelection": [{"path": SPEC.asset_key_path}],
        "fromFailure": False,
        "tags": [],
        "title": "equipment_logs three days",
    }
    launched = deployment.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished():
        state = deployment.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert state["__typename"] == "PartitionBackfill", state
        return state if state["status"] in DONE else None

    state = wait_until("end of the backfill", finished, deployment, timeout=420, interval=3)
    assert state["status"] == "COMPLETED_SUCCESS", (state, deployment.tail())
    assert state["numPartitions"] == 3
    # The bronze assets' backfill policy is one run per range: three days, one Spark job.
    assert len(state["runs"]) == 1, state["runs"]
    run = state["runs"][0]
    assert run["status"] == "SUCCESS"
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/backfill"] == backfill_id
    assert (tags["dagster/asset_partition_range_start"],
            tags["dagster/asset_partition_range_end"]) == (days[0].isoformat(),
                                                           days[-1].isoformat())

    # Every landed row is in bronze, under its own day, once (the landing sensor may also have
    # seen these files; the ledger lands each file once whichever run takes it).
    table = DeltaTable(str(deployment.root / "lakehouse" / "manufacturing_bronze"
                           / "equipment_logs")).to_pyarrow_table()
    rows = table.to_pylist()
    landed_days = Counter(str(row[SPEC.partition_column]) for row in rows)
    assert {d: landed_days[d] for d in expected} == dict(expected)
    keys = Counter((row["event_id"], row["_source_file"]) for row in rows)
    assert max(keys.values()) == 1
