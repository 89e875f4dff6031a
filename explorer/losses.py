"""Every segmentation loss of docs/losses.md, defined once: the tensor functions behind the ids of
explorer/loss_registry.py and the ``keras.losses.Loss`` around them.

Conventions: ``y_pred`` holds logits (``from_logits=True``, the default) or probabilities,
``(batch, ..., classes)``, channels last; ``y_true`` is one-hot of the same shape or integer
labels ``(batch, ...)`` / ``(batch, ..., 1)``. ``ignore_index`` (labels only, e.g. 255 for
Pascal VOC's void) leaves those pixels out of every term. Softmax over the classes for every
loss except ``bce`` and ``binary_focal`` (one sigmoid per channel).

Each loss is a plain tensor function (``dice_loss(y_true, y_pred, *, smooth, ...)``), found by
its id in ``FUNCTIONS``, and a ``REGISTRY`` entry (name, parameters with ranges, formula, source,
convention notes; explorer/loss_registry.py, imported here too); :class:`SegLoss` is the thin
``keras.losses.Loss`` around them. Pixel-wise losses return one value per pixel ``(batch, ...)``,
region losses one per image ``(batch,)``, or a scalar when ``batch=True`` pools the soft counts
over the batch first.

>>> loss = get("tversky", alpha=0.3, beta=0.7)
>>> loss.set_params(beta=0.9)  # assigns a variable: a traced train step is not retraced

The tensor functions use ``keras.ops`` only, so the exported snippet (explorer/snippet.py) needs
nothing but Keras; its tests run it on the TensorFlow and JAX backends.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

from explorer.loss_registry import REGISTRY, find, validated

# Probability inputs (from_logits=False) are clipped to this before a log, as Keras does.
_PROB_EPS = 1e-7
# See _safe_pow.
_POW_FLOOR = 1e-30

# --------------------------------------------------------------------------------------------
# Shared mechanics


def _targets(y_true, num_classes, ignore_index, dtype):
    """``(one_hot, valid)`` from ``y_true`` of the predictions' rank: one-hot ``(B, ..., C)`` or
    integer labels ``(B, ..., 1)`` (a single sigmoid channel, C = 1: its 0/1 target). ``valid`` is
    None without ``ignore_index``, else a (B, ...) float mask, 0 where the label is
    ``ignore_index``; the one-hot rows of those pixels are all 0, so they add to no sum over the
    target. Labels outside 0..C−1 other than ``ignore_index`` also give all-0 rows: check masks
    before training (explorer/weights.py count_pixels does)."""
    if y_true.shape[-1] != 1:
        if ignore_index is not None:
            raise ValueError(
                "ignore_index marks integer labels but y_true is one-hot: pass the integer mask, "
                "(batch, ...) or (batch, ..., 1), or ignore_index=None"
            )
        return ops.cast(y_true, dtype), None
    if num_classes == 1:
        one_hot = ops.cast(y_true, dtype)
        keep = None if ignore_index is None else ops.not_equal(one_hot[..., 0], ignore_index)
    else:
        labels = ops.cast(y_true[..., 0], "int32")
        keep = None if ignore_index is None else ops.not_equal(labels, ignore_index)
        one_hot = ops.one_hot(labels if keep is None else ops.where(keep, labels, 0), num_classes, dtype=dtype)
    if keep is None:
        return one_hot, None
    valid = ops.cast(keep, dtype)
    return one_hot * valid[..., None], valid


def _inputs(y_true, y_pred, ignore_index=None, min_classes: int = 1):
    """``(one_hot, y_pred, valid)``: the target as one-hot (see :func:`_targets`), float
    predictions, and the valid-pixel mask (None without ``ignore_index``)."""
    y_pred = ops.convert_to_tensor(y_pred)
    if not keras.backend.is_float_dtype(y_pred.dtype):
        y_pred = ops.cast(y_pred, "float32")
    y_true = ops.convert_to_tensor(y_true)
    if len(y_pred.shape) < 2:
        raise ValueError(f"y_pred must be (batch, ..., classes), got shape {y_pred.shape}")
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = y_true[..., None]  # integer labels without a channel axis
    classes = y_pred.shape[-1]
    if (
        len(y_true.shape) != len(y_pred.shape)
        or y_true.shape[-1] not in (1, classes)
        or any(a is not None and b is not None and a != b for a, b in zip(y_true.shape[:-1], y_pred.shape[:-1]))
    ):
        raise ValueError(
            f"y_true {y_true.shape} does not fit y_pred {y_pred.shape}: y_true must be one-hot with the "
            "classes on the last axis like y_pred, or integer labels (batch, ...) or (batch, ..., 1)"
        )
    if classes is not None and classes < min_classes:
        raise ValueError(
            f"a softmax loss needs at least {min_classes} classes on the last axis, got {classes}; "
            "for a single sigmoid channel use bce or binary_focal"
        )
    one_hot, valid = _targets(y_true, classes, ignore_index, y_pred.dtype)
    return one_hot, y_pred, valid


def _masked(values, valid):
    """``values`` with the ignored pixels zeroed: (B, ...) per-pixel values or (B, ..., C)."""
    if valid is None:
        return values
    return values * (valid if len(values.shape) == len(valid.shape) else valid[..., None])


def pixel_mean_scale(y_true, y_pred, ignore_index=None):
    """The factor N / N_valid (pixels / non-ignored pixels; 0 if none) by which a pixel-wise
    loss's per-pixel values are multiplied so that Keras's mean over all pixels is the mean over
    the non-ignored ones: what Keras 3 does for ``SparseCategoricalCrossentropy(ignore_class=…)``.
    1 without ``ignore_index``."""
    if ignore_index is None:
        return 1.0
    _, _, valid = _inputs(y_true, y_pred, ignore_index)
    return ops.divide_no_nan(ops.cast(ops.size(valid), valid.dtype), ops.sum(valid))


def _softmax_log_probs(y_pred, from_logits: bool):
    """(p, log p) over the last axis."""
    if from_logits:
        log_p = ops.log_softmax(y_pred, axis=-1)
        return ops.exp(log_p), log_p
    p = ops.clip(y_pred, 0.0, 1.0)
    return p, ops.log(ops.maximum(p, _PROB_EPS))


def _softmax_probs(y_pred, from_logits: bool):
    return ops.softmax(y_pred, axis=-1) if from_logits else ops.clip(y_pred, 0.0, 1.0)


def _sigmoid_log_probs(y_pred, from_logits: bool):
    """(log σ, log(1 − σ)) per channel."""
    if from_logits:
        return ops.log_sigmoid(y_pred), ops.log_sigmoid(-y_pred)
    p = ops.clip(y_pred, 0.0, 1.0)
    return ops.log(ops.maximum(p, _PROB_EPS)), ops.log(ops.maximum(1.0 - p, _PROB_EPS))


def _as(value, like):
    return ops.cast(value, like.dtype)


def _safe_pow(x, exponent):
    """``x ** exponent`` for ``x >= 0`` with a finite gradient at 0.

    The derivative ``e·x**(e−1)`` is infinite at ``x = 0`` for ``e < 1`` (``(1−p)**γ`` at
    ``p = 1``, ``(1−TI)**γ`` at a perfect overlap) and pow's gradient there is NaN. The base
    is floored at 1e-30 for the gradient's sake only: at exactly 0 the value is still ``0**e``
    (1 for e = 0, else 0) with gradient 0; only bases in (0, 1e-30) change, by at most
    ``1e-30**e`` (1e-3 at the smallest exponent any registry range allows, 0.1).
    Written as exp(e·log x): the same value, with a gradient measured 1.7× faster than pow's."""
    exponent = _as(exponent, x)
    powered = ops.exp(exponent * ops.log(ops.maximum(x, _POW_FLOOR)))
    at_zero = ops.where(ops.greater(x, 0.0), powered, _as(ops.equal(exponent, 0.0), x))
    # A NaN base stays NaN: the NaN guard must see it, not a 0 that hides it.
    return ops.where(ops.isnan(x), x, at_zero)


