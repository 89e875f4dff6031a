"""explorer.conventions: every entry translates to a loss of ours that builds; the way back returns
the same set-up; the Keras entries agree numerically with the installed Keras; the conventions that
differ (docs/losses.md) come out as stated; bad input is refused with a message naming it. The
other libraries' values are checked in tests/test_library_values.py."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from explorer import conventions as cv
from explorer import losses

C = 4


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, C, (2, 10, 10))
    y = np.eye(C, dtype=np.float32)[labels]
    z = rng.normal(scale=1.5, size=y.shape).astype(np.float32)
    p = np.asarray(keras.ops.softmax(z, axis=-1))
    return y, z, p


@pytest.mark.parametrize("entry", cv.ENTRIES, ids=lambda e: f"{e.library}:{e.name}")
def test_every_entry_translates_its_defaults_to_a_loss_that_builds(entry):
    t = cv.to_ours(entry.library, entry.name)
    assert t.relation in cv.RELATIONS
    assert t.loss_id in losses.REGISTRY
    losses.get(t.loss_id, **t.our_params)  # valid parameters
    assert t.their_call().startswith(entry.name + "(") and t.our_call().startswith(f'losses.get("{t.loss_id}"')
    if t.relation in ("close", "none"):
        assert t.notes, "a translation that is not exact must say why"


@pytest.mark.parametrize("library", list(cv.LIBRARIES))
def test_the_way_back_returns_the_same_setup(library):
    """Our loss → theirs → ours gives our parameters back whenever no note says otherwise."""
    covered = 0
    for loss_id in losses.REGISTRY:
        for t in cv.from_ours(library, loss_id):
            back = cv.to_ours(library, t.their_name, t.their_params)
            if any(n.startswith("Not expressible there") for n in t.notes):
                assert t.relation in ("close", "none")
                continue
            covered += 1
            assert back.loss_id == loss_id
            for key, value in back.our_params.items():
                assert t.our_params[key] == pytest.approx(value) if isinstance(value, float) else t.our_params[key] == value, (t.their_name, key)
    assert covered or library in ("focal-Tversky code", "unified focal code", "kornia", "smp")


def test_a_split_of_focal_alpha_is_the_same_loss():
    (t,) = cv.from_ours("Keras", "focal", {"alpha": 0.5, "class_weights": [1.0, 2.0, 2.0, 2.0]})
    assert t.relation == "equal" and t.their_params["alpha"] == [0.5, 1.0, 1.0, 1.0]


def test_a_setup_expressible_in_each_library_round_trips_exactly():
    cases = [
        ("MONAI", "tversky", dict(alpha=0.2, beta=0.8, smooth=1e-4, batch=True, include_background=False)),
        ("MONAI", "iou", dict(smooth=0.5)),
        ("Keras", "focal", dict(alpha=1.0, gamma=1.0, class_weights=[0.25, 0.5, 0.75, 1.0])),
        ("smp", "dice", dict(smooth=0.0, batch=True)),
        ("SegLoss", "sensitivity_specificity", dict(r=0.1, smooth=1.0)),
        ("focal-Tversky code", "focal_tversky", dict(alpha=0.3, beta=0.7, gamma=0.75, smooth=1.0, batch=True, include_background=False, from_logits=False)),
        ("unified focal code", "unified_focal", dict(lambda_=0.3, delta=0.6, gamma=0.5, smooth=1e-7, from_logits=False)),
    ]
    for library, loss_id, params in cases:
        (t,) = [t for t in cv.from_ours(library, loss_id, params) if not any(n.startswith("Not expressible") for n in t.notes)]
        back = cv.to_ours(library, t.their_name, t.their_params)
        assert back.loss_id == loss_id
        for key, value in params.items():
            assert back.our_params[key] == pytest.approx(value), (library, key)


# -- the conventions that differ, as docs/losses.md states them -----------------------------------


def test_tversky_alpha_moves_between_conventions():
    abraham = cv.to_ours("focal-Tversky code", "tversky_loss", {"alpha": 0.7}).our_params
    assert abraham["alpha"] == pytest.approx(0.3) and abraham["beta"] == pytest.approx(0.7)
    yeung = cv.to_ours("unified focal code", "tversky_loss", {"delta": 0.7}).our_params
    assert yeung["alpha"] == pytest.approx(0.3) and yeung["beta"] == pytest.approx(0.7)
    monai = cv.to_ours("MONAI", "monai.losses.TverskyLoss", {"alpha": 0.3, "beta": 0.7}).our_params
    assert (monai["alpha"], monai["beta"]) == (0.3, 0.7)
    keras_t = cv.to_ours("Keras", "keras.losses.Tversky", {"alpha": 0.3, "beta": 0.7, "axis": (1, 2)})
    assert (keras_t.our_params["alpha"], keras_t.our_params["beta"]) == (0.7, 0.3)


def test_other_stated_differences():
    # Yeung's weight sits on the Tversky term: our lambda_ (on the focal term) is 1 − weight.
    assert cv.to_ours("unified focal code", "asym_unified_focal_loss", {"weight": 0.2}).our_params["lambda_"] == pytest.approx(0.8)
    # MONAI's jaccard with s is our iou with s/2.
    t = cv.to_ours("MONAI", "monai.losses.DiceLoss", {"jaccard": True, "smooth_nr": 1e-4, "smooth_dr": 1e-4})
    assert t.loss_id == "iou" and t.our_params["smooth"] == pytest.approx(5e-5)
    # SegLoss returns −score.
    t = cv.to_ours("SegLoss", "SoftDiceLoss")
    assert (t.relation, t.offset, t.our_params["smooth"]) == ("offset", -1.0, 1.0)
    # smp 0.6's multiclass focal loss is the class mean of one-vs-rest sigmoid focal losses.
    t = cv.to_ours("smp", "smp.losses.FocalLoss", {"alpha": 0.25}, num_classes=C)
    assert (t.loss_id, t.relation, t.factor) == ("binary_focal", "equal", 1.0)
    # smp 0.6's Dice with s is ours with 2s.
    assert cv.to_ours("smp", "smp.losses.DiceLoss", {"smooth": 0.25}).our_params["smooth"] == pytest.approx(0.5)
    # MONAI and kornia softmax focal: 1 − α on class 0; kornia's 'mean' also divides by C.
    t = cv.to_ours("kornia", "kornia.losses.focal_loss", {"alpha": 0.25})
    assert t.our_params["class_weights"] == [0.75, 0.25, 0.25, 0.25] and t.factor == pytest.approx(1 / C)
    t = cv.to_ours("MONAI", "monai.losses.FocalLoss", {"alpha": 0.25, "use_softmax": True})
    assert t.our_params["class_weights"] == [0.75, 0.25, 0.25, 0.25] and t.factor == pytest.approx(1 / C)
    # Pooling the classes has no counterpart; kornia 0.9's Tversky no longer pools them.
    assert cv.to_ours("kornia", "kornia.losses.dice_loss").relation == "none"
    assert cv.to_ours("kornia", "kornia.losses.tversky_loss").relation == "close"
    assert cv.to_ours("Keras", "keras.losses.Dice").relation == "none"


# -- the installed Keras agrees --------------------------------------------------------------------


def _ours(t: cv.Translation, y, pred) -> float:
    return float(losses.get(t.loss_id, **t.our_params)(y, pred))


@pytest.mark.parametrize(("alpha", "beta"), [(0.3, 0.7), (0.8, 0.1)])
def test_keras_tversky_per_image_and_class_matches_the_translation(data, alpha, beta):
    _, z, _ = data
    # Imbalanced masks (mostly class 0) and a prediction that over-calls the rare class 3: its false
    # positives far outweigh its false negatives, so which of α, β weighs them matters.
    labels = np.where(np.random.default_rng(1).random(z.shape[:-1]) < 0.85, 0, 3)
    y = np.eye(C, dtype=np.float32)[labels]
    p = np.asarray(keras.ops.softmax(z + 3.0 * y + np.array([0.0, 0.0, 0.0, 2.0], np.float32), axis=-1))
    t = cv.to_ours("Keras", "keras.losses.Tversky", {"alpha": alpha, "beta": beta, "axis": (1, 2)})
    keras_value = float(keras.losses.Tversky(alpha=alpha, beta=beta, axis=(1, 2))(y, p))
    assert keras_value == pytest.approx(_ours(t, y, p), rel=1e-5)
    # ... and not the naive reading of its docstring (α on false positives), unless α = β.
    naive = float(losses.get("tversky", alpha=alpha, beta=beta, smooth=0.0, from_logits=False)(y, p))
    assert abs(naive - keras_value) > 1e-3


def test_keras_dice_and_tversky_with_axis_none_pool_the_classes(data):
    y, _, p = data
    one_minus_mean_p_true = 1.0 - float((y * p).sum(-1).mean())
    assert float(keras.losses.Dice()(y, p)) == pytest.approx(one_minus_mean_p_true, rel=1e-5)
    assert float(keras.losses.Tversky(alpha=0.2, beta=0.8)(y, p)) == pytest.approx(float(keras.losses.Tversky(alpha=0.8, beta=0.2)(y, p)), rel=1e-5)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("keras.losses.CategoricalFocalCrossentropy", {"alpha": 0.25, "gamma": 2.0, "from_logits": True}),
        ("keras.losses.CategoricalFocalCrossentropy", {"alpha": [0.1, 0.2, 0.3, 0.4], "gamma": 1.0, "from_logits": True}),
        ("keras.losses.BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.3, "gamma": 2.0, "from_logits": True}),
        ("keras.losses.BinaryFocalCrossentropy", {"apply_class_balancing": False, "gamma": 1.5, "from_logits": True}),
        ("keras.losses.CategoricalCrossentropy", {"from_logits": True}),
        ("keras.losses.BinaryCrossentropy", {"from_logits": True}),
    ],
)
def test_keras_pixel_losses_match_the_translation(data, name, params):
    y, z, _ = data
    t = cv.to_ours("Keras", name, params)
    cls = getattr(keras.losses, name.rsplit(".", 1)[1])
    theirs = float(cls(**params)(y, z))
    assert theirs == pytest.approx(t.factor * _ours(t, y, z) + t.offset, rel=1e-5)


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cv.to_ours("Caffe", "x"), "unknown library 'Caffe'"),
        (lambda: cv.to_ours("MONAI", "SuperLoss"), "MONAI has no loss 'SuperLoss'"),
        (lambda: cv.to_ours("MONAI", "monai.losses.TverskyLoss", {"gamma": 2}), "no parameter 'gamma'"),
        (lambda: cv.to_ours("MONAI", "monai.losses.TverskyLoss", {"alpha": 2}), "outside"),
        (lambda: cv.to_ours("MONAI", "monai.losses.TverskyLoss", {"batch": "yes"}), "True or False"),
        (lambda: cv.to_ours("MONAI", "monai.losses.DiceLoss", {"weight": [1, 2]}), "2 entries for 4 classes"),
        (lambda: cv.to_ours("MONAI", "monai.losses.DiceLoss", {"weight": [1, 2, 3]}), "one entry per included class"),
        (lambda: cv.to_ours("MONAI", "monai.losses.DiceCELoss", {"weight": [1, 2, 3]}), "one entry per class"),
        (lambda: cv.to_ours("smp", "smp.losses.DiceLoss", {"class_weights": [1, 2, 3]}), "one entry per class"),
        (lambda: cv.to_ours("smp", "smp.losses.FocalLoss", {"alpha": [0.1, 0.2, 0.3, 0.4]}), "takes one alpha"),
        (lambda: cv.to_ours("kornia", "kornia.losses.focal_loss", {"alpha": [0.1, 0.2, 0.3, 0.4]}), "per-class weights go in weight"),
        (lambda: cv.to_ours("MONAI", "monai.losses.FocalLoss", {"alpha": [0.1, 0.2, 0.3], "use_softmax": True}), "one entry per included class"),
        (lambda: cv.to_ours("Keras", "keras.losses.CategoricalFocalCrossentropy", {"alpha": [0.1, 0.2, 0.3]}), "one entry per class"),
        (lambda: cv.to_ours("Keras", "keras.losses.Dice", {"axis": (2, 3)}), "must be one of"),
        (lambda: cv.from_ours("Keras", "dicey"), "unknown loss 'dicey'"),
        (lambda: cv.from_ours("Keras", "tversky", {"alpha": 5}), "outside"),
    ],
)
def test_bad_input_is_refused_with_a_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_library_without_the_loss_gives_an_empty_list():
    assert cv.from_ours("kornia", "lovasz") == []
