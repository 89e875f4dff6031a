"""explorer.losses against independent float64 references, the identities and reference values
of docs/losses.md (read from that file), Keras's built-ins, and the SegLoss API (validation,
config, saving, no retracing). Property tests (finite gradients, minima) are in
test_losses_properties.py; integer masks and the void label in test_losses_sparse.py."""

from __future__ import annotations

import inspect
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from explorer import loss_registry, losses
from loss_reference import reference, softmax

LOSS_IDS = list(losses.REGISTRY)
PIXEL_IDS = [i for i in LOSS_IDS if losses.REGISTRY[i].kind == "pixel"]
REGION_IDS = [i for i in LOSS_IDS if losses.REGISTRY[i].kind == "region"]
LOSSES_DOC = Path(__file__).resolve().parents[1] / "docs" / "losses.md"


def _doc_section(title: str) -> str:
    return LOSSES_DOC.read_text(encoding="utf-8").split(f"\n## {title}\n")[1].split("\n## ")[0]


def _doc_reference_values() -> tuple[dict, dict]:
    """(focal table {p_t: {γ: FL}}, named values {case: value}) from docs/losses.md."""
    focal, named = {}, {}
    gammas = None
    for line in _doc_section("Reference values").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "p_t":
            gammas = [float(c.split("=")[1]) for c in cells[1:]]
        elif gammas and cells[0].replace(".", "", 1).isdigit():
            focal[float(cells[0])] = dict(zip(gammas, map(float, cells[1:])))
        elif cells[0].startswith("`"):
            named[cells[0].split("`")[1]] = float(cells[-1])
    return focal, named


FOCAL_TABLE, DOC_VALUES = _doc_reference_values()


def f32(x):
    return tf.constant(np.asarray(x), tf.float32)


def make_batch(rng, batch, height, width, classes, scale=2.5):
    """One-hot targets with absent classes (a random subset of classes per image, and an
    all-background image) and random logits."""
    labels = np.zeros((batch, height, width), int)
    for i in range(batch):
        if i % 3 == 0:
            labels[i] = rng.integers(0, classes, (height, width))
        elif i % 3 == 1:
            subset = rng.choice(classes, size=rng.integers(1, classes), replace=False)
            labels[i] = rng.choice(subset, (height, width))
        # i % 3 == 2: all background
    return np.eye(classes)[labels], rng.normal(0.0, scale, (batch, height, width, classes))


def random_params(loss_id, rng):
    return {p.name: round(float(rng.uniform(p.min, p.max)), 3) for p in losses.REGISTRY[loss_id].params}


def seeded(*parts):
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


# --------------------------------------------------------------------------------------------
# Against the float64 references

SHAPES = [(3, 6, 5, 2), (3, 4, 7, 3), (4, 5, 5, 5), (3, 3, 4, 8)]
REGION_VARIANTS = [
    dict(batch=False, include_background=True, weighted=False),
    dict(batch=True, include_background=True, weighted=False),
    dict(batch=False, include_background=False, weighted=True),
    dict(batch=True, include_background=False, weighted=True),
    dict(batch=False, include_background=True, weighted=True),
]


def reference_cases():
    for loss_id in LOSS_IDS:
        spec = losses.REGISTRY[loss_id]
        if spec.kind == "pixel":
            variants = [dict(weighted=False)] + ([dict(weighted=True)] if spec.uses_class_weights else [])
        else:
            variants = [v for v in REGION_VARIANTS if spec.uses_class_weights or not v["weighted"]]
        for shape in SHAPES:
            for variant in variants:
                label = "-".join(f"{k}={v}" for k, v in variant.items())
                yield pytest.param(loss_id, shape, variant, id=f"{loss_id}-{'x'.join(map(str, shape))}-{label}")


@pytest.mark.parametrize("loss_id,shape,variant", list(reference_cases()))
def test_matches_float64_reference(loss_id, shape, variant):
    rng = seeded(loss_id, shape, variant)
    y, z = make_batch(rng, *shape)
    params = random_params(loss_id, rng)
    options = {k: v for k, v in variant.items() if k != "weighted"}
    if variant["weighted"]:
        params["class_weights"] = [round(float(w), 3) for w in rng.uniform(0.2, 3.0, shape[-1])]
    loss = losses.get(loss_id, **params, **options)
    expected = reference(loss_id, y, z, **params, **options)
    values = loss.call(f32(y), f32(z)).numpy()
    assert values.shape == expected.shape
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(loss(f32(y), f32(z))), expected.mean(), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Identities of docs/losses.md


