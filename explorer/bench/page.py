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
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TITLE = "Segmentation Loss Explorer"
CHROMIUM = Path("/usr/bin/chromium")
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
# The step number in the progress text ("Step 12 of 200"), null before it exists.
STEP_OF_JS = r"""
() => {
  const el = document.querySelector('[data-testid="stProgress"]');
  if (!el) return null;
  const m = el.innerText.match(/Step (\d+) of (\d+)/);
  return m ? Number(m[1]) : null;
}
"""


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.read().decode(errors="replace").strip()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def stop(process: subprocess.Popen) -> None:
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


def start_server(log_path: Path, timeout: float = 90.0) -> Server:
    """`streamlit run app.py` from the repository root on a free port, headless, once
    /_stcore/health answers "ok". Raises RuntimeError, with the log's tail, if it exits first or
    is not healthy within `timeout` seconds (the process is stopped then). Stop it with `stop`."""
    port = free_port()
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
            start_new_session=True,  # its own process group, so stopping it ends all of it
        )
    server = Server(f"http://127.0.0.1:{port}", port, process, launched_at, float("nan"), log_path)
    while health(port) != "ok":
        problem = None
        if process.poll() is not None:
            problem = f"`streamlit run app.py` exited with code {process.returncode} before it was healthy"
        elif time.perf_counter() > launched_at + timeout:
            problem = f"/_stcore/health did not answer 'ok' within {timeout:.0f} s"
        if problem:
            stop(process)
            raise RuntimeError(f"{problem}:\n{server.log_tail()}")
        time.sleep(0.25)
    server.healthy_at = time.perf_counter()
    return server


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
            server = start_server(Path(folder) / "streamlit.log", args.timeout)
        except RuntimeError as error:
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
            stop(server.process)

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
