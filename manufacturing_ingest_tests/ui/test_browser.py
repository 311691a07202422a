"""What an operator does in the Dagster UI, in a real browser (Playwright on Debian's Chromium)
against the live webserver.

The first test: dismiss the first-visit dialog, look at the asset lineage, materialize one past
day of ``sensor_data`` that landed with bad readings from the asset's page, watch the run
succeed, and find the failed ``quality`` check with its error rate. The second: backfill three
days of ``equipment_logs`` as a date range from the asset's page (one run for the range), read the
landing sensor's cursor and the skip reason of a tick, and see the asset's monitoring metadata
plotted and its freshness policy passing.

Screenshots of each step go to ``<artifacts>/ui/browser_<nn>_<step>.png`` and
``operator_<nn>_<step>.png`` (README, "The Dagster UI"); a failing run leaves
``<prefix>_FAILED_<step>.png`` (the page when it failed, with its HTML) and
``<prefix>_FAILED_trace.zip`` (``playwright show-trace``) there instead.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from deltalake import DeltaTable
from playwright.sync_api import Locator, Page, expect

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.generate import GenerateOptions
from manufacturing_ingest_tests.live_ui import wait_until
from manufacturing_ingest_tests.ui.browser import (
    Screens,
    browser_page,
    first_visit,
    innermost,
    metadata_value,
)

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

SPEC = get_source("sensor_data")
ASSET = " / ".join(SPEC.asset_key_path)  # how the UI writes an asset key
# A day no other UI test lands (the backfill test uses equipment_logs 10-12 days ago, the
# sensor test sensor_data of the last three days), and in the past: "today" fails the check's
# event-time rule by itself.
DAYS_AGO = 20
# About one reading in five is broken (a non-number or out of range): the check fails with
# ERROR above 5 % failing rows.
BAD = GenerateOptions(files=2, rows_per_file=200, anomaly_rate=0.2, seed=23)
ERROR_ABOVE = SPEC.quality.error_above

UI_TIMEOUT_MS = 30_000
RUN_TIMEOUT_MS = 420_000  # a run takes 20-60 s on an idle machine, minutes on a busy one

ASSET_NODES = "{ assetNodes { assetKey { path } groupName dependencyKeys { path } } }"
SENSOR_CURSORS = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    sensors { name sensorState { ticks(limit: 5) { status cursor } } } } } } }
"""


def _landing_sweep_done(deployment, source: str = SPEC.name) -> bool:
    """Whether the landing sensor of ``source`` has completed its first sweep of the whole
    prefix.

    After it, the sensor lists only the date prefixes of the last day (``sensor_lookback``)
    until the next daily sweep, so files landed under a day 20 days back are left to the
    operator: no sensor run takes them before the UI's run does (that run would then commit
    nothing new, and its ``quality`` check would pass with nothing to check).
    """
    data = deployment.graphql(SENSOR_CURSORS)["repositoriesOrError"]
    sensors = {s["name"]: s for repo in data["nodes"] for s in repo["sensors"]}
    ticks = sensors[f"{source}_landing_sensor"]["sensorState"]["ticks"]
    cursor = next((t["cursor"] for t in ticks if t["cursor"]), None)
    if cursor is None:
        return False
    sweep = json.loads(cursor).get("sweep") or {}
    return bool(sweep.get("last_completed_at")) and sweep.get("started_at") is None


def _box(locator: Locator) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on screen"
    return box


