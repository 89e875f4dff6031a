"""The first page render in a real browser: `streamlit run app.py` started headless on a free
port, the page opened in Debian's Chromium through Playwright.

    python -m explorer.bench.page [--timeout 120]

Reports: server launch → /_stcore/health answers "ok"; for a first visit (the server imports
TensorFlow and builds the runs) and a second one (a new session on the warm server), page open →
title visible and page open → Train button visible (the full page); then, on the second visit,
Train pressed → the step counter moving. Playwright's own browser download cannot work on these
machines, so it drives /usr/bin/chromium; without it, or without Playwright, the part is skipped.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from explorer.bench.appserver import CHROMIUM, CHROMIUM_ARGS, STEP_OF_JS, TITLE, ServerError, start_server


def _visit(browser, url: str, timeout_ms: float, train: bool) -> dict[str, float]:
    """Seconds from opening the page in a new session to the title, to the Train button and, if
    `train`, from pressing it to the step counter passing 0."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        opened = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded")
        page.locator("h1", has_text=TITLE).wait_for(state="visible", timeout=timeout_ms)
        times = {"title": time.perf_counter() - opened}
        button = page.locator(".st-key-train button")
        button.wait_for(state="visible", timeout=timeout_ms)
        times["full page"] = time.perf_counter() - opened
        if train:
            pressed = time.perf_counter()
            button.click()
            page.wait_for_function(f"() => ({STEP_OF_JS})() > 0", timeout=timeout_ms, polling=100)
            times["train"] = time.perf_counter() - pressed
        return times
    finally:
        context.close()


def main(argv=None) -> list[tuple[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds each wait may take")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"page render skipped: {CHROMIUM} not found (install Debian's chromium package)")
        return []
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        print(f"page render skipped: the playwright package is not installed ({error})")
        return []

    with tempfile.TemporaryDirectory() as folder:
        try:
            server = start_server(Path(folder) / "streamlit.log", timeout=args.timeout)
        except ServerError as error:
            print(f"page render failed: {error}")
            return []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
                try:
                    first = _visit(browser, server.url, 1000 * args.timeout, train=False)
                    second = _visit(browser, server.url, 1000 * args.timeout, train=True)
                finally:
                    browser.close()
        except PlaywrightError as error:
            print(f"page render failed: {error}\nserver log:\n{server.log_tail()}")
            return []
        finally:
            server.stop()

    start = server.healthy_at - server.launched_at
    print(f"server launch → health ok: {start:.1f} s")
    print(f"{'visit':8s} {'open → title':>13s} {'open → Train button':>20s} {'full page / title':>18s}")
    for name, visit in (("first", first), ("second", second)):
        print(f"{name:8s} {visit['title']:11.1f} s {visit['full page']:18.1f} s {visit['full page'] / visit['title']:18.1f}")
    print(f"first / second visit, full page: {first['full page'] / second['full page']:.1f}")
    print(f"Train pressed → step counter moving (second visit): {second['train']:.1f} s")
    return [
        ("server launch → health ok", f"{start:.1f} s"),
        ("first visit: open → title, → Train button", f"{first['title']:.1f} s, {first['full page']:.1f} s"),
        ("first visit: full page / title", f"{first['full page'] / first['title']:.1f}"),
        ("Train pressed → step counter moving", f"{second['train']:.1f} s"),
    ]


if __name__ == "__main__":
    main()
