"""Crops at full resolution against images resized to 64×64 (a figure, not a test): on a toy set
drawn at 256×256 (explorer.toydata --size 256: the same scenes, fibres still 1–2 pixels wide),
train the same U-Net for the same steps (a) on 64×64 crops of the 256×256 images
(explorer.owndata) and (b) on the images resized to 64×64 (bilinear images, nearest masks: what
the page does with uploads), and score both on the whole 256×256 validation masks; (b)'s
predictions are scaled back up (bilinear probabilities) to be scored there.

    python -m explorer.bench.resolution [--losses dice,ce] [--seeds 3] [--steps 300]

Prints, per loss and set-up, the fibre IoU (and the other classes') as mean ± std over the seeds,
and the paired difference crops − resized with its 95 % interval. A run the NaN guard halts is
counted as failed and left out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from explorer import compare, metrics, owndata, toydata, weights
from explorer.data import Dataset
from explorer.training import Run, RunConfig

FIBRE = toydata.FIBRE


def resized(own_dir: Path, full: Dataset, size: int) -> Dataset:
    """The training images and masks of ``own_dir`` resized to size×size (the validation set stays
    ``full``'s whole images: both set-ups are scored on the same pixels)."""
    images, masks = [], []
    for path in sorted((own_dir / "train" / "images").glob("*.png")):
        with Image.open(path) as im:
            images.append(np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255)
        with Image.open(own_dir / "train" / "masks" / path.name) as im:
            masks.append(np.asarray(im.resize((size, size), Image.Resampling.NEAREST)))
    return replace(full, name="resized", train_images=np.stack(images), train_masks=np.stack(masks))


def scores_at_full_resolution(run: Run, data: Dataset, size: int) -> metrics.Scores:
    """Predict the validation images resized to size×size, scale the probabilities back up and
    score them on the whole masks."""
    small = tf.image.resize(data.val_images, (size, size), method="bilinear")
    probabilities = run.probabilities(small)
    up = tf.image.resize(probabilities, data.val_masks.shape[1:], method="bilinear").numpy()
    confusion = metrics.confusion_matrix(data.val_masks, up.argmax(-1), data.num_classes, ignore_index=data.ignore_index)
    return metrics.scores(confusion)


def train(config: RunConfig, data: Dataset, steps: int, small: int | None) -> tuple[str | None, metrics.Scores | None]:
    run = Run(config, data)
    state = run.advance(steps, evaluate_every=None)
    if state.halted:
        return state.halted, None
    if small is None:
        state = run.snapshot()
        return state.halted, None if state.halted else state.latest.scores
    return None, scores_at_full_resolution(run, data, small)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--losses", default="dice,ce")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--val", type=int, default=20)
    parser.add_argument("--crop", type=int, default=64)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        toydata.generate(root, n_train=args.train, n_val=args.val, size=args.size)
        own = owndata.load(root, crop=args.crop)
        crops = own.dataset
        small = resized(root, crops, args.crop)
    print(f"{args.size}×{args.size} toy set: {own.describe()}")
    shares = own.counts.frequencies
    print("fibre share: full resolution {:.3%}, crop pool {:.3%}, resized to {}: {:.3%}".format(
        shares[FIBRE], own.pool_shares[FIBRE], args.crop, weights.count_pixels(small.train_masks, small.num_classes).frequencies[FIBRE]))

    names = crops.class_names
    for loss_id in args.losses.split(","):
        results = {"crops": [], "resized": []}
        for seed in range(args.seeds):
            config = RunConfig(loss_id=loss_id, seed=seed, learning_rate=args.lr)
            for setup, data, size in (("crops", crops, None), ("resized", small, args.crop)):
                start = time.perf_counter()
                failed, scores = train(config, data, args.steps, size)
                results[setup].append(scores)
                status = f"FAILED: {failed}" if failed else f"fibre IoU {scores.iou[FIBRE]:.3f}"
                print(f"{loss_id}, seed {seed}, {setup}: {status} ({time.perf_counter() - start:.0f} s)", flush=True)
        print(f"\n{loss_id}: IoU on the whole {args.size}×{args.size} validation masks, mean ± std over the seeds that finished")
        print("| set-up | finished | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names))
        for setup, runs in results.items():
            done = [s for s in runs if s is not None]
            cells = [f"{np.mean([s.iou[c] for s in done]):.3f} ± {np.std([s.iou[c] for s in done]):.3f}" if done else "–" for c in range(len(names))]
            print(f"| {setup} | {len(done)}/{len(runs)} | " + " | ".join(cells) + " |")
        pairs = [a.iou[FIBRE] - b.iou[FIBRE] for a, b in zip(results["crops"], results["resized"]) if a is not None and b is not None]
        if pairs:
            mean, half = compare.mean_interval(pairs)
            print(f"fibre IoU, crops − resized, paired by seed: {mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}] ({len(pairs)} pairs)\n")


if __name__ == "__main__":
    main()