def _value(loss_id, y, z, **params):
    return losses.get(loss_id, **params).call(f32(y), f32(z)).numpy()


@pytest.mark.parametrize("smooth", [0.0, 1e-5, 0.5])
def test_tversky_half_half_is_dice_with_twice_the_smoothing(smooth):
    y, z = make_batch(seeded("tv-dice", smooth), 4, 6, 6, 3)
    np.testing.assert_allclose(
        _value("tversky", y, z, alpha=0.5, beta=0.5, smooth=smooth), _value("dice", y, z, smooth=2 * smooth), rtol=1e-6
    )


@pytest.mark.parametrize("smooth", [0.0, 1e-5, 0.5])
def test_tversky_one_one_is_iou(smooth):
    y, z = make_batch(seeded("tv-iou", smooth), 4, 6, 6, 3)
    np.testing.assert_allclose(
        _value("tversky", y, z, alpha=1.0, beta=1.0, smooth=smooth), _value("iou", y, z, smooth=smooth), rtol=1e-6
    )


@pytest.mark.parametrize("seed", range(4))
def test_soft_iou_is_d_over_two_minus_d(seed):
    # One image, one class (background dropped), no smoothing.
    y, z = make_batch(seeded("iou-d", seed), 1, 7, 5, 2)
    d = 1.0 - _value("dice", y, z, smooth=0.0, include_background=False)[0]
    iou = 1.0 - _value("iou", y, z, smooth=0.0, include_background=False)[0]
    assert iou == pytest.approx(d / (2.0 - d), rel=1e-5)


def test_focal_gamma_zero_alpha_one_is_ce():
    y, z = make_batch(seeded("focal-ce"), 3, 5, 5, 4)
    np.testing.assert_allclose(_value("focal", y, z, alpha=1.0, gamma=0.0), _value("ce", y, z), rtol=1e-6)


def test_focal_tversky_gamma_one_is_tversky():
    y, z = make_batch(seeded("ft-one"), 3, 5, 5, 4)
    np.testing.assert_allclose(
        _value("focal_tversky", y, z, alpha=0.3, beta=0.7, gamma=1.0, smooth=1e-5),
        _value("tversky", y, z, alpha=0.3, beta=0.7, smooth=1e-5),
        rtol=1e-6,
    )


def test_weighted_ce_with_unit_weights_is_ce_and_scales_keras_style():
    y, z = make_batch(seeded("wce"), 3, 5, 5, 4)
    ce = _value("ce", y, z)
    np.testing.assert_allclose(_value("weighted_ce", y, z), ce, rtol=1e-6)
    np.testing.assert_allclose(_value("weighted_ce", y, z, class_weights=[1.0] * 4), ce, rtol=1e-6)
    # Keras style (divided by the number of pixels, not by Σ w): doubling w doubles the loss.
    np.testing.assert_allclose(_value("weighted_ce", y, z, class_weights=[2.0] * 4), 2 * ce, rtol=1e-6)


def test_binary_focal_half_alpha_gamma_zero_is_half_bce():
    y, z = make_batch(seeded("bfocal"), 3, 5, 5, 3)
    np.testing.assert_allclose(_value("binary_focal", y, z, alpha=0.5, gamma=0.0), 0.5 * _value("bce", y, z), rtol=1e-6)


def test_ce_dice_parts():
    y, z = make_batch(seeded("ce-dice"), 3, 5, 5, 3)
    ce_per_image = _value("ce", y, z).mean(axis=(1, 2))
    dice = _value("dice", y, z, smooth=1e-5)
    np.testing.assert_allclose(_value("ce_dice", y, z, lambda_ce=1.0, lambda_dice=0.0, smooth=1e-5), ce_per_image, rtol=1e-6)
    np.testing.assert_allclose(_value("ce_dice", y, z, lambda_ce=0.0, lambda_dice=1.0, smooth=1e-5), dice, rtol=1e-6)
    np.testing.assert_allclose(
        _value("ce_dice", y, z, lambda_ce=0.5, lambda_dice=2.0, smooth=1e-5), 0.5 * ce_per_image + 2 * dice, rtol=1e-6
    )


