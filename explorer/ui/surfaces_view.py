"""The surfaces section: the pixel view, the plane view with each run's path, the per-pixel maps
of the chosen validation image, and the real loss landscape on demand.

Everything is computed by explorer/surfaces.py, maps.py and landscape.py; this module only lays it
out. The section is a fragment: its own widgets rerun only it, and while training it refreshes
every few seconds (paths and maps follow the weights); the surfaces themselves are cached on the
loss's parameters, so a refresh recomputes nothing that has not changed.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st
from streamlit.errors import StreamlitAPIException

from explorer import landscape as landscape_module
from explorer import losses, maps, plots, surface_plots, surfaces, weights
from explorer.data import Dataset
from explorer.training import Run
from explorer.ui import session

RESOLUTION = 101
LIVE_RESOLUTION = 51  # the live view's small planes: a quarter of the points to send on every redraw
CLASS_KEY = "surfaces_class"
LOG_B_BELOW = 0.1  # a class under this share of the pixels gets a logarithmic b axis by default
REFRESH_SECONDS = 10.0  # while training: paths and maps follow the weights this often (each refresh delays a tick)
LANDSCAPE_IMAGES = 16  # the fixed validation batch of the landscape: the first 16 images
LANDSCAPE_SEED = 0  # one seed for the directions of every run
LANDSCAPE_SECONDS_PER_RERUN = 1.5  # rows computed per script run before the page updates

SYMBOLS = {"alpha": "α", "beta": "β", "gamma": "γ", "smooth": "s", "r": "r", "lambda_ce": "λ_ce", "lambda_dice": "λ_dice", "lambda_": "λ", "delta": "δ"}


def show(dataset: Dataset, counts: weights.ClassCounts) -> None:
    """The whole section (call it after the training section): three tabs, each its own fragment,
    so a widget in one reruns only that tab."""
    refresh = REFRESH_SECONDS if session.worker().busy else None
    views, pixel_maps, landscape = st.tabs(["Pixel and plane views", "Per-pixel maps", "Loss landscape"])
    # Keyed, so a widget elsewhere can rerun one of them from its callback (st.rerun(key)).
    with views:
        st.fragment(_views, run_every=refresh, key="surfaces_views")(dataset, counts)
    with pixel_maps:
        st.fragment(_pixel_maps, run_every=refresh, key="surfaces_maps")(dataset)
    with landscape:
        st.fragment(_landscape, key="surfaces_landscape")(dataset)


def _views(dataset: Dataset, counts: weights.ClassCounts) -> None:
    runs = session.runs()
    if not runs:
        st.info("No runs yet: choose the runs' losses in the sidebar.")
        return
    shares = np.asarray(counts.frequencies, dtype=np.float64)
    valid = _plane_classes(shares)
    if not valid:
        st.warning("Every class is either absent or covers every pixel: there is no class to draw a plane for.")
        return
    class_index = st.selectbox(
        "Class",
        valid,
        index=valid.index(plane_class(counts)),
        format_func=lambda c: f"{dataset.class_names[c]} ({100 * shares[c]:.2f} % of training pixels)",
        key=CLASS_KEY,
        persist_state="page",
        help="Defaults to the rarest class. Its share is measured over the whole training set. The live view's planes follow it.",
    )
    _pixel_and_plane(runs, dataset, shares, class_index)


def _plane_classes(shares: np.ndarray) -> list[int]:
    """The classes a plane can be drawn for: present, and not everywhere."""
    return [c for c in range(len(shares)) if 0 < shares[c] < 1]


def plane_class(counts: weights.ClassCounts) -> int:
    """The class whose plane the page shows: the one chosen in this section, else the rarest (0 if
    no class can have a plane)."""
    valid = _plane_classes(np.asarray(counts.frequencies, dtype=np.float64))
    chosen = st.session_state.get(CLASS_KEY)
    if chosen in valid:
        return chosen
    return min(valid, key=lambda c: counts.frequencies[c]) if valid else 0


def _b_scale(fraction: float, class_index: int) -> str:
    """The plane's b axis: the toggle of this section, logarithmic by default for a class under 10 %."""
    return "log" if st.session_state.get(f"surfaces_log_b_{class_index}", fraction < LOG_B_BELOW) else "linear"