def _class_weight_vector(class_weights, like, name="class_weights"):
    """Per-class weights as a (C,) tensor: ones when None, a scalar repeated, or a (C,) vector."""
    classes = like.shape[-1]
    ones = ops.ones((classes if classes is not None else ops.shape(like)[-1],), like.dtype)
    if class_weights is None:
        return ones
    w = _as(class_weights, like)
    if len(w.shape) == 0:
        return w * ones
    if len(w.shape) != 1 or (classes is not None and w.shape[0] is not None and w.shape[0] != classes):
        raise ValueError(f"{name} has shape {w.shape}, the predictions {classes} classes")
    return w


def _pixel_axes(x, batch: bool) -> tuple[int, ...]:
    """The axes summed per image (all but batch and classes), or per batch when pooling."""
    return tuple(range(0 if batch else 1, len(x.shape) - 1))


def _mean_per_image(per_pixel, batch: bool, valid=None):
    """(B, ...) pixel values → (B,) per-image means, or the batch mean when batch=True; with a
    ``valid`` mask, means over the valid pixels (0 for an image with none)."""
    axes = None if batch else tuple(range(1, len(per_pixel.shape)))
    if valid is None:
        return ops.mean(per_pixel, axis=axes)
    return ops.divide_no_nan(ops.sum(per_pixel * valid, axis=axes), ops.sum(valid, axis=axes))


