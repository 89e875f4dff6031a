"""The live page, measured side by side in one run: `streamlit run app.py` in Debian's Chromium
(Playwright) against the same runs trained in this process.

    python -m explorer.bench.live [--window 30] [--settle 30] [--visits 1] [--timeout 180]

Prints:
- page opened → title, → sidebar, → dataset preview (the Live section's class strip), → Train
  button usable, for a fresh server's first visit (it imports TensorFlow) and for later visits on
  the warm server (the median of `--visits`, each a few seconds after the one before);
- Train pressed → the step counter moving, on the last visit after it stood `--settle` seconds
  (what a user does: read the page, then press Train; the page traces the steps meanwhile);
- the page's training rate (steps per second summed over the default runs, over `--window`
  seconds once 20 steps are done) divided by the rate of the same runs trained in this process
  in the same rounds with the same validation snapshots; the plain rate is measured before and
  after the page's, and their mean is the reference, so a change of load during the run shows;
- what the page received over its WebSocket meanwhile (kB/s: the redraws' payload), and the CPU
  cores the server and Chromium used meanwhile, beside the cores the plain process uses (on a
  2-core machine what Chromium draws with is taken from training), and how the page's own
  renderer spent its time (Chrome's Performance metrics: scripts, style, layout, the rest);
- a loss parameter's slider moved while paused → the page settled (the script run it started has
  ended: the progress and the open Live section's curves, maps and planes redrawn), median of 5
  moves; a move that has not settled after `--timeout` seconds is counted as a failure and printed,
  never timed.

With a GPU visible to TensorFlow the plain rate is printed for each device (the server uses the
GPU). Without /usr/bin/chromium or Playwright the page part is skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer.bench.appserver import (
    APP,
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE_JS,
    STEP_OF_JS,
    TITLE,
    ServerError,
    act_and_wait_for_a_full_run,
    start_server,
    watch_script_runs,
)
from explorer.bench.devices import device_kinds
from explorer.training import Run

VIEWPORT = {"width": 1440, "height": 900}
WARM_STEPS = 20  # steps done before a rate window opens: tracing and the first snapshot are behind
SLIDER_MOVES = 5
LATER_VISIT_PAUSE = 5.0  # seconds between two visits: the session before has drawn its page


def default_page_runs(timeout: float) -> tuple[dict, dict]:
    """The runs a new session of the page trains, with its Train settings: read from the page itself."""
    at = AppTest.from_file(str(APP), default_timeout=timeout).run()
    if at.exception:
        raise RuntimeError(at.exception[0].message)
    settings = {key: int(at.session_state[key]) for key in ("max_steps", "steps_per_tick", "evaluate_every")}
    return {label: run.config for label, run in at.session_state["runs"].items()}, settings


def plain_rate(configs: dict, data, settings: dict, window: float) -> tuple[float, float]:
    """Steps per second summed over the runs, trained in rounds of `steps_per_tick` steps, every
    run to the same step, with a validation snapshot every `evaluate_every` steps, as the page does;
    and the CPU cores this process used meanwhile."""
    first = None
    runs = {}
    for label, config in configs.items():
        runs[label] = Run(config, data, initial_weights=first)
        first = first or runs[label].initial_weights
    step, round_steps, every = 0, settings["steps_per_tick"], settings["evaluate_every"]

    def one_round():
        nonlocal step
        step += round_steps
        for run in runs.values():
            run.advance(step - run.state.step, every)

    while step < WARM_STEPS:
        one_round()
    start, first_step, cpu = time.perf_counter(), step, time.process_time()
    while time.perf_counter() - start < window:
        one_round()
    seconds = time.perf_counter() - start
    return len(runs) * (step - first_step) / seconds, (time.process_time() - cpu) / seconds


def _cpu_seconds(server_pid: int) -> dict[str, float] | None:
    """CPU seconds used so far by the server's process group and by every Chromium process (read
    from /proc: None where there is none)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    used = {"server": 0.0, "Chromium": 0.0}
    for folder in proc.iterdir():
        if not folder.name.isdigit():
            continue
        try:
            fields = (folder / "stat").read_text().rsplit(")", 1)[1].split()
            exe = os.path.realpath(folder / "exe")
        except OSError:  # ended meanwhile, or not ours to read
            continue
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        if int(fields[2]) == server_pid:  # its process group: the server was started as its leader
            used["server"] += seconds
        elif "chrom" in Path(exe).name:
            used["Chromium"] += seconds
    return used


def _step(page) -> int | None:
    return page.evaluate(STEP_OF_JS)


