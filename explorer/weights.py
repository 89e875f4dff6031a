"""Class counting over a dataset and the class-weighting schemes of docs/losses.md.

Counts are taken once over the whole training set (`count_pixels`, streaming, so the
dataset is never stacked in memory) and turned into weights by `class_weights`, which also
takes plain per-class counts or a stack of integer masks. Pixels of a void label
(`ignore_index`, e.g. 255) are not counted anywhere.
Every dataset-level scheme gives an absent class (no pixels) the weight 0 and a warning
naming it, never inf or NaN. `K` is the number of classes *present*.

`per_batch` is in the registry on purpose, as the pitfall to show: weights recomputed from
one batch (`per_batch_weights`) explode for a class that batch happens to lack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ClassCounts",
    "Param",
    "Scheme",
    "SCHEMES",
    "WeightResult",
    "DEFAULT_BATCH_EPS",
    "count_pixels",
    "class_weights",
    "per_batch_weights",
    "weights_table",
]

# Typical of the copied snippets; small enough that a missing class's weight is absurd.
DEFAULT_BATCH_EPS = 1e-6


@dataclass(frozen=True, eq=False)
class ClassCounts:
    """Per-class pixel statistics of a set of masks (arrays are read-only).

    pixels: n_c, pixels of class c (int64).
    images_containing: number of images with at least one pixel of c.
    pixels_of_images_containing: total pixels of the images that contain c
        (the denominator of the median-frequency f_c).
    """

    pixels: np.ndarray
    images_containing: np.ndarray
    pixels_of_images_containing: np.ndarray
    num_images: int
    total_pixels: int

    @property
    def num_classes(self) -> int:
        return len(self.pixels)

    @property
    def frequencies(self) -> np.ndarray:
        """n_c / N (zeros when there are no pixels at all)."""
        if self.total_pixels == 0:
            return np.zeros(self.num_classes)
        return self.pixels / self.total_pixels


def _check_mask(mask, index: int, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise ValueError(
            f"mask {index} has shape {mask.shape}: expected an (H, W) mask "
            "or a (B, H, W) batch of masks holding class indices"
        )
    if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
        raise ValueError(
            f"mask {index} has dtype {mask.dtype}: expected integer class indices "
            "(an index mask, not one-hot or probabilities)"
        )
    labels = mask if ignore_index is None else mask[mask != ignore_index]
    if labels.size:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"mask {index} contains the value {bad}, but there are {num_classes} "
                f"classes (valid values are 0 to {num_classes - 1}"
                + ("" if ignore_index is None else f", and {ignore_index} for void")
                + "); check num_classes, the mask's palette or ignore_index"
            )
    return mask


def count_pixels(
    masks: Iterable[np.ndarray] | np.ndarray, num_classes: int, ignore_index: int | None = None
) -> ClassCounts:
    """Count class pixels over `masks`, one mask or batch at a time.

    `masks` is an iterable of (H, W) masks or (B, H, W) batches (sizes may differ between
    items), or a single ndarray of either shape. Each (H, W) slice counts as one image.
    Pixels equal to `ignore_index` count nowhere: not in n_c, not in N, not in the pixels of
    the images containing a class. Raises ValueError for any other value outside
    0..num_classes-1.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if isinstance(masks, np.ndarray):
        masks = [masks]
    pixels = np.zeros(num_classes, np.int64)
    images_containing = np.zeros(num_classes, np.int64)
    pixels_of_containing = np.zeros(num_classes, np.int64)
    num_images = 0
    for index, mask in enumerate(masks):
        mask = _check_mask(mask, index, num_classes, ignore_index)
        batch = mask.reshape(-1, mask.shape[-2] * mask.shape[-1]).astype(np.intp)
        b = batch.shape[0]
        # One bincount for the whole batch: offset each image's labels by image * C.
        offsets = (np.arange(b, dtype=np.intp) * num_classes)[:, None]
        index = batch + offsets
        if ignore_index is not None:
            index = index[batch != ignore_index]
        per_image = np.bincount(index.ravel(), minlength=b * num_classes)
        per_image = per_image.reshape(b, num_classes)
        present = per_image > 0
        valid_per_image = per_image.sum(axis=1)
        pixels += per_image.sum(axis=0)
        images_containing += present.sum(axis=0)
        pixels_of_containing += (present * valid_per_image[:, None]).sum(axis=0)
        num_images += b
    for array in (pixels, images_containing, pixels_of_containing):
        array.setflags(write=False)
    return ClassCounts(
        pixels=pixels,
        images_containing=images_containing,
        pixels_of_images_containing=pixels_of_containing,
        num_images=num_images,
        total_pixels=int(pixels.sum()),
    )


@dataclass(frozen=True)
class WeightResult:
    weights: np.ndarray  # float64, one per class
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Param:
    """A numeric scheme parameter, with the range a slider may offer."""

    default: float
    low: float
    high: float
    help: str