def test_unified_focal_reduces_to_its_parts():
    y, z = make_batch(seeded("uf"), 3, 5, 5, 3)
    # γ = 0, δ = ½: no suppression or enhancement, both classes weighed alike.
    tversky = _value("tversky", y, z, alpha=0.5, beta=0.5, smooth=1e-5)
    np.testing.assert_allclose(_value("unified_focal", y, z, lambda_=0.0, delta=0.5, gamma=0.0, smooth=1e-5), tversky, rtol=1e-5)
    ce = _value("ce", y, z).mean(axis=(1, 2))
    np.testing.assert_allclose(_value("unified_focal", y, z, lambda_=1.0, delta=0.5, gamma=0.0, smooth=1e-5), 0.5 * ce, rtol=1e-5)


def test_unified_focal_delta_weighs_false_negatives():
    # A prediction that misses half the foreground and claims nothing else: only FN.
    y = np.eye(2)[np.array([[[0, 0, 1, 1]]])]
    p = np.array([[[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]]])
    loss_fn = lambda delta: losses.get(  # noqa: E731
        "unified_focal", lambda_=0.0, delta=delta, gamma=0.0, smooth=0.0, include_background=False, from_logits=False
    ).call(f32(y), f32(p)).numpy()[0]
    # Foreground: TP = 1, FN = 1, FP = 0; mTI = 1 / (1 + δ).
    assert loss_fn(0.8) == pytest.approx(1 - 1 / 1.8, rel=1e-6)
    assert loss_fn(0.2) == pytest.approx(1 - 1 / 1.2, rel=1e-6)


def test_the_doc_holds_every_reference_value():
    assert sorted(FOCAL_TABLE) == [0.1, 0.5] and all(sorted(row) == [0.0, 0.5, 1.0, 2.0, 5.0] for row in FOCAL_TABLE.values())
    assert FOCAL_TABLE[0.1][0.0] == pytest.approx(-np.log(0.1), abs=1e-5)  # the parse reads the right cells
    assert set(DOC_VALUES) == {
        "keras_categorical_focal_example", "keras_tversky_checkerboard", "tversky_checkerboard_alpha_fp_0.2",
        "keras_tversky_checkerboard_code_0.2", "monai_tversky_half", "monai_generalized_dice_all_absent",
    }  # fmt: skip


def _two_class_logits(p_true):
    """Logits of one pixel whose true class (class 1) has probability p_true."""
    y = np.array([[[[0.0, 1.0]]]])
    z = np.array([[[[np.log(1 - p_true), np.log(p_true)]]]])
    return y, z


@pytest.mark.parametrize("p_t,gamma", [(p, g) for p, row in FOCAL_TABLE.items() for g in row])
def test_focal_reference_table(p_t, gamma):
    y, z = _two_class_logits(p_t)
    assert _value("focal", y, z, alpha=1.0, gamma=gamma)[0, 0, 0] == pytest.approx(FOCAL_TABLE[p_t][gamma], abs=1e-5)


def test_focal_lin_et_al_ratios():
    y, z = _two_class_logits(0.9)
    ratio = _value("ce", y, z)[0, 0, 0] / _value("focal", y, z, alpha=1.0, gamma=2.0)[0, 0, 0]
    assert ratio == pytest.approx(100.0, rel=1e-4)
    for p_t in np.linspace(0.01, 0.5, 12):
        y, z = _two_class_logits(p_t)
        assert _value("ce", y, z)[0, 0, 0] / _value("focal", y, z, alpha=1.0, gamma=2.0)[0, 0, 0] <= 4.0 + 1e-5


def test_lovasz_on_hard_predictions_is_the_jaccard_loss():
    rng = seeded("lovasz-hard")
    labels = rng.integers(0, 3, (2, 6, 6))
    predicted = np.where(rng.random((2, 6, 6)) < 0.3, rng.integers(0, 3, (2, 6, 6)), labels)
    y, p = np.eye(3)[labels], np.eye(3)[predicted]
    expected = []
    for i in range(2):
        per_class = []
        for c in range(3):
            truth, pred = labels[i] == c, predicted[i] == c
            if truth.any():
                per_class.append(1 - (truth & pred).sum() / (truth | pred).sum())
        expected.append(np.mean(per_class))
    np.testing.assert_allclose(_value("lovasz", y, p, from_logits=False), expected, rtol=1e-6)


