"""Integer masks and a void label (docs/losses.md, "Targets"): every loss takes sparse labels as
well as one-hot targets, and with ``ignore_index`` the void pixels count in no term. Checked
against float64 references evaluated on the valid pixels alone (tests/loss_reference.py), against
Keras's own ``ignore_class``, and for zero gradients at void pixels."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from explorer import losses
from loss_reference import reference_ignoring
from test_losses import LOSS_IDS, f32, random_params, seeded

VOID = 255


def sparse_batch(rng, batch, height, width, classes, void_share=0.3):
    """Integer labels with some classes absent per image and about ``void_share`` void pixels
    (never a whole image), and random logits."""
    labels = np.zeros((batch, height, width), np.int64)
    for i in range(batch):
        subset = rng.choice(classes, size=rng.integers(1, classes + 1), replace=False)
        labels[i] = rng.choice(subset, (height, width))
    void = rng.random(labels.shape) < void_share
    void[:, 0, 0] = False  # every image keeps a valid pixel
    labels[void] = VOID
    return labels, rng.normal(0.0, 2.5, (batch, height, width, classes))


VARIANTS = [
    dict(batch=False, include_background=True),
    dict(batch=True, include_background=True),
    dict(batch=False, include_background=False),
]


def cases():
    for loss_id in LOSS_IDS:
        spec = losses.REGISTRY[loss_id]
        variants = [{}] if spec.kind == "pixel" else VARIANTS
        for shape in [(3, 5, 4, 3), (2, 4, 6, 4)]:
            for variant in variants:
                for weighted in [False, True] if spec.uses_class_weights else [False]:
                    label = "-".join(f"{k}={v}" for k, v in variant.items())
                    yield pytest.param(loss_id, shape, variant, weighted, id=f"{loss_id}-{'x'.join(map(str, shape))}-{label}-w={weighted}")


@pytest.mark.parametrize("loss_id,shape,variant,weighted", list(cases()))
def test_void_pixels_count_in_no_term(loss_id, shape, variant, weighted):
    rng = seeded("void", loss_id, shape, variant, weighted)
    labels, z = sparse_batch(rng, *shape)
    params = random_params(loss_id, rng)
    if weighted:
        params["class_weights"] = [round(float(w), 3) for w in rng.uniform(0.2, 3.0, shape[-1])]
    loss = losses.get(loss_id, **params, **variant, ignore_index=VOID)
    kind = losses.REGISTRY[loss_id].kind
    expected, expected_scalar = reference_ignoring(loss_id, labels, z, VOID, kind, **params, **variant)
    target = tf.constant(labels, tf.int32)
    values = (loss.per_pixel(target, f32(z)) if kind == "pixel" else loss.call(target, f32(z))).numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(loss(target, f32(z))), expected_scalar, rtol=1e-4, atol=1e-5)
    # The (B, H, W, 1) form of the same labels gives the same loss.
    np.testing.assert_allclose(float(loss(target[..., None], f32(z))), expected_scalar, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss_id", LOSS_IDS)
@pytest.mark.parametrize("options", [dict(), dict(batch=True, include_background=False)], ids=["default", "pooled"])
def test_sparse_labels_equal_one_hot(loss_id, options):
    rng = seeded("sparse", loss_id, repr(options))
    labels, z = sparse_batch(rng, 3, 5, 6, 4, void_share=0.0)
    options = options if losses.REGISTRY[loss_id].kind == "region" else {}
    loss = losses.get(loss_id, **random_params(loss_id, rng), **options)
    one_hot = np.eye(4)[labels]
    dense = loss.call(f32(one_hot), f32(z)).numpy()
    for target in (labels, labels[..., None], labels.astype(np.float32)):
        np.testing.assert_allclose(loss.call(tf.constant(target), f32(z)).numpy(), dense, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(loss(tf.constant(labels), f32(z))), float(loss(f32(one_hot), f32(z))), rtol=1e-6)


@pytest.mark.parametrize("loss_id", LOSS_IDS)
def test_void_pixels_get_no_gradient_and_do_not_change_the_loss(loss_id):
    rng = seeded("void-grad", loss_id)
    labels, z = sparse_batch(rng, 2, 5, 5, 3)
    void = labels == VOID
    loss = losses.get(loss_id, **random_params(loss_id, rng), ignore_index=VOID)
    logits = tf.Variable(z, dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = loss(tf.constant(labels), logits)
    gradient = tape.gradient(value, logits).numpy()
    assert np.all(gradient[void] == 0.0)
    assert np.any(gradient[~void] != 0.0)
    # Whatever the model predicts at a void pixel, the loss is the same.
    changed = z.copy()
    changed[void] = rng.normal(0.0, 10.0, changed[void].shape)
    np.testing.assert_allclose(float(loss(tf.constant(labels), f32(changed))), float(value), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("loss_id", LOSS_IDS)
def test_a_batch_of_only_void_pixels_scores_zero(loss_id):
    z = seeded("all-void", loss_id).normal(size=(2, 3, 3, 3))
    value = float(losses.get(loss_id, ignore_index=VOID)(tf.constant(np.full((2, 3, 3), VOID)), f32(z)))
    assert value == 0.0


def test_ce_agrees_with_keras_ignore_class_which_divides_by_the_valid_pixels():
    rng = seeded("keras-ignore")
    labels, z = sparse_batch(rng, 3, 6, 5, 4)
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=VOID)
    expected = float(keras_ce(tf.constant(labels), f32(z)))
    ours = float(losses.get("ce", ignore_index=VOID)(tf.constant(labels), f32(z)))
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    # What Keras divides by: the number of non-void pixels, not all pixels.
    _, mean_over_valid = reference_ignoring("ce", labels, z, VOID, "pixel")
    valid = np.count_nonzero(labels != VOID)
    np.testing.assert_allclose(expected, mean_over_valid, rtol=1e-5)
    assert abs(expected - mean_over_valid * valid / labels.size) > 1e-3


def test_single_sigmoid_channel_takes_labels_and_a_void_label():
    rng = seeded("sigmoid-void")
    labels = rng.integers(0, 2, (2, 4, 4))
    labels[:, 1] = VOID
    z = rng.normal(size=(2, 4, 4, 1))
    keep = labels != VOID
    for loss_id in ("bce", "binary_focal"):
        loss = losses.get(loss_id, ignore_index=VOID)
        expected = float(losses.get(loss_id)(f32(labels[keep].reshape(1, -1, 1, 1)), f32(z[keep].reshape(1, -1, 1, 1))))
        np.testing.assert_allclose(float(loss(tf.constant(labels), f32(z))), expected, rtol=1e-6)
        np.testing.assert_allclose(float(loss(tf.constant(labels[..., None]), f32(z))), expected, rtol=1e-6)


def test_ignore_index_with_one_hot_targets_raises():
    y = np.eye(3)[np.zeros((1, 2, 2), int)]
    with pytest.raises(ValueError, match="ignore_index marks integer labels"):
        losses.get("dice", ignore_index=VOID)(f32(y), f32(np.zeros((1, 2, 2, 3))))


@pytest.mark.parametrize("value", [True, 1.5, "255"])
def test_ignore_index_must_be_an_integer(value):
    with pytest.raises(ValueError, match="ignore_index must be an integer"):
        losses.get("ce", ignore_index=value)


def test_ignore_index_is_fixed_and_serialised():
    loss = losses.get("tversky", alpha=0.4, ignore_index=VOID)
    assert loss.params["ignore_index"] == VOID
    with pytest.raises(ValueError, match="fixed at construction"):
        loss.set_params(ignore_index=0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert restored.params == loss.params


def test_mismatched_label_shape_raises():
    with pytest.raises(ValueError, match="integer labels"):
        losses.get("ce")(tf.constant(np.zeros((1, 3, 3), int)), f32(np.zeros((1, 4, 4, 2))))


# --------------------------------------------------------------------------------------------
# Focal α as a scalar or a per-class list


def test_focal_list_alpha_is_the_per_class_weight():
    rng = seeded("focal-list")
    labels, z = sparse_batch(rng, 2, 4, 5, 3, void_share=0.0)
    alpha = [0.25, 1.5, 0.75]
    with_list = losses.get("focal", alpha=alpha, gamma=1.5)
    with_weights = losses.get("focal", alpha=1.0, gamma=1.5, class_weights=alpha)
    target = tf.constant(labels)
    np.testing.assert_allclose(float(with_list(target, f32(z))), float(with_weights(target, f32(z))), rtol=1e-6)
    keras_focal = keras.losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=1.5, from_logits=True)
    np.testing.assert_allclose(float(with_list(target, f32(z))), float(keras_focal(f32(np.eye(3)[labels]), f32(z))), rtol=1e-5)
    assert with_list.params["alpha"] == alpha
    with_list.set_params(alpha=[1.0, 1.0, 1.0])
    np.testing.assert_allclose(float(with_list(target, f32(z))), float(losses.get("focal", alpha=1.0, gamma=1.5)(target, f32(z))), rtol=1e-6)
    with pytest.raises(ValueError, match="same length"):
        with_list.set_params(alpha=0.5)
    restored = keras.losses.deserialize(keras.losses.serialize(with_list))
    assert restored.params == with_list.params


def test_focal_list_alpha_with_class_weights_says_which_to_use():
    with pytest.raises(ValueError, match=r"use one: alpha=\[one value per class\].*or class_weights with a scalar alpha"):
        losses.get("focal", alpha=[0.5, 1.0], class_weights=[1.0, 2.0])


@pytest.mark.parametrize("alpha,message", [([0.5, -1.0], "non-negative"), ([0.5], "one weight per class")])
def test_focal_list_alpha_is_checked(alpha, message):
    with pytest.raises(ValueError, match=message):
        losses.get("focal", alpha=alpha)
