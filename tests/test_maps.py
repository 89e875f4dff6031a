"""explorer.maps: per-pixel loss and gradient maps of a model on one image, against the tape's
gradient with respect to the model's last bias, per_pixel, and float64 references."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from explorer import losses, maps
from explorer.model import build_unet

H = W = 16
C = 4


@pytest.fixture(scope="module")
def model():
    return build_unet(C, input_shape=(H, W, 3), depth=2, width=4, seed=7)


@pytest.fixture(scope="module")
def example():
    rng = np.random.default_rng(0)
    image = rng.random((H, W, 3)).astype(np.float32)
    mask = rng.choice(C, size=(H, W), p=[0.7, 0.2, 0.07, 0.03]).astype(np.uint8)
    mask[0, 0] = 3  # every class present at least once
    return image, mask


def last_bias(model):
    bias = model.layers[-1].bias
    assert tuple(bias.shape) == (C,)
    return bias


def tape_bias_gradient(model, loss, image, mask):
    """∂L/∂b of the last 1×1 convolution's bias: b is added to every pixel's logits, so it
    equals the sum over pixels of ∂L/∂z."""
    y = tf.one_hot(mask.astype(np.int32)[None], C)
    with tf.GradientTape() as tape:
        value = loss(y, model(image[None], training=False))
    return tape.gradient(value, last_bias(model)).numpy()


@pytest.mark.parametrize("loss_id", ["ce", "weighted_ce", "focal", "bce", "dice", "tversky", "focal_tversky", "lovasz", "generalized_dice", "unified_focal"])
def test_gradient_maps_sum_to_the_tapes_total_gradient(model, example, loss_id):
    image, mask = example
    params = {"class_weights": [0.3, 1.0, 4.0, 20.0]} if losses.REGISTRY[loss_id].uses_class_weights else {}
    loss = losses.get(loss_id, **params)
    result = maps.pixel_maps(model, loss, image, mask)
    assert result.gradient.shape == (H, W, C)
    summed = result.gradient.sum(axis=(0, 1)) / (H * W)  # the maps are ×H·W
    np.testing.assert_allclose(summed, tape_bias_gradient(model, loss, image, mask), rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(result.magnitude, np.sqrt((result.gradient**2).sum(-1)), rtol=1e-6)
    assert np.all(np.isfinite(result.gradient))


@pytest.mark.parametrize("loss_id", ["ce", "weighted_ce", "focal", "bce", "binary_focal"])
def test_pixel_loss_map_is_per_pixel_and_averages_to_the_loss(model, example, loss_id):
    image, mask = example
    params = {"class_weights": [0.3, 1.0, 4.0, 20.0]} if losses.REGISTRY[loss_id].uses_class_weights else {}
    loss = losses.get(loss_id, **params)
    result = maps.pixel_maps(model, loss, image, mask)
    assert result.loss.shape == (H, W)
    assert result.loss.mean() == pytest.approx(result.value, rel=1e-5)
    logits = model(image[None], training=False)
    y = tf.one_hot(mask.astype(np.int32)[None], C)
    np.testing.assert_allclose(result.loss, loss.per_pixel(y, logits).numpy()[0], rtol=1e-5)


def test_ce_maps_against_float64(model, example):
    """CE per pixel is −log softmax(z)_true and its gradient softmax(z) − onehot (×H·W undoes the
    mean), written here in float64 from the model's logits."""
    image, mask = example
    result = maps.pixel_maps(model, losses.get("ce"), image, mask)
    z = model(image[None], training=False).numpy()[0].astype(np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    onehot = np.eye(C)[mask]
    np.testing.assert_allclose(result.loss, -np.log((p * onehot).sum(-1)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.gradient, p - onehot, rtol=1e-3, atol=1e-6)


def test_region_losses_have_no_pixel_loss_map(model, example):
    image, mask = example
    result = maps.pixel_maps(model, losses.get("dice"), image, mask)
    assert result.loss is None
    assert result.magnitude.shape == (H, W) and np.all(result.magnitude >= 0)


def test_traced_once_per_model_and_loss(model, example):
    image, mask = example
    loss = losses.get("focal", gamma=2.0)
    first = maps.pixel_maps(model, loss, image, mask)
    function = maps._traced(model, loss)
    count = function.experimental_get_tracing_count()
    loss.set_params(gamma=0.5)
    second = maps.pixel_maps(model, loss, image, mask)
    maps.pixel_maps(model, loss, image[::-1].copy(), mask[::-1].copy())
    assert function.experimental_get_tracing_count() == count == 1
    assert not np.allclose(first.magnitude, second.magnitude)


def test_the_cache_holds_nothing_of_a_model_or_loss_once_they_are_dropped(example):
    """A closed session's models and losses are not kept alive by the maps' cache."""
    import gc
    import weakref

    image, mask = example
    model = build_unet(C, input_shape=(H, W, 3), depth=2, width=4, seed=3)
    loss = losses.get("focal")
    kept = losses.get("dice")
    maps.pixel_maps(model, loss, image, mask)
    maps.pixel_maps(model, kept, image, mask)
    refs = weakref.ref(model), weakref.ref(loss)
    del loss
    gc.collect()
    assert refs[1]() is None, "a loss the run replaced is not kept by the cache"
    del model
    gc.collect()
    assert refs[0]() is None, "a dropped model is not kept by the cache"
    assert kept not in {l for per_model in maps._cache.values() for l in per_model}


def test_shared_range_covers_every_map():
    low, high = maps.shared_range([np.array([1e-3, 1.0]), np.array([10.0, 0.5]), None])
    assert high == pytest.approx(1.0) and low <= -2.9


@pytest.mark.parametrize("loss_id", ["ce", "focal", "dice", "lovasz"])
def test_maps_of_given_logits_are_the_maps_of_the_model_that_gave_them(model, example, loss_id):
    image, mask = example
    loss = losses.get(loss_id)
    from_model = maps.pixel_maps(model, loss, image, mask)
    from_logits = maps.logit_maps(loss, model(image[None], training=False).numpy()[0], mask)
    assert from_logits.value == pytest.approx(from_model.value, rel=1e-6)
    np.testing.assert_allclose(from_logits.gradient, from_model.gradient, rtol=1e-5, atol=1e-7)
    assert (from_logits.loss is None) == (losses.REGISTRY[loss_id].kind == "region")
    if from_logits.loss is not None:
        np.testing.assert_allclose(from_logits.loss, from_model.loss, rtol=1e-6)


VOID = 255


@pytest.mark.parametrize("loss_id", ["ce", "focal", "bce", "dice", "lovasz", "unified_focal"])
def test_void_pixels_show_no_loss_and_no_gradient(model, example, loss_id):
    image, mask = example
    with_void = mask.copy()
    with_void[:, :4] = VOID  # a void border
    void = with_void == VOID
    loss = losses.get(loss_id, ignore_index=VOID)
    result = maps.pixel_maps(model, loss, image, with_void)
    assert np.all(result.gradient[void] == 0.0) and np.all(result.magnitude[void] == 0.0)
    assert np.any(result.magnitude[~void] > 0.0)
    # The image's loss is the loss of its valid pixels alone (a 16×12 image without the border).
    logits = model(image[None], training=False)[:, :, 4:]
    alone = float(losses.get(loss_id)(tf.one_hot(mask[None, :, 4:].astype(np.int32), C), logits))
    assert result.value == pytest.approx(alone, rel=1e-5)
    if result.loss is not None:
        assert np.all(result.loss[void] == 0.0)
        assert result.loss[~void].mean() == pytest.approx(result.value, rel=1e-5)
