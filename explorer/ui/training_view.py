"""Train / Pause / Step / Reset, and the live part of the page: a fragment that reads the latest
snapshot of the session's training worker (explorer.live) and draws the curves and the per-class
maps of a chosen validation image. The page never trains: the worker does, beside it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer import metrics, plots
from explorer.data import Dataset
from explorer.live import Schedule, Snapshot
from explorer.ui import capacity, session
from explorer.ui.dataset_view import enlarge
from explorer.ui.sidebar import TrainingSettings

REDRAW_SECONDS = 0.33  # the fragment redraws this often while the worker works, however fast it trains


def controls(settings: TrainingSettings) -> None:
    trainer = session.trainer()
    trainer.set_schedule(Schedule(settings.max_steps, settings.steps_per_tick, settings.evaluate_every))
    training = trainer.snapshot().training
    start, step, reset, _ = st.columns([1, 1, 1, 5])
    if training:
        start.button("Pause", icon=":material/pause:", key="pause", on_click=trainer.pause, width="stretch")
    else:
        start.button("Train", icon=":material/play_arrow:", key="train", type="primary", on_click=trainer.train, width="stretch")
    step.button(f"Step +{settings.steps_per_tick}", icon=":material/skip_next:", key="step", on_click=trainer.step, args=(settings.steps_per_tick,), disabled=training, width="stretch")
    reset.button("Reset", icon=":material/restart_alt:", key="reset", on_click=trainer.reset, width="stretch")


def live(dataset: Dataset, settings: TrainingSettings) -> None:
    # Outside the fragment: moving it reruns the page, so the surfaces' per-pixel maps of the
    # same image follow.
    image_index = st.slider("Validation image", 0, len(dataset.val_images) - 1, 0, key="val_image")
    active = session.trainer().snapshot().active
    st.fragment(_live, run_every=REDRAW_SECONDS if active else None)(dataset, settings, image_index, active)


def _live(dataset: Dataset, settings: TrainingSettings, image_index: int, drawn_active: bool) -> None:
    snapshot = session.trainer().snapshot()
    if snapshot.place:
        st.info(
            f"The server is busy: {capacity.MAX_TRAINING_SESSIONS} sessions are training. Yours waits "
            f"(place {snapshot.place} in the queue) and starts by itself when one pauses or finishes.",
            icon=":material/hourglass_top:",
        )
    if snapshot.error:
        st.error(snapshot.error)
    _progress(snapshot, dataset, settings)
    st.plotly_chart(plots.training_curves(dict(snapshot.states), dataset.class_names, dataset.class_colors), key="curves")
    _maps(snapshot, dataset, image_index)
    if drawn_active and not snapshot.active:
        st.rerun()  # the worker stopped (paused, finished, failed): the whole page, so the Train button comes back


def _all_background_caption(dataset: Dataset) -> str:
    """The accuracy paradox, measured: what predicting background everywhere would score."""
    masks = dataset.val_masks
    confusion = metrics.confusion_matrix(masks, np.zeros_like(masks), dataset.num_classes)
    baseline = metrics.scores(confusion)
    return (
        f"For scale: predicting background everywhere scores pixel accuracy {baseline.pixel_accuracy:.3f} "
        f"but mean IoU {baseline.mean_iou:.3f} on this validation set."
    )


def _progress(snapshot: Snapshot, dataset: Dataset, settings: TrainingSettings) -> None:
    states = snapshot.states.values()
    step = snapshot.step
    seconds = sum(s.seconds_training for s in states)
    total = sum(s.step for s in states)
    rate = f" · {total / seconds:.0f} steps/s over all runs" if seconds else ""
    st.progress(min(step / settings.max_steps, 1.0), text=f"Step {step} of {settings.max_steps}{rate}")
    st.caption(_all_background_caption(dataset))
    for label, state in snapshot.states.items():
        if state.halted:
            st.error(f"Run {label}: {state.halted}")


def _maps(snapshot: Snapshot, dataset: Dataset, image_index: int) -> None:
    truth = dataset.val_masks[image_index]
    image = (np.clip(dataset.val_images[image_index], 0, 1) * 255).astype(np.uint8)
    columns = st.columns(max(len(snapshot.states), 1))
    for column, (label, state) in zip(columns, snapshot.states.items()):
        latest = state.latest
        with column:
            st.subheader(f"Run {label}: {snapshot.loss_ids[label]}")
            if latest is None or latest.probabilities is None:
                st.info("No validation snapshot yet: press Train or Step.")
                continue
            scores = latest.scores
            st.caption(f"step {latest.step} · mean IoU {scores.mean_iou:.3f} · pixel accuracy {scores.pixel_accuracy:.3f}")
            probabilities = latest.probabilities[image_index]
            prediction = probabilities.argmax(-1)
            st.image(
                [enlarge(image), enlarge(plots.colorize(truth, dataset.class_colors)), enlarge(plots.colorize(prediction, dataset.class_colors))],
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
    st.caption("Per-class outcome maps: " + " · ".join(f"{outcome}: {colour}" for outcome, colour in zip(plots.OUTCOME_COLORS, ("green", "red", "blue", "light grey"))))


def metrics_table(scores, class_names) -> pd.DataFrame:
    return pd.DataFrame(
        {"IoU": scores.iou, "Dice": scores.dice, "precision": scores.precision, "recall": scores.recall},
        index=list(class_names),
    ).round(3)
