"""Train / Pause / Step / Reset, and the live part of the page: a fragment that trains every run a
few steps per tick and redraws the curves and the per-class maps of a chosen validation image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer import metrics, plots
from explorer.data import Dataset
from explorer.training import Run
from explorer.ui import capacity, session
from explorer.ui.dataset_view import enlarge
from explorer.ui.sidebar import TrainingSettings

TICK_SECONDS = 0.25  # the fragment reruns this often while training; a tick is a few steps


def controls(settings: TrainingSettings) -> None:
    training = st.session_state.setdefault("training", False)
    start, step, reset, _ = st.columns([1, 1, 1, 5])
    if training:
        start.button("Pause", icon=":material/pause:", key="pause", on_click=_pause, width="stretch")
    else:
        start.button("Train", icon=":material/play_arrow:", key="train", type="primary", on_click=_start, width="stretch")
    step.button(f"Step +{settings.steps_per_tick}", icon=":material/skip_next:", key="step", on_click=_request_steps, args=(settings.steps_per_tick,), disabled=training, width="stretch")
    reset.button("Reset", icon=":material/restart_alt:", key="reset", on_click=_reset, width="stretch")


def _each_run(action) -> None:
    """``action(run)`` for every run of the session, under the session's lock."""
    with session.runs_lock():
        for run in session.runs().values():
            action(run)


def _pause() -> None:
    st.session_state.training = False
    capacity.slots().release(capacity.session_id())
    _each_run(Run.snapshot)


def _start() -> None:
    _each_run(Run.resume)  # a run the NaN guard paused continues, with whatever the user changed
    st.session_state.training = True


def _request_steps(steps: int) -> None:
    st.session_state.pending_steps = steps


def _reset() -> None:
    st.session_state.pop("pending_steps", None)
    _each_run(Run.reset)
    st.session_state.training = False
    capacity.slots().release(capacity.session_id())


def live(dataset: Dataset, settings: TrainingSettings) -> None:
    training = st.session_state.get("training", False)
    # Step asks for a training slot like Train: a session that has to wait ticks until it gets one.
    waiting = bool(st.session_state.get("pending_steps")) and capacity.slots().acquire(capacity.session_id()) > 0
    # Outside the fragment: moving it reruns the page, so the surfaces' per-pixel maps of the
    # same image follow (a full rerun trains nothing; it waits at most for a tick in flight).
    image_index = st.slider("Validation image", 0, len(dataset.val_images) - 1, 0, key="val_image")
    st.fragment(_live, run_every=TICK_SECONDS if training or waiting else None)(dataset, settings, image_index)


def _live(dataset: Dataset, settings: TrainingSettings, image_index: int) -> None:
    runs = session.runs()
    training = st.session_state.get("training", False)
    full_run = session.is_full_run()
    pending = st.session_state.get("pending_steps", 0)
    status = st.empty()  # one fixed slot for the compile spinner and the busy message: nothing below moves
    # Only the fragment's own reruns train ticks, so a full rerun (a button, a slider) finishes at
    # once; the steps of a Step click train in the run it causes. The slot is asked for before
    # drawing, so a waiting session's message is back in its place at once instead of blinking
    # out while the tick redraws.
    slots, session_id = capacity.slots(), capacity.session_id()
    place = None
    if pending or (training and not full_run):
        place = slots.acquire(session_id)
        if place:
            status.info(
                f"The server is busy: {slots.size} sessions are training. Yours waits (place {place} in the "
                "queue) and starts by itself when one pauses or finishes.",
                icon=":material/hourglass_top:",
            )
    if pending and place == 0:
        del st.session_state["pending_steps"]
        with slots.training(session_id):
            _advance(status, runs, pending, settings.max_steps, evaluate_every=1)
        if not training:
            slots.release(session_id)  # the steps are done: the slot goes to the next session
            if not full_run:
                st.rerun()  # the page, so this fragment stops ticking for a slot

    _progress(runs, dataset, settings)
    st.plotly_chart(
        plots.training_curves({label: run.state for label, run in runs.items()}, dataset.class_names, dataset.class_colors),
        key="curves",
    )
    _maps(runs, dataset, image_index)

    # The tick trains after drawing: the page is fresh while it trains (Streamlit fades what a
    # running fragment has not redrawn yet) and the next tick draws the result.
    if training and not full_run and place == 0:
        with slots.training(session_id):
            _advance(status, runs, settings.steps_per_tick, settings.max_steps, settings.evaluate_every)
        if all(r.state.halted or r.state.step >= settings.max_steps for r in runs.values()):
            _pause()
            st.rerun()  # the whole page, so the Train button comes back


