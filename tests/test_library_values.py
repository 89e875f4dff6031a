"""The translator (explorer/conventions.py) checked against the libraries themselves.

tests/data/library_values.json holds values that MONAI, smp, kornia and torch computed on fixed
inputs, the defaults of their losses, and every exported Keras snippet's value on Keras's PyTorch
backend (scripts/check_conventions.py wrote it, in a venv without TensorFlow). Here the same inputs,
channels last, go through the translated loss of ours: an exact translation must give their number
(× factor + offset); a translation that is only close must say why in its notes, and the stated
difference, computed from our losses, must give their number."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explorer import conventions as cv
from explorer import losses

DATA = json.loads((Path(__file__).parent / "data" / "library_values.json").read_text())
C = DATA["inputs"]["shape_nchw"][1]
W = DATA["inputs"]["weights"]
RTOL = 1e-4

LOGITS = np.asarray(DATA["inputs"]["logits_nchw"], np.float32).transpose(0, 2, 3, 1)  # NCHW → NHWC
_E = np.exp(LOGITS.astype(np.float64) - LOGITS.max(-1, keepdims=True))
PROBS = (_E / _E.sum(-1, keepdims=True)).astype(np.float32)
LABELS = {k: np.asarray(v) for k, v in DATA["inputs"]["labels"].items()}
ONE_HOT = {k: np.eye(C, dtype=np.float32)[v] for k, v in LABELS.items()}


def ours(loss_id: str, params: dict, inputs: str = "main", pred: str = "logits", images=slice(None), channels=slice(None)) -> float:
    y = ONE_HOT[inputs][images][..., channels]
    x = (LOGITS if pred == "logits" else PROBS)[images][..., channels]
    return float(losses.get(loss_id, **params)(y, x))


def translation(case) -> cv.Translation:
    return cv.to_ours(case["library"], case["name"], case["params"], num_classes=C)


def ours_of(case, t: cv.Translation, **changes) -> float:
    return ours(t.loss_id, dict(t.our_params, **changes), case["inputs"], case["pred"])


# -- the stated differences, each reproduced from our losses --------------------------------------


def _per_image_present(case, t):
    """kornia 0.9: per image, the mean over the classes present in that image's target."""
    labels = LABELS[case["inputs"]]
    values = [
        ours(t.loss_id, dict(t.our_params, class_weights=[float((labels[b] == k).any()) for k in range(C)]),
             case["inputs"], case["pred"], images=slice(b, b + 1))
        for b in range(len(labels))
    ]
    return float(np.mean(values))


def _smp_absent(case, t, value=None):
    """smp: a class absent from the whole batch scores 0 but stays in the (weighted) class mean."""
    present = np.array([float((LABELS[case["inputs"]] == k).any()) for k in range(C)])
    w = np.asarray(t.our_params.get("class_weights") or [1.0] * C)
    if value is None:
        value = ours_of(case, t, class_weights=list(w * present))
    return value * float((w * present).sum() / w.sum())


def _smp_focal_tversky(case, t):
    """smp: the class mean of (1 − TI) to the power γ; ours without γ is that class mean."""
    params = {k: v for k, v in t.our_params.items() if k != "gamma"}
    return _smp_absent(case, t, ours("tversky", params, case["inputs"], case["pred"])) ** t.our_params["gamma"]


def _monai_softmax_focal_foreground(case, t):
    """MONAI drops channel 0 before its softmax: our focal over channels 1.., over C − 1 channels."""
    return ours("focal", dict(t.our_params, class_weights=None), case["inputs"], case["pred"], channels=slice(1, None)) / (C - 1)


def _monai_sigmoid_focal_foreground(case, t):
    """Sigmoid focal without channel 0: our binary_focal on channels 1.. (it averages over channels)."""
    return t.factor * ours("binary_focal", t.our_params, case["inputs"], case["pred"], channels=slice(1, None))


def _sum_w_ratio(inputs: str = "main") -> float:
    """N / Σ_i w_{y_i}: PyTorch's weighted-mean cross-entropy over ours (which divides by N)."""
    labels = LABELS[inputs]
    return labels.size / float(np.asarray(W)[labels].sum())


