"""The README's screenshots are the ones the demo's browser test makes now: every picture the
README shows is in ``docs/images/``, every file there is shown, and each was made by the current
steps of ``ui/test_demo_ui.py`` under the installed Dagster (``make docs-images`` remakes them)."""

from __future__ import annotations

import pytest

from manufacturing_ingest_tests import docs_images
from manufacturing_ingest_tests.ui.browser import VIEWPORT

README = (docs_images.REPO / "README.md").read_text()


def test_the_readme_shows_every_image_in_docs_images_and_nothing_else():
    shown = docs_images.referenced_images(README)
    present = {f"docs/images/{p.name}" for p in docs_images.DOCS_IMAGES.glob("*")}
    assert shown, "the README's Quickstart shows the UI after `make demo`"
    assert shown == present


@pytest.mark.parametrize("image", sorted(docs_images.referenced_images(README)))
def test_each_image_was_made_by_the_current_browser_test_and_dagster(image):
    png = (docs_images.REPO / image).read_bytes()
    assert docs_images.size_of(png) == (VIEWPORT["width"], VIEWPORT["height"])
    stamp = docs_images.read_stamp(png)
    assert stamp == docs_images.current_stamp(), (
        f"{image} was made by {stamp or 'something else'}, not by the current steps "
        f"({docs_images.current_stamp()}): run `make docs-images` and commit docs/images/")


def test_a_stamp_survives_the_round_trip_and_replaces_an_older_one():
    png = (docs_images.DOCS_IMAGES / "lineage.png").read_bytes()
    once = docs_images.with_stamp(png, "dagster 0.0; steps old")
    twice = docs_images.with_stamp(once, "dagster 9.9; steps new")
    assert docs_images.read_stamp(twice) == "dagster 9.9; steps new"
    assert twice.count(docs_images.STAMP_KEY) == 1
    assert docs_images.size_of(twice) == docs_images.size_of(png)
    with pytest.raises(ValueError, match="not a PNG"):
        docs_images.read_stamp(b"GIF89a")
