"""Cheap validation metrics from integer predictions and truth, via a confusion matrix.

Conventions: rows are truth, columns prediction. A ratio whose denominator is 0 is NaN
("undefined"), never 0 or 1:
- IoU and Dice are NaN for a class absent from both truth and prediction
  (nothing to get right or wrong); the means skip NaN (nanmean).
- precision is NaN for a class never predicted, recall for a class absent from truth.
So a class present in truth but never predicted scores IoU 0, Dice 0, recall 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scores", "confusion_matrix", "confusion_matrix_tf", "scores"]


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts, [t, p] = pixels of truth t predicted as p; any equal shapes."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
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


def confusion_matrix_tf(y_true, y_pred, num_classes: int):
    """TensorFlow twin of `confusion_matrix`, usable inside a tf.function (int64 (C, C))."""
    # Imported here so the numpy metrics stay usable without loading TensorFlow.
    import tensorflow as tf

    t = tf.reshape(tf.cast(y_true, tf.int64), [-1])
    p = tf.reshape(tf.cast(y_pred, tf.int64), [-1])
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
