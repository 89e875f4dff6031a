"""The sidebar: shared training settings and each run's loss, parameters and class weights.
Every control is built from the registries in explorer.loss_registry and explorer.weights; no
TensorFlow here, so a fresh server's first page shows the sidebar while TensorFlow loads."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from explorer import loss_registry, weights
from explorer.data import Dataset
from explorer.export import RUN_LABELS
from explorer.run_config import DEFAULT_NORMALIZATION, NORMALIZATIONS, RunConfig

DEFAULT_LOSSES = {"A": "ce", "B": "focal_tversky", "C": "weighted_ce"}
DEFAULT_SCHEME = "balanced"

# The widgets' options and ranges, shared with explorer/ui/link.py (which fills these widgets from
# a link and must offer them only values they accept).
NUM_RUNS = (1, 2, 3)
DEFAULT_NUM_RUNS = 2
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 1.0, 10.0)
DEFAULT_LEARNING_RATE = 1e-3
BATCH_SIZES = (4, 8, 16, 32)
DEFAULT_BATCH_SIZE = 16
SEED_RANGE = (0, 10_000)
MAX_STEPS_RANGE = (10, 20_000)
DEFAULT_MAX_STEPS = 600
STEPS_PER_TICK_RANGE = (1, 20)
DEFAULT_STEPS_PER_TICK = 5
EVALUATE_EVERY_RANGE = (5, 100)
DEFAULT_EVALUATE_EVERY = 20
WEIGHT_RANGE = (0.0, 1e4)

# The widget keys: one definition, used here and by explorer/ui/link.py.
SHARED_KEYS = {
    "num_runs": "num_runs",
    "learning_rate": "lr",
    "batch_size": "batch_size",
    "seed": "seed",
    "normalization": "normalization",
    "max_steps": "max_steps",
    "steps_per_tick": "steps_per_tick",
    "evaluate_every": "evaluate_every",
}


def loss_key(label: str) -> str:
    return f"{label}_loss"


def param_key(label: str, loss_id: str, param: str) -> str:
    return f"{label}_{loss_id}_{param}"


def batch_key(label: str, loss_id: str) -> str:
    return f"{label}_{loss_id}_batch"


def background_key(label: str, loss_id: str) -> str:
    return f"{label}_{loss_id}_bg"


def scheme_key(label: str) -> str:
    return f"{label}_scheme"


def weight_key(label: str, scheme: str, class_index: int, counts: weights.ClassCounts) -> str:
    """The class weight box's key. The scheme is part of it, so switching scheme refills the boxes
    with that scheme's weights; so are the class counts the weights come from, so another dataset
    (an upload) gets its own boxes instead of keeping the old dataset's weights."""
    token = hashlib.sha1(np.ascontiguousarray(counts.pixels, dtype=np.int64).tobytes()).hexdigest()[:10]
    return f"{label}_{scheme}_w{class_index}_{token}"


@dataclass(frozen=True)
class TrainingSettings:
    max_steps: int
    steps_per_tick: int
    evaluate_every: int


def settings(dataset: Dataset, counts: weights.ClassCounts) -> tuple[dict[str, RunConfig], TrainingSettings]:
    with st.sidebar:
        st.header("Training")
        keys = SHARED_KEYS
        num_runs = st.radio("Runs side by side", NUM_RUNS, index=NUM_RUNS.index(DEFAULT_NUM_RUNS), horizontal=True, key=keys["num_runs"])
        learning_rate = st.select_slider("Learning rate (Adam)", LEARNING_RATES, value=DEFAULT_LEARNING_RATE, key=keys["learning_rate"], format_func=lambda v: f"{v:g}")
        batch_size = st.select_slider("Batch size", BATCH_SIZES, value=DEFAULT_BATCH_SIZE, key=keys["batch_size"])
        seed = st.number_input("Seed (initial weights and batch order)", *SEED_RANGE, SEED_RANGE[0], key=keys["seed"])
        normalization = st.selectbox(
            "Normalization in the U-Net",
            list(NORMALIZATIONS),
            index=list(NORMALIZATIONS).index(DEFAULT_NORMALIZATION),
            format_func=NORMALIZATIONS.get,
            key=keys["normalization"],
            help="Changing it restarts the runs. Without normalization, Dice and focal Tversky drive the logits up by decades until the run ends in NaN or predicts the background everywhere (which of the two depends on the CPU's rounding): watch the largest |logit| curve.",
        )
        max_steps = st.number_input("Train until step", *MAX_STEPS_RANGE, DEFAULT_MAX_STEPS, step=50, key=keys["max_steps"])
        steps_per_tick = st.slider(
            "Steps per round", *STEPS_PER_TICK_RANGE, DEFAULT_STEPS_PER_TICK, key=keys["steps_per_tick"],
            help="Training goes in rounds of this many steps; Pause and the sidebar's changes take effect between two rounds. Step trains one round.",
        )
        evaluate_every = st.slider("Validate (metrics and maps) every", *EVALUATE_EVERY_RANGE, DEFAULT_EVALUATE_EVERY, 5, key=keys["evaluate_every"], help="steps; the validation pass over 100 images costs about as much as 5 training steps")
        shared = dict(learning_rate=float(learning_rate), batch_size=int(batch_size), seed=int(seed), normalization=normalization)
        configs = {}
        for label in RUN_LABELS[:num_runs]:
            with st.expander(f"Run {label}", expanded=True):
                configs[label] = _run_config(label, dataset, counts, shared)
    return configs, TrainingSettings(max_steps=int(max_steps), steps_per_tick=int(steps_per_tick), evaluate_every=int(evaluate_every))