def soft_counts(y_true, probs, *, batch: bool = False):
    """Soft TP = Σ p·y, FP = Σ p·(1−y), FN = Σ (1−p)·y summed over the pixels of each image.

    Each is (B, C), or (1, C) when ``batch=True`` pools the whole batch. FP and FN are summed
    directly, not as Σp − TP, so they stay accurate (and ≥ 0) for near-perfect predictions."""
    axes = _pixel_axes(probs, batch)
    tp = ops.sum(probs * y_true, axis=axes)
    fp = ops.sum(probs * (1.0 - y_true), axis=axes)
    fn = ops.sum((1.0 - probs) * y_true, axis=axes)
    if batch:
        return tp[None], fp[None], fn[None]
    return tp, fp, fn


def _tversky_complement(tp, fp, fn, alpha, beta, smooth, tp_weight=1.0):
    """``1 − (w·TP + s)/(w·TP + α·FP + β·FN + s)``, written as ``(α·FP + β·FN)/(…)`` so it
    is exact near 0 and never negative. An empty ratio (0/0 with s = 0) counts as perfect."""
    mismatch = _as(alpha, tp) * fp + _as(beta, tp) * fn
    return ops.divide_no_nan(mismatch, _as(tp_weight, tp) * tp + mismatch + _as(smooth, tp))


def _class_mean(per_class, class_weights, include_background: bool, batch: bool, present=None):
    """(B', C) per-class losses → weighted mean over the included classes, ``Σ w_c L_c / Σ w_c``:
    (B,) per image, or a scalar when batch=True. ``present`` (B', C) masks classes out per image;
    an image with no weight left scores 0."""
    w = _class_weight_vector(class_weights, per_class) * ops.ones_like(per_class)
    if present is not None:
        w = w * present
    if not include_background:
        per_class, w = per_class[..., 1:], w[..., 1:]
    mean = ops.divide_no_nan(ops.sum(w * per_class, -1), ops.sum(w, -1))
    return mean[0] if batch else mean


# --------------------------------------------------------------------------------------------
# Pixel-wise losses: one value per pixel, (B, ...)


def ce_loss(y_true, y_pred, *, from_logits=True, ignore_index=None):
    """Categorical cross-entropy per pixel, ``−Σ_c y_c log p_c``."""
    y_true, y_pred, valid = _inputs(y_true, y_pred, ignore_index, min_classes=2)
    _, log_p = _softmax_log_probs(y_pred, from_logits)
    return _masked(-ops.sum(y_true * log_p, axis=-1), valid)


def weighted_ce_loss(y_true, y_pred, *, class_weights=None, from_logits=True, ignore_index=None):
    """Class-weighted cross-entropy per pixel, ``−Σ_c w_c y_c log p_c`` (Keras-style mean)."""
    y_true, y_pred, valid = _inputs(y_true, y_pred, ignore_index, min_classes=2)
    _, log_p = _softmax_log_probs(y_pred, from_logits)
    w = _class_weight_vector(class_weights, y_pred)
    return _masked(-ops.sum(w * y_true * log_p, axis=-1), valid)


def bce_loss(y_true, y_pred, *, from_logits=True, ignore_index=None):
    """Sigmoid binary cross-entropy per channel, averaged over the channels of each pixel."""
    y_true, y_pred, valid = _inputs(y_true, y_pred, ignore_index)
    log_p, log_q = _sigmoid_log_probs(y_pred, from_logits)
    return _masked(-ops.mean(y_true * log_p + (1.0 - y_true) * log_q, axis=-1), valid)


