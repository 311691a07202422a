"""Playwright (sync API) on Debian's Chromium for the UI tests, the screenshots they keep, and
the steps they share (the first visit's dialog, reading a detail pane and its metadata).

Playwright's own browser download is not used: ``scripts/setup --test-tools`` installs the
distribution's ``chromium``, which Playwright drives through ``executable_path``. The flags keep
a headless Chromium off the network (the tests' machines have none) and working as root.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from manufacturing_ingest_tests.live_ui import wait_until

CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
_SHOULD_SHOW_NUX = "{ shouldShowNux }"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("no chromium on PATH: the UI tests drive Debian's Chromium; "
                           "install it with `scripts/setup --test-tools`")
    return path


@contextmanager
def browser_page(folder: Path, prefix: str, timeout_ms: int) -> Iterator[tuple]:
    """A page of a fresh headless Chromium (UTC, en-US, ``VIEWPORT``) with ``timeout_ms`` for
    every action and ``expect``, and its ``Screens`` under ``folder``, recording: yields
    ``(page, screens)``; closes the browser and resets ``expect`` afterwards."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, timezone_id="UTC", locale="en-US")
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        expect.set_options(timeout=timeout_ms)
        screens = Screens(page, folder, prefix)
        try:
            with screens.recording():
                yield page, screens
        finally:
            expect.set_options(timeout=None)
            context.close()
            browser.close()


class Screens:
    """Numbered screenshots under ``folder`` (``<prefix>_<nn>_<name>.png``); ``recording``
    saves the page (``<prefix>_FAILED_<step>.png``, its HTML as ``.html``) and a Playwright trace
    when the block raises."""

    def __init__(self, page, folder: Path, prefix: str):
        self.page = page
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.taken: list[Path] = []
        self.step = "start"
        for old in folder.glob(f"{prefix}_*"):
            old.unlink()  # a passing run must not leave the last failure's pictures around

    def doing(self, step: str) -> None:
        """Name what the test does next, for the failure screenshot's name."""
        self.step = step

    def shot(self, name: str) -> Path:
        path = self.folder / f"{self.prefix}_{len(self.taken) + 1:02d}_{name}.png"
        self.page.screenshot(path=str(path))
        self.taken.append(path)
        return path

    @contextmanager
    def recording(self) -> Iterator[Screens]:
        context = self.page.context
        context.tracing.start(screenshots=True, snapshots=True)
        try:
            yield self
        except BaseException:
            step = re.sub(r"\W+", "_", self.step)
            try:
                self.page.screenshot(path=str(self.folder / f"{self.prefix}_FAILED_{step}.png"))
                (self.folder / f"{self.prefix}_FAILED_{step}.html").write_text(
                    self.page.content())
                context.tracing.stop(path=str(self.folder / f"{self.prefix}_FAILED_trace.zip"))
            except Exception:  # the browser may be what failed; keep the test's own error
                pass
            raise
        context.tracing.stop()


def first_visit(page, deployment, screens: Screens, shot: bool = True) -> None:
    """Open the UI; Dagster's "Join the Dagster community" dialog, shown on a first visit to a
    local instance, is skipped the way a person skips it (with a screenshot unless ``shot`` is
    false)."""
    from playwright.sync_api import expect

    screens.doing("first_visit")
    nux = deployment.graphql(_SHOULD_SHOW_NUX)["shouldShowNux"]
    page.goto(deployment.url)
    expect(page.get_by_role("link", name=re.compile(r"Overview$")).first).to_be_visible()
    dialog = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
    if nux:  # not when an earlier browser test of the session has skipped it already
        expect(dialog).to_be_visible()
        expect(dialog.get_by_text("Sign up for the Dagster newsletter")).to_be_visible()
        if shot:
            screens.shot("community_dialog")
        dialog.get_by_role("button", name="Skip", exact=True).click()
        expect(dialog).to_be_hidden()
        # Skipping is remembered by the instance, not only by this browser. The UI sends that
        # mutation after it hides the dialog, so a loaded machine may take a moment to record it.
        wait_until("instance remembering the skipped dialog",
                   lambda: deployment.graphql(_SHOULD_SHOW_NUX)["shouldShowNux"] is False,
                   deployment, timeout=30, interval=0.3)
    expect(dialog).to_have_count(0)


def innermost(page, *texts: str):
    """The smallest block of the page showing all of ``texts`` (a detail pane)."""
    block = page.locator("div")
    for text in texts:
        block = block.filter(has=page.get_by_text(text, exact=True))
    return block.last


def metadata_value(pane, label: str) -> str:
    """The value shown for ``label`` in the metadata table of ``pane``."""
    label_cell = pane.page.get_by_role("cell", name=label, exact=True)
    row = pane.get_by_role("row").filter(has=label_cell)
    return row.get_by_role("cell").nth(1).inner_text().strip()
