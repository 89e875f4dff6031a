"""Reading the real page in the browser, shared by the browser tests: open the page with a link
(explorer.export.to_query_params), wait for it, open one of its sections (the top-level tabs of
explorer/ui/sections.py), read the step count and the loss curves that plotly drew, and train the
same configuration alone in the test process."""

from __future__ import annotations

import dataclasses
import re
import weakref
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from explorer.bench.appserver import IDLE_JS, STEP_OF_JS, TITLE, act_and_wait_for_a_full_run
from explorer.ui import sections

LOAD_TIMEOUT_MS = 180_000  # first page load: TensorFlow import, dataset, building the runs (3 sessions at once)
TRAIN_TIMEOUT_MS = 300_000  # tracing and training on a shared 2-core CPU, several sessions at once
EXCEPTION = '[data-testid="stException"]'
# The page's sections: the top-level st.tabs (key sections.KEY); sections have tabs of their own,
# so the section tabs are those of the first tab list in it, and the open section is its panel.
SECTIONS = f".st-key-{sections.KEY}"
SECTION_PANEL = f"{SECTIONS} > div > [role=tabpanel]"
# Console errors that say nothing about the page, by exact text. Anything else fails the test.
HARMLESS_CONSOLE_ERRORS: frozenset[str] = frozenset()
BUSY_TEXT = "The server is busy"
TRACEBACK_RE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


# The training-curves chart (st.plotly_chart(key="curves")): each run's loss trace (named by the
# run's label) as plotly drew it (_fullData holds the decoded arrays; `data` may hold base64
# "bdata"), and the annotations that mark configuration changes ("A: gamma 2.0 → 2.1" at x = the step).
CURVES_JS = r"""
() => {
  const gd = document.querySelector('.st-key-curves .js-plotly-plot');
  if (!gd || !gd._fullData) return null;
  const losses = {};
  for (const t of gd._fullData) {
    if (!t.name) continue;
    losses[t.name] = {
      x: Array.from(t.x || []), y: Array.from(t.y || []), value: Array.from(t.customdata || []),
    };
  }
  const notes = ((gd._fullLayout || {}).annotations || []).map(a => ({x: a.x, text: a.text}));
  return {losses, notes};
}
"""


def link_url(server_url: str, configs: dict, settings, schemes: dict | None = None) -> str:
    from explorer.export import to_query_params

    return f"{server_url}/?{urlencode(to_query_params(configs, settings, schemes))}"


def progress_step(page) -> int | None:
    return page.evaluate(STEP_OF_JS)


def exception_text(page) -> str | None:
    """The text of the first exception box on the page, or None."""
    boxes = page.locator(EXCEPTION)
    return boxes.first.inner_text() if boxes.count() else None


def assert_no_exception(page, where: str = "") -> None:
    text = exception_text(page)
    assert text is None, f"the page shows an exception{where}:\n{text}"
    body = page.evaluate("() => document.body.innerText")
    match = TRACEBACK_RE.search(body)
    assert match is None, f"the page shows a Python traceback{where}: …{body[max(match.start() - 200, 0):match.end() + 400]}…"


_console_errors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # page → its list of errors


def collect_console_errors(page) -> list[str]:
    """The page's console errors and uncaught exceptions from now on (a list that fills itself,
    the same list for every call on one page); check it with assert_no_console_errors. The `page`
    fixture of conftest.py collects them for every browser test and checks them at its end."""
    if page in _console_errors:
        return _console_errors[page]
    errors: list[str] = []
    _console_errors[page] = errors
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    return errors


def assert_no_console_errors(errors: list[str]) -> None:
    unexpected = [e for e in errors if e not in HARMLESS_CONSOLE_ERRORS]
    assert not unexpected, "the browser console shows errors:\n  " + "\n  ".join(unexpected[:20])


def wait_idle(page, timeout_ms: int = TRAIN_TIMEOUT_MS) -> None:
    """No script or fragment run under way (a tick in flight has finished and been drawn): the app
    root's data-test-script-state, as the page bench reads it (explorer/bench/appserver.py)."""
    page.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=100)


