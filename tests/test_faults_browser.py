"""Faults, in a real browser on the real server:

- reruns that interrupt training (a loss parameter slider moved several times quickly, a run's
  loss changed, another section opened and the Live one again, while the live fragment ticks)
  leave every run whole: no exception, both runs at one step, training goes on until Pause, and
  each curve equals the same configuration trained alone with the same changes at the same steps
  (read from the change marks on the curves);
- the server killed and started again on the same port leaves a clear page: while it is down
  Streamlit says the connection is lost (no Python traceback), and after it reconnects the page
  shows the app again (title, Train button, step 0, no exception).

The NaN guard (a huge learning rate) is tested in test_app.py and test_training.py.
Times are printed, never asserted. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from browser_page import (
    EXCEPTION,
    TITLE,
    TRACEBACK_RE,
    TRAIN_TIMEOUT_MS,
    assert_curve_equals,
    assert_no_exception,
    collect_console_errors,
    curves,
    events,
    link_url,
    open_section,
    progress_step,
    run_and_wait,
    screenshot_full,
    train_alone,
    wait_idle,
    wait_ready,
)

from explorer import losses
from explorer.export import Settings
from explorer.training import RunConfig
from explorer.ui import sections

pytestmark = pytest.mark.browser

# -- reruns during training ------------------------------------------------------------------------

# Far more than the test trains: on a slow or loaded machine the page's actions take long while
# training goes fast, and the changes must still come while it trains (a CI run reached a last step
# of 40 before the test had made them). The test pauses; test_sessions_browser.py trains to the end.
RERUN_MAX_STEPS = 2000
RERUN_CONFIGS = {
    "A": RunConfig("focal", {"alpha": 0.5, "gamma": 2.0}, (1.0, 2.0, 4.0, 8.0), learning_rate=1e-3, batch_size=16, seed=4),
    "B": RunConfig("ce", {}, None, learning_rate=1e-3, batch_size=16, seed=4),
}
RERUN_SETTINGS = Settings(max_steps=RERUN_MAX_STEPS, steps_per_tick=5, evaluate_every=20, schemes={"A": "balanced"})
NEW_LOSS_B = "bce"  # no parameters, no class weights: its RunConfig is known without the sidebar


def _wait_step_at_least(page, step: int, timeout_ms: int = TRAIN_TIMEOUT_MS) -> int:
    page.wait_for_function(
        f"() => {{ const m = (document.querySelector('[data-testid=\"stProgress\"]') || {{}}).innerText;"
        f" const s = m && m.match(/Step (\\d+) of/); return s && Number(s[1]) >= {step}; }}",
        timeout=timeout_ms,
        polling=250,
    )
    return progress_step(page)


def _choose(page, key: str, option: str, attempts: int = 5) -> None:
    """Pick `option` in the selectbox `key`. While training, the page's reruns may redraw the box
    and close its list between the two clicks: try again."""
    for attempt in range(attempts):
        page.locator(f".st-key-{key} input").click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.click(timeout=5_000)
        except Exception:  # noqa: BLE001 — playwright's TimeoutError: the list closed, open it again
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            continue
        page.wait_for_function(
            f"() => document.querySelector('.st-key-{key} input')?.value === {option!r}", timeout=30_000
        )
        return


def test_reruns_that_interrupt_training_leave_every_run_whole(page, streamlit_server, artifacts_dir):
    page.goto(link_url(streamlit_server.url, RERUN_CONFIGS, RERUN_SETTINGS, RERUN_SETTINGS.schemes), wait_until="domcontentloaded")
    wait_ready(page)
    page.get_by_text("Opened from a link").first.wait_for(state="visible", timeout=30_000)
    page.locator(".st-key-train button").click()
    clicked = time.perf_counter()
    before = _wait_step_at_least(page, 5)
    print(f"\n[faults] Train click → step {before}: {time.perf_counter() - clicked:.1f} s")

    # While it trains: γ of run A moved three times in quick succession (each move reruns the
    # page, which may cut a tick short); a tick later run B's loss changed and γ moved back twice.
    gamma = page.locator(".st-key-A_focal_gamma input[type=range]")
    gamma.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(150)
    _wait_step_at_least(page, progress_step(page) + 5)
    _choose(page, "B_loss", losses.REGISTRY[NEW_LOSS_B].name)
    gamma.focus()
    for _ in range(2):
        page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(150)
    changed = progress_step(page)
    assert_no_exception(page, " (right after the changes)")
    print(f"[faults] changes made between steps {before} and {changed}: {time.perf_counter() - clicked:.1f} s after Train")
    # Another section opened while it trains (a rerun that draws no live view, and then one that
    # draws it afresh): training goes on meanwhile, the progress above the sections counting.
    open_section(page, sections.LOSSES)
    _wait_step_at_least(page, progress_step(page) + 5)
    assert_no_exception(page, " (the Losses section open while training)")
    assert page.locator(".st-key-curves").count() == 0, "the live view is drawn while the Losses section is open"
    open_section(page, sections.LIVE)
    page.locator(".st-key-curves .main-svg").first.wait_for(state="visible", timeout=60_000)

    # Training goes on by itself after the changes, both runs in step, until Pause.
    _wait_step_at_least(page, changed + 10)
    assert_no_exception(page, " (training after the changes)")
    run_and_wait(page, lambda: page.locator(".st-key-pause button").click())
    page.locator(".st-key-train button").wait_for(state="visible", timeout=60_000)
    wait_idle(page)
    paused_at = progress_step(page)
    print(f"[faults] Train click → paused at step {paused_at}: {time.perf_counter() - clicked:.1f} s")
    assert_no_exception(page, " (paused)")
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()
    data = curves(page)
    screenshot_full(page, artifacts_dir / "faults-reruns-during-training.png")

    marks = {label: events(data, label) for label in RERUN_CONFIGS}
    print(f"[faults] change marks on the curves: {marks}")
    assert any("gamma" in text for _, text in marks["A"]), f"run A's γ changes were not marked: {marks}"
    assert [text for _, text in marks["B"]] == [f"loss ce → {NEW_LOSS_B}"], f"run B: {marks['B']}"
    for label, changes in marks.items():
        steps = [step for step, _ in changes]
        assert steps == sorted(steps) and all(0 < step < paused_at for step in steps), f"run {label}: changes not made while training, in order: {changes}"
    # One change after another: each starts from the value the one before left, and the last leaves
    # what the sidebar shows (two reruns applying their changes at once would break the chain).
    gammas = [re.fullmatch(r"gamma (\S+) → (\S+)", text).groups() for _, text in marks["A"]]
    chain = [RERUN_CONFIGS["A"].loss_params["gamma"]] + [float(new) for _, new in gammas]
    assert [float(old) for old, _ in gammas] == chain[:-1], f"run A's γ changes do not follow each other: {marks['A']}"
    shown = float(page.locator(".st-key-A_focal_gamma input[type=range]").input_value())
    assert chain[-1] == pytest.approx(shown), f"run A trains with γ = {chain[-1]} but the sidebar shows {shown}"

    # Both runs are whole and at one step: steps 1..paused_at without a gap or a repeat; each equals its
    # configuration trained alone with the same changes at the same steps.
    worst = 0.0
    for label, config in RERUN_CONFIGS.items():
        reference = train_alone(config, paused_at, marks[label])
        worst = max(worst, assert_curve_equals(data["losses"][label], reference, f"run {label}"))
        unchanged = train_alone(config, paused_at)
        assert not np.allclose(unchanged, reference, rtol=1e-3), f"run {label}: the changes made no difference, the test could not see them"
    print(f"[faults] largest relative difference from the runs replayed alone: {worst:.3g}")


# -- the server restarts -------------------------------------------------------------------------

RESTART_CONFIGS = {"A": RunConfig("ce", {}, None, learning_rate=1e-3, batch_size=16, seed=0)}
RESTART_SETTINGS = Settings(max_steps=600, steps_per_tick=5, evaluate_every=20)
CONNECTION_ERROR = "Connection error"


# The new session's page: its Train button (the old session was training: Pause), nothing stale.
FRESH_JS = """() => !!document.querySelector('.st-key-train button') && !document.querySelector('.st-key-pause button')
  && !document.querySelector('[data-stale="true"]')"""


def _body(page) -> str:
    return page.evaluate("() => document.body.innerText")


def test_a_server_restart_leaves_a_clear_page(page, server_factory, artifacts_dir):
    server = server_factory("restart")
    page.goto(link_url(server.url, RESTART_CONFIGS, RESTART_SETTINGS), wait_until="domcontentloaded")
    wait_ready(page)
    page.locator(".st-key-train button").click()
    _wait_step_at_least(page, 5)

    # Killed while training: the page must say the connection is lost, and never show a traceback.
    server.kill()
    killed = time.perf_counter()
    shown: list[str] = []
    dialog = page.get_by_role("dialog").filter(has_text=CONNECTION_ERROR)
    while time.perf_counter() - killed < 60 and not dialog.count():
        body = _body(page)
        assert TRACEBACK_RE.search(body) is None and page.locator(EXCEPTION).count() == 0, body[:2000]
        page.wait_for_timeout(500)
    assert dialog.count(), "the page did not say that the connection to the server was lost"
    shown.append(dialog.first.inner_text())
    print(f"\n[faults] server killed → '{CONNECTION_ERROR}' shown: {time.perf_counter() - killed:.1f} s: {shown[-1]!r}")
    page.screenshot(path=str(artifacts_dir / "faults-server-down.png"))
    assert_no_exception(page, " (server down)")

    server.restart()
    restarted = time.perf_counter()
    # Reconnected: the dialog goes, the new session draws the app afresh (the old session's runs
    # died with the process: Train again, step 0), and at no moment in between a traceback.
    reconnected = None
    while time.perf_counter() - restarted < 180:
        body = _body(page)
        assert TRACEBACK_RE.search(body) is None and page.locator(EXCEPTION).count() == 0, body[:2000]
        if reconnected is None and not dialog.count():
            reconnected = time.perf_counter()
        if reconnected is not None and page.evaluate(FRESH_JS):
            break
        page.wait_for_timeout(500)
    assert reconnected is not None, "the page did not reconnect to the restarted server"
    # While the server was down the browser logged its failed reconnection attempts: that is the
    # "Connection error" dialog's business. From here on, any console error fails the test.
    collect_console_errors(page).clear()
    wait_ready(page, timeout_ms=1_000)
    print(
        f"[faults] restarted → dialog gone: {reconnected - restarted:.1f} s; → the app drawn afresh:"
        f" {time.perf_counter() - restarted:.1f} s (the new process imports TensorFlow)"
    )
    assert page.locator("h1", has_text=TITLE).count() == 1
    assert progress_step(page) == 0
    assert_no_exception(page, " (after the restart)")
    assert page.get_by_role("dialog").count() == 0, page.get_by_role("dialog").first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()
    screenshot_full(page, artifacts_dir / "faults-after-restart.png")
    # The page works: a step trains.
    page.locator(".st-key-step button").click()
    _wait_step_at_least(page, RESTART_SETTINGS.steps_per_tick)
    assert_no_exception(page, " (a step after the restart)")
    assert "Traceback" not in server.log_tail(20_000), server.log_tail()