@dataclass(frozen=True)
class Scheme:
    id: str
    name: str
    formula: str  # LaTeX
    source: str
    note: str
    params: dict[str, Param] = field(default_factory=dict)
    dataset_level: bool = True  # False: computed per batch, not from ClassCounts


def _none(counts: ClassCounts, present: np.ndarray) -> np.ndarray:
    return np.ones(np.count_nonzero(present))


def _inverse(counts: ClassCounts, present: np.ndarray) -> np.ndarray:
    return counts.total_pixels / counts.pixels[present]


def _balanced(counts: ClassCounts, present: np.ndarray) -> np.ndarray:
    return counts.total_pixels / (np.count_nonzero(present) * counts.pixels[present])


def _median_frequency(counts: ClassCounts, present: np.ndarray) -> np.ndarray:
    f = counts.pixels[present] / counts.pixels_of_images_containing[present]
    return np.median(f) / f


def _effective_number(counts: ClassCounts, present: np.ndarray, beta: float) -> np.ndarray:
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    n = counts.pixels[present].astype(np.float64)
    # 1 - beta**n via expm1: exact for beta close to 1 and small n (log(0) = -inf is fine).
    with np.errstate(divide="ignore"):
        effective = -np.expm1(n * np.log(beta)) / (1.0 - beta)
    w = 1.0 / effective
    return w * (len(w) / w.sum())


def _inverse_sqrt(counts: ClassCounts, present: np.ndarray) -> np.ndarray:
    return np.sqrt(counts.total_pixels / counts.pixels[present])


def _log(counts: ClassCounts, present: np.ndarray) -> np.ndarray:
    return 1.0 / np.log(1.02 + counts.pixels[present] / counts.total_pixels)


_COMPUTE = {
    "none": _none,
    "inverse": _inverse,
    "balanced": _balanced,
    "median_frequency": _median_frequency,
    "effective_number": _effective_number,
    "inverse_sqrt": _inverse_sqrt,
    "log": _log,
}

SCHEMES: dict[str, Scheme] = {
    s.id: s
    for s in (
        Scheme(
            "none",
            "None",
            r"w_c = 1",
            "",
            "Every class counts the same; absent classes still get 0 like in every scheme.",
        ),
        Scheme(
            "inverse",
            "Inverse frequency",
            r"w_c = \frac{N}{n_c}",
            "seeds 000, 004",
            "Background gets about 1, a class with 1% of the pixels about 100.",
        ),
        Scheme(
            "balanced",
            "Balanced (scikit-learn)",
            r"w_c = \frac{N}{K\,n_c}",
            "scikit-learn compute_class_weight('balanced'), seed 002",
            "Inverse frequency divided by K: a perfectly balanced dataset gets all 1s.",
        ),
        Scheme(
            "median_frequency",
            "Median frequency",
            r"w_c = \frac{\operatorname{median}_k f_k}{f_c},\quad "
            r"f_c = \frac{n_c}{\text{pixels of the images containing } c}",
            "Eigen & Fergus 2015",
            "Frequency only over the images where the class occurs; the median class gets 1.",
        ),
        Scheme(
            "effective_number",
            "Effective number",
            r"w_c \propto \frac{1-\beta}{1-\beta^{n_c}},\quad \sum_c w_c = K",
            "Cui et al. 2019",
            "Saturates: past about 1/(1-β) pixels more pixels add little, so classes "
            "larger than that weigh about the same. β → 0 gives all 1s.",
            params={
                "beta": Param(
                    0.999, 0.0, 0.99999, "β: how fast extra pixels stop adding information"
                )
            },
        ),
        Scheme(
            "inverse_sqrt",
            "Inverse square root",
            r"w_c = \frac{1}{\sqrt{n_c / N}}",
            "",
            "A softer inverse frequency: 100× rarer means 10× the weight.",
        ),
        Scheme(
            "log",
            "Logarithmic (ENet)",
            r"w_c = \frac{1}{\ln(1.02 + n_c / N)}",
            "Paszke et al. 2016 (ENet)",
            "Bounded by 1/ln(1.02) ≈ 50.5 however rare the class.",
        ),
        Scheme(
            "per_batch",
            "Per batch (a pitfall)",
            r"w_c = \frac{P_\text{batch}}{n_{c,\text{batch}} + \varepsilon}",
            "seed 000's question",
            "Inverse frequency recomputed on every batch, P_batch = pixels in the batch. "
            "A class the batch lacks gets P_batch/ε (3·10¹⁰ for 8 masks of 64×64, "
            "ε = 1e-6); the weights jump from batch to batch: count over the whole "
            "training set instead.",
            params={"eps": Param(DEFAULT_BATCH_EPS, 1e-8, 1.0, "ε added to each batch count")},
            dataset_level=False,
        ),
    )
}


