"""Train / Pause / Step / Reset, and the live part of the page: the session's worker
(explorer/live.py) trains the runs, and a fragment redraws their curves and the per-class maps of
a chosen validation image on a timer while it does."""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from explorer import metrics, plots
from explorer.data import Dataset
from explorer.live import Plan
from explorer.training import Run
from explorer.ui import capacity, session
from explorer.ui.dataset_view import enlarge
from explorer.ui.sidebar import TrainingSettings

TRACE_AHEAD_VARIABLE = "EXPLORER_TRACE_AHEAD"
REDRAW_SECONDS = 1.0  # the page redraws the runs this often while the worker trains them
STEP_WAIT_SECONDS = 120  # the run after a Step click waits this long for its steps (the first traces the step)


def _plan(settings: TrainingSettings) -> Plan:
    return Plan(settings.max_steps, settings.steps_per_tick, settings.evaluate_every)


def controls(settings: TrainingSettings) -> None:
    worker = session.worker()
    start, step, reset, _ = st.columns([1, 1, 1, 5])
    if worker.training:
        start.button("Pause", icon=":material/pause:", key="pause", on_click=_pause, width="stretch")
    else:
        start.button("Train", icon=":material/play_arrow:", key="train", type="primary", on_click=_start, args=(settings,), width="stretch")
    step.button(f"Step +{settings.steps_per_tick}", icon=":material/skip_next:", key="step", on_click=_step, args=(settings,), disabled=worker.training, width="stretch")
    reset.button("Reset", icon=":material/restart_alt:", key="reset", on_click=_reset, width="stretch")


def _each_run(action) -> None:
    """``action(run)`` for every run of the session, under the session's lock: after the worker's
    round in progress, before its next."""
    with session.runs_lock():
        for run in session.runs().values():
            action(run)


def _pause() -> None:
    session.worker().pause()
    _each_run(Run.snapshot)  # the maps of the step it stopped at


def _start(settings: TrainingSettings) -> None:
    _each_run(Run.resume)  # a run the NaN guard paused continues, with whatever the user changed
    session.worker().train(_plan(settings))


def _step(settings: TrainingSettings) -> None:
    session.worker().step(settings.steps_per_tick, _plan(settings))
    st.session_state.stepped = True


def _reset() -> None:
    session.worker().pause()
    _each_run(Run.reset)


def live(dataset: Dataset, settings: TrainingSettings) -> None:
    worker = session.worker()
    worker.replan(_plan(settings))
    if st.session_state.pop("stepped", False):
        # A Step is short: its result shows in this very run, unless the session waits for a slot.
        with st.spinner(f"Training {settings.steps_per_tick} steps…", show_time=True):
            worker.wait_for_steps(STEP_WAIT_SECONDS)
    # Outside the fragment: moving it reruns the page, so the surfaces' per-pixel maps of the
    # same image follow.
    image_index = st.slider("Validation image", 0, len(dataset.val_images) - 1, 0, key="val_image")
    st.fragment(_live, run_every=REDRAW_SECONDS if worker.busy else None)(dataset, settings, image_index)


def warm_up() -> None:
    """Called at the end of the page: the runs' train steps are traced in the background while the
    user reads it, so Train starts training at once. EXPLORER_TRACE_AHEAD=0 turns it off (the test
    suite's in-process pages, which mostly never train: each trace costs seconds of CPU)."""
    if os.environ.get(TRACE_AHEAD_VARIABLE, "1").strip() != "0":
        session.worker().warm_up()