def _wait_idle(page, timeout_ms: float) -> None:
    """No script run under way."""
    page.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=50)


def _act_and_settle(page, action, timeout_ms: float) -> float:
    """`action()`, then wait until the script run it started has ended and is drawn; seconds it took."""
    start = time.perf_counter()
    act_and_wait_for_a_full_run(page, action, timeout_ms)
    return time.perf_counter() - start


def _open(browser, url: str, timeout_ms: float):
    """A new session: seconds from opening the page to its title, sidebar, dataset preview (the
    Live section's class strip: the page opens on it) and Train button."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    _count_received_bytes(page)
    watch_script_runs(page)
    opened = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    marks = {}
    for name, locator in (
        ("title", page.locator("h1", has_text=TITLE)),
        ("sidebar", page.locator('[data-testid="stSidebar"] [data-testid="stRadio"]')),
        ("dataset preview", page.locator(".st-key-class_strip")),
        ("Train usable", page.locator(".st-key-train button:enabled")),
    ):
        locator.first.wait_for(state="visible", timeout=timeout_ms)
        marks[name] = time.perf_counter() - opened
    return context, page, marks


def _count_received_bytes(page) -> None:
    """page.received_bytes: the bytes of every WebSocket message the page received (Streamlit sends
    each element of a script or fragment run as one)."""
    page.received_bytes = 0

    def on_socket(socket):
        def on_frame(payload):
            page.received_bytes += len(payload)

        socket.on("framereceived", on_frame)

    page.on("websocket", on_socket)


def _train_rate(page, server_pid: int, runs: int, window: float, timeout_ms: float) -> dict:
    """"train": Train pressed → counter moving (s); then over `window` seconds of steady training,
    "rate": steps per second over all runs, "received": the bytes per second the page received,
    "cores": the CPU cores the server and Chromium used, and "renderer": the page renderer's
    seconds per second in scripts, style, layout and all its tasks."""
    pressed = time.perf_counter()
    page.locator(".st-key-train button").click()
    page.wait_for_function(f"() => ({STEP_OF_JS})() > 0", timeout=timeout_ms, polling=50)
    to_first = time.perf_counter() - pressed
    page.wait_for_function(f"() => ({STEP_OF_JS})() >= {WARM_STEPS}", timeout=timeout_ms, polling=100)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    start, first, received, cpu = time.perf_counter(), _step(page), page.received_bytes, _cpu_seconds(server_pid)
    renderer = _renderer_seconds(cdp)
    page.wait_for_timeout(1000 * window)
    last, seconds, cpu_after = _step(page), time.perf_counter() - start, _cpu_seconds(server_pid)
    renderer = {name: (value - renderer[name]) / seconds for name, value in _renderer_seconds(cdp).items()}
    cores = {name: (cpu_after[name] - cpu[name]) / seconds for name in cpu} if cpu and cpu_after else {}
    return {
        "train": to_first,
        "rate": runs * (last - first) / seconds,
        "received": (page.received_bytes - received) / seconds,
        "cores": cores,
        "renderer": renderer,
    }


def _renderer_seconds(cdp) -> dict[str, float]:
    """Seconds the page's renderer has spent so far: in scripts, style, layout, and all its tasks."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {"scripts": metrics["ScriptDuration"], "style": metrics["RecalcStyleDuration"], "layout": metrics["LayoutDuration"], "all tasks": metrics["TaskDuration"]}


