"""Property tests for explorer.losses: finite values and gradients for logits up to ±1e4, on
all-background masks, single-class images and exactly perfect predictions, with any parameter
values in their ranges; a perfect prediction scores the minimum, 0."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from explorer import losses

LOSS_IDS = list(losses.REGISTRY)
SIGMOID_IDS = {"bce", "binary_focal"}
PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def targets(draw, loss_id):
    """One-hot (B, H, W, C): random labels, all background, or one class everywhere."""
    classes = draw(st.integers(1 if loss_id in SIGMOID_IDS else 2, 4))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    mode = draw(st.sampled_from(["random", "background", "single"]))
    if mode == "random":
        labels = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, classes - 1)))
    else:
        labels = np.full(shape, 0 if mode == "background" else draw(st.integers(0, classes - 1)))
    return np.eye(classes, dtype=np.float32)[labels]


def perfect_logits(y):
    return (1e4 * (2 * y - 1)).astype(np.float32)


@st.composite
def logits_for(draw, y):
    mode = draw(st.sampled_from(["any", "extreme", "perfect"]))
    if mode == "perfect":
        return perfect_logits(y)
    elements = (
        st.floats(-1e4, 1e4, width=32) if mode == "any" else st.sampled_from([-1e4, -30.0, 0.0, 30.0, 1e4])
    )
    return draw(hnp.arrays(np.float32, y.shape, elements=elements))


@st.composite
def parameters(draw, loss_id, classes):
    """Any values within the registry's ranges, any options, and class weights."""
    spec = losses.REGISTRY[loss_id]
    params = {p.name: draw(st.floats(p.min, p.max)) for p in spec.params}
    if spec.kind == "region":
        params["batch"] = draw(st.booleans())
        params["include_background"] = draw(st.booleans())
    if spec.uses_class_weights and draw(st.booleans()):
        params["class_weights"] = draw(st.lists(st.floats(0.01, 10.0), min_size=classes, max_size=classes))
    return params


def value_and_gradient(loss, y, z):
    z = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = loss(tf.constant(y), z)
    return value.numpy(), tape.gradient(value, z).numpy()


@pytest.mark.parametrize("loss_id", LOSS_IDS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_finite_loss_and_gradient(loss_id, data):
    y = data.draw(targets(loss_id), label="y")
    z = data.draw(logits_for(y), label="logits")
    params = data.draw(parameters(loss_id, y.shape[-1]), label="params")
    value, gradient = value_and_gradient(losses.get(loss_id, **params), y, z)
    assert np.isfinite(value), value
    assert np.all(np.isfinite(gradient)), gradient


@pytest.mark.parametrize("loss_id", LOSS_IDS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_perfect_prediction_scores_the_minimum(loss_id, data):
    y = data.draw(targets(loss_id), label="y")
    params = data.draw(parameters(loss_id, y.shape[-1]), label="params")
    other = data.draw(hnp.arrays(np.float32, y.shape, elements=st.floats(-8.0, 8.0, width=32)), label="logits")
    loss = losses.get(loss_id, **params)
    perfect, gradient = value_and_gradient(loss, y, perfect_logits(y))
    # TensorFlow's float32 softmax gives 1 − 2⁻²⁴ (not 1) for a perfect logit pair, so 1 − TI is
    # up to ~6e-8, not 0; an exponent e < 1 on it (focal_tversky's γ, unified_focal's 1 − γ)
    # raises that rounding error to ~(6e-8)^e.
    exponent = {"focal_tversky": params.get("gamma"), "unified_focal": 1.0 - params.get("gamma", 0.0)}.get(loss_id, 1.0)
    assert perfect == pytest.approx(0.0, abs=max(1e-6, 1e-7 ** min(exponent, 1.0)))
    assert np.all(np.isfinite(gradient))
    assert float(loss(y, other)) >= perfect - 1e-6
    # Exact one-hot probabilities score the same minimum.
    as_probabilities = losses.get(loss_id, **params, from_logits=False)
    assert float(as_probabilities(y, y)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("loss_id", [i for i in LOSS_IDS if losses.REGISTRY[i].kind == "region"])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_pooling_one_image_equals_per_image(loss_id, data):
    y = data.draw(targets(loss_id), label="y")[:1]
    z = data.draw(hnp.arrays(np.float32, y.shape, elements=st.floats(-8.0, 8.0, width=32)), label="logits")
    params = {k: v for k, v in data.draw(parameters(loss_id, y.shape[-1])).items() if k != "batch"}
    per_image = losses.get(loss_id, **params).call(y, z).numpy()
    pooled = losses.get(loss_id, batch=True, **params).call(y, z).numpy()
    np.testing.assert_allclose(pooled, per_image[0], rtol=1e-5, atol=1e-6)