def run_and_wait(page, action, timeout_ms: int = LOAD_TIMEOUT_MS) -> None:
    """`action()` (a click that reruns the page), then wait until a full script run has ended since
    and is drawn (a fragment's tick while training does not count). The `page` fixture's pages
    count the runs (explorer/bench/appserver.py's watch_script_runs)."""
    act_and_wait_for_a_full_run(page, action, timeout_ms)


def section_tab(page, name: str):
    """The top-level tab of the section `name` (one of explorer/ui/sections.py's NAMES)."""
    assert name in sections.NAMES, f"{name!r} is not one of the page's sections {sections.NAMES}"
    return page.locator(f"{SECTIONS} [role=tablist]").first.get_by_role("tab", name=name, exact=True)


def section_panel(page):
    """The open section's content (only the open section's panel is in the page)."""
    return page.locator(SECTION_PANEL).first


def open_section(page, name: str, timeout_ms: int = LOAD_TIMEOUT_MS) -> None:
    """Open the section `name` (a top-level tab) and wait for the script run the click starts to
    end: only the open section's content runs, so it is drawn by then. Already open: nothing to do."""
    tab = section_tab(page, name)
    tab.wait_for(state="visible", timeout=timeout_ms)
    if tab.get_attribute("aria-selected") == "true":
        return
    run_and_wait(page, tab.click, timeout_ms)
    assert tab.get_attribute("aria-selected") == "true", f"the section {name!r} did not open"


def run_title(page, label: str, loss_id: str | None = None):
    """The live view's title line of run `label` ("**Run A: ce** · step 20 · …"), in the open
    section; with `loss_id`, only if the run trains that loss."""
    name = re.compile(rf"^Run {label}: {re.escape(loss_id)}$" if loss_id else rf"^Run {label}: ")
    return page.locator(f'{SECTION_PANEL} [data-testid="stMarkdownContainer"] strong').filter(has_text=name)


def wait_charts_drawn(page, timeout_ms: int = 30_000) -> None:
    """Every visible plotly chart drawn at its container's current width (after a resize, plotly
    lays the charts out again). Charts in a closed tab or expander have no width: not waited for."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].filter(gd => gd.clientWidth > 0).every(gd =>"
        " gd.querySelector('.main-svg') && gd._fullLayout && Math.abs(gd._fullLayout.width - gd.clientWidth) <= 1)",
        timeout=timeout_ms,
        polling=100,
    )


def wait_ready(page, timeout_ms: int = LOAD_TIMEOUT_MS) -> None:
    """The app's own elements: the title, the Train button and the step count."""
    page.locator("h1", has_text=TITLE).wait_for(state="visible", timeout=timeout_ms)
    page.locator(".st-key-train button").wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function(f"() => ({STEP_OF_JS})() !== null", timeout=timeout_ms)


def wait_finished(page, max_steps: int, timeout_ms: int = TRAIN_TIMEOUT_MS) -> None:
    """Training reached `max_steps`: the page paused itself (the Train button is back). If it does
    not, the failure says what the page showed instead."""
    try:
        page.wait_for_function(
            f"() => ({STEP_OF_JS})() === {max_steps} && document.querySelector('.st-key-train button') !== null",
            timeout=timeout_ms,
            polling=500,
        )
    except PlaywrightTimeoutError:
        raise AssertionError(f"training did not finish at step {max_steps} within {timeout_ms / 1000:.0f} s; the page shows: {page_state(page)}") from None


def page_state(page) -> dict:
    """What a failure message needs: the step, the buttons, the script's state, alerts."""
    return page.evaluate(
        """() => ({
        progress: document.querySelector('[data-testid="stProgress"]')?.innerText ?? null,
        buttons: [...document.querySelectorAll('[class*="st-key-"] button')].map(b => b.innerText.trim()).filter(Boolean).slice(0, 12),
        script: document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state') ?? null,
        alerts: [...document.querySelectorAll('[data-testid="stAlert"]')].map(a => a.innerText.slice(0, 300)),
        exceptions: [...document.querySelectorAll('[data-testid="stException"]')].map(e => e.innerText.slice(0, 500)),
      })"""
    )