def _live(dataset: Dataset, settings: TrainingSettings, image_index: int) -> None:
    """Draws the runs' latest states; the worker trains them meanwhile."""
    worker = session.worker()
    worker.seen()
    full_run = session.is_full_run()
    runs = dict(session.runs())  # a copy: a rerun may change the session's dict while this draws
    if worker.place:
        slots = capacity.slots()
        st.info(
            f"The server is busy: {slots.size} sessions are training. Yours waits (place {worker.place} in the "
            "queue) and starts by itself when one pauses or finishes.",
            icon=":material/hourglass_top:",
        )
    elif worker.busy and all(r.state.step == 0 for r in runs.values()):
        st.info("Compiling the training step (first steps only)…", icon=":material/hourglass_top:")
    if worker.error:
        st.error(
            f"Training stopped: {worker.error}. The runs keep the steps they took. Press Train to go on, or Reset.",
            icon=":material/error:",
        )
    _progress(runs, dataset, settings)
    states = {label: run.state for label, run in runs.items()}
    curves = _memo("curves", (dataset, *states, *states.values()), lambda: plots.training_curves(states, dataset.class_names, dataset.class_colors))
    st.plotly_chart(curves, key="curves")
    _maps(runs, dataset, image_index)
    if not full_run and not worker.busy:
        st.rerun()  # the worker is done: the whole page, so the Train button comes back and ticking stops


def _memo(name: str, key: tuple, build):
    """`build()`, or what it returned last time for `name` if every item of `key` is the very same
    object as then. The runs' states are immutable and replaced whole, so a redraw while nothing
    was trained (tracing, waiting for a slot) rebuilds no figure and encodes no image."""
    store = st.session_state.setdefault("live_memo", {})
    kept = store.get(name)
    if kept is not None and len(kept[0]) == len(key) and all(a is b for a, b in zip(kept[0], key)):
        return kept[1]
    value = build()
    store[name] = (key, value)
    return value


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
    st.caption(_memo("baseline", (dataset,), lambda: _all_background_caption(dataset)))
    for label, run in runs.items():
        if run.state.halted:
            st.error(f"Run {label}: {run.state.halted}")


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(enlarge(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def _panel(latest, dataset: Dataset, image_index: int) -> dict:
    """What a run's column shows of one validation snapshot, built once per snapshot and image."""
    truth = dataset.val_masks[image_index]
    image = (np.clip(dataset.val_images[image_index], 0, 1) * 255).astype(np.uint8)
    probabilities = latest.probabilities[image_index]
    prediction = probabilities.argmax(-1)
    return {
        "images": [_png(image), _png(plots.colorize(truth, dataset.class_colors, dataset.ignore_index)), _png(plots.colorize(prediction, dataset.class_colors))],
        "probabilities": plots.probability_maps(probabilities, dataset.class_names, "Probability per class"),
        "outcomes": [_png(plots.outcome_map(truth, prediction, c)) for c in range(dataset.num_classes)],
        "metrics": metrics_table(latest.scores, dataset.class_names),
        "confusion": plots.confusion_heatmap(latest.scores.normalized_confusion, dataset.class_names, "Confusion (rows: truth)"),
    }


def _maps(runs: dict[str, Run], dataset: Dataset, image_index: int) -> None:
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
            panel = _memo(f"panel {label}", (latest, dataset, image_index), lambda: _panel(latest, dataset, image_index))
            st.image(panel["images"], caption=["image", "truth", "prediction"], width=120)
            st.plotly_chart(panel["probabilities"], key=f"probs_{label}")
            st.image(panel["outcomes"], caption=list(dataset.class_names), width=90)
            with st.expander("Validation metrics per class"):
                st.dataframe(panel["metrics"])
                st.plotly_chart(panel["confusion"], key=f"confusion_{label}")
    truth = dataset.val_masks[image_index]
    shrunk = f" Probability heatmaps wider than {plots.HEATMAP_SIDE} pixels show each block's largest value." if max(truth.shape) > plots.HEATMAP_SIDE else ""
    st.caption("Per-class outcome maps: " + " · ".join(f"{outcome}: {colour}" for outcome, colour in zip(plots.OUTCOME_COLORS, ("green", "red", "blue", "light grey"))) + shrunk)


def metrics_table(scores, class_names) -> pd.DataFrame:
    return pd.DataFrame(
        {"IoU": scores.iou, "Dice": scores.dice, "precision": scores.precision, "recall": scores.recall},
        index=list(class_names),
    ).round(3)
