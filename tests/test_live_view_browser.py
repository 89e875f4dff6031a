"""The live view on a 1440×900 screen: while the runs train, the curves, the validation image with
its truth, each run's prediction and per-class outcome maps, and each run's plane of the rare class
with its route are all on screen at once, without scrolling (a user who moves γ sees the maps and
the plane answer together)."""

from __future__ import annotations

import time

import pytest
from browser_page import LOAD_TIMEOUT_MS, assert_no_console_errors, collect_console_errors

from explorer.bench.appserver import STEP_OF_JS, TITLE
from explorer.data import load_toy

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1440, 900
TRAIN_SECONDS = 300  # tracing the train steps and the first validation on a shared 2-core CPU
DEFAULT_RUNS = ("A", "B")


# Every element's box in one step inside the page (None for one not drawn): counting the elements
# and then measuring each would race the fragments that replace them.
_BOXES_JS = """elements => elements.map(element => {
  const box = element.getBoundingClientRect();
  return box.width && box.height ? {x: box.x, y: box.y, width: box.width, height: box.height} : null;
})"""


def _boxes(page, selector: str, count: int) -> list[dict]:
    """The bounding boxes of the `count` elements `selector` finds. While the runs train, the
    fragments redraw every second or three: an element being replaced has no box for a moment, and
    the old and the new one may both be on the page (CI runs measured both). Measured again until
    there are `count` elements, each with a box."""
    deadline = time.monotonic() + 30
    while True:
        boxes = page.eval_on_selector_all(selector, _BOXES_JS)
        if len(boxes) == count and all(boxes):
            return boxes
        assert time.monotonic() < deadline, f"{selector}: {len(boxes)} elements instead of {count}, or not drawn: {boxes}"
        page.wait_for_timeout(200)


def _on_screen(box: dict) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= WIDTH + 0.5 and box["y"] + box["height"] <= HEIGHT + 0.5


def test_curves_maps_and_planes_share_a_1440_by_900_screen_while_training(browser, streamlit_server, artifacts_dir):
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = context.new_page()
    errors = collect_console_errors(page)
    try:
        page.goto(streamlit_server.url)
        page.locator("h1", has_text=TITLE).wait_for(timeout=LOAD_TIMEOUT_MS)
        page.locator(".st-key-train button:enabled").wait_for(timeout=LOAD_TIMEOUT_MS)
        page.locator(".st-key-train button").click()
        deadline = time.monotonic() + TRAIN_SECONDS
        evaluate_every = 20  # the sidebar's default: the first snapshot with a route after this step
        while (page.evaluate(STEP_OF_JS) or 0) < evaluate_every + 5:
            assert time.monotonic() < deadline, f"the runs did not reach step {evaluate_every + 5} in {TRAIN_SECONDS} s"
            page.wait_for_timeout(500)
        for label in DEFAULT_RUNS:  # the route has two points (steps 0 and 20): a line
            page.locator(f".st-key-live_plane_{label} .scatterlayer .trace").first.wait_for(timeout=60_000)
        page.screenshot(path=str(artifacts_dir / "live-view-1440x900.png"))

        assert page.evaluate("() => window.scrollY") == 0
        classes = load_toy().class_names
        shown = {name: _boxes(page, f".st-key-{key} .js-plotly-plot", 1)[0] for name, key in (("loss curves", "curves"), ("validation curves", "curves_validation"))}
        for i, box in enumerate(_boxes(page, ".st-key-live_image img", 2)):  # the validation image and its truth
            shown[f"validation image {i}"] = box
        for label in DEFAULT_RUNS:
            # A prediction and one outcome map per class.
            for i, box in enumerate(_boxes(page, f".st-key-live_maps_{label} img", 1 + len(classes))):
                shown[f"run {label} map {i}"] = box
            shown[f"run {label} plane"] = _boxes(page, f".st-key-live_plane_{label} .js-plotly-plot", 1)[0]
            # Each map's caption on one line, as high as the prediction's ("background" once wrapped
            # under its 48-pixel map).
            prediction, *outcomes = _boxes(page, f".st-key-live_maps_{label} [data-testid='stImageCaption']", 1 + len(classes))
            wrapped = [name for name, box in zip(classes, outcomes) if box["height"] > 1.2 * prediction["height"]]
            assert not wrapped, f"run {label}: the captions of {wrapped} take more than one line"
        off_screen = {name: box for name, box in shown.items() if not _on_screen(box)}
        assert not off_screen, f"not within the {WIDTH}×{HEIGHT} screen: {off_screen}"
        # Side by side, not stacked: each run's plane is to the right of its maps, runs left to right.
        for label in DEFAULT_RUNS:
            assert shown[f"run {label} plane"]["x"] >= shown[f"run {label} map 0"]["x"] + shown[f"run {label} map 0"]["width"]
        assert shown["run B map 0"]["x"] > shown["run A plane"]["x"]
        assert shown["validation curves"]["x"] >= shown["loss curves"]["x"] + shown["loss curves"]["width"]
        page.locator(".st-key-pause button").click()
        page.locator(".st-key-train button").wait_for(timeout=60_000)
        assert_no_console_errors(errors)
    finally:
        context.close()
