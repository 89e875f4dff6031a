"""The traps people fall into with segmentation losses, each reproduced live with the real code,
each with its fix beside it. Pure: no Streamlit; every function returns the numbers and arrays the
page shows (see explorer/ui/traps_view.py), computed now, with the installed Keras and our losses.

The traps (docs/losses.md, "Where libraries disagree" and "Class weights"):

1. :func:`per_batch_weights` — class weights computed from each batch instead of the dataset.
2. :func:`keras_class_weight` — ``model.fit(..., class_weight=...)`` with masks.
3. :func:`softmax_axis` — softmax over the wrong axis (channels-first data, a wrong reshape), and
   :func:`softmax_axis_training` — what a model trained with it outputs.
4. :func:`accuracy_paradox` — pixel accuracy of an all-background predictor against its mean IoU.
5. :func:`micro_averaging` — Keras ``Dice``/``Tversky`` with their default ``axis=None``.
6. :func:`empty_masks` — Dice without smoothing on an empty mask.
7. :func:`sigmoid_vs_softmax` — sigmoid binary cross-entropy for mutually exclusive classes.

The ones that train (1, 3 and 7) train a small U-Net for a few dozen steps on the toy set, every
variant from the same initial weights on the same batches, with one traced step per trap.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from explorer import losses, metrics, weights
from explorer.data import Dataset
from explorer.model import build_unet
from explorer.training import batch_indices

COLLAPSE_SHARE = 0.9  # a class that takes this share of the predicted pixels: the model collapsed to it
SHOWN_IMAGES = 4  # validation images whose predictions a training trap returns for display


# --------------------------------------------------------------------------------------------
# Short trainings shared by the traps that train


@dataclass(frozen=True)
class Outcome:
    """What a short training left: validation scores and what the model predicts."""

    name: str
    loss_values: np.ndarray  # (steps,)
    iou: np.ndarray  # (C,) validation IoU per class (NaN: class absent from truth and prediction)
    mean_iou: float
    pixel_accuracy: float
    predicted_share: np.ndarray  # (C,) share of validation pixels predicted as each class
    true_share: np.ndarray  # (C,) share of validation pixels of each class
    predictions: np.ndarray  # (SHOWN_IMAGES, H, W) argmax predictions of the first validation images
    seconds: float
    sum_range: tuple[float, float]  # 5th and 95th percentile over the pixels of Σ_c p_c
    no_class: float  # share of pixels where no class has p > 0.5
    several_classes: float  # share of pixels where more than one class has p > 0.5

    @property
    def collapsed_to(self) -> int | None:
        """The class the model predicts (nearly) everywhere, if any: at least COLLAPSE_SHARE of the
        predicted pixels, and more than half-way from its true share to all of them (predicting
        93 % background where the truth has 88 % is not a collapse)."""
        top = int(np.argmax(self.predicted_share))
        share, truth = self.predicted_share[top], self.true_share[top]
        return top if share >= COLLAPSE_SHARE and share >= truth + (1.0 - truth) / 2 else None


@dataclass(frozen=True)
class _Variant:
    name: str
    # (y one-hot, logits, step input) -> scalar loss; the step input is a (C,) float32 vector
    loss: Callable
    # logits -> per-class probabilities used for the prediction
    probabilities: Callable = lambda z: tf.nn.softmax(z, axis=-1)


def _short_trainings(
    dataset: Dataset,
    variants: Sequence[_Variant],
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    depth: int,
    width: int,
    step_input: Callable[[int, np.ndarray], np.ndarray] | None = None,
) -> list[Outcome]:
    """Train one U-Net per variant from the same initial weights on the same batches.

    One model, optimizer and traced step serve every variant: the step takes the variant's index
    (a tf.switch_case picks its loss) and a per-step (C,) input vector (``step_input(variant,
    batch_masks)``, e.g. class weights); weights and optimizer are reset between variants."""
    num_classes = dataset.num_classes
    model = build_unet(num_classes, input_shape=dataset.train_images.shape[1:], depth=depth, width=width, seed=seed)
    initial = model.get_weights()
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    optimizer.build(model.trainable_variables)
    train_x, train_y = tf.constant(dataset.train_images), tf.constant(dataset.train_masks)
    val_x = tf.constant(dataset.val_images)

    @tf.function
    def train_step(indices, which, vector):
        x = tf.gather(train_x, indices)
        y = tf.one_hot(tf.cast(tf.gather(train_y, indices), tf.int32), num_classes)
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            branches = [lambda v=v: tf.cast(v.loss(y, logits, vector), tf.float32) for v in variants]
            value = tf.switch_case(which, branches)
        grads = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return value

    @tf.function
    def predict(which):
        logits = model(val_x, training=False)
        return tf.switch_case(which, [lambda v=v: v.probabilities(logits) for v in variants])

    outcomes = []
    for which, variant in enumerate(variants):
        model.set_weights(initial)
        for variable in optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        optimizer.learning_rate = learning_rate
        start = time.perf_counter()
        values = []
        for step in range(steps):
            indices = batch_indices(seed, step, batch_size, len(dataset.train_images))
            vector = (
                step_input(which, dataset.train_masks[indices]) if step_input is not None else np.zeros(num_classes)
            )
            value = train_step(tf.constant(indices), tf.constant(which), tf.constant(vector, tf.float32))
            values.append(float(value))
        probabilities = predict(tf.constant(which)).numpy()
        outcomes.append(_outcome(variant.name, np.asarray(values), probabilities, dataset, time.perf_counter() - start))
    return outcomes


def _outcome(name: str, loss_values: np.ndarray, probabilities: np.ndarray, dataset: Dataset, seconds: float) -> Outcome:
    prediction = probabilities.argmax(-1)
    confusion = metrics.confusion_matrix(dataset.val_masks, prediction, dataset.num_classes)
    scores = metrics.scores(confusion)
    share = np.bincount(prediction.ravel(), minlength=dataset.num_classes) / prediction.size
    total = probabilities.sum(-1)
    above = (probabilities > 0.5).sum(-1)
    return Outcome(
        name=name,
        loss_values=loss_values,
        iou=scores.iou,
        mean_iou=scores.mean_iou,
        pixel_accuracy=scores.pixel_accuracy,
        predicted_share=share,
        true_share=np.bincount(np.asarray(dataset.val_masks).ravel(), minlength=dataset.num_classes) / prediction.size,
        predictions=prediction[:SHOWN_IMAGES].astype(np.uint8),
        seconds=seconds,
        sum_range=(float(np.percentile(total, 5)), float(np.percentile(total, 95))),
        no_class=float((above == 0).mean()),
        several_classes=float((above > 1).mean()),
    )


# --------------------------------------------------------------------------------------------
# 1. Class weights computed from each batch


@dataclass(frozen=True)
class PerBatchWeights:
    loss_id: str
    batch_size: int
    steps: int
    dataset_weights: np.ndarray  # (C,) inverse frequency over the whole training set
    batch_weights: np.ndarray  # (steps, C) the same formula on each training batch
    missing: np.ndarray  # (steps, C) bool: the class has no pixel in that batch
    absent_share: float  # in a batch lacking a class, the share of Σw that class's weight takes
    outcomes: tuple[Outcome, Outcome]  # (per batch, dataset)

    @property
    def batches_missing_a_class(self) -> int:
        return int(self.missing.any(axis=1).sum())

    @property
    def largest_weight(self) -> float:
        return float(self.batch_weights.max())


PER_BATCH_LOSSES = ("dice", "weighted_ce")


def per_batch_weights(
    dataset: Dataset,
    *,
    loss_id: str = "dice",
    batch_size: int = 2,
    steps: int = 80,
    learning_rate: float = 1e-3,
    seed: int = 0,
    eps: float = weights.DEFAULT_BATCH_EPS,
) -> PerBatchWeights:
    """Inverse-frequency weights from each batch (``weights.per_batch_weights``, the pitfall)
    against the same formula over the whole training set (``weights.class_weights(...,
    'inverse')``, the fix), each driving ``loss_id`` (a loss with class weights) in a short
    training from the same weights on the same batches."""
    if loss_id not in PER_BATCH_LOSSES:
        raise ValueError(f"per_batch_weights trains with one of {PER_BATCH_LOSSES}, not {loss_id!r}")
    num_classes = dataset.num_classes
    counts = weights.count_pixels(dataset.train_masks, num_classes)
    dataset_w = weights.class_weights(counts, "inverse").weights
    batch_w, missing = [], []
    for step in range(steps):
        masks = dataset.train_masks[batch_indices(seed, step, batch_size, len(dataset.train_masks))]
        batch_w.append(weights.per_batch_weights(masks, num_classes, eps=eps).weights)
        missing.append(np.bincount(masks.ravel(), minlength=num_classes) == 0)
    batch_w, missing = np.array(batch_w), np.array(missing)
    shares = [w[m].sum() / w.sum() for w, m in zip(batch_w, missing) if m.any()]
    absent_share = float(np.mean(shares)) if shares else float("nan")

    defaults = {p.name: p.default for p in losses.REGISTRY[loss_id].params}
    loss_function = losses.FUNCTIONS[loss_id]

    def loss(y, logits, class_weights):
        return tf.reduce_mean(loss_function(y, logits, class_weights=class_weights, **defaults))

    variants = (_Variant("weights from each batch", loss), _Variant("weights from the dataset", loss))

    def step_input(which: int, masks: np.ndarray) -> np.ndarray:
        return weights.per_batch_weights(masks, num_classes, eps=eps).weights if which == 0 else dataset_w

    outcomes = _short_trainings(
        dataset, variants, steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        depth=2, width=8, step_input=step_input,
    )
    return PerBatchWeights(
        loss_id=loss_id,
        batch_size=batch_size,
        steps=steps,
        dataset_weights=dataset_w,
        batch_weights=batch_w,
        missing=missing,
        absent_share=absent_share,
        outcomes=tuple(outcomes),
    )


# --------------------------------------------------------------------------------------------
# 2. model.fit(..., class_weight=...) with masks


@dataclass(frozen=True)
class FitAttempt:
    what: str
    ok: bool
    error_type: str | None = None  # e.g. 'TypeError'
    error_message: str | None = None
    raised_in: str | None = None  # 'keras/src/.../file.py, line N, in function'
    loss: float | None = None  # the loss after the fit (ok) or None


@dataclass(frozen=True)
class ClassWeightTrap:
    keras_version: str
    class_weight: dict[int, float]
    attempts: tuple[FitAttempt, ...]  # class_weight one-hot, class_weight sparse, sample_weight, weighted loss
    sample_weight_loss: float  # evaluate() of CCE with per-pixel sample_weight ...
    weighted_loss: float  # ... and of our weighted_ce on the same weights and data: equal


def _tiny_model(num_classes: int, shape: tuple[int, ...], seed: int = 0) -> keras.Model:
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer=keras.initializers.HeNormal(seed))(inputs)
    logits = keras.layers.Conv2D(num_classes, 1, kernel_initializer=keras.initializers.HeNormal(seed + 1))(x)
    return keras.Model(inputs, logits)


def _fit(what: str, model: keras.Model, x, y, **fit_kwargs) -> FitAttempt:
    try:
        history = model.fit(x, y, epochs=1, batch_size=4, verbose=0, **fit_kwargs)
    except Exception as error:  # noqa: BLE001 — the point is to show whatever Keras raises
        frames = traceback.extract_tb(error.__traceback__)
        where = None
        if frames:
            frame = frames[-1]
            parts = Path(frame.filename).parts
            short = "/".join(parts[parts.index("keras"):]) if "keras" in parts else frame.filename
            where = f"{short}, line {frame.lineno}, in {frame.name}"
        return FitAttempt(what, ok=False, error_type=type(error).__name__, error_message=str(error), raised_in=where)
    return FitAttempt(what, ok=True, loss=float(history.history["loss"][-1]))


def keras_class_weight(dataset: Dataset, *, images: int = 8, seed: int = 0) -> ClassWeightTrap:
    """Call the installed Keras's ``model.fit(x, masks, class_weight=...)`` on a tiny model, with
    one-hot and with sparse masks, catch what it raises; then run the two fixes: per-pixel
    ``sample_weight`` of shape (N, H, W) and a weighted loss (our ``weighted_ce``)."""
    num_classes = dataset.num_classes
    x = np.asarray(dataset.train_images[:images])
    sparse = np.asarray(dataset.train_masks[:images]).astype(np.int32)
    onehot = np.eye(num_classes, dtype=np.float32)[sparse]
    counts = weights.count_pixels(dataset.train_masks, num_classes)
    w = weights.class_weights(counts, "balanced").weights
    class_weight = {c: float(round(w[c], 4)) for c in range(num_classes)}
    w_vector = np.array([class_weight[c] for c in range(num_classes)], np.float32)

    keras.utils.set_random_seed(seed)
    attempts = []
    model = _tiny_model(num_classes, x.shape[1:], seed)
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    attempts.append(_fit("fit(x, one-hot masks, class_weight=…)", model, x, onehot, class_weight=class_weight))
    model = _tiny_model(num_classes, x.shape[1:], seed)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    attempts.append(_fit("fit(x, sparse masks, class_weight=…)", model, x, sparse, class_weight=class_weight))

    pixel_weights = w_vector[sparse]  # (N, H, W): each pixel gets its class's weight
    model = _tiny_model(num_classes, x.shape[1:], seed)
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    attempts.append(_fit("fix 1: fit(x, one-hot masks, sample_weight=w[masks])", model, x, onehot, sample_weight=pixel_weights))
    model = _tiny_model(num_classes, x.shape[1:], seed)
    model.compile(optimizer="adam", loss=losses.get("weighted_ce", class_weights=list(map(float, w_vector))))
    attempts.append(_fit("fix 2: compile(loss=weighted_ce(class_weights=w)); fit(x, one-hot masks)", model, x, onehot))

    # The two fixes are the same loss: evaluate both on one model's predictions.
    logits = model.predict(x, verbose=0)
    sample_weighted = float(keras.losses.CategoricalCrossentropy(from_logits=True)(onehot, logits, sample_weight=pixel_weights))
    ours = float(losses.get("weighted_ce", class_weights=list(map(float, w_vector)))(onehot, logits))
    return ClassWeightTrap(
        keras_version=keras.__version__,
        class_weight=class_weight,
        attempts=tuple(attempts),
        sample_weight_loss=sample_weighted,
        weighted_loss=ours,
    )


# --------------------------------------------------------------------------------------------
# 3. Softmax over the wrong axis


@dataclass(frozen=True)
class SoftmaxAxisTrap:
    truth: np.ndarray  # (H, W) the validation mask used
    variants: tuple[str, ...]
    predictions: tuple[np.ndarray, ...]  # (H, W) argmax over the class axis, per variant
    class_sums: tuple[tuple[float, float], ...]  # (min, max) of Σ_c p over the pixels, per variant
    pixel_accuracy: tuple[float, ...]
    mean_iou: tuple[float, ...]
    ce: tuple[float, ...]  # our ce (from_logits=False) on each variant's probabilities


def softmax_axis(dataset: Dataset, *, image: int | None = None, confidence: float = 4.0) -> SoftmaxAxisTrap:
    """A perfect model (logits ``confidence·onehot(truth)``) read three ways: softmax over the
    classes (right), channels-first logits with softmax over the last axis (the width), and
    channels-first logits reshaped, not transposed, to channels-last before the softmax."""
    num_classes = dataset.num_classes
    if image is None:  # the first validation image that holds every class
        image = next(
            (i for i, m in enumerate(dataset.val_masks) if len(np.unique(m)) == num_classes), 0
        )
    truth = np.asarray(dataset.val_masks[image]).astype(np.int64)
    onehot = np.eye(num_classes, dtype=np.float32)[truth][None]  # (1, H, W, C)
    logits = confidence * onehot
    channels_first = tf.transpose(logits, [0, 3, 1, 2])  # (1, C, H, W), as a PyTorch-style model gives

    right = tf.nn.softmax(logits, axis=-1)
    wrong_axis = tf.transpose(tf.nn.softmax(channels_first, axis=-1), [0, 2, 3, 1])  # softmax over W
    wrong_reshape = tf.nn.softmax(tf.reshape(channels_first, logits.shape), axis=-1)  # reshape ≠ transpose
    variants = (
        "softmax over the classes (channels last) — the fix",
        "channels-first logits, softmax(axis=-1): over the image width",
        "channels-first logits reshaped (not transposed) to channels last",
    )
    ce = losses.get("ce", from_logits=False)
    predictions, sums, accuracy, miou, values = [], [], [], [], []
    for probs in (right, wrong_axis, wrong_reshape):
        p = probs.numpy()[0]
        prediction = p.argmax(-1)
        scores = metrics.scores(metrics.confusion_matrix(truth, prediction, num_classes))
        total = p.sum(-1)
        predictions.append(prediction.astype(np.uint8))
        sums.append((float(total.min()), float(total.max())))
        accuracy.append(scores.pixel_accuracy)
        miou.append(scores.mean_iou)
        values.append(float(ce(onehot, probs)))
    return SoftmaxAxisTrap(
        truth=truth.astype(np.uint8),
        variants=variants,
        predictions=tuple(predictions),
        class_sums=tuple(sums),
        pixel_accuracy=tuple(accuracy),
        mean_iou=tuple(miou),
        ce=tuple(values),
    )


@dataclass(frozen=True)
class SoftmaxAxisTraining:
    steps: int
    outcomes: tuple[Outcome, Outcome]  # (softmax over the height in the loss, softmax over the classes)


def softmax_axis_training(
    dataset: Dataset, *, steps: int = 80, batch_size: int = 8, learning_rate: float = 3e-3, seed: int = 0
) -> SoftmaxAxisTraining:
    """What a model trained with the softmax on the wrong axis outputs: channels-first code
    (``softmax(axis=1)``) on channels-last data normalises over the image height. The same U-Net
    trained with that cross-entropy and with the right one, from the same weights on the same
    batches; each is read the way it was trained."""

    def wrong(z):
        return tf.nn.softmax(z, axis=1)

    variants = (
        _Variant(
            "cross-entropy of softmax(axis=1): over the height",
            lambda y, z, _: tf.reduce_mean(losses.ce_loss(y, wrong(z), from_logits=False)),
            wrong,
        ),
        _Variant("cross-entropy of softmax over the classes — the fix", lambda y, z, _: tf.reduce_mean(losses.ce_loss(y, z))),
    )
    outcomes = _short_trainings(
        dataset, variants, steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed, depth=2, width=8
    )
    return SoftmaxAxisTraining(steps=steps, outcomes=tuple(outcomes))


# --------------------------------------------------------------------------------------------
# 4. The accuracy paradox


@dataclass(frozen=True)
class AccuracyParadox:
    predictors: tuple[str, ...]
    pixel_accuracy: tuple[float, ...]
    mean_iou: tuple[float, ...]
    iou: tuple[np.ndarray, ...]  # (C,) per predictor
    examples: tuple[np.ndarray, ...]  # (H, W) prediction of the shown validation image, per predictor
    image: int


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of a (N, H, W) bool array by a square of side 2·radius+1 (no SciPy)."""
    out = mask.copy()
    padded = np.pad(mask, ((0, 0), (radius, radius), (radius, radius)))
    h, w = mask.shape[1:]
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[:, dy : dy + h, dx : dx + w]
    return out


