"""`python -m explorer.compare`: the comparison's command line (the library is explorer.compare;
the report and the Ray backend sit on top of it, and so does this)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from explorer import cluster, compare, data, html_report, owndata, uploads
from explorer.compare import (
    LEARNING_RATE, WEIGHT_SCHEMES, Plan, TrainingData, code_fingerprint, csv_rows, default_workers, predictions,
    replace_readme_section, report, run_all,
)
from explorer.run_config import NORMALIZATIONS


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m explorer.compare", description=compare.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="your dataset: a folder or zip with images/ and masks/ (default: the toy set)")
    parser.add_argument("--crop", type=int, default=owndata.CROP, help="with --data: training crop size in pixels (a multiple of 8)")
    parser.add_argument("--pool", type=int, default=owndata.POOL, help="with --data: training crops cut once and drawn from")
    parser.add_argument("--rare-crops", type=float, default=0.0, help="with --data: share of the crops centred on a rare-class pixel (default 0: uniform)")
    parser.add_argument("--losses", default="ce,focal,dice,focal_tversky,ce_dice")
    parser.add_argument("--weights", default="none,balanced", help="weighting schemes, comma-separated, for losses that use class weights")
    parser.add_argument("--normalization", default="group", help=f"U-Net normalizations, comma-separated: {', '.join(NORMALIZATIONS)}")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--lr", type=float, default=LEARNING_RATE)
    parser.add_argument("--workers", type=int, default=default_workers(), help="worker processes, one run and one thread each (default: one per core)")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help="run the runs as Ray tasks: on the cluster at ADDRESS, or on a local Ray instance without one (pip install -r requirements-ray.txt)")
    parser.add_argument("--out", type=Path, default=Path("comparison"))
    parser.add_argument("--readme", type=Path, help="also rewrite this README's comparison section (toy set only)")
    args = parser.parse_args(argv if argv is not None else None)
    plan = Plan(tuple(args.losses.split(",")), tuple(args.weights.split(",")), tuple(args.normalization.split(",")), args.steps, args.seeds, args.lr)
    if any(s not in WEIGHT_SCHEMES for s in plan.schemes):
        parser.error(f"--weights takes some of {list(WEIGHT_SCHEMES)}")
    if any(n not in NORMALIZATIONS for n in plan.normalizations):
        parser.error(f"--normalization takes some of {list(NORMALIZATIONS)}")
    if args.readme and args.data:
        parser.error("--readme is for the toy set's comparison; leave out --data")

    code = code_fingerprint()  # of the code the runs train with, taken before they start
    data_options = []
    if args.data:
        try:
            own = owndata.load(args.data, crop=args.crop, pool=args.pool, rare_share=args.rare_crops)
        except uploads.UploadError as error:
            raise SystemExit(f"{args.data}: {error.message}") from None
        for problem in own.problems:
            print(f"left out: {problem.name}: {problem.message}")
        subject, described = TrainingData.of(own.dataset, own.counts), own.describe()
        data_options = [f"--data={args.data}", f"--crop={args.crop}", f"--pool={args.pool}", f"--rare-crops={args.rare_crops:g}"]
    else:
        subject, described = TrainingData.of(data.load_toy()), None
    dataset = subject.dataset
    chosen, tasks = plan.variants(), plan.tasks()
    where = f"Ray ({args.ray or 'a local instance'})" if args.ray is not None else f"{args.workers} worker(s)"
    print(f"{len(tasks)} runs: {len(chosen)} variants × {args.seeds} seeds, {args.steps} steps each, on {where}", flush=True)
    if described:
        print(f"data: {described}", flush=True)
    printer = lambda line: print(line, flush=True)  # noqa: E731
    if args.ray is not None:
        outcomes = cluster.run_on_ray(tasks, subject, args.ray or None, progress=printer)
    else:
        outcomes = run_all(tasks, subject, args.workers, progress=printer)

    results = plan.results(plan.command(data_options), code, outcomes, described)
    text = report(results, subject, details=True)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "comparison.md").write_text(text)
    with open(args.out / "comparison.csv", "w", newline="") as f:
        csv.writer(f).writerows(csv_rows(outcomes, dataset.class_names))
    predicted = predictions(outcomes)
    np.savez_compressed(args.out / "predictions.npz", **predicted)
    html_report.write(args.out / "report.html", results, subject, predicted)
    print(f"wrote {args.out / 'report.html'} (opens offline), results.json, comparison.md, comparison.csv and predictions.npz")
    if args.readme:
        args.readme.write_text(replace_readme_section(args.readme.read_text(), report(results, subject)))
        print(f"rewrote the comparison section of {args.readme}")