def live_plane(run: Run, dataset: Dataset, counts: weights.ClassCounts, class_index: int):
    """The run's loss plane for one class with its route, small and coarse for the live view; None
    when no class can have a plane."""
    shares = np.asarray(counts.frequencies, dtype=np.float64)
    fraction = float(shares[class_index])
    if not 0 < fraction < 1:
        return None
    planes = _planes(run.loss.loss_id, params_key(run.loss), fraction, class_index, tuple(float(s) for s in shares), LIVE_RESOLUTION, _b_scale(fraction, class_index), run.loss)
    path, steps = _path(run, class_index)
    layout = surfaces.image_layout(fraction, class_index)
    title = f"loss of {dataset.class_names[class_index]}"
    return surface_plots.loss_plane(planes.a, planes.b, planes.values, title, path, steps, log=True, b_equal=layout.share / (1 - layout.share), compact=True)


# ---------------------------------------------------------------------------------------------
# Helpers


def describe(loss: losses.SegLoss) -> str:
    """'Focal Tversky (α=0.3, β=0.7, γ=0.75)': the loss with its float parameters."""
    params = loss.params
    parts = [f"{SYMBOLS.get(p.name, p.name)}={params[p.name]:g}" for p in loss.spec.params if p.name != "smooth" or params[p.name] != p.default]
    if params.get("class_weights") is not None:
        parts.append("class-weighted")
    if params.get("batch"):
        parts.append("batch")
    if params.get("include_background") is False:
        parts.append("no background")
    return loss.spec.name + (f" ({', '.join(parts)})" if parts else "")


def params_key(loss: losses.SegLoss) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in loss.params.items()))


@st.cache_data(max_entries=256, show_spinner=False)
def _planes(loss_id: str, params_key: tuple, fraction: float, class_index: int, shares: tuple, resolution: int, b_scale: str, _loss: losses.SegLoss) -> surfaces.Planes:
    """Cached on the loss's id and parameter values (``_loss`` is not hashed: its values are in
    ``params_key``): a rerun or a training tick recomputes nothing that has not changed."""
    return surfaces.planes(_loss, fraction, resolution, class_index=class_index, class_shares=shares, b_scale=b_scale)


@st.cache_data(max_entries=256, show_spinner=False)
def _curve(loss_id: str, params_key: tuple, fraction: float, class_index: int, shares: tuple, _loss: losses.SegLoss) -> surfaces.Curve:
    return surfaces.pixel_curve(_loss, fraction, class_index=class_index, class_shares=shares)


def _path(run: Run, class_index: int) -> tuple[np.ndarray, list[int]]:
    """The run's (a, b) for the class at each evaluation, oldest first (recorded by training)."""
    points = [e.class_ab[class_index] for e in run.state.evaluations]
    return (np.array(points) if points else np.zeros((0, 2))), [e.step for e in run.state.evaluations]


