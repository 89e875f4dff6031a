"""Does every loss train the U-Net far from a blow-up? The long sweep behind the short test in
tests/test_training.py: each loss × weighting (none, and balanced for losses that take class
weights) × normalization × seed trains on the toy set, and the largest |logit| over the
validation images is recorded at every validation.

    python -m explorer.bench.stability [--steps 300] [--seeds 0,1,2] [--normalization group,none]
                                       [--losses ce,dice,...] [--evaluate-every 50]

A run passes when it finishes without the NaN guard halting it and its largest |logit| stays
below --limit (default 1e3; the U-Net without normalization reached 1e26 by step 130 under
unweighted Dice, then NaN). Exit status 1 when any run fails, so the sweep can gate a change.
"""

from __future__ import annotations

import argparse
import time

from explorer import data, losses, weights
from explorer.run_config import NORMALIZATIONS
from explorer.training import Run, RunConfig, format_value


def weightings(loss_ids) -> list[tuple[str, str]]:
    """(loss id, weighting scheme): unweighted for every loss, balanced too for losses that take class weights."""
    return [(loss_id, scheme) for loss_id in loss_ids for scheme in (("none", "balanced") if losses.REGISTRY[loss_id].uses_class_weights else ("none",))]


def train(dataset: data.Dataset, loss_id: str, scheme: str, normalization: str, seed: int, steps: int, evaluate_every: int) -> Run:
    counts = weights.count_pixels(dataset.train_masks, dataset.num_classes)
    class_weights = tuple(weights.class_weights(counts, scheme).weights)
    config = RunConfig(loss_id=loss_id, class_weights=class_weights, learning_rate=3e-3, normalization=normalization, seed=seed)
    run = Run(config, dataset)
    run.advance(steps, evaluate_every=evaluate_every)
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--normalization", default="group,none", help=f"comma-separated, of {', '.join(NORMALIZATIONS)}")
    parser.add_argument("--losses", default=",".join(losses.REGISTRY), help="comma-separated loss ids")
    parser.add_argument("--evaluate-every", type=int, default=50)
    parser.add_argument("--limit", type=float, default=1e3, help="the largest |logit| a passing run may reach")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    normalizations = args.normalization.split(",")
    unknown = [n for n in normalizations if n not in NORMALIZATIONS] + [l for l in args.losses.split(",") if l not in losses.REGISTRY]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")

    dataset = data.load_toy()
    print(f"{'loss':22s} {'weights':9s} {'norm':6s} seed  result")
    failures = total = 0
    start = time.perf_counter()
    for normalization in normalizations:
        for loss_id, scheme in weightings(args.losses.split(",")):
            for seed in seeds:
                run = train(dataset, loss_id, scheme, normalization, seed, args.steps, args.evaluate_every)
                scales = [e.logit_scale for e in run.state.evaluations]
                largest = max(scales)
                passed = run.state.halted is None and largest < args.limit
                failures += not passed
                total += 1
                trail = " → ".join(format_value(s) for s in scales)
                result = f"halted at step {run.state.step}: {run.state.halted}" if run.state.halted else f"largest |logit| {trail}"
                print(f"{loss_id:22s} {scheme:9s} {normalization:6s} {seed:4d}  {'ok  ' if passed else 'FAIL'} {result}", flush=True)
    print(f"\n{total - failures} of {total} runs passed ({args.steps} steps, |logit| < {format_value(args.limit)}) in {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
