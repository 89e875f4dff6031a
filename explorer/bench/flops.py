"""How much of this machine's arithmetic the train step uses: its floating-point rate against the
rate of a large float32 matrix multiply (`tf.linalg.matmul`, 2·n³ FLOPs), the best case here.

    python -m explorer.bench.flops [--rounds 5] [--steps 20] [--matmul-size 2048]

The FLOPs of a train step are counted by TensorFlow's profiler on the graph of the app's traced
step (forward, backward and the Adam update), and cross-checked against an analytic count of the
U-Net's convolutions (train step ≈ 3 × forward: the backward pass computes the gradients of the
inputs and of the kernels, each as costly as the forward). The step time is the trainer's own
(`Run.advance`), measured in blocks that alternate with the matmuls round by round, so a noisy
neighbour slows both alike; the figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from explorer import data
from explorer.bench.devices import device_kinds
from explorer.bench.training import trainer_block
from explorer.training import Run, RunConfig, batch_indices


def conv_flops(model: keras.Model, batch: int, image_shape: tuple[int, int, int] | None = None) -> int:
    """Forward FLOPs of the model's Conv2D layers on images of `image_shape` (default: the model's
    input shape, which must then be fixed), 2 per multiply-add; biases, activations and pooling
    are left out (they are a fraction of a percent here). A run's U-Net takes any size: each
    layer's output size is then found by running the model once on a blank image."""
    image_shape = tuple(image_shape or model.input_shape[1:])
    conv_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if None in image_shape:
        raise ValueError("the model takes any image size: give image_shape")
    outputs = keras.Model(model.input, [layer.output for layer in conv_layers])(np.zeros((1, *image_shape), np.float32))
    total = 0
    for layer, output in zip(conv_layers, outputs):
        kernel_h, kernel_w, channels_in, channels_out = layer.kernel.shape
        _, height, width, _ = output.shape
        total += 2 * batch * height * width * kernel_h * kernel_w * channels_in * channels_out
    return total


def graph_flops(graph: tf.Graph) -> int:
    """FLOPs that TensorFlow's profiler counts in a graph: the ops with registered statistics
    (convolutions and their gradients, matmuls, element-wise arithmetic), from static shapes."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    # The profiler's shape helpers log TF1 deprecation warnings that say nothing about the count.
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")
    try:
        return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops
    finally:
        logger.setLevel(level)


def train_step_flops(run: Run) -> int:
    """Profiler FLOPs of one step of `run`. The run's traced call loops over K steps with a
    dynamic batch shape, which the profiler cannot count, so one step of the run's own model, loss
    and optimizer is traced here with the batch's static shape (traced only, never run). Call it
    under the device scope the run trained in."""
    model, loss, optimizer, num_classes = run.model, run.loss, run.optimizer, run.data.num_classes

    @tf.function
    def one_step(x, masks):
        y = tf.one_hot(tf.cast(masks, tf.int32), num_classes)
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        grads = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return value

    indices = batch_indices(run.config.seed, 0, run.config.batch_size, len(run.data.train_images))
    return graph_flops(one_step.get_concrete_function(run.data.train_images[indices], run.data.train_masks[indices]).graph)


def _matmul_seconds(a: tf.Tensor, b: tf.Tensor) -> float:
    start = time.perf_counter()
    float(tf.linalg.matmul(a, b)[0, 0])  # reading one value waits for the product (a GPU runs async)
    return time.perf_counter() - start


def main(argv=None) -> list[tuple[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="train steps per block")
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the n×n matrices")
    parser.add_argument("--loss", default="ce")
    args = parser.parse_args(argv)

    dataset = data.load_toy()
    kinds = device_kinds()
    n = args.matmul_size
    runs, matrices, step_flops = {}, {}, {}
    for device in kinds:
        with tf.device(device):
            run = runs[device] = Run(RunConfig(loss_id=args.loss), dataset)
            run.advance(2, evaluate_every=None)  # warm-up: trace the step
            step_flops[device] = train_step_flops(run)
            matrices[device] = (tf.random.normal((n, n), seed=1), tf.random.normal((n, n), seed=2))
            _matmul_seconds(*matrices[device])

    times = {device: {"matmul": [], "step": []} for device in kinds}
    for _ in range(args.rounds):
        for device in kinds:
            with tf.device(device):
                times[device]["matmul"].append(_matmul_seconds(*matrices[device]))
                times[device]["step"].append(trainer_block(runs[device], args.steps))

    run = next(iter(runs.values()))
    counted = next(iter(step_flops.values()))
    analytic = 3 * conv_flops(run.model, run.config.batch_size, run.data.train_images.shape[1:])
    print(
        f"FLOPs per train step (loss {args.loss}, batch {run.config.batch_size}, model {run.model.name}): "
        f"{counted / 1e9:.3f} G counted by TensorFlow's profiler (tf.compat.v1.profiler, float_operation) on the traced step's graph; "
        f"analytic 3 × forward convolutions = {analytic / 1e9:.3f} G (profiler/analytic {counted / analytic:.3f})"
    )
    print(f"{'device':24s} {'ms/step':>8s} {'step GFLOP/s':>13s} {f'matmul {n}² GFLOP/s':>20s} {'utilisation':>12s}")
    headlines = []
    for device, description in kinds.items():
        step = statistics.median(times[device]["step"])
        step_rate = step_flops[device] / step
        peak = 2 * n**3 / statistics.median(times[device]["matmul"])
        print(f"{description:24s} {1000 * step:8.1f} {step_rate / 1e9:13.1f} {peak / 1e9:20.1f} {step_rate / peak:12.2f}")
        headlines.append((f"train step FLOP rate / matmul peak, {description}", f"{step_rate / peak:.2f} ({step_rate / 1e9:.0f} of {peak / 1e9:.0f} GFLOP/s)"))
    return headlines


if __name__ == "__main__":
    main()