def focal_loss(y_true, y_pred, *, alpha, gamma, class_weights=None, from_logits=True, ignore_index=None):
    """Softmax focal loss per pixel, ``−Σ_c α_c y_c (1−p_c)^γ log p_c``: ``α_c = alpha·w_c`` for a
    scalar alpha, or the per-class list alpha itself (Keras's list α)."""
    y_true, y_pred, valid = _inputs(y_true, y_pred, ignore_index, min_classes=2)
    p, log_p = _softmax_log_probs(y_pred, from_logits)
    a = _class_weight_vector(alpha, y_pred, "alpha") * _class_weight_vector(class_weights, y_pred)
    return _masked(-ops.sum(a * _safe_pow(1.0 - p, gamma) * y_true * log_p, axis=-1), valid)


def binary_focal_loss(y_true, y_pred, *, alpha, gamma, from_logits=True, ignore_index=None):
    """Sigmoid focal loss per channel, α on positives and 1−α on negatives, averaged over channels."""
    y_true, y_pred, valid = _inputs(y_true, y_pred, ignore_index)
    log_p, log_q = _sigmoid_log_probs(y_pred, from_logits)
    alpha, gamma = _as(alpha, y_pred), _as(gamma, y_pred)
    # (1−σ)^γ = exp(γ·log(1−σ)): exact, and finite with a finite gradient even where σ rounds to 1.
    positive = alpha * y_true * ops.exp(gamma * log_q) * log_p
    negative = (1.0 - alpha) * (1.0 - y_true) * ops.exp(gamma * log_p) * log_q
    return _masked(-ops.mean(positive + negative, axis=-1), valid)


# --------------------------------------------------------------------------------------------
# Region losses: one value per image (B,), or a scalar with batch=True. Ignored pixels have an
# all-zero target row and their probabilities are zeroed too, so they add to no soft count.


def _region_inputs(y_true, y_pred, ignore_index, from_logits):
    """``(one_hot, probs, valid)`` with ``probs`` 0 at ignored pixels."""
    y_true, y_pred, valid = _inputs(y_true, y_pred, ignore_index, min_classes=2)
    return y_true, _masked(_softmax_probs(y_pred, from_logits), valid), valid


def dice_loss(
    y_true, y_pred, *, smooth, class_weights=None, batch=False, include_background=True, from_logits=True, ignore_index=None
):
    """Soft Dice loss ``1 − (2TP + s)/(2TP + FP + FN + s)`` per image and class, then the class mean."""
    y_true, probs, _ = _region_inputs(y_true, y_pred, ignore_index, from_logits)
    tp, fp, fn = soft_counts(y_true, probs, batch=batch)
    per_class = _tversky_complement(tp, fp, fn, 1.0, 1.0, smooth, tp_weight=2.0)
    return _class_mean(per_class, class_weights, include_background, batch)


def iou_loss(
    y_true, y_pred, *, smooth, class_weights=None, batch=False, include_background=True, from_logits=True, ignore_index=None
):
    """Soft Jaccard loss ``1 − (TP + s)/(TP + FP + FN + s)`` per image and class, then the class mean."""
    y_true, probs, _ = _region_inputs(y_true, y_pred, ignore_index, from_logits)
    tp, fp, fn = soft_counts(y_true, probs, batch=batch)
    per_class = _tversky_complement(tp, fp, fn, 1.0, 1.0, smooth)
    return _class_mean(per_class, class_weights, include_background, batch)


def tversky_loss(
    y_true,
    y_pred,
    *,
    alpha,
    beta,
    smooth,
    class_weights=None,
    batch=False,
    include_background=True,
    from_logits=True,
    ignore_index=None,
):
    """Tversky loss ``1 − (TP + s)/(TP + α·FP + β·FN + s)``: α on false positives, β on false negatives."""
    y_true, probs, _ = _region_inputs(y_true, y_pred, ignore_index, from_logits)
    tp, fp, fn = soft_counts(y_true, probs, batch=batch)
    per_class = _tversky_complement(tp, fp, fn, alpha, beta, smooth)
    return _class_mean(per_class, class_weights, include_background, batch)


