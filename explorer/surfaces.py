"""Loss and gradient surfaces, computed by the losses of explorer/losses.py on synthetic predictions.

Nothing here re-derives a loss: every value and every gradient is the registered loss function
(``FUNCTIONS[id]``, what ``SegLoss.call`` runs) evaluated on a batch of synthetic images, and
the gradients come from one ``tf.GradientTape`` over that batch.

The synthetic image
    Two channels: the class ``c`` and "every other class". It has ``P`` pixels of which ``n``
    belong to the class; ``n / P`` (the *realised share*) is chosen close to the requested share
    ``f`` with ``P`` as small as possible (see :func:`image_layout`), so a 101×101 grid of images
    is one small batched call. The class's pixels all predict the class with probability ``a``,
    the other pixels with probability ``b``:

    - ``a``: the mean predicted probability of the class on its own pixels (the share *found*);
    - ``b``: the mean predicted probability of the class on the other pixels (the share *falsely
      claimed*).

    Logits are built from the probabilities, clipped to ``[EPS, 1 − EPS]`` so they stay finite:
    ``z = log p`` per channel for softmax losses (softmax(z) = p exactly), ``z = logit(p)`` per
    channel for the sigmoid losses (bce, binary_focal: σ(z) = p per channel).
    The class sits in channel 1, or in channel 0 when it is class 0 (the background), so losses
    that treat class 0 specially (unified focal, ``include_background=False``) see it where they
    would in the real data.

Conventions (said on the page as well)
    - Gradients are with respect to the logit of the pixel's *true* class and are multiplied by
      the number of pixels ``P``: the gradient as if the loss were a sum over pixels. For a
      pixel-wise loss that is exactly the gradient of the pixel's own loss, and for region
      losses it does not depend on ``P`` at a given share. The ratio of two gradients does not
      depend on ``P`` at all.
    - Class weights of a C-class loss map onto the two channels: the class keeps its own weight
      ``w_c``; "every other class" gets the pixel-share-weighted mean of the other classes'
      weights (the expected weight of a pixel that is not ``c``), or the background's weight
      when no shares are given (:func:`two_class_weights`).
    - ``batch`` is evaluated as False: every grid point is an image of its own (for one image,
      pooled and per-image counts are the same). ``from_logits`` is always True here.
    - The smoothing ``s`` acts on the counts of the synthetic image (``P`` pixels, ``n`` of the
      class). With the default 1e-5 this changes nothing; a large ``s`` weighs more here than on
      a larger real image (``s`` on ``P`` pixels is like ``s · P_real / P`` on ``P_real``).

Public API: :func:`plane` (the values alone, as ``(a, b, values)`` arrays), :func:`planes`
(values and gradient planes), :func:`pixel_curve`, :func:`image_layout`,
:func:`two_class_weights`. A trained run's own (a, b) per class is
``explorer.metrics.class_ab``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from explorer import losses

EPS = 1e-6  # probabilities are clipped to [EPS, 1 − EPS] before taking logits
MAX_PIXELS = 256  # the largest synthetic image; cost grows linearly with it
SHARE_TOLERANCE = 0.005  # relative error of the realised share accepted before a larger image

# Losses with one sigmoid per channel: their logits are logit(p), not log(p).
SIGMOID_LOSSES = frozenset({"bce", "binary_focal"})
# XLA's sort on CPU is several times slower than TensorFlow's top_k: Lovász runs unfused.
_NO_XLA = frozenset({"lovasz"})


# ---------------------------------------------------------------------------------------------
# The synthetic image


@dataclass(frozen=True)
class Layout:
    """A synthetic image of ``pixels`` pixels, ``class_pixels`` of them of the class, which
    sits in channel ``class_channel`` (the other channel holds every other class)."""

    pixels: int
    class_pixels: int
    class_channel: int = 1

    @property
    def share(self) -> float:
        """The realised share n / P."""
        return self.class_pixels / self.pixels

    @property
    def other_channel(self) -> int:
        return 1 - self.class_channel


def image_layout(fraction: float, class_index: int = 1, *, pixels: int | None = None, max_pixels: int = MAX_PIXELS) -> Layout:
    """The smallest image whose realised share ``n / P`` is within ``SHARE_TOLERANCE`` (relative)
    of ``fraction``, or the closest with ``P ≤ max_pixels``; ``pixels`` fixes ``P`` instead.
    Always ``1 ≤ n ≤ P − 1``: both kinds of pixel exist."""
    fraction = float(fraction)
    if not (0.0 < fraction < 1.0):
        raise ValueError(
            f"the class's pixel share must be strictly between 0 and 1, got {fraction!r}: a class with "
            "no pixels (or only pixels of it) has no plane"
        )
    channel = 0 if class_index == 0 else 1
    if pixels is not None:
        if pixels < 2:
            raise ValueError(f"an image needs at least 2 pixels (one of the class, one not), got {pixels}")
        return Layout(pixels, int(min(max(round(fraction * pixels), 1), pixels - 1)), channel)
    best = None
    for p in range(2, max_pixels + 1):
        n = min(max(round(fraction * p), 1), p - 1)
        error = abs(n / p - fraction) / fraction
        if best is None or error < best[0] - 1e-12:
            best = (error, p, n)
        if error <= SHARE_TOLERANCE:
            break
    _, p, n = best
    return Layout(p, n, channel)


def two_class_weights(class_weights: Sequence[float] | None, class_index: int, class_shares: Sequence[float] | None = None) -> np.ndarray | None:
    """A C-class weight vector mapped onto the synthetic image's two channels, in channel order.

    The class keeps ``w_c``. "Every other class" gets the mean of the other classes' weights
    weighted by their pixel shares (the expected weight of a pixel that is not ``c``); without
    shares, the background's weight ``w_0`` (or, for ``c = 0``, the plain mean of the others).
    A two-class vector is returned as it is (in channel order). None stays None."""
    if class_weights is None:
        return None
    w = np.asarray(class_weights, dtype=np.float64)
    if len(w) == 2 and class_shares is None:
        return w.copy()
    if not 0 <= class_index < len(w):
        raise ValueError(f"class {class_index} is not one of the {len(w)} classes of the weights")
    others = np.array([k for k in range(len(w)) if k != class_index])
    if class_shares is not None:
        shares = np.asarray(class_shares, dtype=np.float64)[others]
        w_other = float(np.sum(shares * w[others]) / np.sum(shares)) if np.sum(shares) > 0 else float(np.mean(w[others]))
    elif class_index != 0:
        w_other = float(w[0])
    else:
        w_other = float(np.mean(w[others]))
    w_class = float(w[class_index])
    return np.array([w_class, w_other] if class_index == 0 else [w_other, w_class])


# ---------------------------------------------------------------------------------------------
# One batched, traced evaluation


@dataclass(frozen=True)
class _Batch:
    """Per synthetic image: its loss, the per-pixel losses of a class pixel and of an other pixel
    (pixel-wise losses, else None) and the signed gradients (×P) with respect to the true-class
    logit of a class pixel and of an other pixel."""

    value: np.ndarray
    class_pixel_loss: np.ndarray | None
    other_pixel_loss: np.ndarray | None
    class_gradient: np.ndarray
    other_gradient: np.ndarray


_EVALUATORS: dict[tuple, object] = {}
_MAX_EVALUATORS = 96  # traced (loss structure, layout, grid size) combinations kept
_EVALUATORS_LOCK = threading.Lock()


def _float_params(loss: losses.SegLoss) -> dict[str, float]:
    names = [p.name for p in loss.spec.params]
    return {name: float(loss.params[name]) for name in names}


def _flags(loss: losses.SegLoss) -> tuple[tuple[str, bool], ...]:
    params = loss.params
    flags = {flag: bool(params[flag]) for flag in loss.spec.flags}
    if "batch" in flags:
        flags["batch"] = False  # one image per grid point: pooled counts are the image's counts
    flags["from_logits"] = True
    return tuple(sorted(flags.items()))


def _evaluator(loss_id: str, flags: tuple, weighted: bool, layout: Layout, size: int):
    """A traced function from (class prob of class pixels (size,), class prob of other pixels
    (size,), float params, 2-class weights) to the per-image results. One per loss structure,
    layout and batch size; parameter values are tensors, so new values never retrace."""
    key = (loss_id, flags, weighted, layout, size)
    with _EVALUATORS_LOCK:
        if key in _EVALUATORS:
            return _EVALUATORS[key]
    spec = losses.REGISTRY[loss_id]
    loss_function = losses.FUNCTIONS[loss_id]
    pixels, n, ch = layout.pixels, layout.class_pixels, layout.class_channel
    sigmoid = loss_id in SIGMOID_LOSSES
    flag_kwargs = dict(flags)
    one_hot_class = np.eye(2, dtype=np.float32)[ch]
    one_hot_other = np.eye(2, dtype=np.float32)[1 - ch]
    # The region losses' image: n class pixels, then P − n other pixels (one row of P pixels).
    target = np.concatenate([np.tile(one_hot_class, (n, 1)), np.tile(one_hot_other, (pixels - n, 1))])[None, None]

    def logits(q):
        """(size,) class probabilities → (size, 2) logits in channel order."""
        q = tf.clip_by_value(q, EPS, 1.0 - EPS)
        if sigmoid:
            zc = tf.math.log(q) - tf.math.log1p(-q)
            zo = -zc
        else:
            zc, zo = tf.math.log(q), tf.math.log1p(-q)
        return tf.stack([zc, zo] if ch == 0 else [zo, zc], axis=-1)

    def evaluate(class_prob, other_prob, params, weights, target, pair_target):
        # The targets come in as arguments, not constants: XLA would otherwise fold reductions
        # over the broadcast target at compile time, pixel by pixel (seconds of compiling).
        kwargs = dict(params, **flag_kwargs)
        if weighted:
            kwargs["class_weights"] = weights
        z_class, z_other = logits(class_prob), logits(other_prob)
        if spec.kind == "pixel":
            return pixelwise(z_class, z_other, kwargs, pair_target)
        y = tf.broadcast_to(target, [size, 1, pixels, 2])
        with tf.GradientTape() as tape:
            tape.watch([z_class, z_other])
            z = tf.concat(
                [tf.broadcast_to(z_class[:, None, None, :], [size, 1, n, 2]), tf.broadcast_to(z_other[:, None, None, :], [size, 1, pixels - n, 2])],
                axis=2,
            )
            value = loss_function(y, z, **kwargs)
            total = tf.reduce_sum(value)  # images are independent: each one's gradient is its own
        g_class, g_other = tape.gradient(total, [z_class, z_other])
        # Sums over each group's pixels → one pixel's gradient (the group's mean), ×P.
        return {
            "value": value,
            "class_gradient": g_class[:, ch] * (pixels / n),
            "other_gradient": g_other[:, 1 - ch] * (pixels / (pixels - n)),
        }

    def pixelwise(z_class, z_other, kwargs, pair_target):
        """A pixel-wise loss is the mean of its per-pixel losses (what ``per_pixel`` returns and
        ``SegLoss`` averages), each depending on its own pixel only: one class pixel and one other
        pixel per grid point give the image's loss, n·ℓ_class + (P − n)·ℓ_other over P, and the
        gradient of each pixel's own loss, which is the gradient ×P of the image's mean."""
        y = tf.broadcast_to(pair_target, [size, 1, 2, 2])
        with tf.GradientTape() as tape:
            tape.watch([z_class, z_other])
            z = tf.stack([z_class, z_other], axis=1)[:, None]  # (size, 1, 2 pixels, 2 channels)
            out = loss_function(y, z, **kwargs)  # (size, 1, 2) per-pixel losses
            total = tf.reduce_sum(out)
        g_class, g_other = tape.gradient(total, [z_class, z_other])
        class_loss, other_loss = out[:, 0, 0], out[:, 0, 1]
        return {
            "value": (n * class_loss + (pixels - n) * other_loss) / pixels,
            "class_pixel_loss": class_loss,
            "other_pixel_loss": other_loss,
            "class_gradient": g_class[:, ch],
            "other_gradient": g_other[:, 1 - ch],
        }

    targets = (tf.constant(target), tf.constant(np.stack([one_hot_class, one_hot_other])[None, None]))
    state = {"traced": tf.function(evaluate, jit_compile=loss_id not in _NO_XLA), "checked": False}

    def function(class_prob, other_prob, params, weights):
        args = (class_prob, other_prob, params, weights, *targets)
        if state["checked"]:
            return state["traced"](*args)
        try:  # the first call compiles; a device or an op XLA cannot compile falls back to plain TF
            out = state["traced"](*args)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.InternalError):
            state["traced"] = tf.function(evaluate)
            out = state["traced"](*args)
        state["checked"] = True
        return out

    function.state = state  # for tests: state["traced"].experimental_get_tracing_count()
    with _EVALUATORS_LOCK:
        while len(_EVALUATORS) >= _MAX_EVALUATORS:  # the oldest first
            del _EVALUATORS[next(iter(_EVALUATORS))]
        return _EVALUATORS.setdefault(key, function)


def _run(loss: losses.SegLoss, class_prob: np.ndarray, other_prob: np.ndarray, layout: Layout, class_index: int, class_shares) -> _Batch:
    if not isinstance(loss, losses.SegLoss):
        raise TypeError(f"expected a loss from explorer.losses.get, got {type(loss).__name__}")
    weights = loss.params.get("class_weights") if loss.spec.uses_class_weights else None
    pair = two_class_weights(weights, class_index, class_shares)
    size = len(class_prob)
    function = _evaluator(loss.loss_id, _flags(loss), pair is not None, layout, size)
    params = {k: tf.constant(v, tf.float32) for k, v in _float_params(loss).items()}
    w = tf.constant(pair if pair is not None else np.ones(2), tf.float32)
    out = function(tf.constant(class_prob, tf.float32), tf.constant(other_prob, tf.float32), params, w)
    out = {k: v.numpy().astype(np.float64) for k, v in out.items()}
    return _Batch(
        value=out["value"],
        class_pixel_loss=out.get("class_pixel_loss"),
        other_pixel_loss=out.get("other_pixel_loss"),
        class_gradient=out["class_gradient"],
        other_gradient=out["other_gradient"],
    )


# ---------------------------------------------------------------------------------------------
# Public surfaces


B_LOG_MIN = 1e-4  # the smallest b of a log-spaced b axis


def grid(resolution: int = 101, scale: str = "linear") -> np.ndarray:
    """The axis values of a plane: ``resolution`` points from 0 to 1 inclusive, or log-spaced from
    ``B_LOG_MIN`` to 1 (``scale="log"``: for a rare class the false alarms that matter are a tiny
    share of the other pixels)."""
    if resolution < 2:
        raise ValueError(f"a plane needs at least 2 points per axis, got {resolution}")
    if scale == "linear":
        return np.linspace(0.0, 1.0, int(resolution))
    if scale == "log":
        return np.logspace(np.log10(B_LOG_MIN), 0.0, int(resolution))
    raise ValueError(f"scale must be 'linear' or 'log', got {scale!r}")


@dataclass(frozen=True)
class Planes:
    """Surfaces over the (a, b) unit square; every array is ``[i, j]`` at ``a[j]``, ``b[i]``.

    values: the loss of the synthetic image.
    missed: |gradient| (×P) of one of the class's pixels (it is missed by 1 − a).
    false_alarm: |gradient| (×P) of one of the other pixels (falsely claimed by b).
    ratio: missed / false_alarm (NaN where the false alarm's gradient is 0): how much louder a
        missed pixel of the class is than a false alarm.
    """

    a: np.ndarray
    b: np.ndarray
    values: np.ndarray
    missed: np.ndarray
    false_alarm: np.ndarray
    layout: Layout
    weights: np.ndarray | None  # the two-channel class weights used, in channel order

    @property
    def ratio(self) -> np.ndarray:
        out = np.full(self.missed.shape, np.nan)
        np.divide(self.missed, self.false_alarm, out=out, where=self.false_alarm > 0)
        return out


def planes(
    loss: losses.SegLoss,
    fraction: float,
    resolution: int = 101,
    *,
    class_index: int = 1,
    class_shares: Sequence[float] | None = None,
    pixels: int | None = None,
    b_scale: str = "linear",
) -> Planes:
    """The loss and gradient surfaces of ``loss`` over the (a, b) square for a class of pixel share
    ``fraction`` (see the module docstring), in one batched traced call. ``b_scale="log"`` spaces
    the b axis logarithmically from ``B_LOG_MIN`` to 1."""
    layout = image_layout(fraction, class_index, pixels=pixels)
    a, b = grid(resolution), grid(resolution, b_scale)
    grid_a, grid_b = np.meshgrid(a, b)  # [i, j] → a[j], b[i]
    out = _run(loss, grid_a.ravel(), grid_b.ravel(), layout, class_index, class_shares)
    shape = (len(b), len(a))
    weights = loss.params.get("class_weights") if loss.spec.uses_class_weights else None
    return Planes(
        a=a,
        b=b,
        values=out.value.reshape(shape),
        missed=np.abs(out.class_gradient).reshape(shape),
        false_alarm=np.abs(out.other_gradient).reshape(shape),
        layout=layout,
        weights=two_class_weights(weights, class_index, class_shares),
    )


def plane(loss: losses.SegLoss, fraction: float, resolution: int = 101, **options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, values)``: ``values[i, j]`` is the loss at ``a[j]``, ``b[i]`` of a two-class image in
    which a share ``fraction`` of the pixels belongs to the class. Options as :func:`planes`."""
    result = planes(loss, fraction, resolution, **options)
    return result.a, result.b, result.values


@dataclass(frozen=True)
class Curve:
    """Loss and |gradient| with respect to the true class's logit against the true class's
    probability ``p`` (the focal paper's Fig. 1 for any loss).

    Pixel-wise losses: the per-pixel loss of a pixel of the class and its gradient. Region losses:
    the loss of a synthetic image at the class's share in which every pixel gives its true class
    probability ``p`` (a = p, b = 1 − p, the plane's anti-diagonal), and the gradient (×P) of one
    of the class's pixels."""

    p: np.ndarray
    loss: np.ndarray
    gradient: np.ndarray
    kind: str
    layout: Layout


def pixel_curve(
    loss: losses.SegLoss,
    fraction: float = 0.5,
    p: np.ndarray | None = None,
    *,
    class_index: int = 1,
    class_shares: Sequence[float] | None = None,
    pixels: int | None = None,
) -> Curve:
    p = np.linspace(0.005, 1.0, 200) if p is None else np.asarray(p, dtype=np.float64)
    layout = image_layout(fraction, class_index, pixels=pixels)
    out = _run(loss, p, 1.0 - p, layout, class_index, class_shares)
    values = out.class_pixel_loss if loss.spec.kind == "pixel" else out.value
    return Curve(p=p, loss=values, gradient=np.abs(out.class_gradient), kind=loss.spec.kind, layout=layout)


def describe_layout(layout: Layout, fraction: float) -> str:
    """One sentence for the page: the synthetic image and its realised share."""
    return (
        f"Synthetic images of P = {layout.pixels} pixels, {layout.class_pixels} of the class: realised share "
        f"{100 * layout.share:.3f} % for the measured {100 * fraction:.3f} %."
    )
