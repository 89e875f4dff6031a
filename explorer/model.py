"""The small U-Net that every run trains: logits out, channels last.

Each convolution is followed by a normalization layer (a setting) and a ReLU:
- "group" (the default): group normalization, statistics of each image's own channels. No moving
  averages, so a validation snapshot of a live run shows the current weights as they are, at any
  batch size.
- "batch": batch normalization. Its moving averages lag the weights (momentum 0.9 here, Keras's
  0.99 lags for hundreds of steps), so early snapshots of a live run trail what it has learnt.
- "none": no normalization. Kept on purpose: with region losses (Dice, focal Tversky) the logits
  of this network grow without bound until the run ends in NaN or predicts one class everywhere
  (which of the two depends on the CPU's rounding), which the page lets a user watch.

Every initializer gets its own seed derived from the run's seed, so the same seed gives the same
weights in any process, independent of global random state.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from explorer.run_config import DEFAULT_NORMALIZATION, NORMALIZATIONS

GROUPS = 4  # per group-normalization layer; fewer where a layer has fewer channels
BATCH_NORM_MOMENTUM = 0.9


def build_unet(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int] = (64, 64, 3),
    depth: int = 2,
    width: int = 16,
    seed: int = 0,
    normalization: str = DEFAULT_NORMALIZATION,
) -> keras.Model:
    """A U-Net with `depth` down-sampling steps; the first level has `width` filters, doubling
    at each level. Returns logits of shape (H, W, num_classes)."""
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be at least 1, got depth={depth}, width={width}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; choose from {', '.join(NORMALIZATIONS)}")
    # None: any size (the network is fully convolutional), each a multiple of 2**depth when called.
    height, width_px = input_shape[:2]
    if any(side is not None and side % 2**depth for side in (height, width_px)):
        raise ValueError(f"input size {height}x{width_px} must be divisible by 2**depth = {2**depth}")

    layer_index = iter(range(10_000))

    # Every layer is named: Keras's automatic names come from a process-wide counter that two
    # browser sessions building models at once can trip over ("name used 2 times").
    def conv(name: str, filters: int, kernel: int = 3, activation: str | None = "relu") -> layers.Conv2D:
        return layers.Conv2D(
            filters,
            kernel,
            padding="same",
            activation=activation,
            # A bias before a normalization layer is removed by its centring anyway.
            use_bias=normalization == "none" or activation is None,
            kernel_initializer=keras.initializers.HeNormal(seed=seed * 10_007 + next(layer_index)),
            name=name,
        )

    def conv_block(x, name: str, filters: int):
        if normalization == "none":
            return conv(name, filters)(x)
        x = conv(name, filters, activation=None)(x)
        if normalization == "batch":
            x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn")(x)
        else:
            x = layers.GroupNormalization(groups=math.gcd(GROUPS, filters), name=f"{name}_gn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = conv_block(x, f"down{level}_a", width * 2**level)
        x = conv_block(x, f"down{level}_b", width * 2**level)
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = conv_block(x, "bottom_a", width * 2**depth)
    x = conv_block(x, "bottom_b", width * 2**depth)
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = conv_block(x, f"up{level}_a", width * 2**level)
        x = conv_block(x, f"up{level}_b", width * 2**level)
    logits = conv("logits", num_classes, kernel=1, activation=None)(x)
    return keras.Model(inputs, logits, name=f"unet_d{depth}_w{width}_{normalization}")
