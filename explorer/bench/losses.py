"""Forward + backward time of every registered loss, measured side by side.

    python -m explorer.bench.losses [--batch 16 --size 64 --classes 4 --repeats 30]

Each loss runs inside its own warmed-up tf.function (value and gradient with respect to the
logits). The repeats are interleaved, every loss once per round in a shuffled order, so a slow
patch of the machine hits all of them alike; the table shows medians and the ratio to ``ce``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
import tensorflow as tf

from explorer import losses


def _step(loss):
    @tf.function
    def step(y_true, logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = loss(y_true, logits)
        return value, tape.gradient(value, logits)

    return step


def measure(loss_ids, batch: int, size: int, classes: int, repeats: int, warmup: int, seed: int = 0) -> dict[str, float]:
    """Median milliseconds per forward + backward pass, per loss id."""
    rng = np.random.default_rng(seed)
    y = tf.constant(np.eye(classes, dtype=np.float32)[rng.integers(0, classes, (batch, size, size))])
    z = tf.constant(rng.normal(0.0, 2.0, (batch, size, size, classes)).astype(np.float32))
    steps = {}
    for loss_id in loss_ids:
        params = {"class_weights": [1.0] * classes} if losses.REGISTRY[loss_id].uses_class_weights else {}
        steps[loss_id] = _step(losses.get(loss_id, **params))
        for _ in range(warmup):
            _sync(steps[loss_id](y, z))
    times: dict[str, list[float]] = {loss_id: [] for loss_id in loss_ids}
    order = list(loss_ids)
    shuffle = random.Random(seed)
    for _ in range(repeats):
        shuffle.shuffle(order)
        for loss_id in order:
            start = time.perf_counter()
            _sync(steps[loss_id](y, z))
            times[loss_id].append(time.perf_counter() - start)
    return {loss_id: 1e3 * statistics.median(t) for loss_id, t in times.items()}


def _sync(outputs) -> None:
    """Wait for the results (the .numpy() copy blocks until they exist)."""
    for tensor in outputs:
        tensor.numpy()


def main(argv=None) -> list[tuple[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="height and width")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--losses", default=",".join(losses.REGISTRY), help="comma-separated loss ids")
    args = parser.parse_args(argv)
    loss_ids = args.losses.split(",")
    unknown = [i for i in loss_ids if i not in losses.REGISTRY]
    if unknown:
        parser.error(f"unknown loss ids {unknown}; valid: {', '.join(losses.REGISTRY)}")
    if "ce" not in loss_ids:
        loss_ids.insert(0, "ce")
    medians = measure(loss_ids, args.batch, args.size, args.classes, args.repeats, args.warmup)
    print(f"forward + backward, batch ({args.batch}, {args.size}, {args.size}, {args.classes}), "
          f"median of {args.repeats}, device {tf.config.list_logical_devices()[-1].device_type}")
    print(f"{'loss':<26}{'ms':>9}{'× ce':>8}")
    for loss_id in loss_ids:
        print(f"{loss_id:<26}{medians[loss_id]:>9.2f}{medians[loss_id] / medians['ce']:>8.2f}")
    slowest = max(loss_ids, key=medians.get)
    return [("slowest loss forward + backward / ce", f"{slowest} {medians[slowest] / medians['ce']:.1f}")]


if __name__ == "__main__":
    main()
