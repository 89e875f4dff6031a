"""The benchmark's pure helpers: FLOP counting (nothing here is timed)."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf
from test_training import tiny_dataset

from explorer.bench.flops import conv_flops, graph_flops, train_step_flops
from explorer.training import Run, RunConfig


def tiny_model(**conv_options) -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", **conv_options)(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(2, 1, **conv_options)(x)
    return keras.Model(inputs, x)


def test_conv_flops_by_hand():
    # 2 FLOPs per multiply-add: 8·8 outputs × 3·3·3 inputs × 4 filters, then 4·4 × 4 × 2 after pooling.
    per_image = 2 * (8 * 8 * 3 * 3 * 3 * 4 + 4 * 4 * 4 * 2)
    assert conv_flops(tiny_model(), batch=5) == 5 * per_image == 5 * 14_080


def test_profiler_counts_a_matmul():
    matmul = tf.function(tf.linalg.matmul).get_concrete_function(tf.TensorSpec((2, 3)), tf.TensorSpec((3, 4)))
    assert graph_flops(matmul.graph) == 2 * 2 * 3 * 4


def test_profiler_and_analytic_count_agree_on_bare_convolutions():
    model = tiny_model(use_bias=False)
    forward = tf.function(model).get_concrete_function(tf.TensorSpec((5, 8, 8, 3)))
    pooling = 5 * 4 * 4 * 4 * (2 * 2)  # the profiler counts a max-pool as window size × outputs
    assert graph_flops(forward.graph) == conv_flops(model, batch=5) + pooling


def test_train_step_is_about_three_forward_passes():
    # Without normalization layers: their element-wise work is outside the analytic count.
    run = Run(RunConfig(batch_size=8, depth=2, width=4, normalization="none"), tiny_dataset())
    analytic = 3 * conv_flops(run.model, batch=8, image_shape=run.data.train_images.shape[1:])
    # The rest: biases, activations, pooling, the loss and Adam's update, a few percent here.
    assert train_step_flops(run) == pytest.approx(analytic, rel=0.05)
    assert train_step_flops(run) > analytic
