"""The registry of losses, without TensorFlow: each loss's id, name, parameters (defaults,
ranges, the sliders' steps and help), formula, source and convention notes, and the checks of a
set of parameter values. The page's sidebar is built from it before TensorFlow is imported (a
fresh server's first page shows its controls while TensorFlow loads); explorer/losses.py holds
the tensor functions behind each id and the ``keras.losses.Loss`` around them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FLAGS = ("batch", "include_background", "from_logits")


@dataclass(frozen=True)
class Param:
    """A float parameter: its default and its valid range (also the slider's), step and help.
    ``per_class``: a list with one value per class is also accepted (focal's α)."""

    name: str
    default: float
    min: float
    max: float
    step: float
    help: str
    per_class: bool = False


@dataclass(frozen=True)
class LossSpec:
    id: str
    name: str
    kind: str  # 'pixel': per-pixel values; 'region': per-image values
    params: tuple[Param, ...]
    uses_class_weights: bool
    formula: str  # LaTeX, for st.latex
    source: str
    notes: str

    @property
    def flags(self) -> tuple[str, ...]:
        """The boolean options this loss takes (fixed at construction)."""
        return FLAGS if self.kind == "region" else ("from_logits",)


_SMOOTH = Param(
    "smooth", 1e-5, 0.0, 1.0, 1e-5,
    "s, added to the numerator and the denominator of every ratio: an empty prediction on an "
    "empty mask then scores a perfect ratio. MONAI 1e-5, smp 0, SegLoss 1.",
)
_GAMMA_FOCAL = Param(
    "gamma", 2.0, 0.0, 5.0, 0.1,
    "γ, focusing: (1−p)^γ down-weights well-classified pixels. γ = 0 is plain cross-entropy.",
)
_ALPHA_FP = Param("alpha", 0.3, 0.0, 1.0, 0.05, "α, the weight of false positives.")
_BETA_FN = Param("beta", 0.7, 0.0, 1.0, 0.05, "β, the weight of false negatives (missed pixels of the class).")

_REGION_AGGREGATION = (
    "Ratios per image and class, then the (class-weighted) mean over classes and the mean over "
    "images; batch=True pools the counts over the batch first."
)

_SPECS = (
    LossSpec(
        id="ce",
        name="Cross-entropy",
        kind="pixel",
        params=(),
        uses_class_weights=False,
        formula=r"\mathcal{L} = -\frac{1}{N}\sum_{i}\sum_{c} y_{ic}\,\log p_{ic}",
        source="standard",
        notes="Mean over pixels, log-probabilities from log_softmax. Equal to Keras "
        "CategoricalCrossentropy(from_logits=True) on one-hot masks.",
    ),
    LossSpec(
        id="weighted_ce",
        name="Weighted cross-entropy",
        kind="pixel",
        params=(),
        uses_class_weights=True,
        formula=r"\mathcal{L} = -\frac{1}{N}\sum_{i}\sum_{c} w_c\, y_{ic}\,\log p_{ic}",
        source="seeds 000, 002, 004",
        notes="Keras style: the sum of weighted pixel losses divided by the number of pixels, so the "
        "scale of w scales the loss (and the step size). PyTorch's CrossEntropyLoss(weight=w) divides "
        "by Σ w_{y_i} instead, where rescaling w changes nothing. No class_weights means w = 1: then "
        "it is ce. Per-pixel sample_weight of shape (B, H, W) is the equivalent Keras fix.",
    ),
    LossSpec(
        id="bce",
        name="Binary cross-entropy (sigmoid)",
        kind="pixel",
        params=(),
        uses_class_weights=False,
        formula=r"\mathcal{L} = -\frac{1}{NC}\sum_{i}\sum_{c}\left[y_{ic}\log\sigma(z_{ic}) + "
        r"(1-y_{ic})\log\left(1-\sigma(z_{ic})\right)\right]",
        source="seed 001",
        notes="One independent sigmoid per channel (multi-label), mean over pixels and channels as "
        "Keras BinaryCrossentropy. On one-hot masks it ignores that the classes exclude each other.",
    ),
    LossSpec(
        id="focal",
        name="Focal loss (softmax)",
        kind="pixel",
        params=(
            Param(
                "alpha", 1.0, 0.0, 1.0, 0.05,
                "α: a scalar on every class (class weights multiply it per class), or a list with "
                "one α per class (Keras's list α) instead of class weights.",
                per_class=True,
            ),
            _GAMMA_FOCAL,
        ),
        uses_class_weights=True,
        formula=r"\mathcal{L} = -\frac{1}{N}\sum_{i}\sum_{c} \alpha\, w_c\, y_{ic}\,(1-p_{ic})^{\gamma}\log p_{ic}",
        source="Lin et al. 2017; Keras CategoricalFocalCrossentropy with a list alpha",
        notes="α_c = alpha·w_c: the scalar alpha scales every class (Keras's scalar α; its default "
        "0.25 only scales the loss) and the class weights give the per-class vector. A list alpha is "
        "the per-class vector itself (Keras's list α); it cannot be combined with class_weights. "
        "MONAI and kornia put 1−α on class 0 and α on the others instead, SegLoss a float α on class 0. "
        "γ = 0, α = 1 is ce.",
    ),
    LossSpec(
        id="binary_focal",
        name="Binary focal loss (sigmoid)",
        kind="pixel",
        params=(
            Param("alpha", 0.25, 0.0, 1.0, 0.05, "α on positives, 1−α on negatives."),
            _GAMMA_FOCAL,
        ),
        uses_class_weights=False,
        formula=r"\mathcal{L} = -\frac{1}{NC}\sum_{i}\sum_{c}\left[\alpha\, y_{ic}(1-\sigma_{ic})^{\gamma}"
        r"\log\sigma_{ic} + (1-\alpha)(1-y_{ic})\,\sigma_{ic}^{\gamma}\log(1-\sigma_{ic})\right]",
        source="Lin et al. 2017; MONAI sigmoid focal",
        notes="Sigmoid form as Lin et al. and MONAI: α on positives, 1−α on negatives, one sigmoid per "
        "channel, mean over pixels and channels (Keras BinaryFocalCrossentropy with "
        "apply_class_balancing=True).",
    ),
    LossSpec(
        id="dice",
        name="Dice",
        kind="region",
        params=(_SMOOTH,),
        uses_class_weights=True,
        formula=r"\mathcal{L}_c = 1-\frac{2\,TP_c+s}{2\,TP_c+FP_c+FN_c+s},\quad "
        r"\mathcal{L} = \frac{\sum_c w_c\,\mathcal{L}_c}{\sum_c w_c}",
        source="seed 003; Milletari et al. 2016",
        notes=_REGION_AGGREGATION + " s in numerator and denominator as MONAI; Keras Dice has no "
        "numerator term and is global by default (axis=None), where with softmax outputs it reduces "
        "to 1 − mean(p_true) and does nothing for imbalance. smp uses s = 0 with a clamp, SegLoss s = 1.",
    ),
    LossSpec(
        id="iou",
        name="IoU (Jaccard)",
        kind="region",
        params=(_SMOOTH,),
        uses_class_weights=True,
        formula=r"\mathcal{L}_c = 1-\frac{TP_c+s}{TP_c+FP_c+FN_c+s}",
        source="seed 003",
        notes=_REGION_AGGREGATION + " With s = 0, soft IoU = D/(2−D) exactly, D the soft Dice "
        "coefficient; equals tversky with α = β = 1.",
    ),
    LossSpec(
        id="tversky",
        name="Tversky",
        kind="region",
        params=(_ALPHA_FP, _BETA_FN, _SMOOTH),
        uses_class_weights=True,
        formula=r"\mathcal{L}_c = 1-\frac{TP_c+s}{TP_c+\alpha\,FP_c+\beta\,FN_c+s}",
        source="Salehi et al. 2017; MONAI, smp, kornia convention",
        notes=_REGION_AGGREGATION + " α weighs false positives, β false negatives (MONAI, smp, kornia, "
        "the Keras docstring). Abraham's and Yeung's code put α on false negatives, and so does the "
        "code of keras.losses.Tversky in Keras 3.15.1 despite its docstring: its (alpha=a, beta=b) is "
        "our (alpha=b, beta=a). With smoothing, tversky(½, ½, s) = dice(2s) and tversky(1, 1, s) = iou(s).",
    ),
    LossSpec(
        id="focal_tversky",
        name="Focal Tversky",
        kind="region",
        params=(
            _ALPHA_FP,
            _BETA_FN,
            Param(
                "gamma", 0.75, 0.1, 3.0, 0.05,
                "The exponent on 1 − TI itself (Abraham's 1/γ with γ = 4/3 is 0.75). Below 1 the "
                "gradient grows without bound as TI → 1.",
            ),
            _SMOOTH,
        ),
        uses_class_weights=True,
        formula=r"\mathcal{L} = \frac{\sum_c w_c\,(1-TI_c)^{\gamma}}{\sum_c w_c},\quad "
        r"TI_c = \frac{TP_c+s}{TP_c+\alpha\,FP_c+\beta\,FN_c+s}",
        source="Abraham & Khan 2019",
        notes="Exponent per image and class, then the mean (Yeung, tensorflow-mri); SegLoss raises "
        "the class mean instead. γ is the exponent itself (keras-unet-collection's γ = 4/3 with 1/γ is "
        "our 0.75). α on false positives: Abraham's α = 0.7 is our β = 0.7. At TI = 1 exactly the "
        "gradient, infinite for γ < 1, is returned as 0.",
    ),
    LossSpec(
        id="sensitivity_specificity",
        name="Sensitivity-specificity",
        kind="region",
        params=(
            Param("r", 0.05, 0.0, 1.0, 0.01, "r, the weight of the sensitivity term (errors on the class's own pixels)."),
            _SMOOTH,
        ),
        uses_class_weights=True,
        formula=r"\mathcal{L}_c = r\,\frac{\sum_i (y_{ic}-p_{ic})^2\,y_{ic}}{\sum_i y_{ic}+s} + "
        r"(1-r)\,\frac{\sum_i (y_{ic}-p_{ic})^2\,(1-y_{ic})}{\sum_i (1-y_{ic})+s}",
        source="Brosch et al. 2015; NiftyNet",
        notes=_REGION_AGGREGATION + " Squared errors as Brosch et al. and NiftyNet; s only in the "
        "denominators, where it guards an absent class (with s = 0 an empty term counts 0).",
    ),
    LossSpec(
        id="generalized_dice",
        name="Generalized Dice",
        kind="region",
        params=(_SMOOTH,),
        uses_class_weights=False,
        formula=r"\mathcal{L} = 1-\frac{2\sum_c w_c\,TP_c+s}{\sum_c w_c\,(2TP_c+FP_c+FN_c)+s},\quad "
        r"w_c = \frac{1}{\left(\sum_i y_{ic}\right)^2}",
        source="Sudre et al. 2017; MONAI",
        notes="One ratio per image (batch=True: pooled), weights from the target only. An absent "
        "class's infinite weight becomes the image's largest finite weight (MONAI). If every included "
        "class is absent, all weights are 0 and the image scores 0 whatever the prediction, as in "
        "MONAI: false positives on an empty image are not penalised. SegLoss adds 1e-10 instead and "
        "lets an absent class dominate. class_weights are not used: the weights are the loss's own.",
    ),
    LossSpec(
        id="ce_dice",
        name="Cross-entropy + Dice",
        kind="region",
        params=(
            Param("lambda_ce", 1.0, 0.0, 5.0, 0.1, "λ_ce, the weight of the cross-entropy term."),
            Param("lambda_dice", 1.0, 0.0, 5.0, 0.1, "λ_dice, the weight of the Dice term."),
            _SMOOTH,
        ),
        uses_class_weights=True,
        formula=r"\mathcal{L} = \lambda_{ce}\,\mathcal{L}_{CE} + \lambda_{dice}\,\mathcal{L}_{Dice}",
        source="seed 003 (BCE + Dice); MONAI DiceCELoss",
        notes="Per image: the pixel mean of the cross-entropy plus the image's Dice loss (batch=True: "
        "the batch mean plus the pooled Dice). Softmax cross-entropy, not seed 003's BCE. Class "
        "weights weigh both terms (weighted_ce and the Dice class mean), like MONAI's DiceCELoss; "
        "include_background applies to the Dice term only.",
    ),
    LossSpec(
        id="lovasz",
        name="Lovász-softmax",
        kind="region",
        params=(),
        uses_class_weights=True,
        formula=r"\mathcal{L} = \frac{1}{|\mathcal{C}_{present}|}\sum_{c\in\mathcal{C}_{present}} "
        r"\overline{\Delta_{J_c}}\left(m(c)\right),\quad m_i(c) = |y_{ic}-p_{ic}|",
        source="Berman et al. 2018",
        notes="Lovász-softmax: per image and class, the errors |y − p| sorted in decreasing order, dotted "
        "with the increments of the Jaccard loss of the growing set of worst pixels; the mean over the "
        "classes present in the image's target (Berman's classes='present'); an image with no present "
        "included class scores 0. batch=True pools the batch's pixels (Berman's per_image=False). "
        "Class weights give a weighted mean over the present classes. One sort per image and class: "
        "the slowest loss here.",
    ),
    LossSpec(
        id="unified_focal",
        name="Unified focal (asymmetric)",
        kind="region",
        params=(
            Param("lambda_", 0.5, 0.0, 1.0, 0.05, "λ, the weight of the focal term; 1−λ weighs the focal Tversky term."),
            Param("delta", 0.6, 0.0, 1.0, 0.05, "δ: foreground vs background in the focal term, false negatives vs false positives in the Tversky term."),
            Param("gamma", 0.5, 0.0, 0.9, 0.05, "γ: background suppression (1−p)^γ and foreground enhancement (1−mTI)^(1−γ)."),
            _SMOOTH,
        ),
        uses_class_weights=False,
        formula=r"\mathcal{L} = \lambda\,\mathcal{L}_{aF} + (1-\lambda)\,\mathcal{L}_{aFT},\quad "
        r"\mathcal{L}_{aF} = -\frac{1}{N}\sum_i\Big[(1-\delta)(1-p_{i0})^{\gamma}y_{i0}\log p_{i0} + "
        r"\delta\sum_{c\ge1} y_{ic}\log p_{ic}\Big],\quad "
        r"\mathcal{L}_{aFT} = \frac{1}{C}\Big[(1-mTI_0) + \sum_{c\ge1}(1-mTI_c)^{1-\gamma}\Big],\quad "
        r"mTI_c = \frac{TP_c+s}{TP_c+\delta\,FN_c+(1-\delta)\,FP_c+s}",
        source="Yeung et al. 2022",
        notes="Asymmetric unified focal loss, generalised to C classes with class 0 as background and "
        "every other class as foreground: focal suppression only on the background, focal Tversky "
        "enhancement only on the foreground, per image (batch=True: pooled). δ weighs false negatives "
        "in mTI as in Yeung's code (our tversky's β = δ, α = 1−δ). λ (parameter lambda_) weighs the "
        "focal term as in the paper; Yeung's reference code puts it on the Tversky term (the same at "
        "λ = 0.5). include_background=False drops class 0 from the Tversky term only. γ ≤ 0.9 keeps "
        "the foreground exponent 1−γ ≥ 0.1.",
    ),
)

REGISTRY: dict[str, LossSpec] = {spec.id: spec for spec in _SPECS}

_FLAG_DEFAULTS = {"batch": False, "include_background": True, "from_logits": True}


def find(loss_id: str) -> LossSpec:
    """The registry's entry for ``loss_id``; ValueError naming the valid ids."""
    try:
        return REGISTRY[loss_id]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {loss_id!r}; valid ids: {', '.join(REGISTRY)}") from None


def defaults(loss_id: str) -> dict:
    """Every parameter ``get(loss_id, ...)`` takes, with its default: floats, class_weights
    (None: unweighted) when the loss uses them, the boolean options, and ignore_index (None: no
    void label)."""
    entry = find(loss_id)
    out = {p.name: p.default for p in entry.params}
    if entry.uses_class_weights:
        out["class_weights"] = None
    out.update({flag: _FLAG_DEFAULTS[flag] for flag in entry.flags})
    out["ignore_index"] = None
    return out


def _check_float(loss_id: str, param: Param, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"loss {loss_id!r}: {param.name} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and param.min <= value <= param.max):
        raise ValueError(f"loss {loss_id!r}: {param.name}={value!r} is outside [{param.min:g}, {param.max:g}]")
    return value


def check_class_weights(loss_id: str, value, include_background: bool = True, name: str = "class_weights") -> list[float] | None:
    """The class weights (or a per-class parameter `name`) as floats; ValueError unless they are
    one finite, non-negative weight per class with at least one positive weight among the classes
    the loss counts."""
    if value is None:
        return None
    try:
        weights = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"loss {loss_id!r}: {name} must be a list of numbers, got {value!r}") from None
    if weights.ndim != 1 or len(weights) < 2:
        raise ValueError(f"loss {loss_id!r}: {name} must be a list with one weight per class, got {value!r}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"loss {loss_id!r}: {name} must be finite and non-negative, got {value!r}")
    counted = weights if include_background else weights[1:]
    if not np.any(counted > 0):
        raise ValueError(
            f"loss {loss_id!r}: {name} {value!r} give no positive weight to any included class"
        )
    return [float(w) for w in weights]


def _check_ignore_index(loss_id: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"loss {loss_id!r}: ignore_index must be an integer label (e.g. 255) or None, got {value!r}")
    return int(value)


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def validated(spec: LossSpec, params: dict, current: dict | None = None) -> dict:
    """Checked parameter values, merged over ``current`` (or the defaults). ValueError names
    what is wrong and what is valid."""
    values = dict(current) if current is not None else defaults(spec.id)
    floats = {p.name: p for p in spec.params}
    for name, value in params.items():
        if name in floats and floats[name].per_class and _is_list(value):
            values[name] = list(value)  # checked below, once include_background is known
        elif name in floats:
            values[name] = _check_float(spec.id, floats[name], value)
        elif name == "ignore_index":
            values[name] = _check_ignore_index(spec.id, value)
        elif name in spec.flags:
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"loss {spec.id!r}: {name} must be True or False, got {value!r}")
            values[name] = bool(value)
        elif name == "class_weights" and (spec.uses_class_weights or value is None):
            if spec.uses_class_weights:
                values[name] = value
        elif name == "class_weights":
            raise ValueError(
                f"loss {spec.id!r} does not use class_weights (pass None); losses that do: "
                + ", ".join(s.id for s in _SPECS if s.uses_class_weights)
            )
        else:
            raise ValueError(f"loss {spec.id!r} has no parameter {name!r}; valid: {', '.join(defaults(spec.id))}")
    include_background = values.get("include_background", True)
    if spec.uses_class_weights:
        values["class_weights"] = check_class_weights(spec.id, values["class_weights"], include_background)
    for param in spec.params:
        if param.per_class and isinstance(values[param.name], list):
            values[param.name] = check_class_weights(spec.id, values[param.name], include_background, param.name)
            if values.get("class_weights") is not None:
                raise ValueError(
                    f"loss {spec.id!r}: {param.name} as a per-class list and class_weights both weigh the "
                    f"classes; use one: {param.name}=[one value per class] (as Keras's list alpha), or "
                    f"class_weights with a scalar {param.name}"
                )
    return values