def focal_tversky_loss(
    y_true,
    y_pred,
    *,
    alpha,
    beta,
    gamma,
    smooth,
    class_weights=None,
    batch=False,
    include_background=True,
    from_logits=True,
    ignore_index=None,
):
    """Focal Tversky loss ``(1 − TI)^γ`` per image and class, then the class mean."""
    y_true, probs, _ = _region_inputs(y_true, y_pred, ignore_index, from_logits)
    tp, fp, fn = soft_counts(y_true, probs, batch=batch)
    per_class = _safe_pow(_tversky_complement(tp, fp, fn, alpha, beta, smooth), gamma)
    return _class_mean(per_class, class_weights, include_background, batch)


def sensitivity_specificity_loss(
    y_true,
    y_pred,
    *,
    r,
    smooth,
    class_weights=None,
    batch=False,
    include_background=True,
    from_logits=True,
    ignore_index=None,
):
    """``r·Σ(y−p)²y/(Σy + s) + (1−r)·Σ(y−p)²(1−y)/(Σ(1−y) + s)`` per image and class, then the class mean."""
    y_true, probs, valid = _region_inputs(y_true, y_pred, ignore_index, from_logits)
    axes = _pixel_axes(probs, batch)
    squared = ops.square(y_true - probs)
    negatives = _masked(1.0 - y_true, valid)
    smooth = _as(smooth, probs)
    sensitivity = ops.divide_no_nan(
        ops.sum(squared * y_true, axes), ops.sum(y_true, axes) + smooth
    )
    specificity = ops.divide_no_nan(
        ops.sum(squared * negatives, axes), ops.sum(negatives, axes) + smooth
    )
    r = _as(r, probs)
    per_class = r * sensitivity + (1.0 - r) * specificity
    if batch:
        per_class = per_class[None]
    return _class_mean(per_class, class_weights, include_background, batch)


def generalized_dice_loss(
    y_true, y_pred, *, smooth, batch=False, include_background=True, from_logits=True, ignore_index=None
):
    """Generalized Dice ``1 − (2Σ w_c TP_c + s)/(Σ w_c (2TP+FP+FN)_c + s)`` per image, ``w_c = 1/(Σy_c)²``."""
    y_true, probs, _ = _region_inputs(y_true, y_pred, ignore_index, from_logits)
    tp, fp, fn = soft_counts(y_true, probs, batch=batch)
    volume = ops.sum(y_true, _pixel_axes(y_true, batch))
    if batch:
        volume = volume[None]
    if not include_background:
        tp, fp, fn, volume = tp[:, 1:], fp[:, 1:], fn[:, 1:], volume[:, 1:]
    present = ops.greater(volume, 0.0)
    w = ops.where(present, 1.0 / ops.square(ops.where(present, volume, ops.ones_like(volume))), ops.zeros_like(volume))
    # MONAI: an absent class (infinite weight) takes the image's largest finite weight; with no
    # class present every weight is 0 and the image scores 0.
    w = ops.where(present, w, ops.max(w, axis=-1, keepdims=True))
    mismatch = ops.sum(w * (fp + fn), -1)
    total = ops.sum(w * (2.0 * tp + fp + fn), -1) + _as(smooth, tp)
    loss = ops.divide_no_nan(mismatch, total)
    return loss[0] if batch else loss


def ce_dice_loss(
    y_true,
    y_pred,
    *,
    lambda_ce,
    lambda_dice,
    smooth,
    class_weights=None,
    batch=False,
    include_background=True,
    from_logits=True,
    ignore_index=None,
):
    """``λ_ce·ce + λ_dice·dice`` per image: the pixel mean of (weighted) CE over the image's
    non-ignored pixels plus the image's Dice loss."""
    pixels = weighted_ce_loss(
        y_true, y_pred, class_weights=class_weights, from_logits=from_logits, ignore_index=ignore_index
    )
    valid = _inputs(y_true, y_pred, ignore_index, min_classes=2)[2]
    ce = _mean_per_image(pixels, batch, valid)
    dice = dice_loss(
        y_true,
        y_pred,
        smooth=smooth,
        class_weights=class_weights,
        batch=batch,
        include_background=include_background,
        from_logits=from_logits,
        ignore_index=ignore_index,
    )
    return _as(lambda_ce, ce) * ce + _as(lambda_dice, dice) * dice