def _inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (outer["x"] <= inner["x"] and inner["x"] + inner["width"] <= outer["x"] + outer["width"]
            and outer["y"] <= inner["y"]
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"])


def test_an_operator_materializes_a_bad_day_from_the_asset_page_and_sees_the_failed_check(
        live, artifacts):
    deployment, landing = live
    instance = deployment.instance()
    day = datetime.now(UTC).date() - timedelta(days=DAYS_AGO)
    partition = day.isoformat()

    # What the UI must show, from the definitions: three raw -> bronze pairs.
    nodes = {"/".join(n["assetKey"]["path"]): n
             for n in deployment.graphql(ASSET_NODES)["assetNodes"]}
    for source in CATALOG:
        bronze = nodes["/".join(get_source(source).asset_key_path)]
        assert bronze["groupName"] == "bronze"
        assert [d["path"] for d in bronze["dependencyKeys"]] == [["raw", source]]
        assert nodes[f"raw/{source}"]["groupName"] == "landing"

    with browser_page(artifacts / "ui", "browser", UI_TIMEOUT_MS) as (page, screens):
        first_visit(page, deployment, screens)
        _asset_lineage(page, screens)

        screens.doing("landing_bad_data")
        wait_until("the landing sensor's first sweep", lambda: _landing_sweep_done(
            deployment), deployment, timeout=120)
        landed = landing.land_generated(SPEC.name, day, options=BAD)
        rows = sum(landed.values())

        page.goto(f"{deployment.url}/assets/{'/'.join(SPEC.asset_key_path)}")  # bookmark
        run_prefix = _materialize_partition(page, partition, screens)
        _watch_the_run(page, deployment, instance, partition, run_prefix, screens)
        _partition_materialized(page, partition, run_prefix, rows, screens)
        _failed_quality_check(page, partition, run_prefix, rows, screens)


def _asset_lineage(page: Page, screens: Screens) -> None:
    """Lineage (the global asset graph): the landing and bronze groups, expanded, with an arrow
    from each ``raw/<source>`` to its ``manufacturing_bronze/<source>``."""
    screens.doing("asset_lineage")
    page.get_by_role("link", name=re.compile(r"Lineage$")).click()
    expect(page.get_by_text("Global asset lineage", exact=True)).to_be_visible()
    graph_groups = page.locator("svg foreignObject.group")
    expect(graph_groups.get_by_text("landing", exact=True)).to_be_visible()
    expect(graph_groups.get_by_text("bronze", exact=True)).to_be_visible()
    # The groups open collapsed; the graph's settings menu expands them all.
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menuitem")).to_have_count(0)

    page.mouse.move(0, 0)  # a node under the pointer draws its edges a second time, highlighted
    edges = page.locator("svg path[marker-end]")
    expect(edges).to_have_count(len(CATALOG))  # one edge between the collapsed groups before
    for source in CATALOG:
        expect(page.locator("svg foreignObject").get_by_text(source, exact=True)).to_have_count(2)
    groups = {name: _box(graph_groups.filter(has_text=re.compile(f"^{name}")).first)
              for name in ("landing", "bronze")}
    for source in CATALOG:
        # Both nodes are labelled with the source's name; the group tells raw from bronze.
        names = page.locator("svg foreignObject").get_by_text(source, exact=True)
        nodes = [_box(names.nth(i).locator("xpath=ancestor::*[local-name()='foreignObject'][1]"))
                 for i in range(2)]
        (raw,) = [n for n in nodes if _inside(n, groups["landing"])]
        (bronze,) = [n for n in nodes if _inside(n, groups["bronze"])]
        # The arrow runs from the upstream node's right side to the downstream node's left
        # side (short of it by the arrowhead).
        arrows = [e for e in (_box(edges.nth(i)) for i in range(len(CATALOG)))
                  if abs(e["x"] - (raw["x"] + raw["width"])) < 20
                  and abs(e["x"] + e["width"] - bronze["x"]) < 20
                  and raw["y"] <= e["y"] <= raw["y"] + raw["height"]
                  and bronze["y"] <= e["y"] + e["height"] <= bronze["y"] + bronze["height"]]
        assert len(arrows) == 1, f"no arrow from raw/{source} to manufacturing_bronze/{source}"
    screens.shot("asset_lineage")


def _materialize_partition(page: Page, partition: str, screens: Screens) -> str:
    """On the bronze asset's page: Materialize… -> type the day -> Launch 1 run. Returns the
    run id's first eight characters, as the "Launched run" toast shows them."""
    screens.doing("materialize_dialog")
    expect(page.get_by_text(SPEC.name, exact=True).first).to_be_visible()
    lineage = innermost(page, "Upstream assets")
    expect(lineage.get_by_role("link", name=f"raw / {SPEC.name}").first).to_be_visible()

    page.get_by_role("button", name=re.compile(r"Materialize…$")).click()
    dialog = page.get_by_role("dialog").filter(has_text=f"Launch runs to materialize {ASSET}")
    expect(dialog).to_be_visible()
    keys = dialog.get_by_placeholder("No matching partitions")
    keys.fill(partition)
    keys.press("Enter")
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    launch = dialog.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled()
    screens.shot("materialize_dialog")
    launch.click()

    toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}$"))
    expect(toast).to_be_visible()
    return toast.inner_text().split()[-1]


