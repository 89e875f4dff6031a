"""Tests for explorer.metrics against references written here as plain loops."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.metrics import class_ab, confusion_matrix, scores


def reference_confusion(y_true, y_pred, num_classes):
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(np.ravel(y_true).tolist(), np.ravel(y_pred).tolist()):
        matrix[t][p] += 1
    return matrix


def reference_scores(y_true, y_pred, num_classes):
    """Per class: count TP, FP, FN pixel by pixel; 0/0 is NaN."""
    t_all, p_all = np.ravel(y_true).tolist(), np.ravel(y_pred).tolist()

    def div(a, b):
        return a / b if b else math.nan

    out = {"iou": [], "dice": [], "precision": [], "recall": []}
    for c in range(num_classes):
        tp = sum(1 for t, p in zip(t_all, p_all) if t == c and p == c)
        fp = sum(1 for t, p in zip(t_all, p_all) if t != c and p == c)
        fn = sum(1 for t, p in zip(t_all, p_all) if t == c and p != c)
        out["iou"].append(div(tp, tp + fp + fn))
        out["dice"].append(div(2 * tp, 2 * tp + fp + fn))
        out["precision"].append(div(tp, tp + fp))
        out["recall"].append(div(tp, tp + fn))
    correct = sum(1 for t, p in zip(t_all, p_all) if t == p)
    out["pixel_accuracy"] = div(correct, len(t_all))
    return out


@st.composite
def labelled_arrays(draw):
    num_classes = draw(st.integers(1, 5))
    shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # Draw from a subset of classes sometimes, so that some classes are absent.
    high = draw(st.integers(1, num_classes))
    y_true = rng.integers(0, high, size=shape)
    y_pred = rng.integers(0, num_classes, size=shape)
    return y_true, y_pred, num_classes


@given(labelled_arrays())
@settings(max_examples=100, deadline=None)
def test_confusion_matches_loop(case):
    y_true, y_pred, num_classes = case
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    assert matrix.dtype == np.int64 and matrix.shape == (num_classes, num_classes)
    np.testing.assert_array_equal(matrix, reference_confusion(y_true, y_pred, num_classes))


@given(labelled_arrays())
@settings(max_examples=100, deadline=None)
def test_scores_match_loop(case):
    y_true, y_pred, num_classes = case
    s = scores(confusion_matrix(y_true, y_pred, num_classes))
    ref = reference_scores(y_true, y_pred, num_classes)
    for name in ("iou", "dice", "precision", "recall"):
        np.testing.assert_allclose(getattr(s, name), ref[name], rtol=1e-12, equal_nan=True)
    iou = [x for x in ref["iou"] if not math.isnan(x)]
    dice = [x for x in ref["dice"] if not math.isnan(x)]
    assert s.mean_iou == pytest.approx(sum(iou) / len(iou))
    assert s.mean_dice == pytest.approx(sum(dice) / len(dice))
    assert s.pixel_accuracy == pytest.approx(ref["pixel_accuracy"])


def test_hand_worked_example():
    # truth 0 0 1 1 2, prediction 0 1 1 1 0 -> rows truth, columns prediction:
    # [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    # class 0: TP 1, FP 1, FN 1 -> IoU 1/3, Dice 2/4, precision 1/2, recall 1/2
    # class 1: TP 2, FP 1, FN 0 -> IoU 2/3, Dice 4/5, precision 2/3, recall 1
    # class 2: TP 0, FP 0, FN 1 -> IoU 0, Dice 0, precision 0/0 = NaN, recall 0
    matrix = confusion_matrix([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    s = scores(matrix)
    np.testing.assert_allclose(s.iou, [1 / 3, 2 / 3, 0])
    np.testing.assert_allclose(s.dice, [0.5, 0.8, 0])
    np.testing.assert_allclose(s.precision, [0.5, 2 / 3, np.nan])
    np.testing.assert_allclose(s.recall, [0.5, 1.0, 0.0])
    assert s.mean_iou == pytest.approx(1 / 3)
    assert s.pixel_accuracy == pytest.approx(3 / 5)
    np.testing.assert_allclose(s.normalized_confusion, [[0.5, 0.5, 0], [0, 1, 0], [1, 0, 0]])


def test_class_absent_from_truth_and_prediction_is_nan_and_skipped():
    # Class 2 appears nowhere: NaN IoU/Dice, and the means are over classes 0 and 1 only.
    s = scores(confusion_matrix([0, 0, 1, 1], [0, 0, 1, 0], 3))
    assert math.isnan(s.iou[2]) and math.isnan(s.dice[2])
    # class 0: TP 2, FP 1 -> IoU 2/3; class 1: TP 1, FN 1 -> IoU 1/2
    assert s.mean_iou == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert s.mean_dice == pytest.approx((4 / 5 + 2 / 3) / 2)
    np.testing.assert_array_equal(s.normalized_confusion[2], [0, 0, 0])


def test_empty_input_gives_nan_summaries_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. nanmean's "Mean of empty slice"
        s = scores(confusion_matrix(np.zeros(0, int), np.zeros(0, int), 2))
    assert math.isnan(s.mean_iou) and math.isnan(s.pixel_accuracy)
    np.testing.assert_array_equal(s.normalized_confusion, np.zeros((2, 2)))


@given(labelled_arrays())
@settings(max_examples=50, deadline=None)
def test_normalized_confusion_rows(case):
    y_true, y_pred, num_classes = case
    s = scores(confusion_matrix(y_true, y_pred, num_classes))
    row_sums = s.normalized_confusion.sum(axis=1)
    for c in range(num_classes):
        expected = 1.0 if np.any(y_true == c) else 0.0
        assert row_sums[c] == pytest.approx(expected)


def test_accuracy_paradox_all_background_predictor():
    # 100x100 mask: 95% background, 4% class 1, 1% class 2; the model says "background".
    truth = np.zeros((100, 100), np.int64)
    truth[:4, :] = 1
    truth[4, :] = 2
    prediction = np.zeros_like(truth)
    s = scores(confusion_matrix(truth, prediction, 3))
    assert s.pixel_accuracy == pytest.approx(0.95)  # looks excellent...
    np.testing.assert_allclose(s.iou, [0.95, 0.0, 0.0])
    assert s.mean_iou == pytest.approx(0.95 / 3)  # ...but mean IoU is about 0.32
    np.testing.assert_array_equal(s.recall[1:], [0.0, 0.0])


@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        (np.array([0, 1]), np.array([0, 1, 1]), "shape"),
        (np.array([0, 3]), np.array([0, 1]), "y_true"),
        (np.array([0, 1]), np.array([-1, 1]), "y_pred"),
        (np.array([0.0, 1.0]), np.array([0, 1]), "integer"),
    ],
)
def test_confusion_rejects_bad_input(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(y_true, y_pred, 3)


def test_scores_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        scores(np.zeros((2, 3)))


# --- TensorFlow twin --------------------------------------------------------------------


def test_tf_confusion_equals_numpy_inside_tf_function():
    tf = pytest.importorskip("tensorflow")
    from explorer.metrics import confusion_matrix_tf

    rng = np.random.default_rng(3)
    compiled = tf.function(lambda t, p: confusion_matrix_tf(t, p, 4))
    for shape in [(2, 5, 7), (1, 1, 1), (3, 8, 8)]:
        y_true = rng.integers(0, 4, size=shape)
        y_pred = rng.integers(0, 3, size=shape)  # class 3 never predicted
        expected = confusion_matrix(y_true, y_pred, 4)
        eager = confusion_matrix_tf(tf.constant(y_true, tf.int32), tf.constant(y_pred), 4)
        graph = compiled(tf.constant(y_true), tf.constant(y_pred, tf.int32))
        assert eager.dtype == tf.int64 and graph.dtype == tf.int64
        np.testing.assert_array_equal(eager.numpy(), expected)
        np.testing.assert_array_equal(graph.numpy(), expected)


def test_tf_confusion_rejects_out_of_range():
    tf = pytest.importorskip("tensorflow")
    from explorer.metrics import confusion_matrix_tf

    with pytest.raises(tf.errors.InvalidArgumentError):
        confusion_matrix_tf(tf.constant([0, 4]), tf.constant([0, 1]), 4)


# --- a void label in the truth -------------------------------------------------------------


VOID = 255


@given(labelled_arrays(), st.integers(0, 2**32 - 1))
@settings(max_examples=50, deadline=None)
def test_void_pixels_are_not_counted(case, seed):
    y_true, y_pred, num_classes = case
    void = np.random.default_rng(seed).random(y_true.shape) < 0.3
    with_void = np.where(void, VOID, y_true)
    matrix = confusion_matrix(with_void, y_pred, num_classes, ignore_index=VOID)
    # The reference simply drops the void pixels before counting.
    np.testing.assert_array_equal(matrix, reference_confusion(y_true[~void], y_pred[~void], num_classes))
    ref = reference_scores(y_true[~void], y_pred[~void], num_classes)
    s = scores(matrix)
    for name in ("iou", "dice", "precision", "recall"):
        np.testing.assert_allclose(getattr(s, name), ref[name], equal_nan=True)


def test_void_label_without_ignore_index_is_refused():
    with pytest.raises(ValueError, match="outside 0 to 2"):
        confusion_matrix(np.array([0, VOID]), np.array([0, 1]), 3)


def test_tf_confusion_skips_void_pixels():
    tf = pytest.importorskip("tensorflow")
    from explorer.metrics import confusion_matrix_tf

    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 4, size=(2, 6, 5))
    y_true[:, :2] = VOID
    y_pred = rng.integers(0, 4, size=y_true.shape)
    compiled = tf.function(lambda t, p: confusion_matrix_tf(t, p, 4, ignore_index=VOID))
    expected = confusion_matrix(y_true, y_pred, 4, ignore_index=VOID)
    assert expected.sum() == np.count_nonzero(y_true != VOID)
    np.testing.assert_array_equal(compiled(tf.constant(y_true), tf.constant(y_pred)).numpy(), expected)


# --- a run's (a, b): the share of each class found and falsely claimed ----------------------


def _probabilities(rng, shape, classes):
    logits = rng.normal(size=(*shape, classes))
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def test_class_ab_against_a_loop():
    rng = np.random.default_rng(3)
    masks = rng.integers(0, 3, (4, 5, 6))
    masks[0] = 0
    probs = _probabilities(rng, masks.shape, 4)
    out = class_ab(probs, masks, 4)
    for c in range(4):
        own = [probs[i, r, k, c] for i in range(4) for r in range(5) for k in range(6) if masks[i, r, k] == c]
        other = [probs[i, r, k, c] for i in range(4) for r in range(5) for k in range(6) if masks[i, r, k] != c]
        if own:
            assert out[c, 0] == pytest.approx(sum(own) / len(own))
        else:
            assert math.isnan(out[c, 0])  # class 3 never occurs
        assert out[c, 1] == pytest.approx(sum(other) / len(other))
    assert math.isnan(out[3, 0])


def test_class_ab_leaves_void_pixels_out():
    rng = np.random.default_rng(4)
    masks = rng.integers(0, 3, (3, 4, 5))
    void = rng.random(masks.shape) < 0.4
    probs = _probabilities(rng, masks.shape, 3)
    out = class_ab(probs, np.where(void, VOID, masks), ignore_index=VOID)
    for c in range(3):
        own = [p[c] for p, m, v in zip(probs.reshape(-1, 3), masks.ravel(), void.ravel()) if not v and m == c]
        other = [p[c] for p, m, v in zip(probs.reshape(-1, 3), masks.ravel(), void.ravel()) if not v and m != c]
        assert out[c, 0] == pytest.approx(sum(own) / len(own))
        assert out[c, 1] == pytest.approx(sum(other) / len(other))