def _class_label(c: int, class_names: Sequence[str] | None) -> str:
    return f"class {c} ({class_names[c]})" if class_names is not None else f"class {c}"


def _as_counts(counts, scheme: str, num_classes: int | None, ignore_index: int | None) -> ClassCounts:
    """A ClassCounts from what `class_weights` accepts (see there)."""
    if isinstance(counts, ClassCounts):
        return counts
    array = np.asarray(counts)
    if array.ndim >= 2:
        if num_classes is None:
            raise ValueError(
                f"counts has shape {array.shape}, a stack of masks: pass num_classes "
                "(and ignore_index if the masks have a void label)"
            )
        return count_pixels(array, num_classes, ignore_index)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(
            f"counts must be per-class pixel counts (a list), a ClassCounts from count_pixels, "
            f"or a stack of integer masks; got {counts!r:.80}"
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0) or np.any(array != np.round(array)):
        raise ValueError(f"per-class pixel counts must be whole numbers >= 0, got {counts!r:.80}")
    if num_classes is not None and num_classes != len(array):
        raise ValueError(f"{len(array)} counts for num_classes={num_classes}")
    if scheme == "median_frequency":
        raise ValueError(
            "median_frequency needs the pixels of the images that contain each class, which plain "
            "counts lack: pass count_pixels(masks, num_classes) or the masks themselves"
        )
    pixels = array.astype(np.int64)
    # Plain counts say nothing per image: only what the other schemes use (n_c and N) is filled.
    return ClassCounts(
        pixels=pixels,
        images_containing=np.zeros_like(pixels),
        pixels_of_images_containing=np.zeros_like(pixels),
        num_images=0,
        total_pixels=int(pixels.sum()),
    )


def class_weights(
    counts: ClassCounts | Sequence[float] | np.ndarray,
    scheme: str,
    class_names: Sequence[str] | None = None,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    **params: float,
) -> WeightResult:
    """Weights of `scheme` (a dataset-level id of SCHEMES) from whole-dataset counts.

    `counts` is a ClassCounts from `count_pixels`, per-class pixel counts as a list or 1-D
    array (every scheme but median_frequency, which needs per-image counts), or a stack of
    integer masks (H, W) / (N, H, W), counted here with `num_classes` and `ignore_index`.
    Absent classes get 0 and a warning; `K` counts only the classes present.
    `params` override the scheme's defaults (e.g. beta=0.99 for effective_number).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown weighting scheme {scheme!r}; choose one of {list(SCHEMES)}")
    spec = SCHEMES[scheme]
    if not spec.dataset_level:
        raise ValueError(
            f"{scheme!r} is computed from one batch, not from dataset counts: "
            "use per_batch_weights(batch_masks, num_classes)"
        )
    unknown = set(params) - set(spec.params)
    if unknown:
        raise ValueError(
            f"scheme {scheme!r} has no parameter {sorted(unknown)}; "
            f"its parameters are {sorted(spec.params) or 'none'}"
        )
    values = {name: p.default for name, p in spec.params.items()} | params
    counts = _as_counts(counts, scheme, num_classes, ignore_index)

    present = counts.pixels > 0
    weights = np.zeros(counts.num_classes)
    warnings = [
        f"{_class_label(c, class_names)} has no pixels in the dataset: its weight is 0"
        for c in np.flatnonzero(~present)
    ]
    if present.any():
        # Each scheme computes the weights of the present classes only.
        weights[present] = _COMPUTE[scheme](counts, present, **values)
    return WeightResult(weights=weights, warnings=tuple(warnings))


def weights_table(counts: ClassCounts) -> dict[str, np.ndarray]:
    """Weights under every dataset-level scheme, default parameters, in registry order."""
    return {
        sid: class_weights(counts, sid).weights
        for sid, spec in SCHEMES.items()
        if spec.dataset_level
    }


def per_batch_weights(
    batch_masks: np.ndarray,
    num_classes: int,
    eps: float = DEFAULT_BATCH_EPS,
    class_names: Sequence[str] | None = None,
) -> WeightResult:
    """The pitfall: P_batch / (n_c in this batch + eps), P_batch = pixels in the batch.

    Deliberately *not* guarded: a class missing from the batch gets P_batch / eps, and
    the warnings say so. With P_batch as the batch's pixel count, a batch whose class
    mix equals the dataset's gives exactly the `inverse` weights.
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    counts = count_pixels(np.asarray(batch_masks), num_classes)
    weights = counts.total_pixels / (counts.pixels + eps)
    warnings = tuple(
        f"{_class_label(c, class_names)} is missing from this batch: its weight is "
        f"{weights[c]:.3g}"
        for c in np.flatnonzero(counts.pixels == 0)
    )
    return WeightResult(weights=weights, warnings=warnings)
