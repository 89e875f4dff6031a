"""The convention translator: the same loss in other libraries' terms and in ours, both ways.

Table-driven: each :class:`Entry` names a library's loss, its parameters (names, defaults,
meaning) and two small functions, one from their parameters to ``losses.get(loss_id, **params)``
and one back. Each translation says how the two relate:

- ``equal``: the same number for the same inputs (up to float rounding);
- ``scaled``: theirs = ``factor`` × ours (same minimum, gradients scaled);
- ``offset``: theirs = ours − 1 (SegLoss returns −score: same gradients);
- ``close``: equal except in a stated case (an empty class, a clip, where the exponent goes);
- ``none``: no loss of ours computes it; the closest one is given with the difference.

No Streamlit; TensorFlow only through the registry's parameter check. Facts come from each
library's code (docs/losses.md). The Keras entries are checked against the installed Keras by
tests/test_conventions.py; the MONAI, smp and kornia entries against values those libraries computed
(MONAI 1.6, smp 0.6, kornia 0.9: tests/data/library_values.json, written by
scripts/check_conventions.py) by tests/test_library_values.py. Our losses take logits
(from_logits=True) unless said.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from explorer import loss_registry

RELATIONS = ("equal", "scaled", "offset", "close", "none")


@dataclass(frozen=True)
class TheirParam:
    """A parameter of another library's loss. kind: 'float', 'bool', 'choice', 'weights'
    (None or a list of non-negative numbers), 'alpha' (None, a number in [0, 1], or a list)."""

    name: str
    default: object
    kind: str
    meaning: str
    low: float = 0.0
    high: float = math.inf
    choices: tuple = ()


@dataclass(frozen=True)
class Translation:
    """One loss in two conventions. ``theirs`` = factor × ``ours`` + offset, where relation says."""

    library: str
    their_name: str
    their_params: dict
    loss_id: str | None  # our loss (the closest one when relation is 'none')
    our_params: dict
    relation: str
    factor: float = 1.0
    offset: float = 0.0
    notes: tuple[str, ...] = ()

    def their_call(self) -> str:
        args = ", ".join(
            f"{k}={{{', '.join(f'{c}: {_fmt(w)}' for c, w in enumerate(v))}}}" if k == "class_weight" and v is not None else f"{k}={_fmt(v)}"
            for k, v in self.their_params.items()
        )
        return f"{self.their_name}({args})"

    def our_call(self) -> str:
        if self.loss_id is None:
            return "(no counterpart)"
        args = "".join(f", {k}={_fmt(v)}" for k, v in self.our_params.items())
        return f'losses.get("{self.loss_id}"{args})'

    def summary(self) -> str:
        if self.relation == "equal":
            return "equal: the same value for the same inputs"
        if self.relation == "scaled":
            return f"scaled: theirs = {self.factor:g} × ours (same minimum; gradients scaled by {self.factor:g})"
        if self.relation == "offset":
            return f"offset: theirs = ours {self.offset:+g} (same gradients)"
        if self.relation == "close":
            return "close: equal except where the notes say"
        return "no counterpart: ours is the closest, the notes say how it differs"


@dataclass(frozen=True)
class Entry:
    library: str
    name: str
    params: tuple[TheirParam, ...]
    loss_ids: tuple[str, ...]  # our losses this entry can translate back from
    to_ours: Callable[[dict, int], tuple]  # (their values, C) -> (loss_id, our params, relation, factor, offset, notes)
    from_ours: Callable[[str, dict, int], dict] | None  # (loss_id, our values, C) -> their values; None: one way only
    notes: tuple[str, ...] = field(default_factory=tuple)  # always true of this entry


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_fmt(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, str):
        return repr(value)
    return str(value)


# --------------------------------------------------------------------------------------------
# Helpers for the tables


def _ours(loss_id: str, relation: str = "equal", factor: float = 1.0, offset: float = 0.0, notes=(), **params):
    return loss_id, params, relation, factor, offset, tuple(notes)


def _weights_mean_factor(weights) -> float:
    """MONAI multiplies each class's loss by its weight and then takes the plain mean; ours is
    Σ w_c L_c / Σ w_c: theirs = ours × (Σw / number of included classes), one weight each."""
    if weights is None:
        return 1.0
    return float(sum(weights)) / len(weights)


def _focal_alpha_vector(alpha: float, num_classes: int) -> list[float]:
    """MONAI's and kornia's softmax α: 1−α on class 0, α on the others."""
    return [1.0 - alpha] + [alpha] * (num_classes - 1)


def _alpha_from_vector(weights, num_classes: int):
    """Back from per-class weights to a MONAI/kornia α if they have that shape, else None."""
    if weights is None:
        return None
    if len(weights) == num_classes and all(abs(w - weights[1]) < 1e-9 for w in weights[1:]) and abs(weights[0] + weights[1] - 1) < 1e-9:
        return float(weights[1])
    return None


_SOFTMAX_ONLY = "Our region losses apply a softmax over the classes (from_logits=True) or take probabilities (from_logits=False)."

# --------------------------------------------------------------------------------------------
# MONAI (monai.losses, 1.x; channels first there, last here)

_MONAI_COMMON = (
    TheirParam("include_background", True, "bool", "False drops channel 0 (the background)."),
    TheirParam("softmax", False, "bool", "True: a softmax over the channels first (our from_logits=True); "
               "False, its default, takes the input as probabilities."),
)
_MONAI_SMOOTH = (
    TheirParam("smooth_nr", 1e-5, "float", "Added to the numerator.", 0.0, 10.0),
    TheirParam("smooth_dr", 1e-5, "float", "Added to the denominator.", 0.0, 10.0),
    TheirParam("batch", False, "bool", "Sum the counts over the batch before the ratio (our batch=True)."),
)


def _monai_smooth(p: dict, notes: list) -> float:
    if p["smooth_nr"] != p["smooth_dr"]:
        notes.append(
            f"smooth_nr = {p['smooth_nr']:g} ≠ smooth_dr = {p['smooth_dr']:g}: ours adds one s to both; "
            "s = smooth_dr here, so per image and class theirs = ours + (smooth_dr − smooth_nr)/(their "
            "denominator), e.g. 2TP + FP + FN + smooth_dr for Dice (then the same means)."
        )
    return float(p["smooth_dr"])


def _monai_dice(p: dict, c: int):
    notes: list[str] = []
    s = _monai_smooth(p, notes)
    relation = "close" if notes else "equal"
    weights = p["weight"]
    params = dict(from_logits=p["softmax"], batch=p["batch"], include_background=p["include_background"])
    factor = 1.0
    if weights is not None:
        included = c if p["include_background"] else c - 1
        if len(weights) != included:
            raise ValueError(
                f"monai.losses.DiceLoss: weight needs one entry per included class ({included}; without class 0 "
                f"when include_background=False), got {len(weights)}"
            )
        factor = _weights_mean_factor(weights)
        params["class_weights"] = list(weights) if p["include_background"] else [1.0] + list(weights)
        if relation == "equal" and abs(factor - 1.0) > 1e-12:
            relation = "scaled"
        notes.append("MONAI multiplies each class's loss by its weight and takes the plain mean; ours divides by Σw.")
    if p["jaccard"]:
        notes.append("MONAI's jaccard=True computes 1 − (2TP + s)/(2(TP + FP + FN) + s): our iou with s/2.")
        return _ours("iou", relation, factor, notes=notes, smooth=s / 2, **params)
    return _ours("dice", relation, factor, notes=notes, smooth=s, **params)


def _monai_dice_back(loss_id: str, o: dict, c: int) -> dict:
    s = o["smooth"] * (2 if loss_id == "iou" else 1)
    weights = o.get("class_weights")
    if weights is not None and not o["include_background"]:
        weights = list(weights[1:])
    return dict(
        include_background=o["include_background"], softmax=o["from_logits"], jaccard=loss_id == "iou",
        smooth_nr=s, smooth_dr=s, batch=o["batch"], weight=weights,
    )


def _monai_tversky(p: dict, c: int):
    notes: list[str] = []
    s = _monai_smooth(p, notes)
    return _ours(
        "tversky", "close" if notes else "equal", notes=notes, alpha=p["alpha"], beta=p["beta"], smooth=s,
        from_logits=p["softmax"], batch=p["batch"], include_background=p["include_background"],
    )


def _monai_tversky_back(loss_id: str, o: dict, c: int) -> dict:
    return dict(
        include_background=o["include_background"], softmax=o["from_logits"], alpha=o["alpha"], beta=o["beta"],
        smooth_nr=o["smooth"], smooth_dr=o["smooth"], batch=o["batch"],
    )


def _monai_focal(p: dict, c: int):
    notes = []
    alpha, weight = p["alpha"], p["weight"]
    if p["use_softmax"]:
        included = c if p["include_background"] else c - 1
        vector = [1.0] * c
        if isinstance(alpha, list):
            # A sequence is one α per included class.
            if len(alpha) != included:
                raise ValueError(f"monai.losses.FocalLoss: a list alpha needs one entry per included class ({included}), got {len(alpha)}")
            vector = list(alpha) if p["include_background"] else [1.0] + list(alpha)
            notes.append("A list alpha weighs each class: our class_weights.")
        elif alpha is not None:
            if not p["include_background"]:
                notes.append("MONAI ignores a scalar alpha with softmax when include_background=False.")
            else:
                vector = _focal_alpha_vector(alpha, c)
        if weight is not None:
            full = list(weight) if p["include_background"] else [1.0] + list(weight)
            vector = [v * w for v, w in zip(vector, full)]
        notes.append(f"MONAI's mean runs over the {included} channels as well as the pixels: theirs = ours / {included}.")
        relation = "scaled"
        if not p["include_background"]:
            notes.append(
                "MONAI drops channel 0 before its softmax, so its probabilities are over the foreground "
                "channels only: no loss of ours does that."
            )
            relation = "close"
        params = dict(alpha=1.0, gamma=p["gamma"])
        if any(abs(v - 1.0) > 1e-12 for v in vector):
            params["class_weights"] = vector
        return _ours("focal", relation, 1.0 / included, notes=notes, **params)
    factor = 1.0
    a = alpha
    if isinstance(alpha, list):
        notes.append(
            "A list alpha weighs each channel's positives by its α and the negatives by 1: no counterpart in our "
            "binary_focal (one α on positives, 1 − α on negatives); the closest is α = 0.5, times 2."
        )
        return _ours("binary_focal", "none", 2.0, notes=notes, alpha=0.5, gamma=p["gamma"])
    if alpha is None:
        a, factor = 0.5, 2.0
        notes.append("alpha=None weighs positives and negatives by 1: our binary_focal with α = 0.5, times 2.")
    if weight is not None:
        notes.append("MONAI's per-class weight has no counterpart in our binary_focal (no class weights).")
        return _ours("binary_focal", "close", factor, notes=notes, alpha=a, gamma=p["gamma"])
    if not p["include_background"]:
        notes.append("include_background=False drops channel 0; our binary_focal averages over every channel.")
        return _ours("binary_focal", "close", factor, notes=notes, alpha=a, gamma=p["gamma"])
    return _ours("binary_focal", "scaled" if factor != 1.0 else "equal", factor, notes=notes, alpha=a, gamma=p["gamma"])


def _monai_focal_back(loss_id: str, o: dict, c: int) -> dict:
    if loss_id == "binary_focal":
        return dict(include_background=True, gamma=o["gamma"], alpha=o["alpha"], weight=None, use_softmax=False)
    weights = o.get("class_weights")
    scaled = [o["alpha"] * w for w in weights] if weights is not None else [o["alpha"]] * c
    if all(abs(v - 1.0) < 1e-12 for v in scaled):
        return dict(include_background=True, gamma=o["gamma"], alpha=None, weight=None, use_softmax=True)
    alpha = _alpha_from_vector(scaled, c)
    if alpha is not None:
        return dict(include_background=True, gamma=o["gamma"], alpha=alpha, weight=None, use_softmax=True)
    return dict(include_background=True, gamma=o["gamma"], alpha=None, weight=scaled, use_softmax=True)


def _monai_gdice(p: dict, c: int):
    notes: list[str] = []
    s = _monai_smooth(p, notes)
    if p["w_type"] != "square":
        notes.append(f"w_type={p['w_type']!r}: ours uses 1/(Σy)² ('square') only.")
        return _ours("generalized_dice", "none", notes=notes, smooth=s, from_logits=p["softmax"], batch=p["batch"], include_background=p["include_background"])
    return _ours(
        "generalized_dice", "close" if notes else "equal", notes=notes, smooth=s, from_logits=p["softmax"],
        batch=p["batch"], include_background=p["include_background"],
    )


def _monai_gdice_back(loss_id: str, o: dict, c: int) -> dict:
    return dict(
        include_background=o["include_background"], softmax=o["from_logits"], w_type="square",
        smooth_nr=o["smooth"], smooth_dr=o["smooth"], batch=o["batch"],
    )


MONAI_CE_SUM_W = (
    "With weight and class-index targets (to_onehot_y=True, target (B, 1, H, W)) its cross-entropy term is "
    "PyTorch's CrossEntropyLoss, which divides Σ_i w_{y_i}·ce_i by Σ_i w_{y_i} (a weighted mean): theirs = "
    "our weighted CE × N / Σ_i w_{y_i}, N the number of pixels. Ours divides by N (Keras style), so the CE "
    "term of our ce_dice differs from theirs by that factor."
)
MONAI_CE_ONE_HOT = (
    "With weight and one-hot targets (to_onehot_y=False) PyTorch treats the target as class probabilities "
    "and divides by the number of pixels N, as ours: that cross-entropy term equals our weighted CE."
)
MONAI_DICE_WEIGHT = (
    "Its Dice term multiplies each class's loss by its weight and takes the plain mean over the included "
    "classes C': theirs = our class-weighted Dice × (Σ of the included classes' weights) / C'."
)


def _monai_dicece(p: dict, c: int):
    notes: list[str] = []
    s = _monai_smooth(p, notes)
    params = dict(lambda_ce=p["lambda_ce"], lambda_dice=p["lambda_dice"], smooth=s, batch=p["batch"], include_background=p["include_background"])
    relation = "close" if notes else "equal"
    if p["weight"] is not None:
        if len(p["weight"]) != c:
            raise ValueError(f"monai.losses.DiceCELoss: weight needs one entry per class ({c}), got {len(p['weight'])}")
        params["class_weights"] = list(p["weight"])
        relation = "close"
        notes += [MONAI_CE_SUM_W if p["to_onehot_y"] else MONAI_CE_ONE_HOT, MONAI_DICE_WEIGHT]
    if not p["softmax"]:
        relation = "none"
        notes.insert(0, (
            "softmax=False (its default): its Dice term takes the input as probabilities while its cross-entropy "
            "takes it as logits; no loss of ours mixes the two. Pass logits with softmax=True."
        ))
    return _ours("ce_dice", relation, notes=notes, **params)


def _monai_dicece_back(loss_id: str, o: dict, c: int) -> dict:
    return dict(
        include_background=o["include_background"], softmax=o["from_logits"], to_onehot_y=False,
        lambda_dice=o["lambda_dice"], lambda_ce=o["lambda_ce"],
        smooth_nr=o["smooth"], smooth_dr=o["smooth"], batch=o["batch"], weight=o.get("class_weights"),
    )


_MONAI = (
    Entry(
        "MONAI", "monai.losses.DiceLoss",
        _MONAI_COMMON + (TheirParam("jaccard", False, "bool", "Soft IoU instead of Dice."),) + _MONAI_SMOOTH
        + (TheirParam("weight", None, "weights", "Per-class weights (without class 0 when include_background=False)."),),
        ("dice", "iou"), _monai_dice, _monai_dice_back,
        ("Channels first in MONAI (B, C, H, W); ours channels last.",),
    ),
    Entry(
        "MONAI", "monai.losses.TverskyLoss",
        _MONAI_COMMON + (
            TheirParam("alpha", 0.5, "float", "Weight of false positives.", 0.0, 1.0),
            TheirParam("beta", 0.5, "float", "Weight of false negatives.", 0.0, 1.0),
        ) + _MONAI_SMOOTH,
        ("tversky",), _monai_tversky, _monai_tversky_back,
        ("α on false positives, β on false negatives in both.",),
    ),
    Entry(
        "MONAI", "monai.losses.FocalLoss",
        (
            TheirParam("include_background", True, "bool", "False drops channel 0 (the background)."),
            TheirParam("gamma", 2.0, "float", "Focusing exponent γ.", 0.0, 5.0),
            TheirParam("alpha", None, "alpha", "None, or α in [0, 1]: sigmoid: α on positives; softmax: 1−α on class 0, α on the others.", 0.0, 1.0),
            TheirParam("weight", None, "weights", "Per-class weights multiplying the loss."),
            TheirParam("use_softmax", False, "bool", "Softmax focal (True) or one sigmoid per channel (False, the default)."),
        ),
        ("focal", "binary_focal"), _monai_focal, _monai_focal_back,
        ("MONAI's default is the sigmoid form (use_softmax=False).",),
    ),
    Entry(
        "MONAI", "monai.losses.GeneralizedDiceLoss",
        _MONAI_COMMON + (TheirParam("w_type", "square", "choice", "Class weights from the target volume.", choices=("square", "simple", "uniform")),) + _MONAI_SMOOTH,
        ("generalized_dice",), _monai_gdice, _monai_gdice_back,
        ("An absent class's infinite weight becomes the image's largest finite weight in both.",),
    ),
    Entry(
        "MONAI", "monai.losses.DiceCELoss",
        (
            TheirParam("include_background", True, "bool", "False drops channel 0 from the Dice term."),
            TheirParam("softmax", False, "bool", "True: a softmax before the Dice term (its cross-entropy always takes logits)."),
            TheirParam("to_onehot_y", False, "bool", "True: class-index targets (B, 1, H, W), one-hot encoded for the Dice term."),
            TheirParam("lambda_dice", 1.0, "float", "Weight of the Dice term.", 0.0, 5.0),
            TheirParam("lambda_ce", 1.0, "float", "Weight of the cross-entropy term.", 0.0, 5.0),
        ) + _MONAI_SMOOTH + (TheirParam("weight", None, "weights", "Per-class weights of the cross-entropy and of the Dice term."),),
        ("ce_dice",), _monai_dicece, _monai_dicece_back,
        ("Its cross-entropy applies the softmax itself; softmax=True applies one before the Dice term too.",),
    ),
)

# --------------------------------------------------------------------------------------------
# Keras 3 (keras.losses)

_KERAS_AXIS = TheirParam(
    "axis", None, "choice", "Axes summed before the ratio: None pools everything, classes included.",
    choices=(None, (1, 2), (0, 1, 2), (1, 2, 3)),
)
_KERAS_NO_SMOOTH = (
    "Keras adds ε = 1e-7 to the denominator only (no numerator term): a class absent from the target "
    "and from the prediction scores loss 1 there, 0 in ours; elsewhere the values agree to ~1e-7."
)
_KERAS_PROBS = "Keras's Dice and Tversky take probabilities: our from_logits=False."


def _keras_axis(axis, loss_id: str, params: dict, notes: list):
    """(loss_id, params, relation) for a Keras region loss with this axis."""
    if axis is None or axis == (1, 2, 3):
        pooled = "over the whole batch" if axis is None else "per image"
        notes.append(
            f"axis={axis!r} sums the counts {pooled} and over the classes too. With softmax outputs and one-hot "
            "targets ΣFP = ΣFN = N − TP there, so α and β act as one weight α + β and Dice equals "
            "1 − mean(p_true): nothing for imbalance. No loss of ours pools the classes; the closest is "
            "the per-class ratio below (use axis=(1, 2) in Keras for it)."
        )
        return loss_id, dict(params, batch=axis is None), "none"
    notes.append(_KERAS_NO_SMOOTH)
    return loss_id, dict(params, batch=axis == (0, 1, 2)), "close"


def _keras_dice(p: dict, c: int):
    notes = [_KERAS_PROBS]
    loss_id, params, relation = _keras_axis(p["axis"], "dice", dict(smooth=0.0, from_logits=False), notes)
    return _ours(loss_id, relation, notes=notes, **params)


def _keras_dice_back(loss_id: str, o: dict, c: int) -> dict:
    return dict(axis=(0, 1, 2) if o["batch"] else (1, 2))


def _keras_tversky(p: dict, c: int):
    notes = [
        _KERAS_PROBS,
        "In Keras 3.15.1 the code of keras.losses.Tversky multiplies α by Σ y·(1−p), the false negatives, "
        "and β by the false positives, although its docstring says the opposite: Keras "
        f"Tversky(alpha={p['alpha']:g}, beta={p['beta']:g}) is our tversky(alpha={p['beta']:g}, beta={p['alpha']:g}).",
    ]
    loss_id, params, relation = _keras_axis(
        p["axis"], "tversky", dict(alpha=p["beta"], beta=p["alpha"], smooth=0.0, from_logits=False), notes
    )
    return _ours(loss_id, relation, notes=notes, **params)


def _keras_tversky_back(loss_id: str, o: dict, c: int) -> dict:
    return dict(alpha=o["beta"], beta=o["alpha"], axis=(0, 1, 2) if o["batch"] else (1, 2))


def _keras_cfce(p: dict, c: int):
    notes = []
    alpha = p["alpha"]
    params = dict(gamma=p["gamma"], from_logits=p["from_logits"])
    if isinstance(alpha, list):
        if len(alpha) != c:
            raise ValueError(f"keras.losses.CategoricalFocalCrossentropy: a list alpha needs one entry per class ({c}), got {len(alpha)}")
        params.update(alpha=1.0, class_weights=list(alpha))
        notes.append("A list alpha weighs each class: our class_weights with alpha = 1.")
    else:
        params["alpha"] = float(alpha)
        notes.append("A scalar alpha scales every class alike (its default 0.25 only scales the loss by 0.25).")
    if p["label_smoothing"]:
        notes.append("label_smoothing ≠ 0 has no counterpart: ours takes the one-hot target as it is.")
        return _ours("focal", "close", notes=notes, **params)
    return _ours("focal", "equal", notes=notes, **params)


def _keras_cfce_back(loss_id: str, o: dict, c: int) -> dict:
    weights = o.get("class_weights")
    alpha = [o["alpha"] * w for w in weights] if weights is not None else o["alpha"]
    return dict(alpha=alpha, gamma=o["gamma"], from_logits=o["from_logits"], label_smoothing=0.0)


def _keras_bfce(p: dict, c: int):
    params = dict(gamma=p["gamma"], from_logits=p["from_logits"])
    if p["apply_class_balancing"]:
        return _ours("binary_focal", "equal", notes=("α on positives, 1 − α on negatives in both.",), alpha=p["alpha"], **params)
    return _ours(
        "binary_focal", "scaled", 2.0,
        notes=("apply_class_balancing=False ignores alpha: our binary_focal with α = 0.5, times 2.",), alpha=0.5, **params,
    )


def _keras_bfce_back(loss_id: str, o: dict, c: int) -> dict:
    return dict(apply_class_balancing=True, alpha=o["alpha"], gamma=o["gamma"], from_logits=o["from_logits"])


def _keras_cce(p: dict, c: int):
    if p["label_smoothing"]:
        return _ours("ce", "close", notes=("label_smoothing has no counterpart in ours.",), from_logits=p["from_logits"])
    return _ours("ce", "equal", from_logits=p["from_logits"])


def _keras_bce(p: dict, c: int):
    return _ours("bce", "equal", notes=("One sigmoid per channel, mean over pixels and channels in both.",), from_logits=p["from_logits"])


def _keras_class_weight(p: dict, c: int):
    return _ours(
        "weighted_ce", "equal",
        notes=(
            "model.fit(x, masks, class_weight=…) raises TypeError for (N, H, W[, C]) targets in Keras 3.15.1 "
            "(see the Traps). Per-pixel sample_weight = w[masks] of shape (N, H, W) with "
            "CategoricalCrossentropy gives exactly our weighted_ce.",
        ),
        class_weights=list(p["class_weight"]) if p["class_weight"] is not None else None,
    )


def _from_logits_back(loss_id: str, o: dict, c: int) -> dict:
    return dict(from_logits=o["from_logits"], label_smoothing=0.0) if loss_id == "ce" else dict(from_logits=o["from_logits"])


_FROM_LOGITS = TheirParam("from_logits", False, "bool", "True: the model outputs logits.")

_KERAS = (
    Entry("Keras", "keras.losses.Dice", (_KERAS_AXIS,), ("dice",), _keras_dice, _keras_dice_back, (_KERAS_PROBS,)),
    Entry(
        "Keras", "keras.losses.Tversky",
        (
            TheirParam("alpha", 0.5, "float", "Documented as the weight of false positives; the code puts it on false negatives.", 0.0, 1.0),
            TheirParam("beta", 0.5, "float", "Documented as the weight of false negatives; the code puts it on false positives.", 0.0, 1.0),
            _KERAS_AXIS,
        ),
        ("tversky",), _keras_tversky, _keras_tversky_back,
    ),
    Entry(
        "Keras", "keras.losses.CategoricalFocalCrossentropy",
        (
            TheirParam("alpha", 0.25, "alpha", "A number scales every class; a list gives per-class weights.", 0.0, 1.0),
            TheirParam("gamma", 2.0, "float", "Focusing exponent γ.", 0.0, 5.0),
            _FROM_LOGITS,
            TheirParam("label_smoothing", 0.0, "float", "Label smoothing of the one-hot target.", 0.0, 1.0),
        ),
        ("focal",), _keras_cfce, _keras_cfce_back,
    ),
    Entry(
        "Keras", "keras.losses.BinaryFocalCrossentropy",
        (
            TheirParam("apply_class_balancing", False, "bool", "Use alpha (on positives) and 1 − alpha (on negatives)."),
            TheirParam("alpha", 0.25, "float", "Weight of positives when apply_class_balancing=True.", 0.0, 1.0),
            TheirParam("gamma", 2.0, "float", "Focusing exponent γ.", 0.0, 5.0),
            _FROM_LOGITS,
        ),
        ("binary_focal",), _keras_bfce, _keras_bfce_back,
    ),
    Entry(
        "Keras", "keras.losses.CategoricalCrossentropy",
        (_FROM_LOGITS, TheirParam("label_smoothing", 0.0, "float", "Label smoothing of the one-hot target.", 0.0, 1.0)),
        ("ce",), _keras_cce, _from_logits_back,
    ),
    Entry("Keras", "keras.losses.BinaryCrossentropy", (_FROM_LOGITS,), ("bce",), _keras_bce, _from_logits_back),
    Entry(
        "Keras", "model.fit",
        (TheirParam("class_weight", None, "weights", "One weight per class (a dict {class: weight} in Keras)."),),
        ("weighted_ce",), _keras_class_weight,
        lambda loss_id, o, c: dict(class_weight=o.get("class_weights")),
    ),
)

# --------------------------------------------------------------------------------------------
# segmentation_models_pytorch (smp.losses, mode="multiclass")

SMP_ABSENT = (
    "smp pools the counts over the batch (dims (0, 2)) and gives a class absent from the whole batch loss 0, "
    "still counted in the (weighted) class mean; ours gives it FP/(FP + s). Equal when every class is "
    "somewhere in the batch."
)
SMP_DICE_SMOOTH = (
    "smp 0.6 computes Dice as its Tversky index with α = β = 0.5, (TP + s)/(TP + (FP + FN)/2 + s) = "
    "(2TP + 2s)/(2TP + FP + FN + 2s): our dice with smooth = 2s (older smp added s once: our s)."
)
_SMP_COMMON = (
    TheirParam("from_logits", True, "bool", "True: softmax over the channels first."),
    TheirParam("smooth", 0.0, "float", "Added to numerator and denominator.", 0.0, 10.0),
    TheirParam("log_loss", False, "bool", "−log(score) instead of 1 − score."),
    TheirParam("class_weights", None, "weights", "Per-class weights: Σ w_c L_c / Σ w_c over the classes, as ours."),
)


def _smp_region(loss_id: str, p: dict, c: int, extra: dict, notes: list):
    notes = [SMP_ABSENT] + notes
    weights = p["class_weights"]
    if weights is not None:
        if len(weights) != c:
            raise ValueError(f"smp: class_weights needs one entry per class ({c}), got {len(weights)}")
        extra = dict(extra, class_weights=list(weights))
    smooth = p["smooth"]
    if loss_id == "dice":
        notes.append(SMP_DICE_SMOOTH)
        smooth = 2.0 * smooth
    relation = "close"
    if p["log_loss"]:
        notes.append("log_loss=True (−log score) has no counterpart.")
        relation = "none"
    return _ours(loss_id, relation, notes=notes, smooth=smooth, batch=True, from_logits=p["from_logits"], **extra)


SMP_FOCAL_TVERSKY = (
    "smp raises the (weighted) class mean to γ, (mean_c(1 − TI_c))^γ: our tversky's value to the power γ. "
    "Ours raises each class's term, then takes the mean."
)


def _smp_tversky(p: dict, c: int):
    extra = dict(alpha=p["alpha"], beta=p["beta"])
    if p["gamma"] == 1.0:
        return _smp_region("tversky", p, c, extra, ["α on false positives, β on false negatives in both."])
    extra["gamma"] = p["gamma"]
    return _smp_region("focal_tversky", p, c, extra, [SMP_FOCAL_TVERSKY])


def _smp_region_back(loss_id: str, o: dict, c: int) -> dict:
    smooth = o["smooth"] / 2.0 if loss_id == "dice" else o["smooth"]
    out = dict(from_logits=o["from_logits"], smooth=smooth, log_loss=False, class_weights=o.get("class_weights"))
    if loss_id in ("tversky", "focal_tversky"):
        out.update(alpha=o["alpha"], beta=o["beta"], gamma=o.get("gamma", 1.0))
    return out


def _smp_focal(p: dict, c: int):
    notes = [
        "smp 0.6's multiclass FocalLoss is one sigmoid focal loss per class (one-vs-rest), each a mean over the "
        "pixels, then the mean over the classes: our binary_focal (older smp summed the classes: C × ours)."
    ]
    alpha, factor = p["alpha"], 1.0
    if isinstance(alpha, list):
        raise ValueError("smp.losses.FocalLoss takes one alpha (a number, the weight of positives) or None")
    if alpha is None:
        alpha, factor = 0.5, 2.0
        notes.append("alpha=None: no α weighting, our α = 0.5 times 2.")
    return _ours("binary_focal", "scaled" if factor != 1.0 else "equal", factor, notes=notes, alpha=alpha, gamma=p["gamma"])


_SMP = (
    Entry("smp", "smp.losses.DiceLoss", (TheirParam("mode", "multiclass", "choice", "Only 'multiclass' is translated here.", choices=("multiclass",)),)
          + tuple(TheirParam("smooth", 0.0, "float", "Added to TP in numerator and denominator (2s in Dice terms; ours allows 2s ≤ 1).", 0.0, 0.5)
                  if q.name == "smooth" else q for q in _SMP_COMMON),
          ("dice",), lambda p, c: _smp_region("dice", p, c, {}, []), _smp_region_back),
    Entry("smp", "smp.losses.JaccardLoss", (TheirParam("mode", "multiclass", "choice", "Only 'multiclass' is translated here.", choices=("multiclass",)),) + _SMP_COMMON,
          ("iou",), lambda p, c: _smp_region("iou", p, c, {}, []), _smp_region_back),
    Entry(
        "smp", "smp.losses.TverskyLoss",
        (TheirParam("mode", "multiclass", "choice", "Only 'multiclass' is translated here.", choices=("multiclass",)),) + _SMP_COMMON + (
            TheirParam("alpha", 0.5, "float", "Weight of false positives.", 0.0, 1.0),
            TheirParam("beta", 0.5, "float", "Weight of false negatives.", 0.0, 1.0),
            TheirParam("gamma", 1.0, "float", "Exponent on the mean loss (focal Tversky when ≠ 1).", 0.1, 3.0),
        ),
        ("tversky", "focal_tversky"), _smp_tversky, _smp_region_back,
    ),
    Entry(
        "smp", "smp.losses.FocalLoss",
        (
            TheirParam("mode", "multiclass", "choice", "Only 'multiclass' is translated here.", choices=("multiclass",)),
            TheirParam("alpha", None, "alpha", "None, or the weight of positives in each one-vs-rest sigmoid term.", 0.0, 1.0),
            TheirParam("gamma", 2.0, "float", "Focusing exponent γ.", 0.0, 5.0),
        ),
        ("binary_focal",), _smp_focal,
        lambda loss_id, o, c: dict(mode="multiclass", alpha=o["alpha"], gamma=o["gamma"]),
    ),
    Entry(
        "smp", "smp.losses.LovaszLoss",
        (
            TheirParam("mode", "multiclass", "choice", "Only 'multiclass' is translated here.", choices=("multiclass",)),
            TheirParam("per_image", False, "bool", "One loss per image (our batch=False) or over the whole batch."),
        ),
        ("lovasz",),
        lambda p, c: _ours("lovasz", "equal", notes=("Classes present in the target only, as Berman's classes='present'.",), batch=not p["per_image"]),
        lambda loss_id, o, c: dict(mode="multiclass", per_image=not o["batch"]),
    ),
)

# --------------------------------------------------------------------------------------------
# kornia (kornia.losses)


KORNIA_PRESENT = (
    "kornia 0.9 takes the ratio per image and class and averages it over the classes present in that image's "
    "target: a class absent from an image is left out there, where ours counts it (loss FP/(FP + s)). Equal "
    "when every class is in every image: theirs = the mean over images of ours with class_weights = 1 on the "
    "image's present classes, 0 elsewhere. It adds eps = 1e-8 to the denominator only."
)
KORNIA_MICRO = (
    "average='micro' (the default) sums over the classes and pixels of each image: with softmax outputs "
    "that is 1 − mean(p_true) per image, blind to imbalance. No loss of ours pools the classes; the closest "
    "is the per-class ratio (average='macro')."
)
KORNIA_FOCAL_MEAN = (
    "reduction='none' (the default) returns a (B, C, H, W) map, zero off the target class; 'mean' divides its "
    "sum by C × the pixels: theirs = ours / C."
)


def _kornia_dice(p: dict, c: int):
    if p["average"] == "micro":
        return _ours("dice", "none", notes=[KORNIA_MICRO, KORNIA_PRESENT], smooth=0.0)
    return _ours("dice", "close", notes=[KORNIA_PRESENT], smooth=0.0)


def _kornia_tversky(p: dict, c: int):
    return _ours(
        "tversky", "close",
        notes=(
            "α on false positives, β on false negatives in both (kornia before 0.9 summed FP and FN over the "
            "classes of each image, where with softmax outputs ΣFP = ΣFN and only α + β mattered).",
            KORNIA_PRESENT,
        ),
        alpha=p["alpha"], beta=p["beta"], smooth=0.0,
    )


def _kornia_focal(p: dict, c: int):
    alpha, weight = p["alpha"], p["weight"]
    if isinstance(alpha, list):
        raise ValueError("kornia.losses.focal_loss takes one alpha (a number) or None; per-class weights go in weight")
    if weight is not None and len(weight) != c:
        raise ValueError(f"kornia.losses.focal_loss: weight needs one entry per class ({c}), got {len(weight)}")
    notes = [KORNIA_FOCAL_MEAN]
    vector = [1.0] * c
    if alpha is not None:
        notes.append("A float α gives 1 − α to class 0 and α to the others (kornia ≥ 0.7; older versions scaled every class by α).")
        vector = _focal_alpha_vector(alpha, c)
    if weight is not None:
        notes.append("weight multiplies each class's term, as our class_weights (its 'mean' is not normalised by the weights).")
        vector = [v * w for v, w in zip(vector, weight)]
    params = dict(alpha=1.0, gamma=p["gamma"])
    if any(abs(v - 1.0) > 1e-12 for v in vector):
        params["class_weights"] = vector
    return _ours("focal", "scaled", 1.0 / c, notes=notes, **params)


def _kornia_focal_back(loss_id: str, o: dict, c: int) -> dict:
    weights = o.get("class_weights")
    scaled = [o["alpha"] * w for w in weights] if weights is not None else [o["alpha"]] * c
    if all(abs(v - 1.0) < 1e-12 for v in scaled):
        return dict(alpha=None, gamma=o["gamma"], weight=None)
    alpha = _alpha_from_vector(scaled, c)
    if alpha is None:
        return dict(alpha=None, gamma=o["gamma"], weight=scaled)
    return dict(alpha=alpha, gamma=o["gamma"], weight=None)


_KORNIA = (
    Entry(
        "kornia", "kornia.losses.dice_loss",
        (TheirParam("average", "micro", "choice", "'micro' pools the classes of each image, 'macro' averages per-class ratios.", choices=("micro", "macro")),),
        ("dice",), _kornia_dice, lambda loss_id, o, c: dict(average="macro"),
        ("kornia takes logits (softmax inside) and integer labels (B, H, W).",),
    ),
    Entry(
        "kornia", "kornia.losses.tversky_loss",
        (
            TheirParam("alpha", 0.5, "float", "Weight of false positives.", 0.0, 1.0),
            TheirParam("beta", 0.5, "float", "Weight of false negatives.", 0.0, 1.0),
        ),
        ("tversky",), _kornia_tversky, lambda loss_id, o, c: dict(alpha=o["alpha"], beta=o["beta"]),
    ),
    Entry(
        "kornia", "kornia.losses.focal_loss",
        (
            TheirParam("alpha", None, "alpha", "None, or α: 1 − α on class 0, α on the others.", 0.0, 1.0),
            TheirParam("gamma", 2.0, "float", "Focusing exponent γ.", 0.0, 5.0),
            TheirParam("weight", None, "weights", "Per-class weights multiplying each class's term."),
        ),
        ("focal",), _kornia_focal, _kornia_focal_back,
    ),
    Entry(
        "kornia", "kornia.losses.binary_focal_loss_with_logits",
        (
            TheirParam("alpha", 0.25, "float", "Weight of positives (1 − α on negatives).", 0.0, 1.0),
            TheirParam("gamma", 2.0, "float", "Focusing exponent γ.", 0.0, 5.0),
        ),
        ("binary_focal",),
        lambda p, c: _ours("binary_focal", "equal", notes=("reduction='mean' is our value.",), alpha=p["alpha"], gamma=p["gamma"]),
        lambda loss_id, o, c: dict(alpha=o["alpha"], gamma=o["gamma"]),
    ),
)

# --------------------------------------------------------------------------------------------
# SegLoss (JunMa11/SegLoss, losses_pytorch; nnU-Net style, channels first)

_SEGLOSS_COMMON = (
    TheirParam("batch_dice", False, "bool", "Pool the counts over the batch (our batch=True)."),
    TheirParam("do_bg", True, "bool", "Include the background (our include_background)."),
    TheirParam("smooth", 1.0, "float", "Added to numerator and denominator.", 0.0, 10.0),
)
_SEGLOSS_NEG = "SegLoss returns −score, not 1 − score: theirs = ours − 1, the same gradients."


def _segloss_region(loss_id: str, extra: dict | None = None, note: str | None = None, relation: str = "offset"):
    def to(p: dict, c: int):
        notes = [_SEGLOSS_NEG] + ([note] if note else [])
        return _ours(loss_id, relation, 1.0, -1.0 if relation == "offset" else 0.0, notes=notes,
                     smooth=p["smooth"], batch=p["batch_dice"], include_background=p["do_bg"], **(extra or {}))
    return to


def _segloss_back(loss_id: str, o: dict, c: int) -> dict:
    return dict(batch_dice=o["batch"], do_bg=o["include_background"], smooth=o["smooth"])


def _segloss_ft(p: dict, c: int):
    return _ours(
        "focal_tversky", "close",
        notes=(
            "SegLoss's FocalTversky_loss raises the class mean: (1 − mean TI)^γ; ours raises each class's "
            "term, then averages (equal with one class). Its Tversky has α = 0.3 (FP), β = 0.7 (FN) fixed in the code.",
        ),
        alpha=0.3, beta=0.7, gamma=p["gamma"], smooth=p["smooth"], batch=p["batch_dice"], include_background=p["do_bg"],
    )


def _segloss_focal(p: dict, c: int):
    alpha = p["alpha"]
    notes = [
        "SegLoss's FocalLoss smooths the one-hot target by its smooth (1e-5) and adds it to p_t: "
        "values differ from ours by about that much."
    ]
    params = dict(alpha=1.0, gamma=p["gamma"], from_logits=False)
    if isinstance(alpha, list):
        if len(alpha) != c:
            raise ValueError(f"SegLoss FocalLoss: a list alpha needs one entry per class ({c}), got {len(alpha)}")
        total = sum(alpha)
        params["class_weights"] = [a / total for a in alpha]
        notes.append("A list alpha is normalised to sum 1.")
    elif alpha is not None:
        params["class_weights"] = [1.0 - alpha] * c
        params["class_weights"][0] = alpha
        notes.append("A float α goes to class 0 (balance_index) and 1 − α to the others.")
    notes.append("It takes probabilities (apply_nonlin=softmax before it): our from_logits=False.")
    return _ours("focal", "close", notes=notes, **params)


_SEGLOSS = (
    Entry("SegLoss", "SoftDiceLoss", _SEGLOSS_COMMON, ("dice",), _segloss_region("dice"), _segloss_back),
    Entry("SegLoss", "IoULoss", _SEGLOSS_COMMON, ("iou",), _segloss_region("iou"), _segloss_back),
    Entry(
        "SegLoss", "TverskyLoss", _SEGLOSS_COMMON, ("tversky",),
        _segloss_region("tversky", dict(alpha=0.3, beta=0.7), "α = 0.3 on false positives and β = 0.7 on false negatives are fixed in its code."),
        _segloss_back,
    ),
    Entry("SegLoss", "FocalTversky_loss", _SEGLOSS_COMMON + (TheirParam("gamma", 0.75, "float", "Exponent on 1 − mean TI.", 0.1, 3.0),),
          ("focal_tversky",), _segloss_ft, lambda loss_id, o, c: dict(_segloss_back(loss_id, o, c), gamma=o["gamma"])),
    Entry(
        "SegLoss", "SSLoss", _SEGLOSS_COMMON, ("sensitivity_specificity",),
        lambda p, c: _ours(
            "sensitivity_specificity", "equal",
            notes=(
                "r = 0.1 is fixed in its code. Its variable named specificity_part is the error on the class's "
                "own pixels, Σ(y − p)²y/(Σy + s), the term r weighs, as in ours: the names are swapped, the sums are not.",
            ),
            r=0.1, smooth=p["smooth"], batch=p["batch_dice"], include_background=p["do_bg"],
        ),
        _segloss_back,
    ),
    Entry(
        "SegLoss", "GDiceLoss", (TheirParam("smooth", 1e-5, "float", "Added to numerator and denominator.", 0.0, 10.0),),
        ("generalized_dice",),
        lambda p, c: _ours(
            "generalized_dice", "close", 1.0, -1.0,
            notes=(
                _SEGLOSS_NEG,
                "Its weights are 1/(Σy + 1e-10)²: a class absent from an image gets ≈1e20 and dominates that "
                "image, where ours (MONAI) gives it the largest finite weight. Equal (up to the −1) when every "
                "class is present.",
            ),
            smooth=p["smooth"],
        ),
        lambda loss_id, o, c: dict(smooth=o["smooth"]),
    ),
    Entry(
        "SegLoss", "FocalLoss",
        (
            TheirParam("alpha", None, "alpha", "None, a float (class 0 gets α, the others 1 − α) or a per-class list.", 0.0, 1.0),
            TheirParam("gamma", 2.0, "float", "Focusing exponent γ.", 0.0, 5.0),
        ),
        ("focal",), _segloss_focal, None,  # back: its label smoothing has no counterpart
    ),
)

# --------------------------------------------------------------------------------------------
# The focal Tversky paper's code (Abraham & Khan, Keras)

_ABRAHAM_FLAT = (
    "Its code flattens the whole batch (K.flatten): one ratio over every pixel of every image, written for "
    "one sigmoid output channel. That is our batch=True on the foreground class of a two-class softmax "
    "(include_background=False); with several classes it would pool them (see Keras axis=None)."
)


def _abraham(loss_id: str, extra: Callable[[dict], dict]):
    def to(p: dict, c: int):
        a = p["alpha"]
        notes = [
            f"α = {a:g} weighs the false negatives in its code and 1 − α the false positives: our "
            f"alpha = {1 - a:g} (false positives), beta = {a:g}.",
            _ABRAHAM_FLAT,
        ]
        return _ours(loss_id, "close", notes=notes, alpha=1 - a, beta=a, smooth=p["smooth"], batch=True, include_background=False, from_logits=False, **extra(p))
    return to


_ABRAHAM = (
    Entry(
        "focal-Tversky code", "tversky_loss",
        (TheirParam("alpha", 0.7, "float", "Weight of false negatives (a constant in its code).", 0.0, 1.0),
         TheirParam("smooth", 1.0, "float", "Added to numerator and denominator.", 0.0, 10.0)),
        ("tversky",), _abraham("tversky", lambda p: {}),
        lambda loss_id, o, c: dict(alpha=o["beta"], smooth=o["smooth"]),
    ),
    Entry(
        "focal-Tversky code", "focal_tversky",
        (TheirParam("alpha", 0.7, "float", "Weight of false negatives (a constant in its code).", 0.0, 1.0),
         TheirParam("gamma", 0.75, "float", "Exponent on 1 − TI (a constant in its code).", 0.1, 3.0),
         TheirParam("smooth", 1.0, "float", "Added to numerator and denominator.", 0.0, 10.0)),
        ("focal_tversky",), _abraham("focal_tversky", lambda p: dict(gamma=p["gamma"])),
        lambda loss_id, o, c: dict(alpha=o["beta"], gamma=o["gamma"], smooth=o["smooth"]),
    ),
)

# --------------------------------------------------------------------------------------------
# The unified focal loss code (Yeung et al., Keras)

_YEUNG_PROBS = "It takes probabilities: our from_logits=False. Sums per image and class (axis [1, 2]), then the mean."


def _yeung_tversky(loss_id: str):
    def to(p: dict, c: int):
        d = p["delta"]
        notes = [f"δ = {d:g} weighs false negatives, 1 − δ false positives: our alpha = {1 - d:g}, beta = {d:g}.", _YEUNG_PROBS]
        extra = dict(gamma=p["gamma"]) if "gamma" in p else {}
        if loss_id == "focal_tversky":
            notes.append("It clips the probabilities to [1e-7, 1 − 1e-7] first: values agree to about 1e-6.")
        return _ours(loss_id, "equal", notes=notes, alpha=1 - d, beta=d, smooth=p["smooth"], from_logits=False, **extra)
    return to


def _yeung_unified(p: dict, c: int):
    return _ours(
        "unified_focal", "close",
        notes=(
            f"weight = {p['weight']:g} multiplies the focal Tversky term in its code (the paper's λ weighs the "
            f"focal term): our lambda_ = 1 − weight = {1 - p['weight']:g}.",
            "Written for two classes (background, foreground); ours extends it to C classes with class 0 as the background.",
            "Its focal Tversky smooths with ε = 1e-7 and clips probabilities to [1e-7, 1 − 1e-7].",
            _YEUNG_PROBS,
        ),
        lambda_=1 - p["weight"], delta=p["delta"], gamma=p["gamma"], smooth=1e-7, from_logits=False,
    )


_YEUNG = (
    Entry(
        "unified focal code", "tversky_loss",
        (TheirParam("delta", 0.7, "float", "Weight of false negatives; 1 − δ weighs false positives.", 0.0, 1.0),
         TheirParam("smooth", 1e-6, "float", "Added to numerator and denominator.", 0.0, 10.0)),
        ("tversky",), _yeung_tversky("tversky"),
        lambda loss_id, o, c: dict(delta=o["beta"], smooth=o["smooth"]),
    ),
    Entry(
        "unified focal code", "focal_tversky_loss",
        (TheirParam("delta", 0.7, "float", "Weight of false negatives; 1 − δ weighs false positives.", 0.0, 1.0),
         TheirParam("gamma", 0.75, "float", "Exponent on 1 − TI, per class, then the mean.", 0.1, 3.0),
         TheirParam("smooth", 1e-6, "float", "Added to numerator and denominator.", 0.0, 10.0)),
        ("focal_tversky",), _yeung_tversky("focal_tversky"),
        lambda loss_id, o, c: dict(delta=o["beta"], gamma=o["gamma"], smooth=o["smooth"]),
    ),
    Entry(
        "unified focal code", "asym_unified_focal_loss",
        (TheirParam("weight", 0.5, "float", "Weight of the focal Tversky term (λ of the paper is on the focal term).", 0.0, 1.0),
         TheirParam("delta", 0.6, "float", "Foreground vs background; false negatives vs false positives.", 0.0, 1.0),
         TheirParam("gamma", 0.5, "float", "Background suppression and foreground enhancement.", 0.0, 0.9)),
        ("unified_focal",), _yeung_unified,
        lambda loss_id, o, c: dict(weight=1 - o["lambda_"], delta=o["delta"], gamma=o["gamma"]),
    ),
)

# --------------------------------------------------------------------------------------------
# PyTorch's own cross-entropy (torch.nn.CrossEntropyLoss, F.cross_entropy)

TORCH_CE_SUM_W = (
    "With class-index targets (B, H, W) and weight, PyTorch divides Σ_i w_{y_i}·ce_i by Σ_i w_{y_i}, a weighted "
    "mean: theirs = our weighted_ce × N / Σ_i w_{y_i}, N the number of pixels. Ours (and Keras) divide by N, so "
    "scaling every weight scales ours and leaves theirs unchanged."
)
TORCH_CE_PROBABILITIES = (
    "With one-hot targets (B, C, H, W), PyTorch reads them as class probabilities and divides by the number of "
    "pixels N, as ours."
)


def _torch_ce(p: dict, c: int):
    weights = p["weight"]
    if weights is None:
        return _ours("ce", "equal", notes=("Without weights both forms of target give the plain pixel mean.",))
    if len(weights) != c:
        raise ValueError(f"torch.nn.CrossEntropyLoss: weight needs one entry per class ({c}), got {len(weights)}")
    if p["target"] == "indices":
        return _ours("weighted_ce", "close", notes=(TORCH_CE_SUM_W,), class_weights=list(weights))
    return _ours("weighted_ce", "equal", notes=(TORCH_CE_PROBABILITIES,), class_weights=list(weights))


_TORCH = (
    Entry(
        "PyTorch", "torch.nn.CrossEntropyLoss",
        (
            TheirParam("weight", None, "weights", "Per-class weights."),
            TheirParam("target", "indices", "choice", "Class indices (B, H, W) or one-hot probabilities (B, C, H, W).",
                       choices=("indices", "probabilities")),
        ),
        ("weighted_ce", "ce"), _torch_ce,
        lambda loss_id, o, c: dict(weight=o.get("class_weights"), target="probabilities"),
        ("It takes logits, channels first (B, C, H, W); reduction='mean' (the default).",),
    ),
)

# --------------------------------------------------------------------------------------------
# The table and the two directions

ENTRIES: tuple[Entry, ...] = _MONAI + _KERAS + _SMP + _KORNIA + _TORCH + _SEGLOSS + _ABRAHAM + _YEUNG
LIBRARIES: dict[str, str] = {
    "MONAI": "monai.losses (PyTorch, channels first)",
    "Keras": "keras.losses 3.15.1 (the installed one)",
    "smp": "segmentation_models_pytorch.losses, mode='multiclass'",
    "kornia": "kornia.losses",
    "PyTorch": "torch.nn.CrossEntropyLoss (F.cross_entropy alike)",
    "SegLoss": "JunMa11/SegLoss, losses_pytorch (nnU-Net style)",
    "focal-Tversky code": "Abraham & Khan 2019, the paper's Keras code (losses.py)",
    "unified focal code": "Yeung et al. 2022, the paper's Keras code (loss_functions.py)",
}


def entries(library: str) -> tuple[Entry, ...]:
    if library not in LIBRARIES:
        raise ValueError(f"unknown library {library!r}; choose one of {', '.join(LIBRARIES)}")
    return tuple(e for e in ENTRIES if e.library == library)


def entry(library: str, name: str) -> Entry:
    for e in entries(library):
        if e.name == name:
            return e
    raise ValueError(f"{library} has no loss {name!r} here; its losses: {', '.join(e.name for e in entries(library))}")


def _check_value(e: Entry, param: TheirParam, value):
    where = f"{e.name}: {param.name}"
    if param.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be True or False, got {value!r}")
        return value
    if param.kind == "choice":
        value = tuple(value) if isinstance(value, list) else value
        if value not in param.choices:
            raise ValueError(f"{where} must be one of {', '.join(_fmt(c) for c in param.choices)}, got {value!r}")
        return value
    if param.kind in ("weights", "alpha"):
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            try:
                numbers = [float(v) for v in value]
            except (TypeError, ValueError):
                raise ValueError(f"{where} must be a list of numbers, got {value!r}") from None
            if not numbers or not all(math.isfinite(v) and v >= 0 for v in numbers):
                raise ValueError(f"{where} must hold finite non-negative numbers, got {value!r}")
            return numbers
        if param.kind == "weights":
            raise ValueError(f"{where} must be None or a list of per-class weights, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and param.low <= value <= param.high):
        raise ValueError(f"{where} = {value:g} is outside [{param.low:g}, {param.high:g}]")
    return value


def their_defaults(library: str, name: str) -> dict:
    return {p.name: p.default for p in entry(library, name).params}


def to_ours(library: str, name: str, params: Mapping | None = None, num_classes: int = 4) -> Translation:
    """Their loss ``name`` of ``library`` with ``params`` (over its defaults) in our terms."""
    e = entry(library, name)
    known = {p.name: p for p in e.params}
    values = {p.name: p.default for p in e.params}
    for key, value in (params or {}).items():
        if key not in known:
            raise ValueError(f"{e.name} has no parameter {key!r} here; its parameters: {', '.join(known) or 'none'}")
        values[key] = _check_value(e, known[key], value)
    for p in e.params:
        value = values[p.name]
        if p.kind == "weights" and value is not None and len(value) not in (num_classes, num_classes - 1):
            raise ValueError(f"{e.name}: {p.name} has {len(value)} entries for {num_classes} classes")
        if p.kind == "alpha" and isinstance(value, list) and len(value) not in (num_classes, num_classes - 1):
            raise ValueError(f"{e.name}: {p.name} has {len(value)} entries for {num_classes} classes")
    loss_id, ours, relation, factor, offset, notes = e.to_ours(values, num_classes)
    ours = _complete(loss_id, ours)
    return Translation(
        library=library, their_name=e.name, their_params=values, loss_id=loss_id, our_params=ours,
        relation=relation, factor=factor, offset=offset, notes=tuple(notes) + e.notes,
    )


def _complete(loss_id: str, params: dict) -> dict:
    """Our parameters checked by the registry's own validator (ranges, names), over the defaults,
    without building a loss (no TensorFlow variables)."""
    values = loss_registry.validated(loss_registry.find(loss_id), params)
    order = list(loss_registry.defaults(loss_id))
    return {k: values[k] for k in order if k in values}


def from_ours(library: str, loss_id: str, params: Mapping | None = None, num_classes: int = 4) -> list[Translation]:
    """Our ``loss_id`` with ``params`` in ``library``'s terms: one Translation per entry of the
    library that can express it (each re-translated to ours to state the relation). An empty
    list: the library has no such loss."""
    if loss_id not in loss_registry.REGISTRY:
        raise ValueError(f"unknown loss {loss_id!r}; valid ids: {', '.join(loss_registry.REGISTRY)}")
    ours = _complete(loss_id, dict(params or {}))
    out = []
    for e in entries(library):
        if loss_id not in e.loss_ids or e.from_ours is None:
            continue
        theirs = e.from_ours(loss_id, ours, num_classes)
        back = to_ours(library, e.name, theirs, num_classes)
        notes = back.notes
        differs = _differences(ours, back.our_params, back.loss_id, loss_id)
        relation = back.relation
        if differs:
            relation = "close" if relation in ("equal", "close", "scaled", "offset") else relation
            notes = (f"Not expressible there: {differs}.",) + notes
        out.append(
            Translation(
                library=library, their_name=e.name, their_params=back.their_params, loss_id=loss_id,
                our_params=ours, relation=relation, factor=back.factor, offset=back.offset, notes=notes,
            )
        )
    return out


def _effective(loss_id: str, params: dict) -> dict:
    """Parameters with one meaning per loss: focal's scalar alpha times its class weights is
    one per-class α (Keras's list alpha), however it is split."""
    if loss_id != "focal":
        return params
    out = dict(params)
    weights = out.pop("class_weights", None)
    alpha = out.pop("alpha")
    out["alpha × class_weights"] = [alpha * w for w in weights] if weights is not None else alpha
    if isinstance(out["alpha × class_weights"], list) and len(set(out["alpha × class_weights"])) == 1:
        out["alpha × class_weights"] = out["alpha × class_weights"][0]
    return out


def _differences(wanted: dict, got: dict, got_id: str | None, wanted_id: str) -> str:
    if got_id != wanted_id:
        return f"it computes our {got_id}, not {wanted_id}"
    wanted, got = _effective(wanted_id, wanted), _effective(wanted_id, got)
    parts = []
    for key, value in wanted.items():
        other = got.get(key)
        if key == "from_logits" and value != other:
            parts.append(
                "it takes probabilities: apply the softmax (or sigmoid) first and pass them (from_logits=False)"
                if value else "it takes logits (from_logits=True)"
            )
            continue
        if isinstance(value, float) and isinstance(other, float):
            if not math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12):
                parts.append(f"{key} = {_fmt(value)} (theirs gives {_fmt(other)})")
        elif isinstance(value, list) and isinstance(other, list):
            if len(value) != len(other) or any(not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(value, other)):
                parts.append(f"{key} = {_fmt(value)} (theirs gives {_fmt(other)})")
        elif value != other:
            parts.append(f"{key} = {_fmt(value)} (theirs gives {_fmt(other)})")
    return "; ".join(parts)