def lovasz_loss(
    y_true, y_pred, *, class_weights=None, batch=False, include_background=True, from_logits=True, ignore_index=None
):
    """Lovász-softmax (Berman et al. 2018): the Lovász extension of the Jaccard loss per image and
    class, averaged over the classes present in the image's target. Ignored pixels have error 0:
    they sort last and add nothing."""
    y_true, probs, _ = _region_inputs(y_true, y_pred, ignore_index, from_logits)
    classes = ops.shape(probs)[-1]
    rows = 1 if batch else ops.shape(probs)[0]
    # (rows, C, pixels): one sort per image (or per batch) and class.
    fg = ops.transpose(ops.reshape(y_true, [rows, -1, classes]), [0, 2, 1])
    p = ops.transpose(ops.reshape(probs, [rows, -1, classes]), [0, 2, 1])
    errors, order = ops.top_k(ops.abs(fg - p), k=ops.shape(p)[-1])
    fg_sorted = ops.take_along_axis(fg, order, axis=-1)
    # Jaccard loss of the k largest errors, |S_k| / |G ∪ S_k|, and its increments: the Lovász
    # extension's gradient. The union is never empty: it holds G, or S_k with k ≥ 1.
    gts = ops.sum(fg, -1, keepdims=True)
    union = gts + ops.cumsum(1.0 - fg_sorted, axis=-1)
    jaccard = 1.0 - (gts - ops.cumsum(fg_sorted, axis=-1)) / union
    increments = ops.concatenate([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], axis=-1)
    per_class = ops.sum(errors * increments, -1)
    present = _as(ops.greater(gts[..., 0], 0.0), per_class)
    return _class_mean(per_class, class_weights, include_background, batch, present=present)


def unified_focal_loss(
    y_true,
    y_pred,
    *,
    lambda_,
    delta,
    gamma,
    smooth,
    batch=False,
    include_background=True,
    from_logits=True,
    ignore_index=None,
):
    """Asymmetric unified focal loss (Yeung et al. 2022), class 0 the background:
    ``λ·L_aF + (1−λ)·L_aFT`` with δ weighing the classes and γ the focal terms."""
    y_true, y_pred, valid = _inputs(y_true, y_pred, ignore_index, min_classes=2)
    probs, log_p = _softmax_log_probs(y_pred, from_logits)
    lam, delta = _as(lambda_, probs), _as(delta, probs)
    gamma = _as(gamma, probs)
    # Asymmetric focal: suppression (1−p)^γ on the background only, δ vs 1−δ between the classes.
    # The foreground part is the whole CE minus the background's (fewer slices: 30% faster).
    ce = -ops.sum(y_true * log_p, -1)
    ce_background = -y_true[..., 0] * log_p[..., 0]
    suppressed = (1.0 - delta) * _safe_pow(1.0 - probs[..., 0], gamma) * ce_background
    focal = _mean_per_image(suppressed + delta * (ce - ce_background), batch, valid)
    # Asymmetric focal Tversky: δ on false negatives (Yeung's convention, our β), enhancement
    # (1−mTI)^(1−γ) on the foreground classes only.
    tp, fp, fn = soft_counts(y_true, _masked(probs, valid), batch=batch)
    mismatch = _tversky_complement(tp, fp, fn, 1.0 - delta, delta, smooth)
    per_class = ops.concatenate([mismatch[:, :1], _safe_pow(mismatch[:, 1:], 1.0 - gamma)], axis=-1)
    tversky = _class_mean(per_class, None, include_background, batch)
    return lam * focal + (1.0 - lam) * tversky


# --------------------------------------------------------------------------------------------
# The tensor function behind each registry id (explorer/loss_registry.py)

FUNCTIONS: dict[str, Callable] = {
    "ce": ce_loss,
    "weighted_ce": weighted_ce_loss,
    "bce": bce_loss,
    "focal": focal_loss,
    "binary_focal": binary_focal_loss,
    "dice": dice_loss,
    "iou": iou_loss,
    "tversky": tversky_loss,
    "focal_tversky": focal_tversky_loss,
    "sensitivity_specificity": sensitivity_specificity_loss,
    "generalized_dice": generalized_dice_loss,
    "ce_dice": ce_dice_loss,
    "lovasz": lovasz_loss,
    "unified_focal": unified_focal_loss,
}


