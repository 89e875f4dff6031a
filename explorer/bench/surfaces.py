"""What moving a slider costs the surfaces panels, and what the loss landscape costs.

    python -m explorer.bench.surfaces [--rounds 9] [--resolution 101] [--class-index C]
                                      [--landscape-steps 21] [--skip-landscape]

For every loss of the registry: the median time, over rounds, to recompute every surface panel of
a run after a parameter change (``set_params`` with a new value, then the pixel curve, the loss
plane and both gradient planes, with and without building the plotly figures), on the toy
dataset's rarest class by default (the largest synthetic image). The first call, which traces
(and XLA-compiles) the evaluation, is reported on its own. Then the landscape: the cost of one
point (a forward pass of the U-Net on the fixed validation batch) and of a whole grid.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from explorer import data, landscape, losses, surface_plots, surfaces, weights
from explorer.training import Run, RunConfig, describe_device


def _alternatives(loss: losses.SegLoss) -> tuple[dict, dict, str]:
    """Two parameter settings to alternate between, and what changes."""
    spec = loss.spec
    for p in spec.params:
        if p.name == "smooth":
            continue
        low = p.default
        high = min(p.max, p.default + 10 * p.step) if p.default + 10 * p.step <= p.max else max(p.min, p.default - 10 * p.step)
        return {p.name: low}, {p.name: high}, f"{p.name} {low:g}↔{high:g}"
    if spec.params:
        p = spec.params[0]
        return {p.name: p.default}, {p.name: p.default * 10 or 1e-3}, f"{p.name}"
    if loss.params.get("class_weights") is not None:
        w = loss.params["class_weights"]
        return {"class_weights": w}, {"class_weights": [x * (2.0 if i == len(w) - 1 else 1.0) for i, x in enumerate(w)]}, "rarest weight ×2"
    return {}, {}, "(no parameter: recompute)"


def _panels(loss, fraction, class_index, shares, resolution, figures: bool):
    curve = surfaces.pixel_curve(loss, fraction, class_index=class_index, class_shares=shares)
    planes = surfaces.planes(loss, fraction, resolution, class_index=class_index, class_shares=shares)
    if figures:
        path = np.array([[0.1, 0.2], [0.3, 0.05], [0.6, 0.01]])
        surface_plots.pixel_curves({"A": curve}).to_plotly_json()
        surface_plots.loss_plane(planes.a, planes.b, planes.values, "loss", path).to_plotly_json()
        surface_plots.gradient_planes(planes.a, planes.b, planes.missed, planes.false_alarm, "grad", path).to_plotly_json()
        surface_plots.ratio_plane(planes.a, planes.b, planes.ratio, "ratio", path).to_plotly_json()
    return planes


def bench_surfaces(args, dataset, counts) -> dict[str, float]:
    """Prints the table; returns the seconds of a recompute with figures, per loss."""
    shares = np.asarray(counts.frequencies)
    valid = [c for c in range(len(shares)) if 0 < shares[c] < 1]
    class_index = args.class_index if args.class_index is not None else min(valid, key=lambda c: shares[c])
    fraction = float(shares[class_index])
    layout = surfaces.image_layout(fraction, class_index)
    balanced = weights.class_weights(counts, "balanced").weights
    print(
        f"Surfaces of class {dataset.class_names[class_index]!r} (share {100 * fraction:.3f} %): {args.resolution}×{args.resolution} "
        f"grid of images of P = {layout.pixels} pixels ({layout.class_pixels} of the class); {args.rounds} rounds; median ms."
    )
    print(f"{'loss':26s} {'change':24s} {'first call':>11s} {'compute':>9s} {'+ figures':>10s}  {'≤100 ms':>7s}")
    over, totals = [], {}
    for loss_id, spec in losses.REGISTRY.items():
        params = {"class_weights": list(balanced)} if spec.uses_class_weights and loss_id != "ce" else {}
        loss = losses.get(loss_id, **params)
        first, second, what = _alternatives(loss)
        start = time.perf_counter()
        _panels(loss, fraction, class_index, shares, args.resolution, figures=False)
        compile_seconds = time.perf_counter() - start
        times = {False: [], True: []}
        for round_index in range(args.rounds):
            for figures in (False, True):
                loss.set_params(**(second if round_index % 2 == 0 else first))
                start = time.perf_counter()
                _panels(loss, fraction, class_index, shares, args.resolution, figures)
                times[figures].append(time.perf_counter() - start)
        compute, total = statistics.median(times[False]), statistics.median(times[True])
        totals[loss_id] = total
        ok = "yes" if total <= 0.1 else "NO"
        if total > 0.1:
            over.append(loss_id)
        print(f"{loss_id:26s} {what[:24]:24s} {1000 * compile_seconds:9.0f}ms {1000 * compute:7.1f}ms {1000 * total:8.1f}ms  {ok:>7s}")
    if over:
        print(f"Over 100 ms (compute + figures): {', '.join(over)}.")
    return totals


def bench_landscape(args, dataset) -> None:
    run = Run(RunConfig(loss_id="ce"), dataset)
    run.advance(20, evaluate_every=None)
    images, masks = dataset.val_images[:16], dataset.val_masks[:16]
    print()
    print(
        f"Landscape: model {run.model.name} ({run.model.count_params():,} parameters), fixed batch of {len(images)} "
        f"validation images {images.shape[1]}×{images.shape[2]}, {args.landscape_steps}×{args.landscape_steps} grid."
    )
    print(f"{'loss':26s} {'set-up+trace':>13s} {'ms/point':>9s} {'grid':>9s}")
    for loss_id in args.landscape_losses:
        run.reconfigure(RunConfig(loss_id=loss_id))
        start = time.perf_counter()
        scape = landscape.landscape(run.model, run.loss, images, masks, steps=args.landscape_steps)
        scape.center()
        setup = time.perf_counter() - start
        start = time.perf_counter()
        rows = 0
        for _ in scape.rows():
            rows += 1
            if not args.full_landscape and rows >= 3:
                break
        elapsed = time.perf_counter() - start
        per_point = elapsed / (rows * args.landscape_steps)
        grid = per_point * args.landscape_steps**2
        label = "measured" if args.full_landscape else "from 3 rows"
        print(f"{loss_id:26s} {setup:11.2f} s {1000 * per_point:7.1f}ms {grid:7.1f} s  ({label})")


def main(argv=None) -> list[tuple[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--resolution", type=int, default=101)
    parser.add_argument("--class-index", type=int, default=None, help="default: the rarest class")
    parser.add_argument("--landscape-steps", type=int, default=21)
    parser.add_argument("--landscape-losses", nargs="+", default=["ce", "focal_tversky", "lovasz"])
    parser.add_argument("--full-landscape", action="store_true", help="time the whole grid instead of 3 rows")
    parser.add_argument("--skip-landscape", action="store_true")
    args = parser.parse_args(argv)
    dataset = data.load_toy()
    counts = weights.count_pixels(dataset.train_masks, dataset.num_classes)
    print(f"device: {describe_device()}")
    totals = bench_surfaces(args, dataset, counts)
    if not args.skip_landscape:
        bench_landscape(args, dataset)
    slowest = max(totals, key=totals.get)
    return [(
        "surfaces after a slider move, figures included",
        f"median {1000 * statistics.median(totals.values()):.0f} ms, slowest {slowest} {1000 * totals[slowest]:.0f} ms",
    )]


if __name__ == "__main__":
    main()
