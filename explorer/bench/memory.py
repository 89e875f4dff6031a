"""Memory and long-run figures (a script, not a test): resident memory over 30 reset-and-train
cycles, over 20 sessions' runs created, trained and dropped, over 40 sessions that also use every
section of the page (per-pixel maps, pixel curves and planes, the loss landscape) before they
close, and over one long run, with the step time at its start and its end.

    python -m explorer.bench.memory [--long-steps 5000] [--section-sessions 40]

A part whose count is 0 is left out (e.g. --cycles 0 --sessions 0 --long-steps 0 for the
sections alone).
"""

from __future__ import annotations

import argparse
import gc
import time
import weakref

import numpy as np

from explorer import data, landscape, maps, surfaces, weights
from explorer.training import Run, RunConfig


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _row(label: str, values: list[float]) -> str:
    return f"{label:44s} first {values[0]:7.0f}  max {max(values):7.0f}  last {values[-1]:7.0f} MiB"


def _session_using_every_section(dataset: data.Dataset, shares: np.ndarray) -> list[weakref.ref]:
    """What a browser session does before it closes: two runs trained a little, then every section
    that takes a model or a loss (explorer/maps.py, surfaces.py, landscape.py). Weak references to
    its models and losses, to count what outlives the session."""
    runs = [Run(RunConfig(loss_id=loss), dataset) for loss in ("ce", "focal_tversky")]
    rarest = int(np.argmin(shares))
    for run in runs:
        run.advance(10, evaluate_every=5)
        maps.pixel_maps(run.model, run.loss, dataset.val_images[0], dataset.val_masks[0])
        surfaces.pixel_curve(run.loss, float(shares[rarest]), class_index=rarest, class_shares=shares)
        surfaces.planes(run.loss, float(shares[rarest]), 41, class_index=rarest, class_shares=shares)
        landscape.landscape(run.model, run.loss, dataset.val_images[:4], dataset.val_masks[:4], steps=3).compute()
    return [weakref.ref(obj) for run in runs for obj in (run.model, run.loss)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--section-sessions", type=int, default=40)
    parser.add_argument("--long-steps", type=int, default=5000)
    args = parser.parse_args(argv)
    dataset = data.load_toy()
    print(f"start: {rss_mib():.0f} MiB")

    if args.cycles:
        run = Run(RunConfig(), dataset)
        cycles = []
        for _ in range(args.cycles):
            run.reset()
            run.advance(20, evaluate_every=10)
            cycles.append(rss_mib())
        print(_row(f"{args.cycles} reset-and-train cycles (20 steps)", cycles))
        del run

    if args.sessions:
        sessions = []
        for i in range(args.sessions):
            # What a browser session holds: two runs with different losses, trained a little.
            runs = [Run(RunConfig(loss_id=loss), dataset) for loss in ("ce", "focal_tversky")]
            for r in runs:
                r.advance(10, evaluate_every=5)
            del runs, r
            gc.collect()
            sessions.append(rss_mib())
        print(_row(f"{args.sessions} sessions opened, trained, closed", sessions))

    if args.section_sessions:
        shares = weights.count_pixels(dataset.train_masks, dataset.num_classes).frequencies
        sessions, closed = [], []
        for i in range(args.section_sessions):
            closed += _session_using_every_section(dataset, shares)
            gc.collect()
            sessions.append(rss_mib())
        alive = sum(ref() is not None for ref in closed)
        print(_row(f"{args.section_sessions} sessions using every section, closed", sessions))
        print(f"models and losses of closed sessions still alive: {alive} of {len(closed)}", flush=True)

    if not args.long_steps:
        return
    run = Run(RunConfig(), dataset)
    window = min(500, args.long_steps // 4)
    times, memory = [], []
    for step in range(0, args.long_steps, window):
        start = time.perf_counter()
        run.advance(window, evaluate_every=20)  # the page's default validation cadence
        times.append((time.perf_counter() - start) / window)
        memory.append(rss_mib())
    print(_row(f"long run, {args.long_steps} steps (every {window})", memory))
    print(
        f"long run step time: first {window} steps {1000 * times[0]:.1f} ms, last {window} {1000 * times[-1]:.1f} ms "
        f"(ratio {times[-1] / times[0]:.2f}); history holds {len(run.state.loss_values)} losses, "
        f"{len(run.state.evaluations)} evaluations, {sum(e.probabilities is not None for e in run.state.evaluations)} with predictions"
    )
    print(f"median step {1000 * np.median(times):.1f} ms")


if __name__ == "__main__":
    main()
