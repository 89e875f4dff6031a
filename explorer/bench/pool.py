"""The comparison's worker pool: the same runs with 1 worker and with N, side by side in one
process (a figure, not a test): the speed-up N over 1 and whether every outcome is identical.

    python -m explorer.bench.pool [--workers 2] [--runs 4] [--steps 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from explorer import compare, data
from explorer.compare import Variant


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=compare.default_workers())
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)
    subject = compare.TrainingData.of(data.load_toy())
    losses = ("ce", "dice")
    tasks = [(Variant(losses[i % 2], "none", "group"), i // 2, args.steps, 3e-3) for i in range(args.runs)]
    seconds, outcomes = {}, {}
    for workers in (1, args.workers):
        start = time.perf_counter()
        outcomes[workers] = compare.run_all(tasks, subject, workers, progress=lambda _: None)
        seconds[workers] = time.perf_counter() - start
        print(f"{workers} worker(s): {len(tasks)} runs of {args.steps} steps in {seconds[workers]:.0f} s", flush=True)
    same = all(
        dataclasses.replace(a, seconds=0) == dataclasses.replace(b, seconds=0) and np.array_equal(a.prediction, b.prediction)
        for a, b in zip(outcomes[1], outcomes[args.workers])
    )
    print(f"speed-up with {args.workers} workers over 1: {seconds[1] / seconds[args.workers]:.2f}×; outcomes identical: {same}")


if __name__ == "__main__":
    main()