def _run_config(label: str, dataset: Dataset, counts: weights.ClassCounts, shared: dict) -> RunConfig:
    ids = list(loss_registry.REGISTRY)
    loss_id = st.selectbox(
        "Loss",
        ids,
        index=ids.index(DEFAULT_LOSSES[label]),
        format_func=lambda i: loss_registry.REGISTRY[i].name,
        key=loss_key(label),
    )
    spec = loss_registry.REGISTRY[loss_id]
    params = {}
    for p in spec.params:
        params[p.name] = st.slider(p.name, float(p.min), float(p.max), float(p.default), float(p.step), format="%.3g", help=p.help, key=param_key(label, loss_id, p.name))
    if spec.kind == "region":
        params["batch"] = st.checkbox("Pool counts over the batch", False, key=batch_key(label, loss_id), help="batch=True: one ratio per class over the whole batch instead of per image.")
        params["include_background"] = st.checkbox("Include background", True, key=background_key(label, loss_id), help="include_background=False drops class 0 from the mean.")
    class_weights = None
    if spec.uses_class_weights:
        class_weights = _class_weights(label, dataset, counts)
    config = RunConfig(loss_id=loss_id, loss_params=params, class_weights=class_weights, **shared)
    if spec.uses_class_weights:
        config = _refuse_weights_that_count_no_class(label, config, dataset, shared)
    return config


def _refuse_weights_that_count_no_class(label: str, config: RunConfig, dataset: Dataset, shared: dict) -> RunConfig:
    """The boxes allow 0 for every class; a weighted mean over classes with no positive weight is
    undefined, so losses.py refuses such weights. Say so beside the boxes and keep the run on its
    last valid set-up (uniform weights if it never had one) with the shared settings of now."""
    include_background = config.loss_params.get("include_background", True)
    last_valid_key = f"_{label}_last_valid_config"
    try:
        loss_registry.check_class_weights(config.loss_id, config.class_weights, include_background)
    except ValueError:
        what = "Give at least one class a weight above 0." if include_background else (
            f"Give a class other than {dataset.class_names[0]} a weight above 0, or tick Include background."
        )
        last = st.session_state.get(last_valid_key)
        if last is not None and len(last.class_weights) != dataset.num_classes:
            last = None  # of another dataset (an upload with other classes)
        kept = "its last valid set-up" if last is not None else "uniform class weights"
        st.error(f"No class the loss counts has a weight above 0. {what} Until then run {label} trains with {kept}.")
        return dataclasses.replace(last, **shared) if last is not None else dataclasses.replace(config, class_weights=None)
    st.session_state[last_valid_key] = config
    return config


def _class_weights(label: str, dataset: Dataset, counts: weights.ClassCounts) -> tuple[float, ...]:
    schemes = [s for s, spec in weights.SCHEMES.items() if spec.dataset_level]
    scheme = st.selectbox(
        "Class weights",
        schemes,
        index=schemes.index(DEFAULT_SCHEME),
        format_func=lambda s: weights.SCHEMES[s].name,
        key=scheme_key(label),
        help="Counted over the whole training set.",
    )
    result = weights.class_weights(counts, scheme, class_names=dataset.class_names)
    for warning in result.warnings:
        st.warning(warning)
    chosen = []
    for c, name in enumerate(dataset.class_names):
        chosen.append(
            st.number_input(name, *WEIGHT_RANGE, float(np.round(result.weights[c], 4)), format="%.4f", key=weight_key(label, scheme, c, counts))
        )
    return tuple(float(w) for w in chosen)
