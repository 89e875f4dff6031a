"""The app as a real server, for the browser tests and the page benchmark: `streamlit run app.py`
started headless on a port in its own process group, its health check, and how to stop, kill and
restart it; plus Debian's Chromium (Playwright's own browser download cannot work on these
machines) and the JavaScript that reads the page's step count. No Streamlit import here."""

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

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TITLE = "Segmentation Loss Explorer"
START_TIMEOUT = 90.0  # seconds until /_stcore/health must answer "ok"

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

# The step number in the progress text ("Step 12 of 200"); null before it exists.
STEP_OF_JS = r"""
() => {
  const el = document.querySelector('[data-testid="stProgress"]');
  if (!el) return null;
  const m = el.innerText.match(/Step (\d+) of (\d+)/);
  return m ? Number(m[1]) : null;
}
"""
# Whether a script run is under way: the app root's data-test-script-state (Streamlit's own
# end-to-end tests read it). Streamlit's running icon is no use here: with toolbarMode = "minimal"
# (.streamlit/config.toml) Streamlit 1.67 draws no top bar and never shows it.
BUSY_STATES = ("initial", "running", "rerunRequested", "stopRequested")
IDLE_JS = f"""() => {{
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && !{list(BUSY_STATES)}.includes(app.getAttribute('data-test-script-state'));
}}"""
# Resolves after the renderer has drawn two frames: what it had received by now is on the screen.
TWO_FRAMES_JS = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def watch_script_runs(page) -> None:
    """Count in `page.full_runs_ended` the full script runs the server reports ended (its
    script_finished messages; a fragment's run is not counted). Call it before the page opens
    the app. The page's script-state attribute cannot tell: a rerun whose messages all arrive
    within one frame (75 ms from key press to its end on a fast 2-core machine) never shows as
    running there."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # here only: this module imports no Streamlit

    ended = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR)
    page.full_runs_ended = 0

    def on_socket(socket):
        def on_frame(payload):
            if isinstance(payload, bytes):
                message = ForwardMsg.FromString(payload)
                if message.WhichOneof("type") == "script_finished" and message.script_finished in ended:
                    page.full_runs_ended += 1

        socket.on("framereceived", on_frame)

    page.on("websocket", on_socket)


def act_and_wait_for_a_full_run(page, action, timeout_ms: float) -> None:
    """`action()` (a click or a key that reruns the page), then wait until a full script run has
    ended since (watch_script_runs) and the page has drawn it. TimeoutError if none ends in time."""
    assert hasattr(page, "full_runs_ended"), "call watch_script_runs(page) before the page opens the app"
    ended = page.full_runs_ended
    action()
    deadline = time.monotonic() + timeout_ms / 1000
    while page.full_runs_ended == ended:  # Playwright delivers the frames while it waits
        if time.monotonic() > deadline:
            raise TimeoutError(f"no script run ended within {timeout_ms / 1000:g} s of the action")
        page.wait_for_timeout(10)
    page.wait_for_function(IDLE_JS, timeout=max(1000.0, 1000 * (deadline - time.monotonic())), polling="raf")
    page.evaluate(TWO_FRAMES_JS)


class ServerError(RuntimeError):
    """The server exited, or was not healthy in time; the message ends with its log's tail."""


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen
    launched_at: float  # time.perf_counter() just before `streamlit run` was started
    healthy_at: float  # ... and when /_stcore/health first answered "ok"
    log_path: Path
    env: dict

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        stop(self.process)

    def kill(self) -> None:
        """End the server at once (SIGKILL to its process group), as a crash would."""
        stop(self.process, sig=signal.SIGKILL)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Stop the server if it still runs and start it again on the same port with the same
        environment (the log is appended to); returns once it is healthy."""
        stop(self.process)
        self.process, self.launched_at = _launch(self.port, self.env, self.log_path, append=True)
        self.healthy_at = float("nan")
        _wait_healthy(self, timeout)


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


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the server's whole process group (it was started in a new session), then kill
    whatever is left."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
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


def _launch(port: int, env: dict, log_path: Path, append: bool = False) -> tuple[subprocess.Popen, float]:
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # No reloading on source edits: an edit in the working tree while it runs would re-import
        # explorer/ under the running sessions.
        "--server.fileWatcherType", "none",
    ]
    with open(log_path, "ab" if append else "wb") as log:
        if append:
            log.write(b"\n----- restarted -----\n")
        launched_at = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stopping it ends all of it
        )
    return process, launched_at


def _wait_healthy(server: Server, timeout: float) -> None:
    while health(server.port) != "ok":
        problem = None
        if server.process.poll() is not None:
            problem = f"`streamlit run app.py` exited with code {server.process.returncode} before it was healthy"
        elif time.perf_counter() > server.launched_at + timeout:
            problem = f"/_stcore/health did not answer 'ok' within {timeout:.0f} s"
        if problem:
            stop(server.process)
            raise ServerError(f"{problem}:\n{server.log_tail()}")
        time.sleep(0.25)
    server.healthy_at = time.perf_counter()


def start_server(log_path: Path, env: dict[str, str] | None = None, port: int | None = None, timeout: float = START_TIMEOUT) -> Server:
    """`streamlit run app.py` from the repository root, headless, on ``port`` (default: a free
    one), with this process's environment updated by ``env`` (a value of None removes the
    variable); returns once /_stcore/health answers "ok", else raises ServerError."""
    port = port or free_port()
    full_env = dict(os.environ, PYTHONUNBUFFERED="1")
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    process, launched_at = _launch(port, full_env, log_path)
    server = Server(f"http://127.0.0.1:{port}", port, process, launched_at, float("nan"), log_path, full_env)
    _wait_healthy(server, timeout)
    return server