def _pixel_and_plane(runs: dict[str, Run], dataset: Dataset, shares: np.ndarray, class_index: int) -> None:
    fraction = float(shares[class_index])
    share_key = tuple(float(s) for s in shares)
    name = dataset.class_names[class_index]
    layout = surfaces.image_layout(fraction, class_index)
    st.subheader("The pixel view")
    curves = {}
    for label, run in runs.items():
        curves[f"{label}: {describe(run.loss)}"] = _curve(run.loss.loss_id, params_key(run.loss), fraction, class_index, share_key, run.loss)
    log_loss = st.toggle("Log scale for the loss", False, key="surfaces_curve_log", persist_state="page", help="Useful when one loss (a heavily weighted one) dwarfs the others.")
    st.plotly_chart(surface_plots.pixel_curves(curves, log_loss=log_loss), key="surfaces_pixel_curves")
    st.caption(
        f"Loss and gradient of a pixel of **{name}** against the probability p_t its true class gets. Pixel-wise losses "
        "(solid): the pixel's own loss, and the gradient of that loss with respect to its true class's logit. Region "
        f"losses (dashed): the loss of a synthetic image at {name}'s share in which **every** pixel gives its true "
        "class probability p_t (the plane's diagonal a = p_t, b = 1 − p_t), and the gradient of one of the class's "
        "pixels. Gradients are multiplied by the number of pixels P (the gradient as if the loss were a sum over "
        "pixels), so they do not depend on the image size."
    )

    st.subheader("The plane view")
    left, right = st.columns(2)
    log = left.toggle("Log colour scale for the loss", True, key="surfaces_log", persist_state="page", help="Off: linear colours, with the contour levels labelled.")
    b_scale = "log" if right.toggle(
        "Logarithmic b axis", fraction < LOG_B_BELOW, key=f"surfaces_log_b_{class_index}", persist_state="page",
        help=f"b from {surfaces.B_LOG_MIN:g} to 1. For a rare class the false alarms that matter are a tiny share of the other pixels: "
        "at b = share·(1−share)⁻¹ the false alarms are as many as the class's pixels.",
    ) else "linear"
    st.caption(
        f"For **{name}**: the loss over **a** (mean predicted probability of {name} on its own pixels: the share found) "
        f"and **b** (mean probability of {name} on the other pixels: the share falsely claimed), every pixel-wise or "
        "region loss on the same axes. Computed by the losses themselves on a 101×101 grid of two-class synthetic "
        f"images. {surfaces.describe_layout(layout, fraction)} The route is the run's (a, b) on the validation set at "
        "each evaluation (circle: first, star: latest). The dotted line is where the falsely claimed pixels are as many as "
        "the class's own (b = share ÷ (1 − share)). Each loss plane has its own colour scale (losses differ in range); the "
        "gradient planes of all runs share one."
    )
    b_equal = layout.share / (1 - layout.share)
    all_planes = {label: _planes(run.loss.loss_id, params_key(run.loss), fraction, class_index, share_key, RESOLUTION, b_scale, run.loss) for label, run in runs.items()}
    zrange = surface_plots.gradient_range([a for p in all_planes.values() for a in (p.missed, p.false_alarm)])
    columns = st.columns(len(runs))
    for column, (label, run) in zip(columns, runs.items()):
        with column:
            st.markdown(f"**Run {label}: {describe(run.loss)}**")
            planes = all_planes[label]
            path, steps = _path(run, class_index)
            st.plotly_chart(surface_plots.loss_plane(planes.a, planes.b, planes.values, "loss", path, steps, log=log, b_equal=b_equal), key=f"surfaces_plane_{label}")
            st.plotly_chart(
                surface_plots.gradient_planes(planes.a, planes.b, planes.missed, planes.false_alarm, "|gradient| of one pixel (×P, log scale shared by all runs)", path, steps, b_equal=b_equal, zrange=zrange),
                key=f"surfaces_gradients_{label}",
            )
            st.plotly_chart(
                surface_plots.ratio_plane(planes.a, planes.b, planes.ratio, "missed pixel ÷ false alarm (log scale)", path, steps, b_equal=b_equal, balance=(1 - layout.share) / layout.share),
                key=f"surfaces_ratio_{label}",
            )
            notes = []
            if planes.weights is not None:
                w_other, w_class = (planes.weights[1], planes.weights[0]) if layout.class_channel == 0 else planes.weights
                notes.append(f"class weights on the plane: {name} {w_class:.3g}, other pixels {w_other:.3g} (share-weighted mean of the other classes' weights)")
            if run.loss.loss_id in surfaces.SIGMOID_LOSSES:
                notes.append("a sigmoid loss: on the plane σ(z) gives a and b per channel; the route uses the model's softmax, as everywhere on this page")
            if run.loss.params.get("batch"):
                notes.append("pooled over the batch in training; one image per grid point here")
            if len(path):
                a_now, b_now = path[-1]
                notes.append(f"latest (step {steps[-1]}): a = {a_now:.3f}, b = {b_now:.4f}")
            if notes:
                st.caption("; ".join(notes) + ".")
    st.caption(
        "Gradients are with respect to the logit of the pixel's true class, ×P. A missed pixel of the class is one of "
        "its pixels (it gets probability a); a false alarm is one of the other pixels (it gives the class probability "
        "b). The ratio says how much louder a missed pixel is than a false alarm (solid black line: equally loud): for "
        "cross-entropy it is (1 − a)/b whatever the share, for weighted cross-entropy that times the weight ratio; region "
        f"losses scale it with the imbalance on their own. There are {(1 - layout.share) / layout.share:.3g} other pixels per "
        f"pixel of {name}: where the ratio is under {(1 - layout.share) / layout.share:.3g} (the dashed line) all the other "
        "pixels together push harder than all the class's pixels together."
    )


# ---------------------------------------------------------------------------------------------
# Per-pixel maps


