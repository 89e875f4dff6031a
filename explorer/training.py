"""A training run: a U-Net, its optimizer, one traced train step per loss, a history and the
latest validation snapshot.

Determinism: the seed fixes the initial weights (seeded initializers) and the batch order
(`batch_indices` is a pure function of seed and step), so runs with one seed start identical and
see identical batches whatever their loss.

A run's observable state (`Run.state`) is an immutable `RunState` replaced whole at the end of
`advance`, so a Streamlit rerun that interrupts the page never shows a half-written history.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from explorer import losses, metrics, tf_internals
from explorer.data import Dataset
from explorer.model import build_unet
from explorer.run_config import RunConfig


@dataclass(frozen=True)
class Evaluation:
    """Validation metrics and predictions at one step."""

    step: int
    scores: metrics.Scores
    probabilities: np.ndarray | None  # (V, H, W, C) softmax of the validation images; latest only
    class_ab: np.ndarray  # (C, 2): per class, the share found (a) and falsely claimed (b)
    logit_scale: float  # the largest |logit| over the validation images: grows before a blow-up


@dataclass(frozen=True)
class RunState:
    step: int = 0
    loss_steps: tuple[int, ...] = ()
    loss_values: tuple[float, ...] = ()
    evaluations: tuple[Evaluation, ...] = ()  # metrics only are kept for old steps, see _thin
    events: tuple[tuple[int, str], ...] = ()  # (step, what changed): marked on the curves
    halted: str | None = None  # why the NaN guard stopped the run
    seconds_training: float = 0.0

    @property
    def latest(self) -> Evaluation | None:
        return self.evaluations[-1] if self.evaluations else None


# Steps per traced call in Run.advance: more saves per-call overhead, fewer lets a caller stop sooner.
STEPS_PER_CALL = 10


def batch_indices(seed: int, step: int, batch_size: int, num_examples: int) -> np.ndarray:
    """Indices of the training batch for `step`: a fresh permutation per epoch, seeded by
    (seed, epoch), incomplete last batches dropped so every step has the same shape."""
    per_epoch = num_examples // batch_size
    if per_epoch == 0:
        raise ValueError(f"batch size {batch_size} is larger than the training set ({num_examples})")
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    return order[position * batch_size : (position + 1) * batch_size].astype(np.int32)


def describe_device() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = ", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus)
        return f"GPU ({names})"
    return f"CPU ({os.cpu_count()} cores)"


# TensorFlow's eager kernel cache keeps every released run's kernels (a closed browser session's),
# without end: it is cleared when a run is built after runs were released. Clearing costs the runs
# still alive one slower call each (≈0.4 s) as their kernels are made again.
_runs_released = threading.Event()


def _clear_kernel_cache_if_runs_were_released() -> None:
    if _runs_released.is_set():
        _runs_released.clear()
        tf_internals.clear_kernel_cache()


class Run:
    """One model trained under one loss configuration (changeable between ticks)."""

    def __init__(self, config: RunConfig, data: Dataset, initial_weights: list[np.ndarray] | None = None):
        _clear_kernel_cache_if_runs_were_released()
        weakref.finalize(self, _runs_released.set)
        self.data = data
        self.model = build_unet(
            data.num_classes,
            # Any size: trained on the training images (or crops), validated on whole images.
            input_shape=(None, None, data.train_images.shape[-1]),
            depth=config.depth,
            width=config.width,
            seed=config.seed,
            normalization=config.normalization,
        )
        if initial_weights is not None:
            self.model.set_weights(initial_weights)
        self.optimizer = tf_internals.SingleDeviceAdam(learning_rate=config.learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        self._val_x = tf.constant(data.val_images)
        self._train_x, self._train_masks = tf.constant(data.train_images, tf.float32), tf.constant(data.train_masks, tf.uint8)
        self.config = config
        self.loss = self._build_loss(config)
        self._train_step = self._make_train_step(self.loss)
        model = self.model
        self._predict = tf.function(lambda images: _softmax_and_scale(model(images, training=False)), reduce_retracing=True)
        # Step 0 is evaluated at once, so the page has maps and a first point on the curves.
        self.state = RunState(evaluations=(self.evaluate(0),))
        self._initial = self._last_good = self._checkpoint()

    @property
    def initial_weights(self) -> list[np.ndarray]:
        return self._initial[1]

    # -- configuration -------------------------------------------------------------------------

    def _build_loss(self, config: RunConfig) -> losses.SegLoss:
        params = dict(config.loss_params)
        if self.data.ignore_index is not None:
            params["ignore_index"] = self.data.ignore_index
        if losses.REGISTRY[config.loss_id].uses_class_weights:
            weights = config.class_weights or (1.0,) * self.data.num_classes
            params["class_weights"] = list(weights)
        return losses.get(config.loss_id, **params)

    def reconfigure(self, config: RunConfig) -> None:
        """Carry on from the current weights under a new loss, parameters, weights or learning
        rate. Float parameters are assigned to the loss's variables (no retrace); a new loss id or
        a new boolean option builds (and traces) a new step. The change is marked on the curves."""
        if config.architecture() != self.config.architecture():
            raise ValueError("depth, width, normalization and seed fix the model: reset the run to change them")
        if config == self.config:
            return
        old = self.config
        new_loss = self._build_loss(config)
        if new_loss.loss_id == self.loss.loss_id and _structure(new_loss) == _structure(self.loss):
            self.loss.set_params(**new_loss.params)
        else:
            self.loss = new_loss
            self._train_step = self._make_train_step(self.loss)
        self.optimizer.learning_rate = config.learning_rate
        self.config = config
        if self.state.step > 0:
            label = describe_change(old, config)
            self.state = dataclasses.replace(self.state, events=self.state.events + ((self.state.step, label),))

    def reset(self) -> None:
        """Back to the initial weights and a fresh optimizer; history cleared."""
        self._restore(self._initial)
        self._last_good = self._initial

    # -- training ------------------------------------------------------------------------------

    def _make_train_step(self, loss: losses.SegLoss):
        model, optimizer = self.model, self.optimizer

        # K steps in one call: the batches are gathered in the graph, so Python and the call's
        # overhead are paid once per K steps. The training set comes in as arguments: a dataset
        # captured by the traced function stays in TensorFlow's function library after the run is
        # gone (about 25 MB per closed session). Any K and batch size use the one trace.
        @tf.function(
            input_signature=[
                tf.TensorSpec((None, *self.data.train_images.shape[1:]), tf.float32),
                tf.TensorSpec((None, *self.data.train_masks.shape[1:]), tf.uint8),
                tf.TensorSpec((None, None), tf.int32),
            ]
        )
        def train_step(images, masks, batches):
            """Train on batches[0], batches[1], … and stop before applying the first step whose
            loss or gradient is not finite. Returns each attempted step's loss, how many steps
            were applied, and whether the last attempted step's gradient was finite."""
            values = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
            applied = tf.constant(0)
            grads_finite = tf.constant(True)
            for k in tf.range(tf.shape(batches)[0]):
                x = tf.gather(images, batches[k])
                # Integer labels: the loss makes them one-hot and leaves void pixels out.
                y = tf.cast(tf.gather(masks, batches[k]), tf.int32)
                with tf.GradientTape() as tape:
                    value = loss(y, model(x, training=True))
                grads = tape.gradient(value, model.trainable_variables)
                grads_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
                values = values.write(k, value)
                if not (tf.math.is_finite(value) and grads_finite):
                    break
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                applied += 1
            return values.stack(), applied, grads_finite

        return train_step

    def advance(self, steps: int, evaluate_every: int | None = 1, steps_per_call: int = STEPS_PER_CALL) -> RunState:
        """Train `steps` steps (`steps_per_call` of them in each traced call), evaluate on the
        validation set if the steps crossed a multiple of `evaluate_every` (None: never), and
        publish the new state in one assignment.

        The NaN guard: a non-finite loss, gradient or validation prediction stops the run, puts
        back the last good weights (those of the latest finite validation snapshot) and says why."""
        if self.state.halted:
            return self.state
        start = time.perf_counter()
        first = step = self.state.step
        loss_steps, loss_values = [], []
        problem = None
        try:
            while step < first + steps and not problem:
                chunk = min(steps_per_call, first + steps - step)
                batches = np.stack([batch_indices(self.config.seed, s, self.config.batch_size, len(self.data.train_images)) for s in range(step, step + chunk)])
                values, applied, grads_finite = self._train_step(self._train_x, self._train_masks, batches)
                values, applied = values.numpy(), int(applied)
                if applied < len(values):
                    value = float(values[applied])
                    if not np.isfinite(value):
                        problem = f"step {step + applied + 1} gave a non-finite loss ({format_value(value)})"
                    elif not bool(grads_finite):
                        problem = f"step {step + applied + 1} gave a non-finite gradient (the loss was {format_value(value)})"
                loss_steps.extend(range(step + 1, step + applied + 1))
                loss_values.extend(float(v) for v in values[:applied])
                step += applied
        finally:
            # Published even when an exception ends the loop early: the weights took these steps.
            self.state = dataclasses.replace(
                self.state,
                step=step,
                loss_steps=self.state.loss_steps + tuple(loss_steps),
                loss_values=self.state.loss_values + tuple(loss_values),
                seconds_training=self.state.seconds_training + time.perf_counter() - start,
            )
        if problem:
            return self._halt(problem, self.state.seconds_training)
        if evaluate_every and step // evaluate_every > first // evaluate_every:
            return self._publish_evaluation(self.state)
        return self.state

    def snapshot(self) -> RunState:
        """Publish a validation snapshot of the current weights unless the latest one is of them."""
        if self.state.halted or (self.state.latest is not None and self.state.latest.step == self.state.step):
            return self.state
        return self._publish_evaluation(self.state)

    def _publish_evaluation(self, state: RunState) -> RunState:
        evaluation = self.evaluate(state.step)
        if not (np.isfinite(evaluation.probabilities).all() and np.isfinite(evaluation.logit_scale)):
            return self._halt(
                f"at step {state.step} the predictions on the validation images are not finite "
                f"(largest |logit| {format_value(evaluation.logit_scale)})",
                state.seconds_training,
            )
        self.state = dataclasses.replace(state, evaluations=_thin(state.evaluations) + (evaluation,))
        self._last_good = self._checkpoint()
        return self.state

    def _checkpoint(self) -> tuple:
        return (self.state, self.model.get_weights(), [v.numpy() for v in self.optimizer.variables])

    def _restore(self, checkpoint: tuple) -> None:
        state, weights, optimizer_state = checkpoint
        self.model.set_weights(weights)
        for variable, value in zip(self.optimizer.variables, optimizer_state):
            variable.assign(value)
        # The optimizer's variables include the learning rate: keep the one chosen now.
        self.optimizer.learning_rate = self.config.learning_rate
        self.state = state

    def _halt(self, problem: str, seconds_training: float) -> RunState:
        events = self.state.events
        good = self._last_good[0].step
        self._restore(self._last_good)
        # The changes made since the checkpoint stay in effect: they are marked again at the step
        # training goes on from, so the curves still show every change.
        since = events[len(self.state.events):]
        remarked = tuple((good, text if step == good else f"{text} (made at step {step})") for step, text in since)
        latest = f" The latest change was {events[-1][1]} at step {events[-1][0]}." if events else ""
        self.state = dataclasses.replace(
            self.state,
            events=self.state.events + remarked,
            seconds_training=seconds_training,
            halted=(
                f"The run is paused: {problem}.{latest} It is back at step {good}, its last good weights. "
                "Lower the learning rate or change the loss parameters, then press Train to continue, or Reset."
            ),
        )
        return self.state

    def resume(self) -> None:
        """Clear a NaN-guard halt so training can continue (after the user changed something)."""
        self.state = dataclasses.replace(self.state, halted=None)

    def probabilities(self, images: tf.Tensor | np.ndarray) -> np.ndarray:
        return self._predict(tf.convert_to_tensor(images))[0].numpy()

    def evaluate(self, step: int) -> Evaluation:
        probs, scale = (t.numpy() for t in self._predict(self._val_x))
        void = self.data.ignore_index
        confusion = metrics.confusion_matrix(self.data.val_masks, probs.argmax(-1), self.data.num_classes, ignore_index=void)
        class_ab = metrics.class_ab(probs, self.data.val_masks, self.data.num_classes, ignore_index=void)
        return Evaluation(step=step, scores=metrics.scores(confusion), probabilities=probs, class_ab=class_ab, logit_scale=float(scale))