def accuracy_paradox(dataset: Dataset, *, radius: int = 2) -> AccuracyParadox:
    """Pixel accuracy and mean IoU on the validation set of (a) predicting background everywhere
    and (b) a useful but sloppy predictor that finds every object and paints it ``radius`` pixels
    too wide (rarest classes painted last, so they stay visible)."""
    truth = np.asarray(dataset.val_masks).astype(np.int64)
    num_classes = dataset.num_classes
    background = np.zeros_like(truth)
    sloppy = np.zeros_like(truth)
    order = np.argsort(-np.bincount(truth.ravel(), minlength=num_classes))  # most frequent first
    for c in order:
        if c == 0:
            continue
        sloppy[_dilate(truth == c, radius)] = c
    predictors = ("background everywhere", f"every object found, {radius} px too wide")
    accuracy, miou, ious = [], [], []
    for prediction in (background, sloppy):
        scores = metrics.scores(metrics.confusion_matrix(truth, prediction, num_classes))
        accuracy.append(scores.pixel_accuracy)
        miou.append(scores.mean_iou)
        ious.append(scores.iou)
    image = next((i for i, m in enumerate(truth) if len(np.unique(m)) == num_classes), 0)
    return AccuracyParadox(
        predictors=predictors,
        pixel_accuracy=tuple(accuracy),
        mean_iou=tuple(miou),
        iou=tuple(ious),
        examples=(background[image].astype(np.uint8), sloppy[image].astype(np.uint8)),
        image=image,
    )


