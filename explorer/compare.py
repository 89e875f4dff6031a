"""Compare losses without a browser: train one run per loss and seed on the toy dataset (or
nothing else: the runs are the app's runs) and tabulate validation metrics.

    python -m explorer.compare --losses ce,weighted_ce,focal,dice,focal_tversky --steps 300 --seeds 3

Every loss trains from the same initial weights on the same batches for a given seed. Losses
take their registry defaults; losses that use class weights get the `--weights` scheme counted
over the whole training set. Writes the table as CSV and Markdown into `--out`.
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer import data, losses, weights
from explorer.training import Run, RunConfig


@dataclass(frozen=True)
class Row:
    loss_id: str
    iou: np.ndarray  # (seeds, classes)
    mean_iou: np.ndarray  # (seeds,)
    pixel_accuracy: np.ndarray  # (seeds,)
    seconds: float  # mean training time per seed


def compare(loss_ids, steps: int, seeds: int, scheme: str = "balanced", dataset: data.Dataset | None = None, learning_rate: float = 3e-3) -> list[Row]:
    dataset = dataset or data.load_toy()
    counts = weights.count_pixels(dataset.train_masks, dataset.num_classes)
    class_weights = tuple(weights.class_weights(counts, scheme).weights)
    rows = []
    for loss_id in loss_ids:
        if loss_id not in losses.REGISTRY:
            raise SystemExit(f"unknown loss {loss_id!r}; choose from {', '.join(losses.REGISTRY)}")
        ious, mean_ious, accuracies, seconds = [], [], [], []
        for seed in range(seeds):
            config = RunConfig(loss_id=loss_id, class_weights=class_weights, seed=seed, learning_rate=learning_rate)
            run = Run(config, dataset)
            start = time.perf_counter()
            state = run.advance(steps)
            seconds.append(time.perf_counter() - start)
            if state.halted:
                print(f"warning: {loss_id} seed {seed}: {state.halted}")
            scores = state.latest.scores
            ious.append(scores.iou)
            mean_ious.append(scores.mean_iou)
            accuracies.append(scores.pixel_accuracy)
        rows.append(Row(loss_id, np.array(ious), np.array(mean_ious), np.array(accuracies), float(np.mean(seconds))))
    return rows


def _pm(values: np.ndarray) -> str:
    return f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"


def table(rows: list[Row], class_names) -> tuple[list[str], list[list[str]]]:
    header = ["loss", *[f"IoU {name}" for name in class_names], "mean IoU", "pixel accuracy", "seconds / run"]
    body = [
        [r.loss_id, *[_pm(r.iou[:, c]) for c in range(r.iou.shape[1])], _pm(r.mean_iou), _pm(r.pixel_accuracy), f"{r.seconds:.1f}"]
        for r in rows
    ]
    return header, body


def csv_rows(rows: list[Row], class_names) -> list[list]:
    """Numbers, not formatted strings: mean and std in columns of their own."""
    header = ["loss"]
    for name in [*[f"iou_{n}" for n in class_names], "mean_iou", "pixel_accuracy"]:
        header += [f"{name}_mean", f"{name}_std"]
    out = [header + ["seconds_per_run"]]
    for r in rows:
        line = [r.loss_id]
        for values in [*r.iou.T, r.mean_iou, r.pixel_accuracy]:
            line += [f"{np.nanmean(values):.4f}", f"{np.nanstd(values):.4f}"]
        out.append(line + [f"{r.seconds:.2f}"])
    return out


def markdown(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--losses", default="ce,weighted_ce,focal,dice,focal_tversky")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--weights", default="balanced", help="weighting scheme for losses that use class weights")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, default=Path("comparison"))
    args = parser.parse_args(argv)
    if args.weights not in weights.SCHEMES or not weights.SCHEMES[args.weights].dataset_level:
        parser.error(f"--weights must be one of {[s for s, v in weights.SCHEMES.items() if v.dataset_level]}")

    dataset = data.load_toy()
    rows = compare(args.losses.split(","), args.steps, args.seeds, args.weights, dataset, args.lr)
    header, body = table(rows, dataset.class_names)
    text = markdown(header, body)
    print(f"{args.steps} steps, {args.seeds} seeds, lr {args.lr:g}, class weights: {args.weights}; validation set, mean ± std over seeds\n")
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.md").write_text(text)
    with open(args.out / "comparison.csv", "w", newline="") as f:
        csv.writer(f).writerows(csv_rows(rows, dataset.class_names))
    print(f"wrote {args.out / 'comparison.md'} and {args.out / 'comparison.csv'}")


if __name__ == "__main__":
    main()