def _softmax_and_scale(logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.nn.softmax(logits, axis=-1), tf.reduce_max(tf.abs(logits))


def format_value(value: float) -> str:
    """A loss or logit for a message: NaN and infinities by name (never "0" or "nan")."""
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _structure(loss: losses.SegLoss) -> tuple:
    """The non-numeric options of a loss: changing them needs a new traced step."""
    return tuple(sorted((k, v) for k, v in loss.params.items() if isinstance(v, bool)))


def _thin(evaluations: tuple[Evaluation, ...]) -> tuple[Evaluation, ...]:
    """Keep old metrics, drop old prediction arrays: only the latest snapshot holds them."""
    if not evaluations:
        return evaluations
    last = evaluations[-1]
    return evaluations[:-1] + (dataclasses.replace(last, probabilities=None),)


def describe_change(old: RunConfig, new: RunConfig) -> str:
    parts = []
    if new.loss_id != old.loss_id:
        parts.append(f"loss {old.loss_id} → {new.loss_id}")
    for key in sorted(set(old.loss_params) | set(new.loss_params)):
        if old.loss_params.get(key) != new.loss_params.get(key):
            parts.append(f"{key} {old.loss_params.get(key)} → {new.loss_params.get(key)}")
    if new.class_weights != old.class_weights:
        parts.append("class weights")
    if new.learning_rate != old.learning_rate:
        parts.append(f"lr {old.learning_rate:g} → {new.learning_rate:g}")
    if new.batch_size != old.batch_size:
        parts.append(f"batch {old.batch_size} → {new.batch_size}")
    return ", ".join(parts) or "changed"