def _monai_dicece_weighted(case, t):
    p = t.our_params
    ce = ours("weighted_ce", {"class_weights": p["class_weights"]}, case["inputs"], case["pred"])
    if case["params"].get("to_onehot_y"):
        ce *= _sum_w_ratio(case["inputs"])
    dice_params = {k: p[k] for k in ("smooth", "class_weights", "batch", "include_background", "from_logits")}
    included = p["class_weights"] if p["include_background"] else p["class_weights"][1:]
    dice = ours("dice", dice_params, case["inputs"], case["pred"]) * sum(included) / len(included)
    return p["lambda_ce"] * ce + p["lambda_dice"] * dice


def _monai_smooth_nr_dr(case, t):
    """MONAI Dice with smooth_nr ≠ smooth_dr: ours (s = smooth_dr) plus (dr − nr)/(2TP + FP + FN + dr)
    per image and class, 2TP + FP + FN = Σp + Σy."""
    nr, dr = case["params"]["smooth_nr"], case["params"]["smooth_dr"]
    denominator = (PROBS.astype(np.float64) + ONE_HOT[case["inputs"]]).sum((1, 2)) + dr  # (B, C)
    return ours_of(case, t) + float(np.mean((dr - nr) / denominator))


def _kornia_micro(case, t):
    """Pooling the classes of an image with softmax outputs: 1 − mean(p_true) per image."""
    p_true = (PROBS.astype(np.float64) * ONE_HOT[case["inputs"]]).sum(-1)
    return float(1.0 - p_true.mean())


# case id prefix → (text the notes must contain, the value theirs should equal)
STATED = {
    "monai-dice-smooth-nr0-dr1": ("theirs = ours + (smooth_dr − smooth_nr)/(their denominator)", _monai_smooth_nr_dr),
    "monai-focal-sigmoid-no-background": ("drops channel 0", _monai_sigmoid_focal_foreground),
    "monai-focal-softmax-no-background": ("foreground channels only", _monai_softmax_focal_foreground),
    "monai-dicece-weighted-labels": ("Σ_i w_{y_i}", _monai_dicece_weighted),
    "monai-dicece-weighted-onehot": ("as ours: that cross-entropy term equals", _monai_dicece_weighted),
    "smp-tversky-a0.3-b0.7-g0.75": ("raises the (weighted) class mean to γ", _smp_focal_tversky),
    "smp-dice": ("absent from the whole batch", _smp_absent),
    "smp-jaccard": ("absent from the whole batch", _smp_absent),
    "smp-tversky": ("absent from the whole batch", _smp_absent),
    "kornia-dice-micro": ("1 − mean(p_true)", _kornia_micro),
    "torch-ce-weighted-indices": ("Σ_i w_{y_i}", lambda case, t: ours_of(case, t) * _sum_w_ratio(case["inputs"])),
    "kornia-dice-macro": ("present in that image", _per_image_present),
    "kornia-tversky": ("present in that image", _per_image_present),
}


def _stated(case_id: str):
    matches = [k for k in STATED if case_id.startswith(k)]
    return STATED[max(matches, key=len)] if matches else None


TRANSLATED = [c for c in DATA["library"] if c["library"] in cv.LIBRARIES]


@pytest.mark.parametrize("case", TRANSLATED, ids=lambda c: c["id"])
def test_the_translation_gives_the_library_value(case):
    t = translation(case)
    stated = _stated(case["id"])
    if t.relation in ("equal", "scaled", "offset") and stated is None:
        expected = t.factor * ours_of(case, t) + t.offset
    else:
        assert stated is not None, f"{case['id']}: a {t.relation!r} translation needs its stated difference checked here"
        text, reproduce = stated
        assert any(text in n for n in t.notes), f"{case['id']}: the notes do not state {text!r}: {t.notes}"
        expected = reproduce(case, t)
    assert case["value"] == pytest.approx(expected, rel=RTOL), (case["call"], t.our_call(), t.relation)


def test_every_close_translation_of_the_recorded_cases_differs_as_stated_not_by_chance():
    """Where a stated difference applies to these inputs, ours plainly differs from theirs: the
    check above is not passing because the difference vanished."""
    differs = {
        "smp-dice-default-absent", "kornia-dice-micro", "kornia-dice-macro", "kornia-tversky-a0.3-b0.7",
        "monai-focal-softmax-no-background", "monai-dicece-weighted-labels", "monai-dicece-weighted-onehot",
        "smp-tversky-a0.3-b0.7-g0.75", "torch-ce-weighted-indices", "monai-dice-smooth-nr0-dr1",
    }
    for case in TRANSLATED:
        if case["id"] in differs:
            t = translation(case)
            assert abs(case["value"] - t.factor * ours_of(case, t) - t.offset) > 1e-3, case["id"]


