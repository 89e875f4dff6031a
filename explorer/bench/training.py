"""Training speed, measured side by side in one process: the app's trainer against Keras
`model.fit` on the same model, loss and batches, the trainer with each normalization of the U-Net
against none, and the cost of a page update (validation snapshot and figures) against the
training it accompanies.

    python -m explorer.bench.training [--rounds 5] [--steps 40]

Blocks of each contender alternate round by round, so a noisy neighbour slows them alike;
the figures are medians over rounds, printed as ratios. On a machine with a GPU the same figures
are printed for the CPU and the GPU.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from explorer import data, plots
from explorer.bench.devices import device_kinds
from explorer.run_config import NORMALIZATIONS
from explorer.training import Run, RunConfig, batch_indices


def _fit_block(model, images, masks, config: RunConfig, first_step: int, steps: int) -> float:
    """Seconds per step of `model.fit` over the trainer's batches for steps [first, first+steps)."""
    order = np.concatenate([batch_indices(config.seed, s, config.batch_size, len(images)) for s in range(first_step, first_step + steps)])
    x = images[order]
    y = tf.one_hot(masks[order].astype(np.int32), model.output_shape[-1]).numpy()
    start = time.perf_counter()
    model.fit(x, y, batch_size=config.batch_size, epochs=1, shuffle=False, verbose=0)
    return (time.perf_counter() - start) / steps


def trainer_block(run: Run, steps: int) -> float:
    start = time.perf_counter()
    run.advance(steps, evaluate_every=None)
    return (time.perf_counter() - start) / steps


def _page_update(run: Run, dataset: data.Dataset) -> float:
    """What a validation adds to training: the snapshot and the figures built from it."""
    start = time.perf_counter()
    evaluation = run.evaluate(run.state.step)
    probabilities = evaluation.probabilities[0]
    plots.loss_curves({"A": run.state})
    plots.validation_curves({"A": run.state}, dataset.class_names, dataset.class_colors)
    plots.probability_maps(probabilities, dataset.class_names)
    prediction = probabilities.argmax(-1)
    for c in range(dataset.num_classes):
        plots.outcome_map(dataset.val_masks[0], prediction, c)
    return time.perf_counter() - start


def bench_device(args, dataset: data.Dataset, description: str) -> list[tuple[str, str]]:
    config = RunConfig(loss_id=args.loss)
    run = Run(config, dataset)
    contenders = {}
    # True, not "auto": Keras resolves "auto" to no XLA on a machine without a GPU.
    for jit in (False, True):
        model = keras.models.clone_model(run.model)
        model.set_weights(run.initial_weights)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=run.loss, jit_compile=jit)
        contenders[f"model.fit (jit_compile={jit})"] = model

    others = {n: Run(RunConfig(loss_id=args.loss, normalization=n), dataset) for n in NORMALIZATIONS if n != config.normalization}

    # Warm-up: trace every step function once.
    run.advance(2, evaluate_every=None)
    for other in others.values():
        other.advance(2, evaluate_every=None)
    for model in contenders.values():
        _fit_block(model, dataset.train_images, dataset.train_masks, config, 0, 2)
    _page_update(run, dataset)

    times: dict[str, list[float]] = {"trainer": [], **{k: [] for k in contenders}, **{k: [] for k in others}, "page update": []}
    for _ in range(args.rounds):
        first = run.state.step
        times["trainer"].append(trainer_block(run, args.steps))
        for name, other in others.items():
            times[name].append(trainer_block(other, args.steps))
        for name, model in contenders.items():
            times[name].append(_fit_block(model, dataset.train_images, dataset.train_masks, config, first, args.steps))
        times["page update"].append(_page_update(run, dataset))

    median = {k: float(np.median(v)) for k, v in times.items()}
    trainer = median["trainer"]
    round_time = args.steps_per_round * trainer
    print(f"device: {description}; loss {args.loss}; batch {config.batch_size}; model {run.model.name}, {run.model.count_params():,} parameters")
    print(f"{'what':34s} {'ms/step':>9s} {'ratio to trainer':>17s}")
    print(f"{'trainer (app), ' + config.normalization + ' norm':34s} {1000 * trainer:9.1f} {1.0:17.2f}")
    for name in [*contenders, *others]:
        label = f"trainer, {name} norm" if name in others else name
        print(f"{label:34s} {1000 * median[name]:9.1f} {median[name] / trainer:17.2f}")
    page_share = median["page update"] / round_time
    print(
        f"page update (snapshot of {len(dataset.val_images)} val images + figures): {1000 * median['page update']:.1f} ms "
        f"= {page_share:.2f}× the {args.steps_per_round} training steps of a round"
    )
    fit = ", ".join(f"{median[name] / trainer:.2f}" for name in contenders)
    # The cost of normalizing, as the issue of the blow-up asks it: normalized step / plain step.
    norm_cost = ", ".join(f"{n} {median[n] / median['none']:.2f}" if n in others else f"{n} {trainer / median['none']:.2f}" for n in NORMALIZATIONS if n != "none")
    print(f"step time with normalization / without: {norm_cost}")
    return [
        (f"step with normalization / without, {description}", norm_cost),
        (f"model.fit (XLA off, on) / trainer, {description}", fit),
        (f"page update / the {args.steps_per_round} steps of a round, {description}", f"{page_share:.2f}"),
    ]


def main(argv=None) -> list[tuple[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="steps per block")
    parser.add_argument("--loss", default="ce")
    parser.add_argument("--steps-per-round", type=int, default=5, help="the page's default steps per round")
    args = parser.parse_args(argv)
    dataset = data.load_toy()
    headlines = []
    for device, description in device_kinds().items():
        with tf.device(device):
            headlines += bench_device(args, dataset, description)
    return headlines


if __name__ == "__main__":
    main()
