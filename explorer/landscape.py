"""The real loss landscape of a model around its weights (Li et al. 2018, "Visualizing the Loss
Landscape of Neural Nets"): the loss on a fixed validation batch at ``w + x·d1 + y·d2`` over a
grid of (x, y), along two random directions ``d1``, ``d2`` normalised filter by filter.

- Directions: Gaussian draws seeded by ``seed`` alone, one per trainable variable in order, so
  every model of the same architecture gets the very same draws. Filter normalisation, as Li et
  al.: each filter of a kernel (the slice along its last, output-channel axis) is rescaled so its
  norm equals the norm of the same filter of the weights. Biases (1-D variables) get a zero
  direction, Li et al.'s default of ignoring biases and normalisation parameters.
- Evaluation: ``model.stateless_call`` with the perturbed weights (and the normalization's
  moving statistics as they are, a model with batch normalization has them); the model's own variables are
  never assigned, so the weights are untouched whatever happens (a cancelled computation, a
  training tick in between). The weights and the loss's parameters are snapshot when the
  landscape is set up: training may carry on meanwhile.
- Row by row: :meth:`Landscape.rows` is a generator yielding one row of the grid at a time, so a
  page can show progress and stop early.

``values[i, j]`` is the loss at ``x[j]`` (along d1), ``y[i]`` (along d2); the centre is the loss
at the weights themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from explorer import losses


def random_directions(shapes: Sequence[tuple[int, ...]], seed: int = 0, count: int = 2) -> list[list[np.ndarray]]:
    """``count`` directions, each one float32 array per shape, from a generator seeded by ``seed``
    only (independent of any weights)."""
    rng = np.random.default_rng([seed, 2018])
    return [[rng.standard_normal(shape).astype(np.float32) for shape in shapes] for _ in range(count)]


def filter_normalise(direction: Sequence[np.ndarray], weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each filter of ``direction`` (slice along the last axis of a ≥2-D variable) rescaled to
    the norm of the matching filter of ``weights``; 1-D variables (biases) set to zero."""
    out = []
    for d, w in zip(direction, weights, strict=True):
        d = np.asarray(d, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if d.shape != w.shape:
            raise ValueError(f"direction {d.shape} and weights {w.shape} differ")
        if w.ndim <= 1:
            out.append(np.zeros(w.shape, np.float32))
            continue
        axes = tuple(range(w.ndim - 1))
        d_norm = np.sqrt(np.sum(d**2, axis=axes, keepdims=True))
        w_norm = np.sqrt(np.sum(w**2, axis=axes, keepdims=True))
        scale = np.divide(w_norm, d_norm, out=np.zeros_like(d_norm), where=d_norm > 0)
        out.append((d * scale).astype(np.float32))
    return out


def directions(model: keras.Model, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The two filter-normalised directions for ``model`` at its current weights."""
    weights = [v.numpy() for v in model.trainable_variables]
    raw = random_directions([w.shape for w in weights], seed)
    return filter_normalise(raw[0], weights), filter_normalise(raw[1], weights)


def axis(span: float = 1.0, steps: int = 21) -> np.ndarray:
    if steps < 2:
        raise ValueError(f"a landscape needs at least 2 steps per axis, got {steps}")
    return np.linspace(-span, span, int(steps))


@dataclass
class Landscape:
    """A landscape to compute: call :meth:`rows` (a generator) or :meth:`compute`."""

    x: np.ndarray
    y: np.ndarray
    weights: list[np.ndarray]
    d1: list[np.ndarray]
    d2: list[np.ndarray]
    loss_id: str
    _point: object

    def rows(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yields ``(i, values[i, :])`` for each row, from the bottom (y = −span) up."""
        for i, y in enumerate(self.y):
            t = tf.constant(y, tf.float32)
            yield i, np.array([float(self._point(tf.constant(x, tf.float32), t)) for x in self.x])

    def compute(self) -> np.ndarray:
        values = np.full((len(self.y), len(self.x)), np.nan)
        for i, row in self.rows():
            values[i] = row
        return values

    def center(self) -> float:
        """The loss at the weights themselves."""
        return float(self._point(tf.constant(0.0), tf.constant(0.0)))


def landscape(
    model: keras.Model,
    loss: losses.SegLoss,
    images: np.ndarray,
    masks: np.ndarray,
    *,
    seed: int = 0,
    span: float = 1.0,
    steps: int = 21,
) -> Landscape:
    """Set up the landscape of ``model`` under ``loss`` on the batch (``images`` (N, H, W, 3),
    index ``masks`` (N, H, W)) around the current weights. Nothing is evaluated yet."""
    weights = [np.array(v.numpy(), copy=True) for v in model.trainable_variables]
    statistics = [tf.constant(v.numpy()) for v in model.non_trainable_variables]  # batch norm's moving means and variances
    d1, d2 = directions(model, seed)
    # A private copy of the loss at its current parameters: a slider moved during the computation
    # changes the run's loss, not this landscape.
    frozen = losses.get(loss.loss_id, **loss.params)
    x_batch = tf.constant(np.asarray(images, dtype=np.float32))
    # Integer masks, as in training: a loss with an ignore_index (a void label) takes no one-hot target.
    y_batch = tf.constant(np.asarray(masks).astype(np.int32))
    w_t = [tf.constant(w) for w in weights]
    d1_t = [tf.constant(d) for d in d1]
    d2_t = [tf.constant(d) for d in d2]

    @tf.function
    def point(s, t):
        variables = [w + s * a + t * b for w, a, b in zip(w_t, d1_t, d2_t)]
        logits, _ = model.stateless_call(variables, statistics, x_batch, training=False)
        return frozen(y_batch, logits)

    return Landscape(x=axis(span, steps), y=axis(span, steps), weights=weights, d1=d1, d2=d2, loss_id=loss.loss_id, _point=point)