def _watch_the_run(page: Page, deployment, instance, partition: str, run_prefix: str,
                   screens: Screens) -> None:
    """The toast's View opens the run; its status turns to Success."""
    screens.doing("run")
    page.get_by_role("link", name="View", exact=True).click()  # before the toast times out
    page.mouse.move(0, 0)  # the toast stays while the pointer is on it
    expect(page).to_have_url(re.compile(f"/runs/{run_prefix}"))
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    try:
        expect(status).to_be_visible(timeout=RUN_TIMEOUT_MS)
    except AssertionError:
        pytest.fail(f"run {run_prefix} did not finish within {RUN_TIMEOUT_MS // 1000} s\n"
                    f"{deployment.tail()}")
    assert status.inner_text() == "Success", deployment.tail()
    expect(page.get_by_text(f"partition: {partition}", exact=True)).to_be_visible()
    screens.shot("run_succeeded")

    # The instance agrees: the run the UI launched, for that day, succeeded.
    records = instance.get_run_records(filters=dg.RunsFilter(tags={
        "dagster/partition": partition}))
    (run,) = [r.dagster_run for r in records if r.dagster_run.run_id.startswith(run_prefix)]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags.get("dagster/from_ui") == "true"


def _partition_materialized(page: Page, partition: str, run_prefix: str, rows: int,
                            screens: Screens) -> None:
    """From the run back to the asset (the asset key in the run's header): its Partitions tab
    shows the day materialized by that run, with every landed row."""
    screens.doing("partition_materialized")
    page.get_by_role("link", name=ASSET).first.click()
    page.get_by_role("tab", name="Partitions").click()
    page.get_by_placeholder("Filter by name…").fill(partition)
    page.get_by_text(partition, exact=True).locator("visible=true").first.click()
    pane = innermost(page, "Latest materialization", "Metadata")
    expect(pane.get_by_text(partition, exact=True).locator("visible=true")).to_be_visible()
    expect(pane.get_by_text("Materialized", exact=True)).to_be_visible()
    expect(pane.get_by_role("link", name=run_prefix)).to_be_visible()
    assert metadata_value(pane, "records") == str(rows)
    screens.shot("partition_materialized")


def _failed_quality_check(page: Page, partition: str, run_prefix: str, rows: int,
                          screens: Screens) -> None:
    """Checks tab -> quality: the check's overview, then its Partitions tab, where the day's
    evaluation by that run failed, with the error rate above the ERROR threshold."""
    screens.doing("quality_check")
    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text("Checks (3)", exact=True)).to_be_visible()
    page.get_by_text("quality", exact=True).locator("visible=true").first.click()
    expect(page.get_by_text(f"ERROR above {ERROR_ABOVE:.0%}.", exact=False)).to_be_visible()
    expect(page.get_by_text("Latest execution", exact=True)).to_be_visible()
    screens.shot("quality_check")

    screens.doing("quality_check_partition")
    page.get_by_role("tab", name="Partitions").and_(page.locator("button")).click()
    page.get_by_placeholder("Filter by partition…").fill(partition)
    page.get_by_text(partition, exact=True).locator("visible=true").first.click()
    pane = innermost(page, "Latest execution", "Description", "Metadata")
    expect(pane.get_by_text(partition, exact=True).locator("visible=true")).to_be_visible()
    expect(pane.get_by_text("Failed", exact=True)).to_be_visible()
    expect(pane.get_by_role("link", name=run_prefix)).to_be_visible()
    description = pane.get_by_text(re.compile(r"new rows fail a rule")).inner_text()
    failing, checked, percent = re.match(
        r"(\d+) of (\d+) new rows fail a rule \(([\d.]+)%\)", description).groups()
    assert int(checked) == rows, description
    assert float(percent) / 100 > ERROR_ABOVE, description
    assert float(metadata_value(pane, "error_rate")) > ERROR_ABOVE
    assert metadata_value(pane, "failing_rows") == failing
    assert metadata_value(pane, "rows_checked") == str(rows)
    screens.shot("quality_check_partition_failed")


