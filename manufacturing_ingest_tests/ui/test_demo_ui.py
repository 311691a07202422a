"""The UI on the instance ``make demo`` recorded, as a newcomer opens it with ``make dev``: the
webserver alone (no daemon: nothing ticks, nothing is launched) over the demo's
``DAGSTER_HOME``, in a real browser. Lineage shows every bronze asset with its latest event and
its checks (``sensor_data``'s failing); the bad day's partition is "Materialized" with its rows;
its ``quality`` check "Failed" above the ERROR limit; the asset's plots draw the demo's runs.

Its screenshots (``<artifacts>/ui/demo_<nn>_<step>.png``) are the README's pictures:
``make docs-images`` writes them to ``docs/images/`` (``manufacturing_ingest_tests.docs_images``),
and ``test_docs_images.py`` checks the committed ones were made by these steps.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.orchestration.demo import VOLUMES
from manufacturing_ingest_tests import docs_images
from manufacturing_ingest_tests.live_ui import LiveDagster
from manufacturing_ingest_tests.ui.browser import (
    Screens,
    browser_page,
    first_visit,
    innermost,
    metadata_value,
)

pytestmark = [pytest.mark.spark, pytest.mark.subprocess]

SPEC = get_source("sensor_data")
ASSET_URL = "/assets/" + "/".join(SPEC.asset_key_path)
FILES, ROWS = VOLUMES[SPEC.name]
UI_TIMEOUT_MS = 30_000
# Numeric materialization metadata the Plots view draws (bronze.report_metadata).
PLOTTED = ("records", "records_per_second", "files_processed", "bytes", "seconds")


@pytest.fixture(scope="module")
def demo_ui(demo):
    """The webserver over the demo's instance, with the settings the demo ran with."""
    deployment = LiveDagster(demo.root, demo.env)
    try:
        yield deployment.start(daemon=False)
    finally:
        deployment.stop()


def test_the_ui_on_the_demos_instance_shows_its_data_and_health_without_launching(
        demo, demo_ui, artifacts):
    _, bad = demo.days
    runs_before = demo.instance.get_runs_count()
    shots = {}
    with browser_page(artifacts / "ui", "demo", UI_TIMEOUT_MS) as (page, screens):
        first_visit(page, demo_ui, screens, shot=False)
        shots["lineage"] = _lineage(page, screens)
        page.goto(demo_ui.url + ASSET_URL)  # as from the lineage node
        _bad_day_materialized(page, bad.isoformat(), screens)
        shots["quality_check_failed"] = _bad_day_quality_failed(page, bad.isoformat(), screens)
        shots["plots"] = _plots(page, demo_ui, screens)
    # Looking launched nothing: the runs are the demo's.
    assert demo.instance.get_runs_count() == runs_before

    for name, shot in shots.items():
        published = docs_images.publish(shot, name)
        committed = docs_images.DOCS_IMAGES / f"{name}.png"
        assert committed.is_file(), f"{committed} is missing: run `make docs-images`"
        assert docs_images.size_of(committed.read_bytes()) == docs_images.size_of(
            shot.read_bytes()), f"{committed} is not this test's picture: `make docs-images`"
        if published:
            assert docs_images.read_stamp(published.read_bytes()) == docs_images.current_stamp()


def _lineage(page: Page, screens: Screens):
    """Lineage, groups expanded: every asset has a latest event; the bronze assets' checks pass,
    but for one of sensor_data's three."""
    screens.doing("lineage")
    page.get_by_role("link", name=re.compile(r"Lineage$")).click()
    expect(page.get_by_text("Global asset lineage", exact=True)).to_be_visible()
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
    page.keyboard.press("Escape")
    page.mouse.move(0, 0)
    nodes = page.locator("svg foreignObject")
    for source in CATALOG:
        expect(nodes.get_by_text(source, exact=True)).to_have_count(2)  # raw and bronze
    expect(nodes.get_by_text("Latest event", exact=True)).to_have_count(2 * len(CATALOG))
    # A node that never had an event shows "–" where the others say when ("a minute ago").
    expect(nodes.get_by_text(re.compile(r"\bago$"))).to_have_count(2 * len(CATALOG))
    expect(nodes.get_by_text("3 / 3 Passed", exact=True)).to_have_count(len(CATALOG) - 1)
    expect(nodes.get_by_text("2 / 3 Passed", exact=True)).to_have_count(1)
    return screens.shot("lineage")


def _bad_day_materialized(page: Page, partition: str, screens: Screens) -> None:
    """The bronze asset's Partitions tab: the bad day is materialized, with every row."""
    screens.doing("partition_materialized")
    expect(page.get_by_role("tab", name="Partitions")).to_be_visible()
    page.get_by_role("tab", name="Partitions").click()
    page.get_by_placeholder("Filter by name…").fill(partition)
    page.get_by_text(partition, exact=True).locator("visible=true").first.click()
    pane = innermost(page, "Latest materialization", "Metadata")
    expect(pane.get_by_text("Materialized", exact=True)).to_be_visible()
    assert metadata_value(pane, "records") == str(FILES * ROWS)
    screens.shot("partition_materialized")


def _bad_day_quality_failed(page: Page, partition: str, screens: Screens):
    """Checks -> quality -> Partitions -> the bad day: Failed, above the ERROR limit."""
    screens.doing("quality_check")
    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text("Checks (3)", exact=True)).to_be_visible()
    page.get_by_text("quality", exact=True).locator("visible=true").first.click()
    page.get_by_role("tab", name="Partitions").and_(page.locator("button")).click()
    page.get_by_placeholder("Filter by partition…").fill(partition)
    page.get_by_text(partition, exact=True).locator("visible=true").first.click()
    pane = innermost(page, "Latest execution", "Description", "Metadata")
    expect(pane.get_by_text("Failed", exact=True)).to_be_visible()
    description = pane.get_by_text(re.compile(r"new rows fail a rule")).inner_text()
    failing, checked, _ = re.match(r"(\d+) of (\d+) new rows fail a rule \(([\d.]+)%\)",
                                   description).groups()
    assert int(checked) == FILES * ROWS, description
    assert float(metadata_value(pane, "error_rate")) > SPEC.quality.error_above
    assert metadata_value(pane, "failing_rows") == failing
    return screens.shot("quality_check_failed")


def _plots(page: Page, deployment, screens: Screens):
    """Overview -> Metadata -> Plots: the monitoring figures of the demo's runs, by partition
    (both days), then by event (each run; easier to read for two days among hundreds)."""
    screens.doing("plots")
    page.goto(deployment.url + ASSET_URL)
    expect(page.get_by_role("tab", name="Overview")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"(^|\s)Plots$")).click()
    for label in PLOTTED:
        expect(page.get_by_text(label, exact=True)).to_be_visible()
    expect(page.get_by_text("When graphing values by partition")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"(^|\s)Events$")).click()
    expect(page.get_by_text("When graphing values by partition")).to_have_count(0)
    for label in PLOTTED:
        expect(page.get_by_text(label, exact=True)).to_be_visible()
    assert page.locator("canvas").count() >= len(PLOTTED)
    page.get_by_text("records", exact=True).evaluate(
        "label => label.scrollIntoView({block: 'start'})")
    return screens.shot("plots")
