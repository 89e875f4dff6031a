"""Shared fixtures of the page-level tests: the path of app.py, the real Streamlit server (started
once per test session on a free port) and headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from browser_page import assert_no_console_errors, collect_console_errors

from explorer.bench import appserver
from explorer.bench.appserver import CHROMIUM, CHROMIUM_ARGS, Server, watch_script_runs

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

# The in-process pages (AppTest) do not trace the train steps ahead: most of them never train, and
# each trace costs seconds of CPU. The browser tests' server does (start_server removes it), and
# tests/test_app.py checks it on a page of its own.
os.environ["EXPLORER_TRACE_AHEAD"] = "0"


@pytest.fixture(autouse=True)
def keep_the_main_module():
    """AppTest leaves the page's script in sys.modules["__main__"], and a process spawned later
    in this session (explorer.compare's workers) would import the page again first."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def no_training_thread_outlives_a_test():
    """Every session's training worker (explorer/live.py) is stopped after the test that made it."""
    yield
    live = sys.modules.get("explorer.live")
    if live is not None:
        live.stop_all(timeout=600)
        assert not [w for w in list(live._workers) if w.alive], "a training worker is still running after the test"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """tests/artifacts/ (gitignored): screenshots and the server log."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# -- the real server ------------------------------------------------------------------------------


def start_server(log_path: Path, env: dict[str, str] | None = None) -> Server:
    """explorer.bench.appserver.start_server with the page's default cap on sessions training at once
    (unless `env` asks for another); a server that does not come up fails the test."""
    try:
        server = appserver.start_server(log_path, {"EXPLORER_MAX_TRAINING_SESSIONS": None, "EXPLORER_TRACE_AHEAD": None, **(env or {})})
    except appserver.ServerError as error:
        pytest.fail(str(error))
    print(f"\n[server] healthy {server.healthy_at - server.launched_at:.1f} s after launching `streamlit run` (port {server.port})")
    return server


@pytest.fixture(scope="session")
def streamlit_server(artifacts_dir: Path):
    """`streamlit run app.py` from the repository root on a free port, headless, with the default
    settings. Yields a Server once /_stcore/health answers "ok"; stops the process group at the
    end of the session."""
    server = start_server(artifacts_dir / "streamlit-server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server_factory(artifacts_dir: Path):
    """Start servers of one's own: `server_factory(name, env={...})` gives a Server (its log in
    tests/artifacts/streamlit-<name>.log) that the test may kill and restart on the same port;
    every server started is stopped at the end of the test."""
    started: list[Server] = []

    def start(name: str, env: dict[str, str] | None = None) -> Server:
        server = start_server(artifacts_dir / f"streamlit-{name}.log", env)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


# -- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium. Missing: skip on a developer machine, fail under CI=true (a CI job
    that silently skips its browser tests would pass without testing the page)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's chromium package to run the browser tests"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: a missing browser is a failure, not a skip)")
        pytest.skip(message)
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser(chromium_executable: str):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"the playwright package is not installed: {error}")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser):
    """A fresh browser context's page. Its console errors fail the test at the end (allow-list:
    browser_page.HARMLESS_CONSOLE_ERRORS, by exact text)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = collect_console_errors(page)
    watch_script_runs(page)  # for browser_page.run_and_wait
    try:
        yield page
        assert_no_console_errors(errors)
    finally:
        context.close()