def _advance(status, runs: dict[str, Run], steps: int, max_steps: int, evaluate_every: int) -> None:
    lock = session.runs_lock()  # a rerun started meanwhile waits for the tick (session.runs_lock)
    if any(r.state.step == 0 for r in runs.values()):
        with status, st.spinner("Compiling the training step (first steps only)…", show_time=True), lock:
            _advance_all(runs, steps, max_steps, evaluate_every)
    else:
        with lock:
            _advance_all(runs, steps, max_steps, evaluate_every)


def _advance_all(runs: dict[str, Run], steps: int, max_steps: int, evaluate_every: int) -> None:
    """Bring every run to one target step: side-by-side runs stay at the same step even if a
    rerun cut a tick short between two of them."""
    active = [r for r in runs.values() if not r.state.halted]
    if not active:
        return
    target = min(min(r.state.step for r in active) + steps, max_steps)
    for run in active:
        if run.state.step < target:
            run.advance(target - run.state.step, evaluate_every)


def _all_background_caption(dataset: Dataset) -> str:
    """The accuracy paradox, measured: what predicting background everywhere would score."""
    masks = dataset.val_masks
    confusion = metrics.confusion_matrix(masks, np.zeros_like(masks), dataset.num_classes, dataset.ignore_index)
    baseline = metrics.scores(confusion)
    return (
        f"For scale: predicting background everywhere scores pixel accuracy {baseline.pixel_accuracy:.3f} "
        f"but mean IoU {baseline.mean_iou:.3f} on this validation set."
    )


def _progress(runs: dict[str, Run], dataset: Dataset, settings: TrainingSettings) -> None:
    step = min(r.state.step for r in runs.values())
    seconds = sum(r.state.seconds_training for r in runs.values())
    total = sum(r.state.step for r in runs.values())
    rate = f" · {total / seconds:.0f} steps/s over all runs" if seconds else ""
    st.progress(min(step / settings.max_steps, 1.0), text=f"Step {step} of {settings.max_steps}{rate}")
    st.caption(_all_background_caption(dataset))
    for label, run in runs.items():
        if run.state.halted:
            st.error(f"Run {label}: {run.state.halted}")


def _maps(runs: dict[str, Run], dataset: Dataset, image_index: int) -> None:
    truth = dataset.val_masks[image_index]
    image = (np.clip(dataset.val_images[image_index], 0, 1) * 255).astype(np.uint8)
    columns = st.columns(len(runs))
    for column, (label, run) in zip(columns, runs.items()):
        latest = run.state.latest
        with column:
            st.subheader(f"Run {label}: {run.loss.loss_id}")
            if latest is None or latest.probabilities is None:
                st.info("No validation snapshot yet: press Train or Step.")
                continue
            scores = latest.scores
            st.caption(f"step {latest.step} · mean IoU {scores.mean_iou:.3f} · pixel accuracy {scores.pixel_accuracy:.3f}")
            probabilities = latest.probabilities[image_index]
            prediction = probabilities.argmax(-1)
            st.image(
                [enlarge(image), enlarge(plots.colorize(truth, dataset.class_colors, dataset.ignore_index)), enlarge(plots.colorize(prediction, dataset.class_colors))],
                caption=["image", "truth", "prediction"],
                width=120,
            )
            st.plotly_chart(plots.probability_maps(probabilities, dataset.class_names, "Probability per class"), key=f"probs_{label}")
            st.image(
                [enlarge(plots.outcome_map(truth, prediction, c)) for c in range(dataset.num_classes)],
                caption=list(dataset.class_names),
                width=90,
            )
            with st.expander("Validation metrics per class"):
                st.dataframe(metrics_table(scores, dataset.class_names))
                st.plotly_chart(plots.confusion_heatmap(scores.normalized_confusion, dataset.class_names, "Confusion (rows: truth)"), key=f"confusion_{label}")
    shrunk = f" Probability heatmaps wider than {plots.HEATMAP_SIDE} pixels show each block's largest value." if max(truth.shape) > plots.HEATMAP_SIDE else ""
    st.caption("Per-class outcome maps: " + " · ".join(f"{outcome}: {colour}" for outcome, colour in zip(plots.OUTCOME_COLORS, ("green", "red", "blue", "light grey"))) + shrunk)


def metrics_table(scores, class_names) -> pd.DataFrame:
    return pd.DataFrame(
        {"IoU": scores.iou, "Dice": scores.dice, "precision": scores.precision, "recall": scores.recall},
        index=list(class_names),
    ).round(3)