def curves(page) -> dict:
    """{"losses": {label: {"x", "y", "value"}}, "notes": [{"x", "text"}]} of the curves chart."""
    page.wait_for_function(f"() => ({CURVES_JS})() !== null", timeout=60_000)
    return page.evaluate(CURVES_JS)


def events(data: dict, label: str) -> list[tuple[int, str]]:
    """The configuration changes marked on run `label`'s curves, in the order they were made:
    (step, "gamma 2.0 → 2.1, …")."""
    prefix = f"{label}: "
    return [(int(n["x"]), n["text"][len(prefix):]) for n in data["notes"] if n["text"].startswith(prefix)]


def screenshot_full(page, path: Path) -> None:
    """Streamlit scrolls inside its main section, not the document: grow the viewport to the
    content's height so the screenshot holds the whole page."""
    height = page.evaluate(
        "() => Math.max(document.body.scrollHeight,"
        " ...[...document.querySelectorAll('[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"], section')].map(e => e.scrollHeight))"
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(int(height) + 40, 800), 8000)})
    wait_charts_drawn(page)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


# -- the same configurations trained alone, in the test process ------------------------------------


def _apply_change(config, change: str):
    """The RunConfig after one marked change ("loss ce → bce", "gamma 2.0 → 2.1", joined by ", ")."""
    from explorer import losses

    loss_id, params = config.loss_id, dict(config.loss_params)
    for part in change.split(", "):
        match = re.fullmatch(r"(\S+) (.+) → (.+)", part)
        assert match, f"cannot replay the change {part!r}"
        key, _, new = match.groups()
        if key == "loss":
            loss_id = new
        elif key == "lr":
            config = dataclasses.replace(config, learning_rate=float(new))
        elif new == "None":
            params.pop(key, None)
        elif new in ("True", "False"):
            params[key] = new == "True"
        else:
            params[key] = float(new)
    uses_weights = losses.REGISTRY[loss_id].uses_class_weights
    assert not uses_weights or loss_id == config.loss_id, "a loss change to a weighted loss is not replayed here"
    return dataclasses.replace(config, loss_id=loss_id, loss_params=params, class_weights=config.class_weights if uses_weights else None)


def train_alone(config, steps: int, changes: list[tuple[int, str]] = (), dataset=None) -> np.ndarray:
    """The loss per step of `config` trained by itself for `steps` steps (explorer.training.Run,
    as the page trains it), applying each marked change at its step as the page did."""
    from explorer.data import load_toy
    from explorer.training import Run

    run = Run(config, dataset if dataset is not None else load_toy())
    for step, change in changes:
        run.advance(step - run.state.step, evaluate_every=None)
        run.reconfigure(_apply_change(run.config, change))
    run.advance(steps - run.state.step, evaluate_every=None)
    assert run.state.step == steps and not run.state.halted, run.state.halted
    return np.asarray(run.state.loss_values)


def assert_curve_equals(drawn: dict, reference: np.ndarray, what: str, rtol: float = 1e-5) -> float:
    """The page's loss trace against the reference: steps 1..N without a gap or a repeat, the raw
    values (the hover's customdata) and the drawn ratio to the first step. Returns the largest
    relative difference."""
    steps = len(reference)
    assert drawn["x"] == list(range(1, steps + 1)), f"{what}: the curve's steps are not 1..{steps}: {drawn['x']}"
    value = np.asarray(drawn["value"], dtype=float)
    np.testing.assert_allclose(value, reference, rtol=rtol, err_msg=f"{what}: loss values differ from the run trained alone")
    np.testing.assert_allclose(np.asarray(drawn["y"], dtype=float), reference / reference[0], rtol=2 * rtol, err_msg=f"{what}: drawn curve (÷ first step) differs")
    return float(np.max(np.abs(value - reference) / np.abs(reference)))
