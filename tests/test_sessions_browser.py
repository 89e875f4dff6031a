"""Sessions kept apart, in real browsers: three Chromium sessions (separate browser contexts) on one
`streamlit run` server, each opened with a link to a different set-up, press Train at once. With
the default cap of two sessions training at once, one of them waits with the "busy" message while
the other two train, then trains by itself when a slot frees. In the end every session's loss
curve equals the same configuration trained alone in the test process (same RunConfig, same toy
dataset, same steps): nothing leaked from one session into another.

Times are printed, never asserted. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import time

import numpy as np
import pytest
from browser_page import (
    BUSY_TEXT,
    TRAIN_TIMEOUT_MS,
    assert_curve_equals,
    assert_no_console_errors,
    assert_no_exception,
    collect_console_errors,
    curves,
    link_url,
    progress_step,
    run_title,
    screenshot_full,
    train_alone,
    wait_finished,
    wait_ready,
)

from explorer.export import Settings
from explorer.training import RunConfig

pytestmark = pytest.mark.browser

MAX_STEPS = 20  # small: the whole test trains 4 runs × 20 steps on a shared 2-core CPU
DEFAULT_CAP = 2  # EXPLORER_MAX_TRAINING_SESSIONS unset (conftest.start_server removes it)

# Three set-ups that differ in loss, loss parameters, class weights, learning rate, batch size,
# seed and number of runs (the second session trains two runs side by side).
SESSIONS = {
    "one": (
        {"A": RunConfig("focal", {"alpha": 0.5, "gamma": 2.5}, (0.5, 1.0, 2.0, 4.0), learning_rate=3e-3, batch_size=16, seed=3)},
        Settings(max_steps=MAX_STEPS, steps_per_tick=5, evaluate_every=20, schemes={"A": "balanced"}),
    ),
    "two": (
        {
            "A": RunConfig("dice", {"smooth": 0.01, "batch": True, "include_background": False}, (1.0, 2.0, 2.0, 3.0), learning_rate=1e-3, batch_size=8, seed=1),
            "B": RunConfig("ce", {}, None, learning_rate=1e-3, batch_size=8, seed=1),
        },
        Settings(max_steps=MAX_STEPS, steps_per_tick=4, evaluate_every=10, schemes={"A": "median_frequency"}),
    ),
    "three": (
        {"A": RunConfig("tversky", {"alpha": 0.7, "beta": 0.3, "smooth": 1e-5, "batch": False, "include_background": True}, (1.0, 1.5, 3.0, 3.0), learning_rate=1e-2, batch_size=16, seed=2)},
        Settings(max_steps=MAX_STEPS, steps_per_tick=5, evaluate_every=20, schemes={"A": "balanced"}),
    ),
}


def test_three_concurrent_sessions_queue_and_each_trains_what_it_trains_alone(browser, streamlit_server, artifacts_dir):
    server = streamlit_server
    contexts = {name: browser.new_context(viewport={"width": 1400, "height": 1000}) for name in SESSIONS}
    try:
        pages = {name: context.new_page() for name, context in contexts.items()}
        console_errors = {name: collect_console_errors(page) for name, page in pages.items()}
        started = time.perf_counter()
        for name, page in pages.items():  # all three load at once
            configs, settings = SESSIONS[name]
            page.goto(link_url(server.url, configs, settings, settings.schemes), wait_until="domcontentloaded")
        for name, page in pages.items():
            wait_ready(page)
            configs, _ = SESSIONS[name]
            # The link was opened, not refused, and the page shows this session's runs only.
            page.get_by_text("Opened from a link").first.wait_for(state="visible", timeout=30_000)
            for label, config in configs.items():
                run_title(page, label, config.loss_id).wait_for(state="visible", timeout=60_000)
            assert run_title(page, "C").count() == 0
            assert run_title(page, "B").count() == len(configs) - 1
            assert progress_step(page) == 0
            assert_no_exception(page, f" (session {name}, loaded)")
        print(f"\n[sessions] three pages loaded: {time.perf_counter() - started:.1f} s")

        # Three users press Train at (nearly) the same moment.
        for page in pages.values():
            page.locator(".st-key-train button").click()
        clicked = time.perf_counter()

        # Exactly one session waits, with the capacity message, while the other two train.
        waiting = None
        deadline = time.perf_counter() + TRAIN_TIMEOUT_MS / 1000
        while waiting is None and time.perf_counter() < deadline:
            for name, page in pages.items():
                busy = page.get_by_text(BUSY_TEXT)
                if busy.count():
                    waiting, message = name, busy.first.inner_text()
                    break
            else:
                pages["one"].wait_for_timeout(200)
        assert waiting is not None, "no session showed the busy message although three pressed Train under a cap of two"
        seen_busy = time.perf_counter()
        others = [name for name in pages if name != waiting]
        steps_then = {name: progress_step(page) for name, page in pages.items()}
        training_then = {name: pages[name].locator(".st-key-pause button").count() == 1 for name in pages}
        pages[waiting].screenshot(path=str(artifacts_dir / "sessions-waiting.png"))
        print(f"[sessions] Train clicks → busy message in session {waiting!r}: {seen_busy - clicked:.1f} s; steps then {steps_then}")
        assert [name for name in others if pages[name].get_by_text(BUSY_TEXT).count()] == [], "more than one session waits under a cap of two"
        # The message stays while the session waits, not only between two redraws of the page: once
        # gone, it must stay gone (the session got its slot).
        busy, looks, gone_since, flickers = pages[waiting].get_by_text(BUSY_TEXT), 0, None, 0
        while looks < 16 or (gone_since is not None and time.perf_counter() - gone_since < 3):
            pages[waiting].wait_for_timeout(250)
            looks += 1
            if busy.count():
                flickers += gone_since is not None
                gone_since = None
            elif gone_since is None:
                gone_since = time.perf_counter()
        assert flickers == 0, f"the busy message went and came back {flickers} times in {looks} looks while the session waited"
        assert f"{DEFAULT_CAP} sessions are training" in message and "place 1 in the queue" in message, message
        assert all(training_then.values()), f"every session is in training mode (a Pause button): {training_then}"
        assert steps_then[waiting] == 0, "the waiting session trained before a slot was free"
        for name in others:
            assert steps_then[name] < MAX_STEPS, f"session {name} had already finished when the third asked for a slot"

        # All three finish: the waiting one starts by itself when one of the others is done.
        for name in [*others, waiting]:
            wait_finished(pages[name], MAX_STEPS)
            print(f"[sessions] Train clicks → session {name!r} at step {MAX_STEPS}, paused: {time.perf_counter() - clicked:.1f} s")
        assert pages[waiting].get_by_text(BUSY_TEXT).count() == 0, "the busy message stayed after the session trained"

        drawn = {}
        for name, page in pages.items():
            assert_no_exception(page, f" (session {name}, trained)")
            errors = page.locator('[data-testid="stAlertContentError"]')
            assert errors.count() == 0, f"session {name}: {errors.first.inner_text()}"
            drawn[name] = curves(page)
            if name == waiting:
                screenshot_full(page, artifacts_dir / "sessions-waited-then-trained.png")
    finally:
        for context in contexts.values():
            context.close()
    for errors in console_errors.values():
        assert_no_console_errors(errors)

    # The same configurations trained alone in this process.
    started = time.perf_counter()
    from explorer.data import load_toy

    toy = load_toy()
    references = {(name, label): train_alone(config, MAX_STEPS, dataset=toy) for name, (configs, _) in SESSIONS.items() for label, config in configs.items()}
    print(f"[sessions] references trained alone: {time.perf_counter() - started:.1f} s")

    # Each set-up trains something different (so equal curves below say which session's run it is)...
    keys = list(references)
    for i, first in enumerate(keys):
        for second in keys[i + 1 :]:
            gap = np.max(np.abs(references[first] / references[first][0] - references[second] / references[second][0]))
            assert gap > 1e-2, f"{first} and {second} train almost the same curve: the test could not see cross-talk"
    # ... and each session drew exactly its own runs, equal to the runs trained alone.
    worst = 0.0
    for name, (configs, _) in SESSIONS.items():
        assert sorted(drawn[name]["losses"]) == sorted(configs), f"session {name} draws the runs {sorted(drawn[name]['losses'])}"
        assert not [n for n in drawn[name]["notes"] if n["text"][:3] in ("A: ", "B: ", "C: ")], f"session {name}: a change was marked"
        for label in configs:
            difference = assert_curve_equals(drawn[name]["losses"][label], references[(name, label)], f"session {name}, run {label}")
            worst = max(worst, difference)
    print(f"[sessions] largest relative difference from the runs trained alone: {worst:.3g}")
