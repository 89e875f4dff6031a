"""Per-pixel maps of a model on one image: the loss of every pixel (pixel-wise losses) and the
gradient of the image's loss with respect to every pixel's logits (every loss, from the tape).

Gradients are multiplied by the number of pixels H·W, as in explorer/surfaces.py: the gradient as
if the loss were a sum over pixels, so that for a pixel-wise loss a pixel's gradient is the
gradient of its own loss, and the maps of different image sizes are comparable. Summed over the
pixels (and divided by H·W) the signed gradients are the gradient of the loss with respect to
anything added to every pixel's logits, such as the bias of the model's last layer.

One traced function per (model, loss) pair, with a fixed (1, H, W, 3) input: moving a slider
assigns the loss's variables and does not retrace. Masks go to the loss as integer labels, so a
loss built with ``ignore_index`` gives void pixels 0 loss and 0 gradient. :func:`logit_maps` gives the same maps for
given logits (a prediction uploaded instead of a model's).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from explorer import losses

# model → {loss → traced function}: weak on both, and the function refers to them weakly too, so
# an entry goes with its model or loss (a closed session's runs) and holds nothing of them.
_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


@dataclass(frozen=True)
class PixelMaps:
    """Maps of one image. ``loss``: (H, W) per-pixel loss, None for region losses. ``gradient``:
    (H, W, C) signed ∂L/∂z × H·W. ``magnitude``: (H, W) its L2 norm over the classes.
    ``value``: the loss of the image (the scalar that was differentiated)."""

    loss: np.ndarray | None
    gradient: np.ndarray
    magnitude: np.ndarray
    value: float


def _loss_gradient_per_pixel(loss: losses.SegLoss, target, logits):
    """The loss of (1, H, W, C) logits, its gradient ×H·W and the per-pixel losses (zeros for a
    region loss)."""
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(target, logits)
    gradient = tape.gradient(value, logits)
    pixels = tf.cast(tf.reduce_prod(tf.shape(logits)[1:-1]), logits.dtype)
    per_pixel = loss.per_pixel(target, logits) if loss.spec.kind == "pixel" else tf.zeros(tf.shape(logits)[:-1])
    return value, gradient * pixels, per_pixel


def _pixel_maps(loss: losses.SegLoss, value, gradient, per_pixel) -> PixelMaps:
    gradient = gradient.numpy()[0].astype(np.float64)
    return PixelMaps(
        loss=per_pixel.numpy()[0].astype(np.float64) if loss.spec.kind == "pixel" else None,
        gradient=gradient,
        magnitude=np.sqrt(np.sum(gradient**2, axis=-1)),
        value=float(value),
    )


def _traced(model: keras.Model, loss: losses.SegLoss):
    with _lock:
        per_model = _cache.setdefault(model, weakref.WeakKeyDictionary())
        function = per_model.get(loss)
        if function is None:
            function = per_model[loss] = _trace(weakref.ref(model), weakref.ref(loss))
    return function


def _trace(model_ref: weakref.ref, loss_ref: weakref.ref):
    """Traced on its first call, while the caller holds the model and the loss."""

    @tf.function
    def maps(image, target):
        return _loss_gradient_per_pixel(loss_ref(), target, model_ref()(image, training=False))

    return maps


def pixel_maps(model: keras.Model, loss: losses.SegLoss, image: np.ndarray, mask: np.ndarray) -> PixelMaps:
    """Maps of ``model`` under ``loss`` on one ``image`` (H, W, 3) with index ``mask`` (H, W)."""
    image = np.asarray(image, dtype=np.float32)
    mask = np.asarray(mask)
    if image.ndim != 3 or mask.shape != image.shape[:2]:
        raise ValueError(f"expected an (H, W, 3) image and its (H, W) mask, got {image.shape} and {mask.shape}")
    target = tf.constant(mask.astype(np.int32)[None])
    return _pixel_maps(loss, *_traced(model, loss)(tf.constant(image[None]), target))


def logit_maps(loss: losses.SegLoss, logits: np.ndarray, mask: np.ndarray) -> PixelMaps:
    """Maps of given ``logits`` (H, W, C) under ``loss`` with index ``mask`` (H, W) (eager: no
    model, nothing to trace)."""
    logits = tf.constant(np.asarray(logits, dtype=np.float32)[None])
    target = tf.constant(np.asarray(mask).astype(np.int32)[None])
    return _pixel_maps(loss, *_loss_gradient_per_pixel(loss, target, logits))


def shared_range(arrays, log: bool = True, floor: float = 1e-8) -> tuple[float, float]:
    """One colour range for maps compared side by side: log10 of the positive values (or the
    values) from the smallest 1st percentile to the largest maximum over all arrays."""
    values = [np.asarray(a, dtype=np.float64).ravel() for a in arrays if a is not None]
    values = [v[np.isfinite(v)] for v in values]
    values = [v for v in values if v.size]
    if not values:
        return (0.0, 1.0)
    if log:
        values = [np.log10(np.maximum(v, floor)) for v in values]
    low = min(float(np.percentile(v, 1)) for v in values)
    high = max(float(v.max()) for v in values)
    return (low, high if high > low else low + 1.0)
