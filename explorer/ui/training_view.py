"""Train / Pause / Step / Reset, the progress line, and the live view: the session's worker
(explorer/live.py) trains the runs, and two fragments redraw on a timer while it does: one the
progress line with the live view's curves, the other each run's prediction and per-class maps of
a chosen validation image, and its plane."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from explorer import metrics, plots, weights
from explorer.data import Dataset
from explorer.live import Plan
from explorer.training import Run
from explorer.ui import capacity, session, surfaces_view
from explorer.ui.sidebar import TrainingSettings

TRACE_AHEAD_VARIABLE = "EXPLORER_TRACE_AHEAD"
# The progress line, and the live view's curves when it is open, this often while the worker trains:
# one fragment draws both, so the page pays for one script run a second, not two.
STATUS_SECONDS = 1.0
# Each run's maps and plane change only at a validation (every 20 steps by default, seconds apart):
# redrawn less often, they leave the CPU to training (Chromium draws on the same cores).
PANELS_SECONDS = 3.0
# The live view's sizes, chosen so the curves, every run's maps and its plane share a 1440×900 screen.
CURVES_HEIGHT = 200
PREDICTION_WIDTH = 96
OUTCOME_WIDTH = 48
STEP_WAIT_SECONDS = 120  # the run after a Step click waits this long for its steps (the first traces the step)
# The run after a Train click waits this long for the first round (one step, traced ahead), so the
# counter moves in that very run rather than at the progress line's next redraw.
FIRST_ROUND_WAIT_SECONDS = 1.0


def _plan(settings: TrainingSettings) -> Plan:
    return Plan(settings.max_steps, settings.steps_per_tick, settings.evaluate_every)


@dataclass(frozen=True)
class Controls:
    """What :func:`controls` drew: the place beside the buttons for :func:`status`, and whether
    the first button is Pause (the worker was training)."""

    progress: DeltaGenerator
    training: bool


def controls(settings: TrainingSettings) -> Controls:
    """Train / Pause, Step, Reset, above every section. Returns the place beside them for
    :func:`status`, which the page fills once the runs match the sidebar."""
    worker = session.worker()
    start, step, reset, progress = st.columns([1, 1, 1, 6], vertical_alignment="center")
    training = worker.training
    if training:
        start.button("Pause", icon=":material/pause:", key="pause", on_click=_pause, width="stretch")
    else:
        start.button("Train", icon=":material/play_arrow:", key="train", type="primary", on_click=_start, args=(settings,), width="stretch")
    step.button(f"Step +{settings.steps_per_tick}", icon=":material/skip_next:", key="step", on_click=_step, args=(settings,), disabled=training, width="stretch")
    reset.button("Reset", icon=":material/restart_alt:", key="reset", on_click=_reset, width="stretch")
    return Controls(progress, training)


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
    st.session_state.started = True


def _step(settings: TrainingSettings) -> None:
    session.worker().step(settings.steps_per_tick, _plan(settings))
    st.session_state.stepped = True


def _reset() -> None:
    session.worker().pause()
    _each_run(Run.reset)


def status(drawn: Controls, settings: TrainingSettings, curves: tuple[DeltaGenerator, Dataset] | None = None) -> None:
    """The progress line and what the worker has to say, beside the buttons `drawn` (on every
    section), and the runs' curves in `curves` (a place in the open live view, and its dataset):
    a fragment that redraws while the worker is busy (it also tells the worker that a page still
    reads it). Called after session.sync_runs, so it shows the runs as they now are."""
    worker = session.worker()
    if worker.training != drawn.training:
        # The worker's last round ended after the buttons showed Pause (sync_runs waits for a
        # round in progress): nothing would tick to bring Train back. Draw the page again.
        st.rerun()
    worker.replan(_plan(settings))
    if st.session_state.pop("started", False):
        worker.wait_for_a_round(FIRST_ROUND_WAIT_SECONDS)
    if st.session_state.pop("stepped", False):
        # A Step is short: its result shows in this very run, unless the session waits for a slot.
        with st.spinner(f"Training {settings.steps_per_tick} steps…", show_time=True):
            worker.wait_for_steps(STEP_WAIT_SECONDS)
    with drawn.progress:
        st.fragment(_status, run_every=STATUS_SECONDS if worker.busy else None)(settings, curves)


def _status(settings: TrainingSettings, curves: tuple[DeltaGenerator, Dataset] | None) -> None:
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
    if worker.error:
        st.error(
            f"Training stopped: {worker.error}. The runs keep the steps they took. Press Train to go on, or Reset.",
            icon=":material/error:",
        )
    compiling = bool(worker.busy and not worker.place and runs and all(r.state.step == 0 for r in runs.values()))
    _progress(runs, settings, compiling)
    if curves is not None:
        place, dataset = curves
        with place:  # a container outside the fragment: Streamlit redraws it with the fragment
            _curves(runs, dataset)
    if not full_run and not worker.busy:
        st.rerun()  # the worker is done: the whole page, so the Train button comes back and ticking stops


def live(dataset: Dataset, counts: weights.ClassCounts, slider_column) -> None:
    """The live view below its curves (which :func:`status` draws): for each run its prediction,
    per-class maps and the plane of one class with the run's path, sized to share a 1440×900
    screen with the curves. A fragment redraws it while the worker trains. The validation image's
    slider goes in `slider_column`."""
    worker = session.worker()
    # Outside the fragment: moving it reruns the page, so the surfaces' per-pixel maps of the
    # same image follow. Kept while another section is open (the surfaces read it).
    with slider_column:
        image_index = st.slider("Validation image", 0, len(dataset.val_images) - 1, 0, key="val_image", persist_state="page")
    st.fragment(_panels, run_every=PANELS_SECONDS if worker.busy else None)(dataset, counts, image_index)


def warm_up() -> None:
    """Called at the end of the page: the runs' train steps are traced in the background while the
    user reads it, so Train starts training at once. EXPLORER_TRACE_AHEAD=0 turns it off (the test
    suite's in-process pages, which mostly never train: each trace costs seconds of CPU)."""
    if os.environ.get(TRACE_AHEAD_VARIABLE, "1").strip() != "0":
        session.worker().warm_up()


def _curves(runs: dict[str, Run], dataset: Dataset) -> None:
    """The runs' curves as trained so far; the worker trains them meanwhile. The loss changes at
    every step; the validation curves only at a validation or a change, and a figure sent again
    unchanged costs the browser no redraw (its plot is most of what drawing the page costs)."""
    if not runs:
        return
    states = {label: run.state for label, run in runs.items()}
    loss = _memo("loss curves", (*states, *states.values()), lambda: plots.loss_curves(states, height=CURVES_HEIGHT))
    validation = _memo(
        "validation curves",
        (dataset, *states, *(s.latest for s in states.values()), *(s.events for s in states.values())),
        lambda: plots.validation_curves(states, dataset.class_names, dataset.class_colors, height=CURVES_HEIGHT),
    )
    left, right = st.columns([2, 3])
    left.plotly_chart(loss, key="curves")
    right.plotly_chart(validation, key="curves_validation")


def _panels(dataset: Dataset, counts: weights.ClassCounts, image_index: int) -> None:
    """Each run's latest validation snapshot: its prediction, outcome maps and plane."""
    runs = dict(session.runs())
    if not runs:
        return
    plane_class = surfaces_view.plane_class(counts)
    shared, *columns = st.columns([1] + [4] * len(runs))
    with shared, st.container(key="live_image"):  # the same for every run
        images = _memo("validation image", (dataset, image_index), lambda: _validation_image(dataset, image_index))
        st.image(images, caption=["image", "truth"], width=PREDICTION_WIDTH)
    for column, (label, run) in zip(columns, runs.items()):
        with column:
            _run_panel(label, run, dataset, counts, image_index, plane_class)
    truth = dataset.val_masks[image_index]
    shrunk = f" Probability heatmaps wider than {plots.HEATMAP_SIDE} pixels show each block's largest value." if max(truth.shape) > plots.HEATMAP_SIDE else ""
    st.caption(
        "Per-class outcome maps: " + " · ".join(f"{outcome}: {colour}" for outcome, colour in zip(plots.OUTCOME_COLORS, ("green", "red", "blue", "light grey")))
        + f". The plane: the loss of {dataset.class_names[plane_class]} over a (its share found) and b (its share falsely "
        "claimed), with the run's route on the validation set (circle: first, star: latest); the Surfaces section explains it "
        "and lets you pick another class." + shrunk
    )
    st.caption(_memo("baseline", (dataset,), lambda: _all_background_caption(dataset)))


def _memo(name: str, key: tuple, build):
    """`build()`, or what it returned last time for `name` if every item of `key` is the very same
    object as then (or an equal plain value). The runs' states are immutable and replaced whole, so
    a redraw while nothing was trained (tracing, waiting for a slot) rebuilds no figure and encodes
    no image."""
    store = st.session_state.setdefault("live_memo", {})
    kept = store.get(name)
    if kept is not None and len(kept[0]) == len(key) and all(_same(a, b) for a, b in zip(kept[0], key)):
        return kept[1]
    value = build()
    store[name] = (key, value)
    return value


def _same(a, b) -> bool:
    return a is b or (type(a) in (str, int, float, tuple) and type(a) is type(b) and a == b)


def _all_background_caption(dataset: Dataset) -> str:
    """The accuracy paradox, measured: what predicting background everywhere would score."""
    masks = dataset.val_masks
    confusion = metrics.confusion_matrix(masks, np.zeros_like(masks), dataset.num_classes, dataset.ignore_index)
    baseline = metrics.scores(confusion)
    return (
        f"For scale: predicting background everywhere scores pixel accuracy {baseline.pixel_accuracy:.3f} "
        f"but mean IoU {baseline.mean_iou:.3f} on this validation set."
    )


def _progress(runs: dict[str, Run], settings: TrainingSettings, compiling: bool) -> None:
    step = min((r.state.step for r in runs.values()), default=0)
    seconds = sum(r.state.seconds_training for r in runs.values())
    total = sum(r.state.step for r in runs.values())
    rate = f" · {total / seconds:.0f} steps/s over all runs" if seconds else ""
    if compiling:
        rate = " · compiling the training step (first steps only)…"
    st.progress(min(step / settings.max_steps, 1.0), text=f"Step {step} of {settings.max_steps}{rate}")
    for label, run in runs.items():
        if run.state.halted:
            st.error(f"Run {label}: {run.state.halted}")


def _png(image: np.ndarray) -> str:
    """The image, enlarged, as a PNG data URL. A data URL travels inside the element; bytes given
    to st.image become a media file that the browser fetches afterwards, and under a fragment
    redrawing every few seconds a newer redraw could delete the file first (a 404 and a broken
    image in the browser, seen on a loaded machine)."""
    return plots.png_data_url(plots.enlarge(image))


def _validation_image(dataset: Dataset, image_index: int) -> list[str]:
    image = (np.clip(dataset.val_images[image_index], 0, 1) * 255).astype(np.uint8)
    return [_png(image), _png(plots.colorize(dataset.val_masks[image_index], dataset.class_colors, dataset.ignore_index))]


def _outcomes(latest, dataset: Dataset, image_index: int) -> dict:
    """The PNG data URLs of a run's prediction and per-class outcome maps for one validation
    snapshot, encoded once per snapshot and image."""
    truth = dataset.val_masks[image_index]
    prediction = latest.probabilities[image_index].argmax(-1)
    return {
        "prediction": _png(plots.colorize(prediction, dataset.class_colors)),
        "outcomes": [_png(plots.outcome_map(truth, prediction, c)) for c in range(dataset.num_classes)],
    }


def _run_panel(label: str, run: Run, dataset: Dataset, counts: weights.ClassCounts, image_index: int, plane_class: int) -> None:
    latest = run.state.latest
    ready = latest is not None and latest.probabilities is not None
    scores = f" · step {latest.step} · mean IoU {latest.scores.mean_iou:.3f} · pixel accuracy {latest.scores.pixel_accuracy:.3f}" if ready else ""
    st.markdown(f"**Run {label}: {run.loss.loss_id}** :small[{scores.removeprefix(' · ')}]")
    maps, plane = st.columns([1, 1])
    with maps, st.container(key=f"live_maps_{label}"):
        if not ready:
            st.info("No validation snapshot yet: press Train or Step.")
        else:
            images = _memo(f"outcomes {label}", (latest, dataset, image_index), lambda: _outcomes(latest, dataset, image_index))
            st.image(images["prediction"], caption="prediction", width=PREDICTION_WIDTH)
            st.image(images["outcomes"], caption=list(dataset.class_names), width=OUTCOME_WIDTH)
    with plane:
        last = run.state.evaluations[-1] if run.state.evaluations else None
        figure = _memo(f"plane {label}", (run.loss, surfaces_view.params_key(run.loss), plane_class, last, dataset), lambda: surfaces_view.live_plane(run, dataset, counts, plane_class))
        if figure is None:
            st.caption("Every class is either absent or covers every pixel: no plane to draw.")
        else:
            st.plotly_chart(figure, key=f"live_plane_{label}")
    key = f"live_more_{label}"
    # An expander has no persist_state: its open state is kept by hand, so it stays open while
    # another section is open (and the expander is not drawn).
    more = st.expander("Probabilities, metrics and confusion", key=key, expanded=st.session_state.get(f"{key}_open", False), on_change="rerun")
    st.session_state[f"{key}_open"] = more.open
    if ready and more.open:  # drawn only when opened: it is most of a redraw's bytes
        with more:
            st.plotly_chart(plots.probability_maps(latest.probabilities[image_index], dataset.class_names, "Probability per class"), key=f"probs_{label}")
            st.dataframe(metrics_table(latest.scores, dataset.class_names))
            st.plotly_chart(plots.confusion_heatmap(latest.scores.normalized_confusion, dataset.class_names, "Confusion (rows: truth)"), key=f"confusion_{label}")


def metrics_table(scores, class_names) -> pd.DataFrame:
    return pd.DataFrame(
        {"IoU": scores.iou, "Dice": scores.dice, "precision": scores.precision, "recall": scores.recall},
        index=list(class_names),
    ).round(3)