# The second test: a date range backfilled from the asset page, the landing sensor's ticks and
# cursor, and the asset's plots and freshness. Days no other UI test lands (see DAYS_AGO).
LOGS = get_source("equipment_logs")
LOGS_ASSET = " / ".join(LOGS.asset_key_path)
LOGS_SENSOR = f"{LOGS.name}_landing_sensor"
BACKFILL_DAYS_AGO = (30, 29, 28)
BACKFILL_DATA = GenerateOptions(files=1, rows_per_file=100)
# Numeric materialization metadata (bronze.report_metadata) the operator watches.
PLOTTED = ("records", "records_per_second", "files_processed", "files_failed", "bytes", "seconds")

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions
      runs(limit: 20) { runId status tags { key value } } }
  }
}
"""
FRESHNESS = """
query Freshness($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { freshnessStatusInfo { freshnessStatus } }
  }
}
"""


def test_an_operator_backfills_a_date_range_and_reads_the_sensor_the_plots_and_freshness(
        live, artifacts):
    deployment, landing = live
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in BACKFILL_DAYS_AGO]
    first, last = days[0].isoformat(), days[-1].isoformat()

    with browser_page(artifacts / "ui", "operator", UI_TIMEOUT_MS) as (page, screens):
        first_visit(page, deployment, screens, shot=False)

        # Three days land under date prefixes the landing sensor no longer lists once
        # its first sweep is done: they wait for the operator's backfill.
        screens.doing("landing_three_days")
        wait_until("the equipment_logs landing sensor's first sweep",
                   lambda: _landing_sweep_done(deployment, LOGS.name), deployment,
                   timeout=120)
        landed = {day.isoformat(): sum(landing.land_generated(
            LOGS.name, day, options=BACKFILL_DATA).values()) for day in days}

        page.goto(f"{deployment.url}/assets/{'/'.join(LOGS.asset_key_path)}")  # bookmark
        backfill_id = _launch_range_backfill(page, first, last, screens)
        _watch_the_backfill(page, deployment, backfill_id, first, last, screens)
        _bronze_has(deployment, landed)
        _landing_sensor_page(page, deployment, screens)
        _freshness_and_plots(page, deployment, screens)


def _launch_range_backfill(page: Page, first: str, last: str, screens: Screens) -> str:
    """On the bronze asset's page: Materialize… -> type the range ``[first...last]`` (Dagster's
    partition syntax) -> Launch backfill. Returns the backfill's id, from the toast."""
    screens.doing("backfill_dialog")
    expect(page.get_by_text(LOGS.name, exact=True).first).to_be_visible()
    page.get_by_role("button", name=re.compile(r"Materialize…$")).click()
    dialog = page.get_by_role("dialog").filter(
        has_text=f"Launch runs to materialize {LOGS_ASSET}")
    expect(dialog).to_be_visible()
    # The dialog's one text box (its placeholder changes once there is a selection).
    keys = dialog.get_by_role("textbox")
    expect(keys).to_have_attribute("placeholder", "No matching partitions")
    keys.fill(f"[{first}...{last}]")
    keys.press("Enter")
    expect(dialog.get_by_text("3 partitions", exact=True)).to_be_visible()
    expect(keys).to_have_value(f"[{first}...{last}]")
    # The asset's BackfillPolicy.single_run: the whole range in one run.
    expect(dialog.get_by_text("Backfills all partitions in a single run.")).to_be_visible()
    launch = dialog.get_by_role("button", name="Launch backfill", exact=True)
    expect(launch).to_be_enabled()
    screens.shot("backfill_range_dialog")
    launch.click()

    toast = page.get_by_text(re.compile(r"^Created backfill \w+$"))
    expect(toast).to_be_visible()
    return toast.inner_text().split()[-1]


