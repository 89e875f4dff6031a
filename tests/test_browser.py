"""The real page in a real browser: `streamlit run app.py` (started once per session by the
`streamlit_server` fixture in conftest.py) driven by Playwright in Debian's headless Chromium.

Times are printed, never asserted (benchmarks are a separate command: see the README). Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
import time

import pytest
from browser_page import (
    EXCEPTION,
    SECTION_PANEL,
    assert_no_console_errors,
    assert_no_exception,
    collect_console_errors,
    open_section,
    run_and_wait,
    run_title,
    screenshot_full,
    section_panel,
    section_tab,
    wait_idle,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from explorer import toydata
from explorer.bench.appserver import STEP_OF_JS, TITLE
from explorer.ui import sections

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 120_000  # first page load: TensorFlow import, dataset, building the runs
TRAIN_TIMEOUT_MS = 180_000  # first ticks: tracing the train step of every run on 2 cores
CLASS_NAMES = tuple(c["name"] for c in toydata.CLASSES)


def progress_step(page) -> int | None:
    return page.evaluate(STEP_OF_JS)


def test_train_pause_and_the_live_maps(page, streamlit_server, artifacts_dir):
    server = streamlit_server
    console_errors = collect_console_errors(page)

    page.goto(server.url, wait_until="domcontentloaded")

    # The app's own elements: the title first, then the Train button and the live view's class
    # strip (the Live section is open by default; the dataset's table is in the Dataset section).
    page.locator("h1", has_text=TITLE).wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    first_render = time.perf_counter()
    page.screenshot(path=str(artifacts_dir / "browser-first-render.png"))
    spinner_at_first_render = page.locator('[data-testid="stSpinner"]').count()
    train = page.locator(".st-key-train button")
    train.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    page.locator(".st-key-class_strip").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    usable = time.perf_counter()
    print(
        f"\n[browser] launch → health ok: {server.healthy_at - server.launched_at:.1f} s;"
        f" launch → first rendered title (time-to-first-render): {first_render - server.launched_at:.1f} s"
        f" (spinners visible then: {spinner_at_first_render});"
        f" launch → class strip and Train button: {usable - server.launched_at:.1f} s"
    )
    assert section_tab(page, sections.LIVE).get_attribute("aria-selected") == "true", "the page does not open on the Live section"
    strip = page.locator(".st-key-class_strip").inner_text()
    assert all(name in strip for name in CLASS_NAMES), f"the class strip does not name every class: {strip!r}"
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
    # Both default runs already show their (untrained) maps, at step 0.
    for label in ("A", "B"):
        run_title(page, label).wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    page.get_by_text(re.compile(r"^Training on (CPU|GPU)")).first.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    assert page.get_by_text(re.compile(r"^Training on (CPU|GPU)")).count() == 1
    page.wait_for_function(f"() => ({STEP_OF_JS})() !== null", timeout=LOAD_TIMEOUT_MS)
    assert progress_step(page) == 0

    # Train, and wait for the progress text to count steps.
    train.click()
    clicked = time.perf_counter()
    page.locator(".st-key-pause button").wait_for(state="visible", timeout=30_000)
    page.wait_for_function(f"() => {{ const s = ({STEP_OF_JS})(); return s !== null && s >= 10; }}", timeout=TRAIN_TIMEOUT_MS, polling=250)
    print(f"[browser] Train click → 'Step 10 of' shown: {time.perf_counter() - clicked:.1f} s")

    # The live part: the curves, each run's loss plane and (in the run's expander, drawn once
    # opened; opened while training) its probability maps and confusion are plotly charts that
    # plotly actually drew; images (inputs, truth, predictions and per-class outcome maps) are present.
    for label in ("A", "B"):
        page.locator(f".st-key-live_more_{label} summary").click()
    charts = ["curves"] + [f"{kind}_{label}" for label in ("A", "B") for kind in ("live_plane", "probs", "confusion")]
    for key in charts:
        page.locator(f".st-key-{key} .main-svg").first.wait_for(state="visible", timeout=60_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')].every(c => c.querySelector('.main-svg'))",
        timeout=30_000,
    )
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= len(charts)
    page.get_by_text("Per-class outcome maps:").wait_for(state="visible", timeout=30_000)
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()

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
    # The maps are those of the step it paused at (Pause takes a validation snapshot).
    for label in ("A", "B"):
        title = run_title(page, label).locator("xpath=..")
        assert f"step {paused_at} " in title.inner_text() + " ", title.inner_text()

    # Every image of the live view loaded: the validation image and its truth, then per run its
    # prediction and one outcome map per class (4); the expanders hold each run's metrics table.
    _assert_live_images(page)
    assert page.locator(f'{SECTION_PANEL} [data-testid="stDataFrame"]').count() >= 2
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()
    screenshot_full(page, artifacts_dir / "browser-after-training.png")

    # Another validation image, then another section and back: the live view keeps the image
    # chosen, the runs and their step.
    page.locator(".st-key-val_image input[type=range]").focus()
    run_and_wait(page, lambda: page.keyboard.press("ArrowRight"))
    chosen = _val_image(page)
    assert chosen == 1, chosen

    # The Dataset section: 6 preview images and 6 masks, the class shares chart and the class table.
    open_section(page, sections.DATASET)
    panel = section_panel(page)
    panel.locator('[data-testid="stDataFrame"]').first.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    panel.locator(".st-key-class_frequencies .main-svg").first.wait_for(state="visible", timeout=30_000)
    _assert_images_loaded(page, section_panel(page), 12)
    assert panel.locator('[data-testid="stDataFrame"]').count() >= 2  # the class table and the weights
    assert page.locator(".st-key-curves").count() == 0, "the live view's curves are drawn while the Dataset section is open"
    assert_no_exception(page, " (Dataset section)")
    screenshot_full(page, artifacts_dir / "browser-dataset-section.png")

    open_section(page, sections.LIVE)
    for label in ("A", "B"):
        run_title(page, label).wait_for(state="visible", timeout=60_000)
    assert _val_image(page) == chosen, f"the validation image went from {chosen} to {_val_image(page)} after another section was opened"
    assert progress_step(page) == paused_at
    page.locator(".st-key-curves .main-svg").first.wait_for(state="visible", timeout=30_000)
    for label in ("A", "B"):
        title = run_title(page, label).locator("xpath=..")
        assert f"step {paused_at} " in title.inner_text() + " ", title.inner_text()
    _assert_live_images(page)
    assert_no_exception(page, " (back in the Live section)")
    assert_no_console_errors(console_errors)
    # The runs' expanders opened above are still open, with their charts: another section opened
    # meanwhile must not close what the user opened.
    closed = [label for label in ("A", "B") if not page.locator(f".st-key-live_more_{label} details[open]").count()]
    assert not closed, f"the expander 'Probabilities, metrics and confusion' of run(s) {closed} closed when another section was opened and closed"
    for label in ("A", "B"):
        page.locator(f".st-key-probs_{label} .main-svg").first.wait_for(state="visible", timeout=30_000)


def _val_image(page) -> int:
    """The value of the "Validation image" slider (a range input in Streamlit 1.67)."""
    return int(page.locator(".st-key-val_image input[type=range]").input_value())


def _assert_images_loaded(page, where, count: int) -> None:
    """`count` images in `where` (a locator), every image of the page loaded."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('img')].filter(i => i.closest('[data-testid=\"stImage\"], [data-testid=\"stFullScreenFrame\"]'))"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )
    images = where.locator('[data-testid="stImage"] img')
    assert images.count() == count, f"{images.count()} images instead of {count}"


def _assert_live_images(page) -> None:
    """The live view's images: the validation image and its truth, then per run its prediction
    and one outcome map per class."""
    _assert_images_loaded(page, page.locator(".st-key-live_image"), 2)
    for label in ("A", "B"):
        _assert_images_loaded(page, page.locator(f".st-key-live_maps_{label}"), 1 + len(CLASS_NAMES))