def _slider_settle(page, key: str, moves: int, timeout_ms: float) -> tuple[float, list[str]]:
    """Median seconds from a keyboard move of the slider `key` to the page settled, over the moves
    that settled; and what went wrong with each move that did not within the timeout (a failure
    is counted and told, never timed as the timeout)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    thumb = page.locator(f".st-key-{key} input").first  # Streamlit 1.67's slider is a range input
    times, failures = [], []
    for move in range(moves):
        thumb.focus()
        try:
            times.append(_act_and_settle(page, lambda: thumb.press("ArrowRight" if move % 2 == 0 else "ArrowLeft"), timeout_ms))
        except (TimeoutError, PlaywrightTimeoutError) as error:
            failures.append(f"move {move + 1}: {str(error).splitlines()[0]}")
    return (statistics.median(times) if times else float("nan")), failures


def page_figures(args, configs: dict) -> dict | None:
    if not CHROMIUM.exists():
        print(f"page part skipped: {CHROMIUM} not found (install Debian's chromium package)")
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        print(f"page part skipped: the playwright package is not installed ({error})")
        return None
    timeout_ms = 1000 * args.timeout
    label, config = list(configs.items())[-1]
    from explorer import losses  # the slider of the last run's first float parameter

    params = [p.name for p in losses.REGISTRY[config.loss_id].params]
    slider_key = f"{label}_{config.loss_id}_{params[0]}" if params else None
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder) / "streamlit.log", timeout=args.timeout)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
                try:
                    context, _, first = _open(browser, server.url, timeout_ms)
                    visits = []
                    for _ in range(args.visits):
                        context.close()
                        time.sleep(LATER_VISIT_PAUSE)
                        context, page, marks = _open(browser, server.url, timeout_ms)
                        visits.append(marks)
                    page.wait_for_timeout(1000 * args.settle)
                    training = _train_rate(page, server.process.pid, len(configs), args.window, timeout_ms)
                    page.locator(".st-key-pause button").click()
                    page.locator(".st-key-train button").wait_for(state="visible", timeout=timeout_ms)
                    _wait_idle(page, timeout_ms)
                    settle, unsettled = _slider_settle(page, slider_key, SLIDER_MOVES, timeout_ms) if slider_key else (float("nan"), [])
                    context.close()
                finally:
                    browser.close()
        finally:
            server.stop()
    later = {name: statistics.median(marks[name] for marks in visits) for name in first}
    return {"first": first, "later": later, **training, "slider": settle, "unsettled": unsettled, "slider key": slider_key}


def main(argv=None) -> list[tuple[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=float, default=30.0, help="seconds of steady training measured, page and plain")
    parser.add_argument("--visits", type=int, default=1, help="later visits measured (their median is printed); the last one trains")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds the last visit's page stands before Train")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds each wait may take")
    args = parser.parse_args(argv)
    if args.visits < 1:
        parser.error("--visits must be at least 1: the last visit trains")

    configs, settings = default_page_runs(args.timeout)
    from explorer.data import load_toy

    data = load_toy()
    print(f"runs: {', '.join(f'{label} {c.loss_id}' for label, c in configs.items())}; settings {settings}")
    plain_before, cores_before = plain_rate(configs, data, settings, args.window)
    print(f"plain process, before the page: {plain_before:.2f} steps/s over all runs, {cores_before:.2f} cores", flush=True)
    try:
        page = page_figures(args, configs)
    except ServerError as error:
        print(f"page part failed: {error}")
        page = None
    plain_after, cores_after = plain_rate(configs, data, settings, args.window)
    plain = (plain_before + plain_after) / 2
    print(f"plain process, after the page: {plain_after:.2f} steps/s over all runs, {cores_after:.2f} cores")
    headlines = [
        ("plain process rate, over all runs", f"{plain:.2f} steps/s (before {plain_before:.2f}, after {plain_after:.2f})"),
        ("plain process: CPU cores used", f"{(cores_before + cores_after) / 2:.2f}"),
    ]
    for name, description in list(device_kinds().items())[1:]:  # a GPU: the plain rate on it too
        import tensorflow as tf

        with tf.device(name):
            rate, _ = plain_rate(configs, data, settings, args.window)
        headlines.append((f"plain process rate on the {description}", f"{rate:.2f} steps/s"))
    if page:
        for visit, name in (("first", "first visit"), ("later", f"later visits (median of {args.visits})")):
            marks = page[visit]
            headlines.append((f"{name}: open → " + ", ".join(marks), ", ".join(f"{v:.1f}" for v in marks.values()) + " s"))
        headlines += [
            ("Train pressed → step counter moving (last visit)", f"{page['train']:.2f} s"),
            ("page training rate / plain process rate", f"{page['rate'] / plain:.2f} ({page['rate']:.2f} steps/s on the page)"),
            ("the page received, while training", f"{page['received'] / 1000:.1f} kB/s"),
            ("CPU cores used while the page trains", ", ".join(f"{name} {cores:.2f}" for name, cores in page["cores"].items()) or "not measured (no /proc)"),
            ("the page's renderer, seconds per second", ", ".join(f"{name} {value:.2f}" for name, value in page["renderer"].items())),
            (
                f"slider {page['slider key']} moved, paused → page settled (median of the settled of {SLIDER_MOVES})",
                f"{page['slider']:.2f} s" + (f"; {len(page['unsettled'])} never settled within {args.timeout:g} s" if page["unsettled"] else ""),
            ),
        ]
    print()
    for failure in page["unsettled"] if page else []:
        print(f"slider move that never settled: {failure}")
    width = max(len(what) for what, _ in headlines)
    for what, value in headlines:
        print(f"{what:{width}s}  {value}")
    return headlines


if __name__ == "__main__":
    main()
