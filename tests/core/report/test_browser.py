"""The report as a person sees it: opened from disk in headless Chromium (Debian's ``chromium``, driven by
playwright), with the network cut off. Every chart and the shown sample grids load, the slider moves
through a run's grids, nothing is logged to the console, nothing is fetched, and the screenshot is a page
of pictures, not a blank one.

Skipped where Debian's chromium (``make install`` installs it as root) or playwright is missing; a
browser is never downloaded (no ``playwright install``).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gen.report.write import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Chromium without a sandbox (root in a container), GPU, or any traffic of its own.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

#: For every image element: loaded, its decoded width, whether it is shown.
IMAGES = """() => Array.from(document.images).map(img => ({
    alt: img.alt, complete: img.complete, width: img.naturalWidth,
    shown: img.getClientRects().length > 0 }))"""


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])"
    )
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium (make install does, as root)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def colours(png: bytes) -> int:
    """How many distinct colours a screenshot holds (a blank page: one)."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(np.uint32)
    return len(np.unique(pixels @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)))  # one int a colour


def test_the_report_shows_its_charts_and_grids_in_a_browser(browser, fake_run, tmp_path):
    a, b = fake_run("a"), fake_run("b", steps=(1, 2, 3, 4, 5, 6))
    report = write_report([a, b], tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    messages, requests = [], []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("data:", "file:")) else None)
    page.route("http*://**", lambda route: route.abort())  # offline: anything fetched would fail (and count)
    page.goto(report.path.as_uri(), wait_until="load")

    shown = [img for img in page.evaluate(IMAGES) if img["shown"]]
    assert all(img["complete"] and img["width"] > 0 for img in shown), shown
    charts = [img for img in shown if ": samples at " not in img["alt"]]
    grids = [img["alt"] for img in shown if ": samples at " in img["alt"]]
    assert len(charts) == report.charts == 8
    assert grids == ["a: samples at final", "b: samples at final"]  # each run's last grid, first

    # The slider of run b (step 2, step 4, step 6, final) back to its first grid.
    slider = page.locator('.slider[data-run="b"]')
    slider.locator("input").fill("0")
    assert slider.locator("output").inner_text() == "step 2"
    assert [img["alt"] for img in page.evaluate(IMAGES) if img["shown"] and img["alt"].startswith("b:")] == [
        "b: samples at step 2"
    ]

    assert messages == [] and requests == []
    screenshot = page.screenshot(full_page=True)
    assert colours(screenshot) > 500  # text, lines and noisy grids: far from one colour
    loss = page.locator("#loss img").screenshot()
    assert colours(loss) > 20 and Image.open(io.BytesIO(loss)).size[0] > 400
    page.close()