def _watch_the_backfill(page: Page, deployment, backfill_id: str, first: str, last: str,
                        screens: Screens) -> None:
    """The toast's View opens the backfill: it succeeds with the three days materialized, by
    one run (Runs tab)."""
    screens.doing("backfill")
    page.get_by_role("link", name="View", exact=True).click()
    page.mouse.move(0, 0)  # the toast stays while the pointer is on it
    expect(page).to_have_url(re.compile(f"/runs/b/{backfill_id}"))
    details = innermost(page, "Created", "Duration", "Partition selection", "Status")
    status = details.get_by_text(re.compile(r"^(Succeeded|Completed|Failed|Canceled)$"))
    try:
        expect(status).to_be_visible(timeout=RUN_TIMEOUT_MS)  # the page refreshes itself
    except AssertionError:
        pytest.fail(f"backfill {backfill_id} did not finish within {RUN_TIMEOUT_MS // 1000} s"
                    f"\n{deployment.tail()}")
    assert status.inner_text() == "Succeeded", deployment.tail()
    # The range as launched, either as a range or as its three keys.
    selection = details.inner_text()
    assert f"{first}...{last}" in selection or all(
        day in selection for day in (first, last)), selection
    # Overview tab: the asset's row counts the partitions targeted, in progress, succeeded
    # and failed.
    asset = page.get_by_role("link", name=LOGS_ASSET).first
    row = asset.locator("xpath=ancestor::div[count(div) = 5][1]")
    counts = [row.locator(":scope > div").nth(i).inner_text().strip() for i in range(1, 5)]
    assert counts == ["3", "0", "3", "0"], counts
    screens.shot("backfill_succeeded")

    page.get_by_role("tab", name="Runs", exact=True).click()
    runs = page.get_by_role("link", name=re.compile(r"^(run )?[0-9a-f]{8}$"))  # "run" icon
    expect(runs.first).to_be_visible()
    expect(runs).to_have_count(1)
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    screens.shot("backfill_one_run")

    # The instance agrees: three partitions, one run over the range, launched from the UI.
    state = deployment.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
    assert state["status"] == "COMPLETED_SUCCESS", state
    assert state["numPartitions"] == 3, state
    (run,) = state["runs"]
    assert run["runId"].startswith(runs.inner_text().split()[-1])
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert (tags["dagster/asset_partition_range_start"],
            tags["dagster/asset_partition_range_end"]) == (first, last)
    assert tags.get("dagster/from_ui") == "true"


def _bronze_has(deployment, landed: dict[str, int]) -> None:
    """Every landed row is in the bronze table, under its own day."""
    table = DeltaTable(str(deployment.root / "lakehouse" / "manufacturing_bronze" / LOGS.name))
    column = LOGS.partition_column
    days = Counter(str(row[column])
                   for row in table.to_pyarrow_table(columns=[column]).to_pylist())
    assert {day: days[day] for day in landed} == landed