# --------------------------------------------------------------------------------------------
# 5. Dice and Tversky averaged over everything (Keras's default axis=None)


@dataclass(frozen=True)
class MicroAveraging:
    description: str
    one_minus_mean_p_true: float
    rows: tuple[tuple[str, float, float], ...]  # (what, value with (α, β) = (0.3, 0.7), value with (0.7, 0.3))
    keras_dice_global: float
    keras_dice_per_class: float
    ours_dice: float
    per_class_dice: np.ndarray  # (C,) our per-class Dice loss, mean over images


def _missing_class_probabilities(dataset: Dataset, missed: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """One-hot validation masks and a softmax prediction that is right with probability
    ``confidence`` everywhere except on class ``missed``, which it calls background."""
    truth = np.asarray(dataset.val_masks).astype(np.int64)
    num_classes = dataset.num_classes
    onehot = np.eye(num_classes, dtype=np.float32)[truth]
    predicted = np.where(truth == missed, 0, truth)
    rest = (1.0 - confidence) / (num_classes - 1)
    probs = np.full(onehot.shape, rest, np.float32)
    np.put_along_axis(probs, predicted[..., None], confidence, axis=-1)
    return onehot, probs


def micro_averaging(dataset: Dataset, *, confidence: float = 0.9) -> MicroAveraging:
    """Keras's Dice and Tversky with their default ``axis=None`` against per-image, per-class
    ratios, on the validation masks and a prediction that misses the rarest class entirely."""
    num_classes = dataset.num_classes
    rarest = int(np.argmin(np.bincount(np.asarray(dataset.val_masks).ravel(), minlength=num_classes)))
    onehot, probs = _missing_class_probabilities(dataset, rarest, confidence)
    one_minus = float(1.0 - (onehot * probs).sum(-1).mean())

    def keras_tversky(a, b, axis=None):
        return float(keras.losses.Tversky(alpha=a, beta=b, axis=axis)(onehot, probs))

    def ours_tversky(a, b):
        return float(losses.get("tversky", alpha=a, beta=b, from_logits=False)(onehot, probs))

    rows = (
        ("keras.losses.Tversky(alpha, beta) — default axis=None", keras_tversky(0.3, 0.7), keras_tversky(0.7, 0.3)),
        ("keras.losses.Tversky(alpha, beta, axis=(1, 2)) — per image and class", keras_tversky(0.3, 0.7, (1, 2)), keras_tversky(0.7, 0.3, (1, 2))),
        ("our tversky(alpha, beta) — per image and class", ours_tversky(0.3, 0.7), ours_tversky(0.7, 0.3)),
    )
    ours = losses.get("dice", from_logits=False)
    y, p = tf.constant(onehot), tf.constant(probs)
    tp, fp, fn = losses.soft_counts(y, p)
    per_class = ((fp + fn) / (2 * tp + fp + fn + 1e-5)).numpy().mean(0)
    return MicroAveraging(
        description=(
            f"Validation masks ({len(onehot)} images) and a softmax prediction that gives the true class "
            f"probability {confidence:g} everywhere except on '{dataset.class_names[rarest]}' "
            f"({100 * onehot[..., rarest].mean():.2f} % of the pixels), which it calls background."
        ),
        one_minus_mean_p_true=one_minus,
        rows=rows,
        keras_dice_global=float(keras.losses.Dice()(onehot, probs)),
        keras_dice_per_class=float(keras.losses.Dice(axis=(1, 2))(onehot, probs)),
        ours_dice=float(ours(onehot, probs)),
        per_class_dice=per_class,
    )


# --------------------------------------------------------------------------------------------
# 6. Dice on empty masks


@dataclass(frozen=True)
class EmptyMasks:
    class_name: str
    image: int
    rows: tuple[tuple[str, float, float], ...]  # (what, loss for a perfect empty prediction, loss with p = 0.01 everywhere)


def empty_masks(dataset: Dataset) -> EmptyMasks:
    """The Dice loss of one class on a validation image that does not contain it: for a perfect
    prediction (p = 0 everywhere) and for a slightly wrong one (p = 0.01 everywhere)."""
    num_classes = dataset.num_classes
    masks = np.asarray(dataset.val_masks)
    absent = [(i, c) for c in range(num_classes - 1, 0, -1) for i in range(len(masks)) if not (masks[i] == c).any()]
    if not absent:
        raise ValueError("every validation image contains every class: no empty mask to show")
    image, c = absent[0]
    y = np.zeros((1, *masks.shape[1:], 1), np.float32)  # the class's (empty) mask, one channel
    perfect, slight = np.zeros_like(y), np.full_like(y, 0.01)

    def naive(p):  # 1 − 2Σyp / (Σy + Σp), no smoothing at all
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(1.0 - 2 * (y * p).sum() / (y.sum() + p.sum()))

    def keras_dice(p):
        return float(keras.losses.Dice()(y, p))

    def ours(p, s):  # our dice on [rest, class] channels, the class's term only (include_background=False)
        y2, p2 = np.concatenate([1 - y, y], -1), np.concatenate([1 - p, p], -1)
        return float(losses.get("dice", smooth=s, include_background=False, from_logits=False)(y2, p2))

    rows = (
        ("no smoothing: 1 − 2Σyp/(Σy + Σp)", naive(perfect), naive(slight)),
        ("keras.losses.Dice() (ε in the denominator only)", keras_dice(perfect), keras_dice(slight)),
        ("our dice, s = 1e-5 (numerator and denominator)", ours(perfect, 1e-5), ours(slight, 1e-5)),
        ("our dice, s = 1 (SegLoss's default)", ours(perfect, 1.0), ours(slight, 1.0)),
    )
    return EmptyMasks(class_name=dataset.class_names[c], image=image, rows=rows)


# --------------------------------------------------------------------------------------------
# 7. Sigmoid BCE against softmax CE for mutually exclusive classes


@dataclass(frozen=True)
class SigmoidVsSoftmax:
    steps: int
    outcomes: tuple[Outcome, Outcome]  # (sigmoid bce, softmax ce)


def sigmoid_vs_softmax(
    dataset: Dataset, *, steps: int = 80, batch_size: int = 8, learning_rate: float = 3e-3, seed: int = 0
) -> SigmoidVsSoftmax:
    """Train the same U-Net with our ``bce`` (one sigmoid per class) and with our ``ce`` (softmax
    over the classes) from the same weights on the same batches, and look at what each outputs:
    the sigmoid model's per-class probabilities need not sum to 1, so a pixel can belong to no
    class or to several."""
    variants = (
        _Variant("sigmoid binary cross-entropy (bce)", lambda y, z, _: tf.reduce_mean(losses.bce_loss(y, z)), tf.sigmoid),
        _Variant("softmax cross-entropy (ce) — the fix", lambda y, z, _: tf.reduce_mean(losses.ce_loss(y, z))),
    )
    outcomes = _short_trainings(
        dataset, variants, steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed, depth=2, width=8
    )
    return SigmoidVsSoftmax(steps=steps, outcomes=tuple(outcomes))