def test_generalized_dice_absent_class_takes_the_largest_finite_weight():
    # Classes 0 and 1 present (4 and 2 pixels), class 2 absent but predicted on one pixel.
    labels = np.array([[[0, 0, 0, 0, 1, 1]]])
    p = np.array([[[[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 0]]]], float)
    w = {0: 1 / 16, 1: 1 / 4, 2: 1 / 4}
    tp, fp, fn = {0: 3, 1: 2, 2: 0}, {0: 0, 1: 0, 2: 1}, {0: 1, 1: 0, 2: 0}
    num = sum(w[c] * 2 * tp[c] for c in w)
    den = sum(w[c] * (2 * tp[c] + fp[c] + fn[c]) for c in w)
    value = _value("generalized_dice", np.eye(3)[labels], p, smooth=0.0, from_logits=False)[0]
    assert value == pytest.approx(1 - num / den, rel=1e-6)


# --------------------------------------------------------------------------------------------
# Reference values: Keras docstrings and tests, MONAI tests


def test_keras_categorical_focal_docstring_value():
    y = np.array([[[[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]])
    p = np.array([[[[0.05, 0.95, 0.0]], [[0.1, 0.8, 0.1]]]])
    loss = losses.get("focal", alpha=0.25, gamma=2.0, from_logits=False)
    assert float(loss(f32(y), f32(p))) == pytest.approx(DOC_VALUES["keras_categorical_focal_example"], rel=1e-6)


def _binary(mask_true, mask_pred):
    """(y, p) with a background and a foreground channel from two binary masks (one image)."""
    t, q = np.asarray(mask_true, float), np.asarray(mask_pred, float)
    return np.stack([1 - t, t], -1)[None], np.stack([1 - q, q], -1)[None]


CHECKERBOARD = (
    [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]],
    [[0, 1, 0, 1], [1, 0, 1, 1], [0, 1, 0, 1], [1, 0, 1, 1]],
)


def test_keras_tversky_checkerboard_values():
    y, p = _binary(*CHECKERBOARD)
    tversky = lambda a, b: _value(  # noqa: E731
        "tversky", y, p, alpha=a, beta=b, smooth=0.0, include_background=False, from_logits=False
    )[0]
    assert tversky(0.5, 0.5) == pytest.approx(DOC_VALUES["keras_tversky_checkerboard"], rel=1e-6)
    # docs/losses.md's value for α = 0.2 on false positives, β = 0.8 on false negatives.
    assert tversky(0.2, 0.8) == pytest.approx(DOC_VALUES["tversky_checkerboard_alpha_fp_0.2"], rel=1e-6)
    # Keras 3.15.1's own test gives 0.7916667 for its (alpha=0.2, beta=0.8): our (0.8, 0.2).
    assert tversky(0.8, 0.2) == pytest.approx(DOC_VALUES["keras_tversky_checkerboard_code_0.2"], rel=1e-6)
    keras_code = keras.losses.Tversky(alpha=0.2, beta=0.8, axis=(1, 2), reduction=None)(f32(y[..., 1:]), f32(p[..., 1:]))
    assert float(keras_code.numpy()[0, 0]) == pytest.approx(DOC_VALUES["keras_tversky_checkerboard_code_0.2"], rel=1e-6)


def test_keras_tversky_code_puts_alpha_on_false_negatives():
    """Keras 3.15.1's docstring says alpha weighs false positives; its code weighs false
    negatives. If this starts failing, Keras changed: revisit the tversky notes."""
    y, p = np.array([[1.0, 1.0, 0.0, 0.0]]), np.ones((1, 4))  # false positives only
    assert float(keras.losses.Tversky(alpha=1.0, beta=0.0)(y, p)) == pytest.approx(0.0, abs=1e-6)
    assert float(keras.losses.Tversky(alpha=0.0, beta=1.0)(y, p)) == pytest.approx(0.5, rel=1e-5)


def test_keras_dice_docstring_values():
    y_fg = np.array([[[1.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]])
    p_fg = np.array([[[0.0, 1.0], [0.0, 1.0]], [[0.4, 0.0], [0.0, 0.9]]])
    y = np.stack([1 - y_fg, y_fg], -1)
    p = np.stack([1 - p_fg, p_fg], -1)
    options = dict(smooth=0.0, include_background=False, from_logits=False)
    np.testing.assert_allclose(_value("dice", y, p, **options), [0.5, 0.75757575], rtol=1e-6)
    assert float(_value("dice", y, p, batch=True, **options)) == pytest.approx(0.6164384, rel=1e-6)


MONAI_LOGITS = [[1.0, -1.0], [-1.0, 1.0]]
MONAI_TARGET = [[1.0, 0.0], [1.0, 1.0]]


@pytest.mark.parametrize("loss_id,params", [("tversky", dict(alpha=0.5, beta=0.5)), ("dice", {})])
def test_monai_tversky_value(loss_id, params):
    # One sigmoid channel x equals a two-class softmax over logits (0, x), background dropped.
    x, g = np.array(MONAI_LOGITS), np.array(MONAI_TARGET)
    z = np.stack([np.zeros_like(x), x], -1)[None]
    y = np.stack([1 - g, g], -1)[None]
    value = _value(loss_id, y, z, smooth=1e-6, include_background=False, **params)[0]
    assert value == pytest.approx(DOC_VALUES["monai_tversky_half"], abs=1e-6)


def test_monai_generalized_dice_all_foreground_absent():
    # MONAI's case, channels last: two images of three pixels, all background, predicted so.
    p = np.zeros((2, 1, 3, 2))
    p[..., 0] = 1.0
    y = p.copy()
    value = losses.get("generalized_dice", include_background=False, from_logits=False, smooth=1e-8)(f32(y), f32(p))
    assert float(value) == pytest.approx(DOC_VALUES["monai_generalized_dice_all_absent"], abs=1e-7)


# --------------------------------------------------------------------------------------------
# Agreement with Keras's built-ins where the definitions coincide


@pytest.mark.parametrize("classes", [2, 4, 6])
def test_agrees_with_keras_categorical_focal_with_list_alpha(classes):
    rng = seeded("keras-focal", classes)
    y, z = make_batch(rng, 3, 6, 6, classes, scale=2.0)
    alpha = [round(float(a), 3) for a in rng.uniform(0.1, 2.0, classes)]
    keras_loss = keras.losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=1.5, from_logits=True, reduction=None)
    ours = losses.get("focal", alpha=1.0, gamma=1.5, class_weights=alpha)
    np.testing.assert_allclose(ours.per_pixel(y, z).numpy(), keras_loss(f32(y), f32(z)).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("classes", [2, 4])
def test_agrees_with_keras_dice_per_image_and_class(classes):
    y, z = make_batch(seeded("keras-dice", classes), 4, 6, 6, classes)
    p = softmax(z)
    keras_per_class = keras.losses.Dice(axis=(1, 2), reduction=None)(f32(y), f32(p)).numpy()
    # Keras adds epsilon (1e-7) to the denominator only; ours adds s to both.
    ours = _value("dice", y, z, smooth=1e-7)
    np.testing.assert_allclose(ours, keras_per_class.mean(-1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alpha,beta", [(0.3, 0.7), (0.9, 0.1), (0.5, 0.5)])
def test_agrees_with_keras_tversky_with_alpha_beta_swapped(alpha, beta):
    y, z = make_batch(seeded("keras-tversky", alpha), 4, 6, 6, 3)
    p = softmax(z)
    keras_per_class = keras.losses.Tversky(alpha=beta, beta=alpha, axis=(1, 2), reduction=None)(f32(y), f32(p)).numpy()
    ours = _value("tversky", y, z, alpha=alpha, beta=beta, smooth=1e-7)
    np.testing.assert_allclose(ours, keras_per_class.mean(-1), rtol=1e-5, atol=1e-6)


def test_agrees_with_keras_categorical_and_binary_crossentropy():
    y, z = make_batch(seeded("keras-ce"), 3, 5, 5, 4)
    cce = keras.losses.CategoricalCrossentropy(from_logits=True, reduction=None)(f32(y), f32(z)).numpy()
    bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)(f32(y), f32(z)).numpy()
    np.testing.assert_allclose(_value("ce", y, z), cce, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_value("bce", y, z), bce, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Registry and API


def test_registry_order_and_fields():
    expected = [
        "ce", "weighted_ce", "bce", "focal", "binary_focal", "dice", "iou", "tversky", "focal_tversky",
        "sensitivity_specificity", "generalized_dice", "ce_dice", "lovasz", "unified_focal",
    ]  # fmt: skip
    assert LOSS_IDS == expected
    table_ids = [line.split("`")[1] for line in _doc_section("The losses").splitlines() if line.startswith("| `")]
    assert LOSS_IDS == table_ids
    for spec in losses.REGISTRY.values():
        assert spec.kind in ("pixel", "region")
        assert spec.name and spec.formula and spec.source and spec.notes
        for p in spec.params:
            assert p.min <= p.default <= p.max and p.step > 0 and p.help


@pytest.mark.parametrize("loss_id", LOSS_IDS)
def test_each_function_takes_exactly_its_registry_parameters(loss_id):
    accepted = set(inspect.signature(losses.FUNCTIONS[loss_id]).parameters) - {"y_true", "y_pred"}
    assert accepted == set(loss_registry.defaults(loss_id))
    assert list(losses.get(loss_id).params) == list(loss_registry.defaults(loss_id))


def test_every_registry_id_has_one_tensor_function_and_no_function_is_unregistered():
    assert list(losses.FUNCTIONS) == list(loss_registry.REGISTRY)
    named = {name for name, value in vars(losses).items() if name.endswith("_loss") and callable(value)}
    assert set(losses.FUNCTIONS.values()) == {getattr(losses, name) for name in named}
    assert all(function.__name__ == f"{loss_id}_loss" for loss_id, function in losses.FUNCTIONS.items())


def test_no_streamlit_in_losses():
    source = Path(losses.__file__).read_text()
    assert "streamlit" not in source


def test_unknown_id_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown loss 'dise'.*dice"):
        losses.get("dise")


@pytest.mark.parametrize(
    "loss_id,params,message",
    [
        ("dice", {"alpha": 0.3}, "no parameter 'alpha'.*smooth"),
        ("ce", {"batch": True}, "no parameter 'batch'"),
        ("tversky", {"alpha": 1.5}, r"alpha=1.5 is outside \[0, 1\]"),
        ("focal", {"gamma": -1.0}, "outside"),
        ("focal", {"gamma": float("nan")}, "outside"),
        ("dice", {"smooth": "1e-5"}, "must be a number"),
        ("dice", {"batch": 1}, "True or False"),
        ("generalized_dice", {"class_weights": [1.0, 2.0]}, "does not use class_weights"),
        ("dice", {"class_weights": [1.0, -2.0]}, "non-negative"),
        ("dice", {"class_weights": [1.0, 0.0], "include_background": False}, "no positive weight"),
        ("dice", {"class_weights": [1.0]}, "one weight per class"),
    ],
)
def test_invalid_parameters_raise(loss_id, params, message):
    with pytest.raises(ValueError, match=message):
        losses.get(loss_id, **params)


def test_class_weights_none_is_accepted_everywhere():
    assert "class_weights" not in losses.get("generalized_dice", class_weights=None).params


def test_class_weights_of_the_wrong_length_raise_at_call():
    y, z = make_batch(seeded("cw-len"), 2, 4, 4, 3)
    with pytest.raises(ValueError, match="class_weights"):
        losses.get("dice", class_weights=[1.0, 2.0])(f32(y), f32(z))


def test_single_channel_softmax_loss_raises():
    with pytest.raises(ValueError, match="bce or binary_focal"):
        losses.get("dice")(f32(np.ones((1, 2, 2, 1))), f32(np.zeros((1, 2, 2, 1))))


def test_set_params_rejects_flags_and_weight_length_changes():
    loss = losses.get("dice", class_weights=[1.0, 2.0, 3.0])
    loss.set_params(**loss.params)  # its own values, flags included: accepted
    with pytest.raises(ValueError, match="fixed at construction"):
        loss.set_params(batch=True)
    with pytest.raises(ValueError, match="same length"):
        loss.set_params(class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        loss.set_params(class_weights=None)
    with pytest.raises(ValueError, match="outside"):
        loss.set_params(smooth=2.0)
    assert loss.params["smooth"] == 1e-5


@pytest.mark.parametrize("loss_id", LOSS_IDS)
def test_output_shapes_and_per_pixel(loss_id):
    y, z = make_batch(seeded("shapes", loss_id), 3, 4, 5, 3)
    loss = losses.get(loss_id)
    per_pixel = loss.per_pixel(y, z)
    if losses.REGISTRY[loss_id].kind == "pixel":
        assert loss.call(f32(y), f32(z)).shape == (3, 4, 5)
        assert per_pixel.shape == (3, 4, 5)
        assert float(loss(f32(y), f32(z))) == pytest.approx(float(tf.reduce_mean(per_pixel)), rel=1e-6)
    else:
        assert per_pixel is None
        assert loss.call(f32(y), f32(z)).shape == (3,)
        assert losses.get(loss_id, batch=True).call(f32(y), f32(z)).shape == ()


@pytest.mark.parametrize("loss_id", PIXEL_IDS)
def test_per_pixel_sample_weight(loss_id):
    """The class_weight-with-masks fix: a (B, H, W) sample_weight weighs each pixel."""
    rng = seeded("sample-weight", loss_id)
    y, z = make_batch(rng, 3, 4, 5, 3)
    w = rng.uniform(0.0, 2.0, (3, 4, 5))
    loss = losses.get(loss_id)
    weighted = float(loss(f32(y), f32(z), sample_weight=f32(w)))
    assert weighted == pytest.approx(float(np.mean(w * loss.per_pixel(y, z).numpy())), rel=1e-5)


def _nondefault_params(loss_id, classes=3):
    rng = seeded("nondefault", loss_id)
    params = random_params(loss_id, rng)
    if losses.REGISTRY[loss_id].uses_class_weights:
        params["class_weights"] = [0.5, 1.5, 2.0][:classes]
    if losses.REGISTRY[loss_id].kind == "region":
        params["include_background"] = False
    return params


@pytest.mark.parametrize("loss_id", LOSS_IDS)
def test_get_config_round_trip(loss_id):
    loss = losses.get(loss_id, **_nondefault_params(loss_id))
    config = loss.get_config()
    again = losses.SegLoss.from_config(config)
    assert again.loss_id == loss_id and again.params == loss.params and again.get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(revived, losses.SegLoss) and revived.params == loss.params
    y, z = make_batch(seeded("config", loss_id), 2, 4, 4, 3)
    assert float(again(f32(y), f32(z))) == pytest.approx(float(loss(f32(y), f32(z))), rel=1e-6)


# Keras 3.15.1's own save after fit warns about numpy 2's __array__ copy keyword; not ours.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize("loss_id", LOSS_IDS)
def test_model_compiled_with_loss_saves_and_loads(loss_id, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 1)])
    loss = losses.get(loss_id, **_nondefault_params(loss_id))
    model.compile(optimizer="sgd", loss=loss)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 2)).astype("float32")
    y, _ = make_batch(seeded("save", loss_id), 2, 6, 6, 3)
    model.fit(x, y.astype("float32"), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, losses.SegLoss)
    assert loaded.loss.loss_id == loss_id and loaded.loss.params == loss.params
    np.testing.assert_allclose(
        loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5
    )


@pytest.mark.parametrize("loss_id", [i for i in LOSS_IDS if losses.REGISTRY[i].params or losses.REGISTRY[i].uses_class_weights])
def test_set_params_changes_the_value_without_retracing(loss_id):
    spec = losses.REGISTRY[loss_id]
    y, z = make_batch(seeded("retrace", loss_id), 3, 5, 5, 3)
    start = {p.name: p.default for p in spec.params}
    new = {p.name: round(p.min + 0.37 * (p.max - p.min), 3) for p in spec.params}
    if spec.uses_class_weights:
        start["class_weights"], new["class_weights"] = [1.0, 1.0, 1.0], [0.2, 3.0, 1.0]
    loss = losses.get(loss_id, **start)
    traces = []

    @tf.function
    def step(y_true, logits):
        traces.append(1)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = loss(y_true, logits)
        return value, tape.gradient(value, logits)

    before, _ = step(f32(y), f32(z))
    loss.set_params(**new)
    after, grad = step(f32(y), f32(z))
    assert len(traces) == 1
    assert loss.params == {**loss_registry.defaults(loss_id), **new}
    expected = losses.get(loss_id, **new)(f32(y), f32(z))
    assert float(after) == pytest.approx(float(expected), rel=1e-6)
    assert float(after) != pytest.approx(float(before), rel=1e-4)
    assert np.all(np.isfinite(grad.numpy()))