def _landing_sensor_page(page: Page, deployment, screens: Screens) -> None:
    """Automation -> the landing sensor: its cursor is readable JSON (in the page and in the
    Edit cursor dialog, left unchanged), and a skipped tick says why nothing ran."""
    screens.doing("sensor_page")
    page.get_by_role("link", name=re.compile(r"Automation$")).first.click()
    page.get_by_role("link", name=re.compile(LOGS_SENSOR)).first.click()
    expect(page).to_have_title(re.compile(f"Sensors \\| {LOGS_SENSOR}"))
    expect(page.get_by_text(f"Lists new objects under {LOGS.landing_prefix}/")).to_be_visible()
    cursor_row = page.get_by_role("row").filter(
        has=page.get_by_role("cell", name="Cursor", exact=True))
    shown = cursor_row.get_by_text(re.compile(r'^\{".*\}$'))
    expect(shown).to_be_visible()
    _readable_cursor(shown.inner_text())
    screens.shot("sensor_cursor")

    screens.doing("sensor_cursor_dialog")
    cursor_row.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog").filter(has_text=f"Edit {LOGS_SENSOR} cursor")
    expect(dialog).to_be_visible()
    _readable_cursor(dialog.get_by_role("textbox").input_value())
    screens.shot("sensor_cursor_dialog")
    dialog.get_by_role("button", name="Cancel", exact=True).click()  # nothing is changed
    expect(dialog).to_be_hidden()

    # The tick history: a skipped tick (0 runs requested) opens with its skip reason.
    screens.doing("sensor_skip_reason")
    page.get_by_role("button", name="0 runs requested", exact=True).first.click()
    tick = page.get_by_role("dialog").filter(has_text=f"Tick for {LOGS_SENSOR}")
    reason = tick.get_by_text("Skip reason:").locator("xpath=..")
    expect(reason).to_be_visible()
    # Nothing new since the high-water mark, or only files the ledger has as committed.
    assert re.match(r"Skip reason: (No new objects since .+: |\d+ new objects, \d+ already "
                    r"committed: 0 run\(s\) for 0 partition\(s\); )listed \d+ objects under \d+ "
                    rf"date prefixes of s3://\S+/{LOGS.landing_prefix}/", reason.inner_text()), (
        reason.inner_text())
    screens.shot("sensor_skip_reason")
    tick.get_by_role("button", name="Close", exact=True).click()
    expect(tick).to_be_hidden()


def _freshness(deployment) -> str | None:
    node = deployment.graphql(FRESHNESS, {"key": {"path": LOGS.asset_key_path}})
    info = node["assetNodeOrError"].get("freshnessStatusInfo") or {}
    return info.get("freshnessStatus")


def _readable_cursor(text: str) -> None:
    """The landing sensor's cursor as the UI shows it: JSON with the high-water mark and the
    sweep's progress (its last completed sweep)."""
    cursor = json.loads(text)
    assert {"high_water", "seen", "sweep"} <= set(cursor), cursor
    assert cursor["sweep"].get("last_completed_at"), cursor


def _freshness_and_plots(page: Page, deployment, screens: Screens) -> None:
    """The asset's Overview: the freshness policy passes (the backfill's run materialized it
    just now), with its 15-minute window; the Metadata section's Plots draw the monitoring
    figures of the three materialized days."""
    screens.doing("freshness")
    # The freshness daemon evaluates every 30 s; the page shows what it last decided.
    wait_until("the freshness daemon's evaluation after the backfill",
               lambda: _freshness(deployment) == "HEALTHY", deployment, timeout=120)
    page.goto(f"{deployment.url}/assets/{'/'.join(LOGS.asset_key_path)}")  # bookmark
    expect(page.get_by_role("tab", name="Overview")).to_be_visible()
    window = page.get_by_text(
        f"Fails if more than {LOGS.freshness_minutes} minutes since last materialization")
    expect(window).to_be_visible()
    policy = innermost(page, "Freshness policy", "Passing",
                        f"Fails if more than {LOGS.freshness_minutes} minutes since last "
                        "materialization")
    expect(policy).to_be_visible()
    expect(page.get_by_text("Passing", exact=True).first).to_be_visible()
    window.scroll_into_view_if_needed()
    screens.shot("asset_freshness")

    screens.doing("plots")
    # The Metadata section's Table | Plots toggle (a button's name starts with its icon's).
    page.get_by_role("button", name=re.compile(r"(^|\s)Plots$")).click()
    for label in PLOTTED:
        expect(page.get_by_text(label, exact=True)).to_be_visible()
    expect(page.get_by_text("When graphing values by partition")).to_be_visible()
    plots = page.locator("canvas")
    assert plots.count() >= len(PLOTTED)
    page.get_by_text("records", exact=True).scroll_into_view_if_needed()
    screens.shot("asset_plots_by_partition")
    page.get_by_role("button", name=re.compile(r"(^|\s)Events$")).click()  # by time
    expect(page.get_by_text("When graphing values by partition")).to_have_count(0)
    for label in PLOTTED:
        expect(page.get_by_text(label, exact=True)).to_be_visible()
    page.get_by_text("records", exact=True).scroll_into_view_if_needed()
    screens.shot("asset_plots_by_event")
