"""explorer.landscape: filter-normalised directions (Li et al. 2018), the centre of the grid, the
weights left untouched, the same directions for runs of the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from explorer import landscape, losses
from explorer.model import build_unet

H = W = 16
C = 3


def unet(seed=0):
    return build_unet(C, input_shape=(H, W, 3), depth=2, width=4, seed=seed)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(1)
    images = rng.random((4, H, W, 3)).astype(np.float32)
    masks = rng.choice(C, size=(4, H, W), p=[0.8, 0.15, 0.05]).astype(np.uint8)
    return images, masks


def snapshot(model):
    return [np.array(v.numpy(), copy=True) for v in model.variables]


def test_directions_are_filter_normalised():
    model = unet()
    weights = [v.numpy() for v in model.trainable_variables]
    d1, d2 = landscape.directions(model, seed=5)
    assert len(d1) == len(d2) == len(weights)
    kernels = 0
    for d, w in zip(d1 + d2, weights + weights):
        assert d.shape == w.shape
        if w.ndim == 1:
            assert not d.any()  # biases are not moved
            continue
        kernels += 1
        for k in range(w.shape[-1]):
            assert np.linalg.norm(d[..., k]) == pytest.approx(np.linalg.norm(w[..., k]), rel=1e-5)
    assert kernels >= 2
    assert not np.allclose(d1[0], d2[0])


def test_filter_normalise_on_a_small_example():
    w = np.array([[3.0, 0.0], [4.0, 1.0]])  # filters (columns) of norm 5 and 1
    d = np.array([[1.0, 2.0], [0.0, 0.0]])
    out = landscape.filter_normalise([d, np.ones(2)], [w, np.ones(2)])
    np.testing.assert_allclose(out[0], [[5.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(out[1], [0.0, 0.0])


def test_same_directions_for_two_runs_of_the_same_seed():
    a, b, other = unet(seed=3), unet(seed=3), unet(seed=4)
    for x, y in zip(landscape.directions(a, seed=0), landscape.directions(b, seed=0)):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    # The raw draws depend on the direction seed only, not on the weights.
    raw = landscape.random_directions([v.shape for v in a.trainable_variables], seed=0)
    raw_other = landscape.random_directions([v.shape for v in other.trainable_variables], seed=0)
    for u, v in zip(raw[0], raw_other[0]):
        np.testing.assert_array_equal(u, v)
    # Different weights: normalised to different filter norms.
    assert not np.allclose(landscape.directions(a)[0][0], landscape.directions(other)[0][0])


@pytest.mark.parametrize("loss_id", ["ce", "focal_tversky"])
def test_centre_is_the_loss_at_the_weights_and_weights_are_restored(batch, loss_id):
    images, masks = batch
    model = unet(seed=1)
    loss = losses.get(loss_id)
    before = snapshot(model)
    scape = landscape.landscape(model, loss, images, masks, steps=5, span=0.5)
    values = scape.compute()
    assert values.shape == (5, 5) and np.all(np.isfinite(values))
    y = tf.one_hot(masks.astype(np.int32), C)
    direct = float(loss(y, model(images, training=False)))
    assert values[2, 2] == pytest.approx(direct, rel=1e-5)
    assert scape.center() == pytest.approx(direct, rel=1e-5)
    assert len(np.unique(values.round(6))) > 5  # the loss does change away from the centre
    for x, y_ in zip(before, snapshot(model)):
        np.testing.assert_array_equal(x, y_)


def test_a_loss_with_a_void_label_has_a_landscape_that_ignores_void_pixels(batch):
    """Runs on uploaded masks with void pixels carry a loss with ignore_index, which takes integer
    masks only: the landscape must hand it those, and the void pixels must not count."""
    images, masks = batch
    void = masks.copy()
    void[:, :3] = 255
    model = unet(seed=1)
    loss = losses.get("ce", ignore_index=255)
    scape = landscape.landscape(model, loss, images, void, steps=3, span=0.5)
    logits = model(images, training=False)
    direct = float(loss(tf.constant(void.astype(np.int32)), logits))
    assert scape.center() == pytest.approx(direct, rel=1e-5)
    # The same as plain cross-entropy over the pixels that are not void.
    valid = void != 255
    log_p = tf.nn.log_softmax(logits).numpy()
    picked = np.take_along_axis(log_p, np.where(valid, void, 0)[..., None].astype(np.int64), -1)[..., 0]
    assert direct == pytest.approx(-picked[valid].mean(), rel=1e-4)


def test_a_model_with_batch_normalization_uses_its_moving_statistics(batch):
    """Before: a U-Net with batch normalization (a page setting) had no landscape at all."""
    images, masks = batch
    model = build_unet(C, input_shape=(H, W, 3), depth=2, width=4, seed=1, normalization="batch")
    rng = np.random.default_rng(5)
    for variable in model.non_trainable_variables:  # statistics unlike the initial 0 and 1
        variable.assign(rng.uniform(0.5, 2.0, variable.shape).astype(np.float32))
    loss = losses.get("ce")
    scape = landscape.landscape(model, loss, images, masks, steps=3, span=0.5)
    y = tf.one_hot(masks.astype(np.int32), C)
    assert scape.center() == pytest.approx(float(loss(y, model(images, training=False))), rel=1e-5)


def test_a_point_off_centre_is_the_loss_at_the_moved_weights(batch):
    """values[i, j] at w + x[j]·d1 + y[i]·d2, checked by assigning those weights to a copy."""
    images, masks = batch
    model = unet(seed=2)
    loss = losses.get("dice")
    scape = landscape.landscape(model, loss, images, masks, steps=3, span=1.0, seed=9)
    values = scape.compute()
    twin = unet(seed=2)
    i, j = 0, 2  # y = −1, x = +1
    moved = [w + scape.x[j] * a + scape.y[i] * b for w, a, b in zip(scape.weights, scape.d1, scape.d2)]
    for variable, value in zip(twin.trainable_variables, moved):
        variable.assign(value)
    y = tf.one_hot(masks.astype(np.int32), C)
    assert values[i, j] == pytest.approx(float(loss(y, twin(images, training=False))), rel=1e-4)


def test_rows_can_stop_early_and_weights_stay(batch):
    images, masks = batch
    model = unet(seed=1)
    before = snapshot(model)
    scape = landscape.landscape(model, losses.get("ce"), images, masks, steps=7)
    rows = scape.rows()
    first = next(rows)
    assert first[0] == 0 and first[1].shape == (7,)
    rows.close()  # cancelled
    for x, y in zip(before, snapshot(model)):
        np.testing.assert_array_equal(x, y)


def test_loss_parameters_are_frozen_when_set_up(batch):
    images, masks = batch
    model = unet(seed=1)
    loss = losses.get("focal", gamma=2.0)
    scape = landscape.landscape(model, loss, images, masks, steps=3)
    centre = scape.center()
    loss.set_params(gamma=0.0)
    assert scape.center() == pytest.approx(centre)
