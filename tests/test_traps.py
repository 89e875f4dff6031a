"""explorer.traps on the toy dataset: each trap shows what docs/losses.md says it shows (where that is a
fact of the code, not of a short training's luck), and each fix does what it claims. The two
trainings run a few steps only: their outcomes are checked for shape and sanity, not for a result."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer import data, traps


@pytest.fixture(scope="module")
def toy():
    return data.load_toy()


def test_class_weight_fit_fails_with_masks_and_both_fixes_train(toy):
    result = traps.keras_class_weight(toy)
    failed, fixes = result.attempts[:2], result.attempts[2:]
    for attempt in failed:
        assert not attempt.ok, f"{attempt.what} no longer raises with Keras {result.keras_version}: update docs/losses.md and the trap"
        assert attempt.error_type and attempt.error_message and attempt.raised_in
    if result.keras_version == "3.15.1":
        assert failed[0].error_type == "TypeError" and "0-dimensional" in failed[0].error_message
        assert "class_weight" in failed[0].raised_in
    for attempt in fixes:
        assert attempt.ok and math.isfinite(attempt.loss), attempt
    # The two fixes are one loss: the same training and the same evaluation.
    assert fixes[0].loss == pytest.approx(fixes[1].loss, rel=1e-5)
    assert result.sample_weight_loss == pytest.approx(result.weighted_loss, rel=1e-6)


def test_softmax_over_the_wrong_axis(toy):
    result = traps.softmax_axis(toy)
    right, width, reshaped = range(3)
    assert result.class_sums[right] == pytest.approx((1.0, 1.0), abs=1e-5)
    assert result.pixel_accuracy[right] == 1.0 and result.mean_iou[right] == 1.0
    # Over the width the class probabilities no longer sum to 1 and the loss is far off ...
    assert result.class_sums[width][1] < 0.9
    assert result.ce[width] > 10 * result.ce[right]
    # ... and a reshape instead of a transpose scrambles the map.
    assert result.mean_iou[reshaped] < 0.6
    assert (result.predictions[reshaped] != result.truth).mean() > 0.05


def test_accuracy_paradox(toy):
    result = traps.accuracy_paradox(toy)
    background, sloppy = 0, 1
    assert result.pixel_accuracy[background] > 0.85
    assert result.mean_iou[background] < 0.3
    assert np.all(result.iou[background][1:] == 0)
    assert result.pixel_accuracy[sloppy] <= result.pixel_accuracy[background] + 0.01
    assert result.mean_iou[sloppy] > 2 * result.mean_iou[background]


def test_micro_averaging_ignores_alpha_and_beta(toy):
    result = traps.micro_averaging(toy)
    (global_, per_class_keras, ours) = result.rows
    assert global_[1] == pytest.approx(global_[2], rel=1e-5), "axis=None: swapping α and β must change nothing"
    assert global_[1] == pytest.approx(result.one_minus_mean_p_true, rel=1e-5)
    assert result.keras_dice_global == pytest.approx(result.one_minus_mean_p_true, rel=1e-5)
    assert abs(ours[1] - ours[2]) > 0.01, "per image and class, α and β matter"
    # Keras's Tversky code puts α on false negatives: its (a, b) is our (b, a).
    assert per_class_keras[1] == pytest.approx(ours[2], rel=1e-4)
    assert per_class_keras[2] == pytest.approx(ours[1], rel=1e-4)
    # The per-class loss sees the missed class; the global one barely moves.
    assert result.ours_dice > 3 * result.keras_dice_global
    assert result.per_class_dice.max() > 0.9


def test_dice_on_an_empty_mask(toy):
    result = traps.empty_masks(toy)
    rows = {what.split(":")[0].split(" (")[0]: (perfect, slight) for what, perfect, slight in result.rows}
    naive, keras_dice, ours, ours_one = (rows[k] for k in rows)
    assert math.isnan(naive[0])
    assert keras_dice[0] == pytest.approx(1.0), "Keras's Dice calls a perfect empty prediction a total miss"
    assert ours[0] == 0.0 and ours_one[0] == 0.0
    assert ours[1] > 0.99 and 0.9 < ours_one[1] < ours[1]


def test_per_batch_weights_explode_for_a_missing_class(toy):
    result = traps.per_batch_weights(toy, loss_id="dice", batch_size=2, steps=12, seed=0)
    pixels = 2 * 64 * 64
    assert result.batch_weights.shape == (12, toy.num_classes) and result.missing.shape == (12, toy.num_classes)
    assert result.batches_missing_a_class >= 1, "no batch of 2 lacked a class in 12 steps: pick another seed"
    np.testing.assert_allclose(result.batch_weights[result.missing], pixels / 1e-6, rtol=1e-6)
    assert result.largest_weight > 1e6 * result.dataset_weights.max()
    assert result.absent_share > 0.999999
    for outcome in result.outcomes:
        assert outcome.loss_values.shape == (12,) and np.isfinite(outcome.loss_values).all()
        assert outcome.predicted_share.sum() == pytest.approx(1.0)
        assert outcome.predictions.shape == (traps.SHOWN_IMAGES, 64, 64)
    with pytest.raises(ValueError, match="trains with one of"):
        traps.per_batch_weights(toy, loss_id="ce", steps=1)


def test_sigmoid_outputs_need_not_sum_to_one(toy):
    result = traps.sigmoid_vs_softmax(toy, steps=8)
    sigmoid, softmax = result.outcomes
    assert softmax.sum_range == pytest.approx((1.0, 1.0), abs=1e-5)
    assert softmax.several_classes == 0.0
    assert sigmoid.sum_range != pytest.approx((1.0, 1.0), abs=1e-3)
    for outcome in result.outcomes:
        assert np.isfinite(outcome.loss_values).all() and outcome.iou.shape == (toy.num_classes,)


def test_a_model_trained_with_the_softmax_over_the_height(toy):
    result = traps.softmax_axis_training(toy, steps=6)
    wrong, right = result.outcomes
    assert wrong.sum_range[1] < 0.9, "read over the height, the class probabilities cannot sum to 1"
    assert right.sum_range == pytest.approx((1.0, 1.0), abs=1e-5)
    assert np.isfinite(wrong.loss_values).all() and np.isfinite(right.loss_values).all()


def test_collapse_means_more_than_the_true_majority():
    def outcome(predicted, true):
        return traps.Outcome(
            name="x", loss_values=np.zeros(1), iou=np.zeros(2), mean_iou=0.0, pixel_accuracy=0.0,
            predicted_share=np.array(predicted), true_share=np.array(true), predictions=np.zeros((1, 2, 2), np.uint8),
            seconds=0.0, sum_range=(1.0, 1.0), no_class=0.0, several_classes=0.0,
        )

    assert outcome([0.93, 0.07], [0.88, 0.12]).collapsed_to is None
    assert outcome([0.999, 0.001], [0.88, 0.12]).collapsed_to == 0
    assert outcome([0.05, 0.95], [0.98, 0.02]).collapsed_to == 1
