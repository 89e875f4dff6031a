"""The small U-Net that every run trains: logits out, channels last.

No normalisation layers: batch statistics would make a run depend on its batch size and add
train/inference modes to keep in step, and a network this small trains well without them.
Every initializer gets its own seed derived from the run's seed, so the same seed gives the same
weights in any process, independent of global random state.
"""

from __future__ import annotations

import keras
from keras import layers


def build_unet(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int] = (64, 64, 3),
    depth: int = 2,
    width: int = 16,
    seed: int = 0,
) -> keras.Model:
    """A U-Net with `depth` down-sampling steps; the first level has `width` filters, doubling
    at each level. Returns logits of shape (H, W, num_classes)."""
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be at least 1, got depth={depth}, width={width}")
    height, width_px = input_shape[:2]
    if height % 2**depth or width_px % 2**depth:
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
            kernel_initializer=keras.initializers.HeNormal(seed=seed * 10_007 + next(layer_index)),
            name=name,
        )

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = conv(f"down{level}_a", width * 2**level)(x)
        x = conv(f"down{level}_b", width * 2**level)(x)
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = conv("bottom_a", width * 2**depth)(x)
    x = conv("bottom_b", width * 2**depth)(x)
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = conv(f"up{level}_a", width * 2**level)(x)
        x = conv(f"up{level}_b", width * 2**level)(x)
    logits = conv("logits", num_classes, kernel=1, activation=None)(x)
    return keras.Model(inputs, logits, name=f"unet_d{depth}_w{width}")
