"""The Traps section: each trap of explorer/traps.py reproduced live, with its fix beside it.

The quick traps are computed when the page first draws them (cached for the server process: they
are deterministic); the ones that train or call model.fit run when their button is pressed, and
their results are cached per set of options. The section is a fragment, so its buttons rerun
only it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from explorer import plots, traps
from explorer.data import Dataset

TAB_NAMES = (
    "Weights per batch",
    "fit(class_weight)",
    "Softmax axis",
    "Accuracy paradox",
    "Averaged over everything",
    "Empty masks",
    "Sigmoid vs softmax",
)


# Cached computations. The dataset is not hashed (leading underscore): its name keys the cache.


@st.cache_resource(show_spinner=False)
def _quick(name: str, _dataset: Dataset, which: str):
    return getattr(traps, which)(_dataset)


@st.cache_resource(show_spinner=False)
def _per_batch(name: str, _dataset: Dataset, loss_id: str, batch_size: int, seed: int):
    return traps.per_batch_weights(_dataset, loss_id=loss_id, batch_size=batch_size, seed=seed)


@st.cache_resource(show_spinner=False)
def _class_weight(name: str, _dataset: Dataset):
    return traps.keras_class_weight(_dataset)


@st.cache_resource(show_spinner=False)
def _axis_training(name: str, _dataset: Dataset):
    return traps.softmax_axis_training(_dataset)


@st.cache_resource(show_spinner=False)
def _sigmoid(name: str, _dataset: Dataset, seed: int):
    return traps.sigmoid_vs_softmax(_dataset, seed=seed)


def show(dataset: Dataset) -> None:
    st.caption(
        "The mistakes people copy from blog posts, each reproduced now with the installed Keras and this "
        "app's losses, and each with its fix beside it."
    )
    st.fragment(_traps)(dataset)


def _traps(dataset: Dataset) -> None:
    tabs = st.tabs(list(TAB_NAMES))
    sections = (_per_batch_tab, _class_weight_tab, _softmax_tab, _paradox_tab, _micro_tab, _empty_tab, _sigmoid_tab)
    for tab, section in zip(tabs, sections):
        with tab:
            section(dataset)


def _masks(masks, dataset: Dataset, captions, width: int = 96) -> None:
    st.image([plots.enlarge(plots.colorize(m, dataset.class_colors)) for m in masks], caption=list(captions), width=width)


def _verdict(outcome: traps.Outcome, dataset: Dataset) -> str:
    collapsed = outcome.collapsed_to
    if collapsed is None:
        return f"no collapse: the largest class takes {100 * outcome.predicted_share.max():.0f} % of the predicted pixels"
    return f"collapsed: '{dataset.class_names[collapsed]}' takes {100 * outcome.predicted_share[collapsed]:.1f} % of the predicted pixels"


def _outcomes(outcomes, dataset: Dataset) -> None:
    columns = st.columns(len(outcomes))
    for column, outcome in zip(columns, outcomes):
        with column:
            st.markdown(f"**{outcome.name}**")
            st.caption(
                f"mean IoU {outcome.mean_iou:.3f} · pixel accuracy {outcome.pixel_accuracy:.3f} · {_verdict(outcome, dataset)}"
            )
            table = pd.DataFrame(
                {"IoU": np.round(outcome.iou, 3), "% predicted": np.round(100 * outcome.predicted_share, 1)},
                index=list(dataset.class_names),
            )
            st.dataframe(table)
            _masks(outcome.predictions, dataset, [f"val {i}" for i in range(len(outcome.predictions))], width=80)
    _masks(dataset.val_masks[: len(outcomes[0].predictions)], dataset, [f"truth {i}" for i in range(len(outcomes[0].predictions))], width=80)


# -- 1 ------------------------------------------------------------------------------------------


def _per_batch_tab(dataset: Dataset) -> None:
    st.markdown(
        "Inverse-frequency weights **computed from each batch**: a class that the batch lacks gets "
        "`pixels / ε`, an enormous weight, and the weights jump from batch to batch. "
        "**The fix:** count the pixels once over the whole training set."
    )
    left, middle, right, button = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    loss_id = left.selectbox(
        "Weights drive", traps.PER_BATCH_LOSSES, key="trap_batch_loss", persist_state="page",
        format_func=lambda i: {"dice": "Dice (class mean Σw·L/Σw)", "weighted_ce": "weighted cross-entropy"}[i],
    )
    batch_size = middle.selectbox("Batch size", (1, 2, 4, 8), index=1, key="trap_batch_size", persist_state="page")
    seed = right.number_input("Seed", 0, 99, 0, key="trap_batch_seed", persist_state="page")
    if button.button("Reproduce", key="trap_batch_run", icon=":material/play_arrow:"):
        st.session_state.trap_batch_args = (loss_id, int(batch_size), int(seed))
    args = st.session_state.get("trap_batch_args")
    if args is None:
        st.caption("Trains a small U-Net twice for 80 steps from the same weights on the same batches: a few seconds.")
        return
    with st.spinner("Training twice: weights from each batch, then from the dataset…", show_time=True):
        result = _per_batch(dataset.name, dataset, *args)
    st.caption(f"Shown: {result.loss_id}, batch size {result.batch_size}, seed {args[2]}, {result.steps} steps.")
    a, b, c = st.columns(3)
    a.metric("Largest weight from a batch", f"{result.largest_weight:.3g}", help="the same formula over the dataset gives at most "
             f"{result.dataset_weights.max():.3g}")
    b.metric("Batches lacking a class", f"{result.batches_missing_a_class} of {result.steps}")
    c.metric("Share of Σw the missing class takes", f"{100 * result.absent_share:.7f} %" if np.isfinite(result.absent_share) else "–",
             help="in a batch that lacks a class: in a weighted class mean (Dice) that batch then trains on that class alone")
    st.plotly_chart(_weights_figure(result, dataset), key="trap_batch_weights")
    st.markdown(
        "In weighted cross-entropy a class's weight multiplies only its own pixels, so the enormous weight of a "
        "missing class multiplies zero: what remains is the jumping weights of the classes present. In a weighted "
        "class mean (Dice) the missing class takes the whole batch."
    )
    _outcomes(result.outcomes, dataset)


def _weights_figure(result: traps.PerBatchWeights, dataset: Dataset) -> go.Figure:
    fig = go.Figure()
    steps = np.arange(1, result.steps + 1)
    for c, (name, color) in enumerate(zip(dataset.class_names, dataset.class_colors)):
        fig.add_trace(go.Scatter(x=steps, y=result.batch_weights[:, c], mode="lines+markers", name=f"{name}, per batch",
                                 line=dict(color=color, width=1), marker=dict(size=4)))
        fig.add_trace(go.Scatter(x=[steps[0], steps[-1]], y=[result.dataset_weights[c]] * 2, mode="lines",
                                 name=f"{name}, dataset", line=dict(color=color, dash="dash")))
    fig.update_yaxes(type="log", title="weight (log)")
    fig.update_xaxes(title="training step")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title="Inverse-frequency weights: each batch (solid) and the dataset (dashed)")
    return fig


# -- 2 ------------------------------------------------------------------------------------------


def _class_weight_tab(dataset: Dataset) -> None:
    st.markdown(
        "`model.fit(x, masks, class_weight={...})` is the advice for imbalance; with masks it fails. "
        "**The fixes:** a per-pixel `sample_weight = w[masks]` of shape (N, H, W), or a weighted loss."
    )
    if st.button("Run model.fit with class_weight", key="trap_fit_run", icon=":material/play_arrow:"):
        st.session_state.trap_fit_done = True
    if not st.session_state.get("trap_fit_done"):
        st.caption("Calls the installed Keras's model.fit on a tiny model and 8 toy images: a few seconds.")
        return
    with st.spinner("Calling model.fit four times…", show_time=True):
        result = _class_weight(dataset.name, dataset)
    st.caption(f"Keras {result.keras_version}; class_weight = {result.class_weight} (balanced, counted over the dataset).")
    for attempt in result.attempts:
        if attempt.ok:
            st.markdown(f":material/check_circle: `{attempt.what}` — trains; loss after one epoch {attempt.loss:.4f}")
        else:
            st.markdown(f":material/cancel: `{attempt.what}` — raises")
            st.code(f"{attempt.error_type}: {attempt.error_message}\n  raised in {attempt.raised_in}", language="text")
    st.markdown(
        f"The two fixes are the same loss: on one model's predictions, `CategoricalCrossentropy` with "
        f"`sample_weight=w[masks]` gives **{result.sample_weight_loss:.6f}** and our `weighted_ce` gives "
        f"**{result.weighted_loss:.6f}**."
    )


# -- 3 ------------------------------------------------------------------------------------------


def _softmax_tab(dataset: Dataset) -> None:
    st.markdown(
        "A model that is **perfect** (logits 4·one-hot of the truth), read three ways. Channels-first logits "
        "(B, C, H, W) with `softmax(axis=-1)` normalise over the image width; a `reshape` to channels last "
        "(instead of a transpose) scrambles classes and pixels. **The fix:** softmax over the class axis — "
        "transpose to channels last first, or `softmax(axis=1)` on channels-first data."
    )
    result = _quick(dataset.name, dataset, "softmax_axis")
    table = pd.DataFrame(
        {
            "Σ over classes (min – max)": [f"{lo:.3f} – {hi:.3f}" for lo, hi in result.class_sums],
            "pixel accuracy": np.round(result.pixel_accuracy, 3),
            "mean IoU": np.round(result.mean_iou, 3),
            "cross-entropy": np.round(result.ce, 4),
        },
        index=list(result.variants),
    )
    st.dataframe(table)
    _masks((result.truth,) + result.predictions, dataset, ["truth", "right axis", "softmax over width", "reshaped"], width=110)
    st.markdown(
        "A perfect model read over the wrong axis still points at the right class here, but its \"probabilities\" "
        "are not probabilities and its loss is wrong. **What a model trained that way outputs:** channels-first code "
        "`softmax(axis=1)` on channels-last data normalises over the image height."
    )
    if st.button("Train with the wrong axis", key="trap_axis_run", icon=":material/play_arrow:"):
        st.session_state.trap_axis_done = True
    if not st.session_state.get("trap_axis_done"):
        st.caption("Trains a small U-Net twice for 80 steps (wrong axis, right axis) from the same weights on the same batches.")
        return
    with st.spinner("Training twice: softmax over the height, then over the classes…", show_time=True):
        trained = _axis_training(dataset.name, dataset)
    table = pd.DataFrame(
        {
            "Σ over classes (5th – 95th percentile)": [f"{o.sum_range[0]:.3f} – {o.sum_range[1]:.3f}" for o in trained.outcomes],
            "% pixels with no class > 0.5": [round(100 * o.no_class, 2) for o in trained.outcomes],
        },
        index=[o.name for o in trained.outcomes],
    )
    st.dataframe(table)
    _outcomes(trained.outcomes, dataset)


# -- 4 ------------------------------------------------------------------------------------------


def _paradox_tab(dataset: Dataset) -> None:
    st.markdown(
        "On imbalanced data pixel accuracy rewards doing nothing. **The fix:** judge by per-class IoU (or Dice) "
        "and their mean."
    )
    result = _quick(dataset.name, dataset, "accuracy_paradox")
    table = pd.DataFrame(
        {"pixel accuracy": np.round(result.pixel_accuracy, 3), "mean IoU": np.round(result.mean_iou, 3)},
        index=list(result.predictors),
    )
    for c, name in enumerate(dataset.class_names):
        table[f"IoU {name}"] = [round(float(iou[c]), 3) for iou in result.iou]
    st.dataframe(table)
    _masks((dataset.val_masks[result.image],) + result.examples, dataset, ("truth",) + result.predictors, width=110)


# -- 5 ------------------------------------------------------------------------------------------


def _micro_tab(dataset: Dataset) -> None:
    st.markdown(
        "Keras's `Dice()` and `Tversky()` sum over **every** axis by default (`axis=None`), classes included. "
        "With softmax outputs and one-hot targets ΣFP = ΣFN there, so swapping α and β changes nothing and Dice "
        "equals 1 − mean(p_true). **The fix:** ratios per image and class (Keras `axis=(1, 2)`, or ours)."
    )
    result = _quick(dataset.name, dataset, "micro_averaging")
    st.caption(result.description)
    table = pd.DataFrame(
        {"α = 0.3, β = 0.7": [r[1] for r in result.rows], "α = 0.7, β = 0.3": [r[2] for r in result.rows]},
        index=[r[0] for r in result.rows],
    ).round(6)
    st.dataframe(table)
    a, b, c, d = st.columns(4)
    a.metric("1 − mean(p_true)", f"{result.one_minus_mean_p_true:.4f}")
    b.metric("keras Dice(), axis=None", f"{result.keras_dice_global:.4f}")
    c.metric("keras Dice(axis=(1, 2))", f"{result.keras_dice_per_class:.4f}")
    d.metric("our dice", f"{result.ours_dice:.4f}")
    st.caption(
        "Our per-class Dice loss (mean over images): "
        + " · ".join(f"{name} {v:.3f}" for name, v in zip(dataset.class_names, result.per_class_dice))
        + ". Note Keras's Tversky with (α, β) gives our value with (β, α): its code puts α on the false negatives."
    )


# -- 6 ------------------------------------------------------------------------------------------


def _empty_tab(dataset: Dataset) -> None:
    st.markdown(
        "A class absent from an image, and a prediction that rightly says so. Without a smoothing term in the "
        "numerator the Dice ratio is 0/0 or 0/ε: NaN, or loss 1 for a perfect answer. **The fix:** add s to "
        "numerator and denominator."
    )
    result = _quick(dataset.name, dataset, "empty_masks")
    st.caption(f"The '{result.class_name}' channel of validation image {result.image}, which has no {result.class_name}.")
    table = pd.DataFrame(
        {
            "perfect prediction (p = 0 everywhere)": [r[1] for r in result.rows],
            "p = 0.01 everywhere": [r[2] for r in result.rows],
        },
        index=[r[0] for r in result.rows],
    )
    st.dataframe(table.map(lambda v: "NaN" if np.isnan(v) else f"{v:.6f}"))


# -- 7 ------------------------------------------------------------------------------------------


def _sigmoid_tab(dataset: Dataset) -> None:
    st.markdown(
        "One sigmoid per class treats the classes as independent yes/no questions, each one as imbalanced as its "
        "class: nothing makes them sum to 1, so a pixel may get no class or several. **The fix** for mutually "
        "exclusive classes: softmax cross-entropy."
    )
    left, button = st.columns([1, 4], vertical_alignment="bottom")
    seed = left.number_input("Seed", 0, 99, 0, key="trap_sigmoid_seed", persist_state="page")
    if button.button("Reproduce", key="trap_sigmoid_run", icon=":material/play_arrow:"):
        st.session_state.trap_sigmoid_args = (int(seed),)
    args = st.session_state.get("trap_sigmoid_args")
    if args is None:
        st.caption("Trains a small U-Net twice for 80 steps (bce, then ce) from the same weights on the same batches.")
        return
    with st.spinner("Training twice: sigmoid, then softmax…", show_time=True):
        result = _sigmoid(dataset.name, dataset, *args)
    table = pd.DataFrame(
        {
            "Σ_c p per pixel (5th – 95th percentile)": [f"{o.sum_range[0]:.3f} – {o.sum_range[1]:.3f}" for o in result.outcomes],
            "% pixels with no class > 0.5": [round(100 * o.no_class, 2) for o in result.outcomes],
            "% pixels with several > 0.5": [round(100 * o.several_classes, 2) for o in result.outcomes],
        },
        index=[o.name for o in result.outcomes],
    )
    st.dataframe(table)
    _outcomes(result.outcomes, dataset)
