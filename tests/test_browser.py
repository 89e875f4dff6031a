"""The real page in a real browser: `streamlit run app.py` (started once per session by the
`streamlit_server` fixture in conftest.py) driven by Playwright in Debian's headless Chromium.

Times are printed, never asserted (benchmarks are a separate command: see the README). Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
import time

import pytest
from browser_page import assert_no_console_errors, collect_console_errors, screenshot_full, wait_idle
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from explorer.bench.appserver import STEP_OF_JS, TITLE

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 120_000  # first page load: TensorFlow import, dataset, building the runs
TRAIN_TIMEOUT_MS = 180_000  # first ticks: tracing the train step of every run on 2 cores


def progress_step(page) -> int | None:
    return page.evaluate(STEP_OF_JS)


def test_train_pause_and_the_live_maps(page, streamlit_server, artifacts_dir):
    server = streamlit_server
    console_errors = collect_console_errors(page)

    page.goto(server.url, wait_until="domcontentloaded")

    # The app's own elements: the title first, then the dataset panel and the Train button.
    page.locator("h1", has_text=TITLE).wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    first_render = time.perf_counter()
    page.screenshot(path=str(artifacts_dir / "browser-first-render.png"))
    spinner_at_first_render = page.locator('[data-testid="stSpinner"]').count()
    train = page.locator(".st-key-train button")
    train.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    usable = time.perf_counter()
    print(
        f"\n[browser] launch → health ok: {server.healthy_at - server.launched_at:.1f} s;"
        f" launch → first rendered title (time-to-first-render): {first_render - server.launched_at:.1f} s"
        f" (spinners visible then: {spinner_at_first_render});"
        f" launch → class table and Train button: {usable - server.launched_at:.1f} s"
    )
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()
    assert page.get_by_text(re.compile(r"^Training on (CPU|GPU)")).count() == 1
    # Both default runs already show their (untrained) maps, at step 0.
    for label in ("A", "B"):
        page.get_by_role("heading", name=re.compile(rf"^Run {label}: ")).wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function(f"() => ({STEP_OF_JS})() !== null", timeout=LOAD_TIMEOUT_MS)
    assert progress_step(page) == 0

    # Train, and wait for the progress text to count steps.
    train.click()
    clicked = time.perf_counter()
    page.locator(".st-key-pause button").wait_for(state="visible", timeout=30_000)
    page.wait_for_function(f"() => {{ const s = ({STEP_OF_JS})(); return s !== null && s >= 10; }}", timeout=TRAIN_TIMEOUT_MS, polling=250)
    print(f"[browser] Train click → 'Step 10 of' shown: {time.perf_counter() - clicked:.1f} s")

    # The live part: the curves and each run's probability maps are plotly charts that plotly
    # actually drew; images (inputs, truth, predictions and per-class outcome maps) are present.
    charts = page.locator('[data-testid="stPlotlyChart"]')
    assert charts.count() >= 4  # class shares, curves, run A's and run B's probability maps
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')].every(c => c.querySelector('.main-svg'))",
        timeout=30_000,
    )
    page.get_by_text("Per-class outcome maps:").wait_for(state="visible", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()

    # Pause: the Train button comes back and the step count stops moving. A tick that was
    # already training when Pause was clicked finishes (its steps then show): wait until no run
    # is under way, then check that none starts by itself and the count stays.
    page.locator(".st-key-pause button").click()
    train.wait_for(state="visible", timeout=60_000)
    wait_idle(page)
    paused_at = progress_step(page)
    assert paused_at is not None and paused_at >= 10
    with pytest.raises(PlaywrightTimeout):
        page.wait_for_function(f"() => ({STEP_OF_JS})() !== {paused_at}", timeout=5_000, polling=100)

    # Every image on the page loaded: 6 previews and 6 masks, then per run the image, truth,
    # prediction and one outcome map per class (4).
    images = page.locator('[data-testid="stImage"] img, [data-testid="stFullScreenFrame"] img')
    page.wait_for_function(
        "() => [...document.querySelectorAll('img')].filter(i => i.closest('[data-testid=\"stImage\"], [data-testid=\"stFullScreenFrame\"]'))"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )
    assert images.count() >= 12 + 2 * (3 + 4), images.count()
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()

    screenshot_full(page, artifacts_dir / "browser-after-training.png")
    assert_no_console_errors(console_errors)