def pixel_maps_panel(runs: dict[str, Run], dataset: Dataset, image_index: int, *, key_prefix: str = "surfaces_maps") -> None:
    """Per-pixel loss and gradient maps of every run on one validation image, side by side;
    `key_prefix` keys its widgets and charts."""
    shared = st.checkbox("One colour scale for all runs", True, key=f"{key_prefix}_shared", persist_state="page", help="Off: each map on its own scale.")
    image, mask = dataset.val_images[image_index], dataset.val_masks[image_index]
    results = {label: _maps_of(label, run, image, mask, image_index) for label, run in runs.items()}
    loss_range = gradient_range = None
    if shared:
        loss_range = maps.shared_range([r.loss for r in results.values()])
        gradient_range = maps.shared_range([r.magnitude for r in results.values()])
    columns = st.columns(len(runs))
    for column, (label, run) in zip(columns, runs.items()):
        result = results[label]
        with column:
            st.markdown(f"**Run {label}: {describe(run.loss)}** · step {run.state.step}")
            st.plotly_chart(
                surface_plots.pixel_maps(result.loss, result.magnitude, f"loss of the image {result.value:.4g}", loss_range, gradient_range),
                key=f"{key_prefix}_{label}",
            )
    scale = "All runs share one log colour scale per kind of map." if shared else "Each map has its own colour scale: do not compare colours across runs."
    st.caption(
        f"Validation image {image_index} (the training section's slider), at each run's current weights. Per-pixel loss: "
        "pixel-wise losses only (a region loss has none). Gradient: the L2 norm over the classes of the gradient of the "
        f"image's loss with respect to each pixel's logits, ×H·W (as if the loss were a sum over pixels). {scale}"
        + (f" Images wider than {plots.HEATMAP_SIDE} pixels are drawn with each block's largest value." if max(mask.shape) > plots.HEATMAP_SIDE else "")
    )


def _maps_of(label: str, run: Run, image, mask, image_index: int) -> maps.PixelMaps:
    store = st.session_state.setdefault("surfaces_maps_cache", {})
    key = (id(run.model), id(run.loss), params_key(run.loss), run.state.step, image_index)
    cached = store.get(label)
    if cached is not None and cached[0] == key:
        return cached[1]
    with session.runs_lock():  # between two rounds of the worker: the weights of one step
        result = maps.pixel_maps(run.model, run.loss, image, mask)
    store[label] = (key, result)
    return result


def _pixel_maps(dataset: Dataset) -> None:
    runs = session.runs()
    if not runs:
        return
    index = int(np.clip(st.session_state.get("val_image", 0), 0, len(dataset.val_images) - 1))
    pixel_maps_panel(runs, dataset, index)


# ---------------------------------------------------------------------------------------------
# The loss landscape


def _landscape(dataset: Dataset) -> None:
    runs = session.runs()
    if not runs:
        return
    st.caption(
        "The real loss of each run's U-Net around its current weights, on a fixed batch of the first "
        f"{LANDSCAPE_IMAGES} validation images, along two random directions normalised filter by filter (Li et al. "
        "2018): each filter of the direction has the norm of the same filter of the weights; biases are not moved. "
        "The random draws are the same for every run (one seed); each run's are scaled to its own weights. The "
        "weights and the loss's parameters are taken when you press the button; training may go on meanwhile."
    )
    job = st.session_state.get("landscape_job")
    left, middle, right, _ = st.columns([2, 2, 3, 1])
    steps = left.select_slider("Grid", (11, 21, 31), value=21, key="landscape_steps", format_func=lambda n: f"{n}×{n}", disabled=job is not None, persist_state="page")
    span = middle.select_slider("Span (±)", (0.25, 0.5, 1.0, 2.0), value=1.0, key="landscape_span", disabled=job is not None, persist_state="page")
    with right:
        start, cancel = st.columns(2)
    start.button("Compute", icon=":material/landscape:", key="landscape_start", on_click=_start_landscape, args=(int(steps), float(span)), disabled=job is not None, help="Compute every run's landscape")
    cancel.button("Cancel", icon=":material/cancel:", key="landscape_cancel", on_click=_cancel_landscape, disabled=job is None)
    results = st.session_state.setdefault("landscapes", {})
    running = job is not None
    if running:
        try:
            _advance_landscape(job, runs, dataset, results)
        except Exception as error:  # noqa: BLE001  (say what failed; keep the page and the finished grids)
            st.session_state.pop("landscape_job", None)
            label = (job.get("current") or {}).get("label", "?")
            st.error(f"The landscape of run {label} failed: {error}. The grids computed so far are kept; press Compute to try again.")
            running = False
    _show_landscapes(runs, results, running)
    if running:
        _continue()  # the next rows, or one last run to bring the button back


