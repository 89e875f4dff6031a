"""Cheap validation metrics from integer predictions and truth, via a confusion matrix.

Conventions: rows are truth, columns prediction. A ratio whose denominator is 0 is NaN
("undefined"), never 0 or 1:
- IoU and Dice are NaN for a class absent from both truth and prediction
  (nothing to get right or wrong); the means skip NaN (nanmean).
- precision is NaN for a class never predicted, recall for a class absent from truth.
So a class present in truth but never predicted scores IoU 0, Dice 0, recall 0.

``ignore_index`` (a void label in the truth, like Pascal VOC's 255) leaves those pixels out of
every count, whatever was predicted there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scores", "class_ab", "confusion_matrix", "confusion_matrix_tf", "scores"]


def _valid(y_true: np.ndarray, ignore_index: int | None) -> np.ndarray | None:
    """Boolean mask of the pixels to count (None: all)."""
    return None if ignore_index is None else y_true != ignore_index


def confusion_matrix(y_true, y_pred, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """(C, C) int64 counts, [t, p] = pixels of truth t predicted as p; any equal shapes. Pixels
    whose truth is ``ignore_index`` are not counted."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    valid = _valid(y_true, ignore_index)
    if valid is not None:
        y_true, y_pred = y_true[valid], y_pred[valid]
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
            raise ValueError(
                f"{name} has dtype {y.dtype}: expected integer class indices "
                "(take argmax over the class axis first)"
            )
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(
                f"{name} holds values from {y.min()} to {y.max()}, "
                f"outside 0 to {num_classes - 1} for {num_classes} classes"
            )
    index = y_true.astype(np.int64).ravel() * num_classes + y_pred.astype(np.int64).ravel()
    counts = np.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def confusion_matrix_tf(y_true, y_pred, num_classes: int, ignore_index: int | None = None):
    """TensorFlow twin of `confusion_matrix`, usable inside a tf.function (int64 (C, C))."""
    # Imported here so the numpy metrics stay usable without loading TensorFlow.
    import tensorflow as tf

    t = tf.reshape(tf.cast(y_true, tf.int64), [-1])
    p = tf.reshape(tf.cast(y_pred, tf.int64), [-1])
    if ignore_index is not None:
        keep = tf.not_equal(t, ignore_index)
        t, p = tf.boolean_mask(t, keep), tf.boolean_mask(p, keep)
    # An out-of-range label would silently land in another cell: fail loudly instead.
    checks = [
        tf.debugging.assert_non_negative(t, message="y_true has negative labels"),
        tf.debugging.assert_non_negative(p, message="y_pred has negative labels"),
        tf.debugging.assert_less(t, tf.constant(num_classes, tf.int64), message="y_true >= C"),
        tf.debugging.assert_less(p, tf.constant(num_classes, tf.int64), message="y_pred >= C"),
    ]
    with tf.control_dependencies(checks):
        index = t * num_classes + p
    size = num_classes * num_classes
    counts = tf.math.bincount(index, minlength=size, maxlength=size, dtype=tf.int64)
    return tf.reshape(counts, [num_classes, num_classes])


@dataclass(frozen=True, eq=False)
class Scores:
    """Per-class arrays (float64, length C) and their summaries; see the module docstring."""

    iou: np.ndarray
    dice: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    mean_iou: float
    mean_dice: float
    pixel_accuracy: float
    normalized_confusion: np.ndarray  # rows sum to 1; a class absent from truth: all 0


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _nanmean(x: np.ndarray) -> float:
    # np.nanmean warns on an all-NaN slice; an empty matrix simply has no mean.
    return float(np.nanmean(x)) if np.any(~np.isnan(x)) else float("nan")


def scores(confusion: np.ndarray) -> Scores:
    """Per-class IoU, Dice, precision, recall and summaries from a (C, C) confusion matrix."""
    confusion = np.asarray(confusion, dtype=np.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"expected a square (C, C) confusion matrix, got {confusion.shape}")
    tp = np.diag(confusion)
    truth = confusion.sum(axis=1)  # TP + FN
    predicted = confusion.sum(axis=0)  # TP + FP
    iou = _ratio(tp, truth + predicted - tp)
    dice = _ratio(2 * tp, truth + predicted)
    total = confusion.sum()
    normalized = np.zeros_like(confusion)
    np.divide(confusion, truth[:, None], out=normalized, where=truth[:, None] > 0)
    return Scores(
        iou=iou,
        dice=dice,
        precision=_ratio(tp, predicted),
        recall=_ratio(tp, truth),
        mean_iou=_nanmean(iou),
        mean_dice=_nanmean(dice),
        pixel_accuracy=float(tp.sum() / total) if total > 0 else float("nan"),
        normalized_confusion=normalized,
    )


def class_ab(probabilities: np.ndarray, masks: np.ndarray, num_classes: int | None = None, ignore_index: int | None = None) -> np.ndarray:
    """(C, 2): per class ``c``, ``a`` = mean predicted probability of ``c`` over the pixels of ``c``
    (the share of the class found) and ``b`` = mean predicted probability of ``c`` over the other
    pixels (the share of other pixels falsely claimed), pooled over all images: a run's position on
    the (a, b) plane of explorer/surfaces.py.

    ``probabilities`` (N, H, W, C) softmax outputs, ``masks`` (N, H, W) class indices; pixels whose
    mask is ``ignore_index`` count in neither share. NaN where a class has no pixels (a) or covers
    every pixel (b). Cheap enough to record at every evaluation."""
    probabilities = np.asarray(probabilities)
    masks = np.asarray(masks)
    num_classes = probabilities.shape[-1] if num_classes is None else num_classes
    if probabilities.shape[:-1] != masks.shape:
        raise ValueError(f"probabilities {probabilities.shape} and masks {masks.shape} do not match")
    flat_p = probabilities.reshape(-1, num_classes).astype(np.float64)
    flat_m = masks.reshape(-1).astype(np.int64)
    valid = _valid(flat_m, ignore_index)
    if valid is not None:
        flat_p, flat_m = flat_p[valid], flat_m[valid]
    count = np.bincount(flat_m, minlength=num_classes).astype(np.float64)
    total_prob = flat_p.sum(axis=0)
    own = np.array([flat_p[flat_m == c, c].sum() for c in range(num_classes)])
    other = total_prob - own
    others_count = len(flat_m) - count
    out = np.full((num_classes, 2), np.nan)
    np.divide(own, count, out=out[:, 0], where=count > 0)
    np.divide(other, others_count, out=out[:, 1], where=others_count > 0)
    return out
