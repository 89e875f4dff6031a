"""Shared fixtures of the page-level tests: the path of app.py, the real Streamlit server (started
once per test session on a free port) and headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

CHROMIUM = Path("/usr/bin/chromium")
# Playwright's own browser download cannot work on these machines; Debian's Chromium can.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT = 90.0  # seconds until /_stcore/health must answer "ok"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """tests/artifacts/ (gitignored): screenshots and the server log."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# -- the real server ------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen
    launched_at: float  # time.perf_counter() just before `streamlit run` was started
    healthy_at: float  # ... and when /_stcore/health first answered "ok"
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.read().decode(errors="replace").strip()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server's whole process group (it was started in a new session), then kill
    whatever is left."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def streamlit_server(artifacts_dir: Path):
    """`streamlit run app.py` from the repository root on a free port, headless. Yields a Server
    once /_stcore/health answers "ok"; stops the process group at the end of the session."""
    port = _free_port()
    log_path = artifacts_dir / "streamlit-server.log"
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log:
        launched_at = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so teardown can end all of it
        )
    server = Server(f"http://127.0.0.1:{port}", port, process, launched_at, float("nan"), log_path)
    try:
        deadline = launched_at + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"`streamlit run app.py` exited with code {process.returncode} before it was healthy:\n{server.log_tail()}")
            if _health(port) == "ok":
                server.healthy_at = time.perf_counter()
                break
            if time.perf_counter() > deadline:
                pytest.fail(f"/_stcore/health did not answer 'ok' within {SERVER_START_TIMEOUT:.0f} s:\n{server.log_tail()}")
            time.sleep(0.25)
        print(f"\n[server] healthy {server.healthy_at - launched_at:.1f} s after launching `streamlit run` (port {port})")
        yield server
    finally:
        _stop(process)


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
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