def _form(value) -> str:
    """A parameter's shape as a variable holds it: 'None', 'a number' or the length of a list."""
    return "None" if value is None else str(len(value)) if isinstance(value, list) else "a number"


@keras.saving.register_keras_serializable(package="explorer")
class SegLoss(keras.losses.Loss):
    """A registered loss as a ``keras.losses.Loss``: ``SegLoss("dice", smooth=1e-5)``.

    Float parameters and class_weights live in non-trainable variables that
    :meth:`set_params` assigns, so a tf.function closing over the loss is never retraced when a
    slider moves. The boolean options (batch, include_background, from_logits), ignore_index, and
    whether there are class weights (or a per-class alpha) at all are fixed at construction: build
    a new loss to change them.

    ``y_true`` may be one-hot ``(B, ..., C)`` or integer labels ``(B, ...)`` / ``(B, ..., 1)``.
    With ``ignore_index`` (labels only), pixels of that label count in no term: pixel-wise losses
    average over the other pixels (as Keras's ``ignore_class`` does), region losses leave them out
    of every soft count.
    """

    def __init__(self, loss_id: str, name: str | None = None, reduction="sum_over_batch_size", dtype=None, **params):
        spec = find(loss_id)
        values = validated(spec, params)
        super().__init__(name=name or loss_id, reduction=reduction, dtype=dtype)
        self.loss_id = loss_id
        self.spec = spec
        self.function = FUNCTIONS[loss_id]
        self._values = values
        self._variables = {
            p.name: keras.Variable(values[p.name], trainable=False, dtype="float32", name=p.name) for p in spec.params
        }  # a per-class list becomes a (C,) variable
        if values.get("class_weights") is not None:
            self._variables["class_weights"] = keras.Variable(
                values["class_weights"], trainable=False, dtype="float32", name="class_weights"
            )

    @property
    def params(self) -> dict:
        """The current values: floats, class_weights (list or None), booleans."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._values.items()}

    def set_params(self, **params) -> None:
        """Assign new float values or class weights (same length). Booleans may be passed only
        with their construction values (so ``set_params(**other.params)`` works)."""
        values = validated(self.spec, params, current=self._values)
        for flag in (*self.spec.flags, "ignore_index"):
            if values[flag] != self._values[flag]:
                raise ValueError(
                    f"loss {self.loss_id!r}: {flag} is fixed at construction ({self._values[flag]}); build a new loss with get()"
                )
        reassigned = [*self._variables, *(["class_weights"] if self.spec.uses_class_weights else [])]
        for name in dict.fromkeys(reassigned):
            old, new = _form(self._values[name]), _form(values[name])
            if old != new:
                raise ValueError(
                    f"loss {self.loss_id!r}: {name} can be reassigned in its form at construction (same length: "
                    f"{old}), not changed to {values[name]!r}; build a new loss with get()"
                )
        for name, variable in self._variables.items():
            variable.assign(values[name])
        self._values = values

    def _fn_kwargs(self) -> dict:
        kwargs = {flag: self._values[flag] for flag in (*self.spec.flags, "ignore_index")}
        kwargs.update(self._variables)
        if self.spec.uses_class_weights:
            kwargs.setdefault("class_weights", None)
        return kwargs

    def call(self, y_true, y_pred):
        values = self.function(y_true, y_pred, **self._fn_kwargs())
        ignore_index = self._values["ignore_index"]
        if self.spec.kind == "pixel" and ignore_index is not None:
            # Keras then averages over all pixels: scaled, that is the mean over the valid ones.
            values = values * pixel_mean_scale(y_true, y_pred, ignore_index)
        return values

    def per_pixel(self, y_true, y_pred):
        """Per-pixel losses (B, H, W) for pixel-wise losses (0 at ignored pixels); None for region losses."""
        if self.spec.kind != "pixel":
            return None
        y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        return self.function(y_true, y_pred, **self._fn_kwargs())

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(loss_id=self.loss_id, **self.params)
        return config


def get(loss_id: str, **params) -> SegLoss:
    """The loss ``loss_id`` of the registry with ``params`` over its defaults (see :func:`defaults`)."""
    return SegLoss(loss_id, **params)