def test_the_libraries_defaults_are_the_translators():
    """Each parameter the translator names with a default has the installed library's default."""
    checked = 0
    for e in cv.ENTRIES:
        theirs = DATA["defaults"].get(e.name)
        if theirs is None:
            continue
        for p in e.params:
            if p.name in theirs:
                assert p.default == theirs[p.name], f"{e.name}: {p.name} default {p.default!r}, the library's {theirs[p.name]!r}"
                checked += 1
    assert checked >= 30


def test_the_recorded_cases_cover_every_entry_of_monai_smp_and_kornia():
    recorded = {c["name"] for c in TRANSLATED}
    for library in ("MONAI", "smp", "kornia", "PyTorch"):
        missing = [e.name for e in cv.entries(library) if e.name not in recorded]
        assert not missing, f"{library}: no recorded values for {missing}"


# -- weighted cross-entropy: two normalisations ----------------------------------------------------


def _torch_case(case_id: str) -> dict:
    (case,) = [c for c in DATA["library"] if c["id"] == case_id]
    return case


def test_weighted_ce_divides_by_the_pixels_where_pytorch_divides_by_the_weights_of_their_classes():
    """Ours (and Keras) divide Σ_i w_{y_i}·ce_i by N pixels; PyTorch's cross_entropy with class-index
    targets (and so MONAI's DiceCELoss with to_onehot_y=True) by Σ_i w_{y_i}. With one-hot
    (probability) targets PyTorch divides by N too."""
    ours_value = ours("weighted_ce", {"class_weights": W})
    ratio = _sum_w_ratio()
    labels = LABELS["main"]
    n, sum_w = labels.size, float(np.asarray(W)[labels].sum())
    # ours is a per-pixel mean of the weighted terms; the Σw form divides the same sum by Σ w_{y_i}
    assert ours_value * n / sum_w == pytest.approx(ours_value * ratio)
    assert _torch_case("torch-ce-weighted-indices")["value"] == pytest.approx(ours_value * ratio, rel=RTOL)
    assert _torch_case("torch-ce-weighted-probabilities")["value"] == pytest.approx(ours_value, rel=RTOL)
    assert abs(ratio - 1.0) > 0.1  # the two numbers differ on this batch
    # Scaling every weight scales ours and leaves the weighted mean unchanged.
    assert ours("weighted_ce", {"class_weights": [3 * w for w in W]}) == pytest.approx(3 * ours_value, rel=1e-5)


def test_the_translator_states_the_normalisations():
    labels = cv.to_ours("MONAI", "monai.losses.DiceCELoss", {"softmax": True, "weight": W, "to_onehot_y": True})
    one_hot = cv.to_ours("MONAI", "monai.losses.DiceCELoss", {"softmax": True, "weight": W})
    assert labels.relation == one_hot.relation == "close"
    assert cv.MONAI_CE_SUM_W in labels.notes and cv.MONAI_CE_ONE_HOT in one_hot.notes
    torch_ce = cv.to_ours("PyTorch", "torch.nn.CrossEntropyLoss", {"weight": W})
    assert (torch_ce.loss_id, torch_ce.relation, torch_ce.notes[0]) == ("weighted_ce", "close", cv.TORCH_CE_SUM_W)
    keras_fit = cv.to_ours("Keras", "model.fit", {"class_weight": W})
    assert (keras_fit.loss_id, keras_fit.relation) == ("weighted_ce", "equal")


# -- the exported snippets on Keras's PyTorch backend ----------------------------------------------


SNIPPETS = DATA["snippets_torch"]["cases"]


def test_the_snippets_ran_on_the_torch_backend_for_every_loss():
    assert DATA["snippets_torch"]["backend"] == "torch"
    missing = set(losses.REGISTRY) - {c["loss_id"] for c in SNIPPETS}
    assert not missing, f"no torch-backend values for {sorted(missing)}: rerun scripts/check_conventions.py (README)"
    assert all(any(c["loss_id"] == k and c["params"] for c in SNIPPETS) for k in losses.REGISTRY)


@pytest.mark.parametrize("case", SNIPPETS, ids=lambda c: c["name"])
def test_the_snippet_on_torch_gives_our_value(case):
    assert case["value"] == pytest.approx(ours(case["loss_id"], case["params"], pred=case["pred"]), rel=1e-5)