def _show_landscapes(runs: dict[str, Run], results: dict, running: bool) -> None:
    if not any(label in results for label in runs):
        if not running:
            st.info("Press the button to compute each run's landscape (a few seconds per run).")
        return
    columns = st.columns(len(runs))
    for column, label in zip(columns, runs):
        result = results.get(label)
        if result is None:
            continue
        with column:
            st.markdown(f"**Run {label}: {result['loss']}** · step {result['step']}")
            st.plotly_chart(surface_plots.landscape(result["x"], result["y"], result["values"], "loss around the weights"), key=f"landscape_{label}")
            rows_done = int(np.isfinite(result["values"]).all(axis=1).sum())
            points = rows_done * len(result["x"])
            status = f" · {result['status']}" if result.get("status") else ""
            cost = f", {1000 * result['seconds'] / points:.0f} ms per point" if points else ""
            st.caption(
                f"{rows_done} of {len(result['y'])} rows{status} · {result['seconds']:.1f} s{cost} (the first point traces "
                f"the model); centre (current weights) {result['center']:.4g}, lowest {np.nanmin(result['values']) if points else float('nan'):.4g}."
            )


def _start_landscape(steps: int, span: float) -> None:
    st.session_state.landscape_job = {"steps": steps, "span": span, "pending": list(session.runs()), "current": None}
    st.session_state.landscapes = {}


def _cancel_landscape() -> None:
    job = st.session_state.pop("landscape_job", None)
    if job and job.get("current"):
        label = job["current"]["label"]
        result = st.session_state.setdefault("landscapes", {}).get(label)
        if result is not None:
            result["status"] = "cancelled"


def _advance_landscape(job: dict, runs: dict[str, Run], dataset: Dataset, results: dict) -> None:
    """Compute rows for about LANDSCAPE_SECONDS_PER_RERUN, run after run; the caller reruns the
    fragment to go on, so the Cancel button is answered within a second."""
    deadline = time.perf_counter() + LANDSCAPE_SECONDS_PER_RERUN
    progress = st.progress(0.0, text="Setting up…")
    while time.perf_counter() < deadline:
        current = job.get("current")
        if current is None:
            pending = [label for label in job["pending"] if label in runs]
            if not pending:
                st.session_state.pop("landscape_job", None)
                progress.empty()
                return
            label = pending[0]
            job["pending"] = pending[1:]
            run = runs[label]
            started = time.perf_counter()
            with session.runs_lock():  # the weights of one step, taken between two rounds of the worker
                scape = landscape_module.landscape(
                    run.model, run.loss, dataset.val_images[:LANDSCAPE_IMAGES], dataset.val_masks[:LANDSCAPE_IMAGES],
                    seed=LANDSCAPE_SEED, span=job["span"], steps=job["steps"],
                )
            center = scape.center()  # traces the evaluation (the first point costs the most)
            results[label] = {
                "x": scape.x, "y": scape.y, "values": np.full((len(scape.y), len(scape.x)), np.nan),
                "step": run.state.step, "loss": describe(run.loss), "seconds": time.perf_counter() - started,
                "center": center, "status": "computing",
            }
            current = job["current"] = {"label": label, "rows": scape.rows()}
        label = current["label"]
        result = results[label]
        started = time.perf_counter()
        try:
            i, row = next(current["rows"])
        except StopIteration:
            result["status"] = ""
            job["current"] = None
            continue
        result["values"][i] = row
        result["seconds"] += time.perf_counter() - started
    current = job.get("current")
    if current is not None:
        values = results[current["label"]]["values"]
        done = int(np.isfinite(values).all(axis=1).sum())
        more = len(job["pending"])
        then = f"; then {more} more run{'s' if more > 1 else ''}" if more else ""
        progress.progress(done / len(values), text=f"Run {current['label']}: row {done} of {len(values)}{then}")


def _continue() -> None:
    """Rerun this fragment to compute the next rows (the whole page if a full rerun is under way,
    where a fragment-scoped rerun is not allowed)."""
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:
        st.rerun()
