"""Plotly figures and RGB images from arrays: pure functions, no Streamlit, no TensorFlow."""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

# Colours of the error map: true positive, false positive, false negative, true negative.
OUTCOME_COLORS = {"hit": "#2ca02c", "false alarm": "#d62728", "missed": "#1f77b4", "other": "#f2f2f2"}
RUN_DASHES = ("solid", "dash", "dot")
VOID_COLOR = "#ffffff"  # void (ignored) pixels of a mask: white, a colour no class gets by default
HEATMAP_SIDE = 128  # heatmaps of larger images are drawn at most this many cells wide (see shrink)


def shrink(values: np.ndarray, side: int = HEATMAP_SIDE) -> np.ndarray:
    """An (H, W, ...) map reduced to at most ``side`` cells a side by the maximum of each block (NaN
    ignored), so a heatmap of a whole 512×512 image stays a small message to the browser and a
    1-pixel structure stays visible. Maps that fit are returned as they are."""
    factor = -(-max(values.shape[:2]) // side)
    if factor <= 1:
        return values
    height, width = (-(-n // factor) * factor for n in values.shape[:2])
    padded = np.full((height, width, *values.shape[2:]), np.nan, dtype=np.float64)
    padded[: values.shape[0], : values.shape[1]] = values
    blocks = padded.reshape(height // factor, factor, width // factor, factor, *values.shape[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block (padding) stays NaN
        return np.nanmax(blocks, axis=(1, 3))


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return tuple(int(color[i : i + 2], 16) for i in (0, 2, 4))


def enlarge(image: np.ndarray, target: int = 192) -> np.ndarray:
    """Nearest-neighbour up to about ``target`` pixels wide, so small masks stay crisp (the toy
    dataset's 64-pixel images ×3)."""
    factor = max(1, target // max(image.shape[:2]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def png_data_url(rgb: np.ndarray) -> str:
    """An 8-bit image (H×W or H×W×3) as a PNG data URL: the image travels inside the page or
    report that shows it."""
    pixels = np.ascontiguousarray(rgb, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def colorize(mask: np.ndarray, colors: Sequence[str], ignore_index: int | None = None) -> np.ndarray:
    """Index mask (H, W) → RGB uint8 image in the class colours; pixels equal to ``ignore_index``
    (a void label) in VOID_COLOR."""
    palette = np.array([hex_to_rgb(c) for c in colors], dtype=np.uint8)
    if ignore_index is None:
        return palette[mask]
    void = np.asarray(mask) == ignore_index
    image = palette[np.where(void, 0, mask)]
    image[void] = hex_to_rgb(VOID_COLOR)
    return image


def outcome_map(truth: np.ndarray, prediction: np.ndarray, class_index: int) -> np.ndarray:
    """RGB map of one class's hits, false alarms and misses (everything else light grey)."""
    palette = np.array([hex_to_rgb(c) for c in OUTCOME_COLORS.values()], dtype=np.uint8)
    is_true, is_pred = truth == class_index, prediction == class_index
    outcome = np.full(truth.shape, 3)
    outcome[is_true & is_pred] = 0
    outcome[~is_true & is_pred] = 1
    outcome[is_true & ~is_pred] = 2
    return palette[outcome]


def class_frequencies(names: Sequence[str], colors: Sequence[str], pixel_share: np.ndarray, image_share: np.ndarray) -> go.Figure:
    """Bars of each class's share of pixels (log scale: the rare class must stay visible)."""
    fig = go.Figure(
        go.Bar(
            x=list(names),
            y=np.asarray(pixel_share) * 100,
            marker_color=list(colors),
            text=[f"{100 * s:.2f} %" for s in pixel_share],
            textposition="outside",
            customdata=np.asarray(image_share) * 100,
            hovertemplate="%{x}: %{y:.3f} % of pixels, in %{customdata:.0f} % of images<extra></extra>",
        )
    )
    fig.update_yaxes(type="log", title="% of pixels (log)")
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), title="Class share of training pixels")
    return fig


def _row_of_plots(widths: Sequence[float], titles: Sequence[str], gap: float, **y_axes) -> tuple[dict, list[dict]]:
    """Layout axes for plots side by side (their widths in proportion to ``widths``) and their
    titles as annotations. Laid out by hand in one layout dict: make_subplots and per-axis
    updates cost ten times as much, and the page draws these figures on every rerun. ``y_axes``
    go into every y axis."""
    total = sum(widths)
    usable = 1 - gap * (len(widths) - 1)
    layout, annotations, left = {}, [], 0.0
    for index, (width, title) in enumerate(zip(widths, titles)):
        suffix = str(index + 1) if index else ""
        right = left + usable * width / total
        layout[f"xaxis{suffix}"] = dict(domain=[left, right], anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = dict(anchor=f"x{suffix}", **y_axes)
        annotations.append(dict(text=title, x=(left + right) / 2, y=1, xref="paper", yref="paper", xanchor="center", yanchor="bottom", showarrow=False))
        left = right + gap
    return layout, annotations


LOSS_CURVE_POINTS = 500  # at most this many points of a run's loss curve are drawn (every k-th step)


def _change_lines(runs: Mapping[str, object], axes: Sequence[tuple[str, str]]) -> list[dict]:
    """A dotted vertical line on each of `axes` at every step where a run's configuration changed."""
    return [
        dict(type="line", xref=x, yref=f"{y} domain", x0=step, x1=step, y0=0, y1=1, line=dict(dash="dot", color="#888", width=1))
        for state in runs.values()
        for step, _ in state.events
        for x, y in axes
    ]


def _every_kth(count: int, most: int) -> slice | list[int]:
    """Indices of at most about `most` of `count` points, evenly spaced, the last always included."""
    if count <= most:
        return slice(None)
    stride = -(-count // most)
    return [*range(0, count - 1, stride), count - 1]


def loss_curves(runs: Mapping[str, object], height: int = 320) -> go.Figure:
    """Each run's training loss against the step, relative to its first value (losses differ in
    range: cross-entropy starts near ln C, Dice below 1); the hover shows the value itself. Dashes
    tell runs apart; dotted vertical lines mark configuration changes, named here.

    `runs` maps a run's label to its RunState. This figure changes at every step, so the page
    redraws it often: one plot, its legend inside it and fixed margins (no second layout pass
    for margins), and at most LOSS_CURVE_POINTS points a run."""
    traces, annotations = [], []
    for index, (label, state) in enumerate(runs.items()):
        if state.loss_steps:
            shown = _every_kth(len(state.loss_steps), LOSS_CURVE_POINTS)
            values = np.asarray(state.loss_values)[shown]
            first = state.loss_values[0]
            traces.append(
                go.Scatter(
                    x=np.asarray(state.loss_steps)[shown].tolist(),  # a JSON list: shorter than base64 int64
                    y=values / first if first else values,
                    customdata=values,
                    hovertemplate="step %{x}: loss %{customdata:.4g}<extra></extra>",
                    name=label,
                    line=dict(dash=RUN_DASHES[index % len(RUN_DASHES)], color="#7f7f7f"),
                )
            )
        annotations += [
            dict(x=step, y=1, yref="y domain", xref="x", text=f"{label}: {text}", showarrow=False, textangle=-90, xanchor="right", yanchor="top", font=dict(size=9))
            for step, text in state.events
        ]
    layout, titles = _row_of_plots((1,), ("Training loss ÷ its first value",), gap=0, automargin=False)
    layout["xaxis"].update(title="step", automargin=False)
    # The title on the left and the legend in one row on the right, both above the plot: no corner
    # inside it stays empty (a falling curve crosses the bottom left in its first tens of steps, a
    # flat one runs along the top).
    titles[0].update(x=0, xanchor="left")
    layout = dict(
        layout,
        shapes=_change_lines(runs, [("x", "y")]),
        annotations=titles + annotations,
        height=height,
        margin=dict(l=40, r=10, t=40, b=45, autoexpand=False),
        legend=dict(font=dict(size=10), orientation="h", x=1, xanchor="right", y=1, yanchor="bottom", entrywidth=0),
    )
    return go.Figure(traces, layout)


def validation_curves(runs: Mapping[str, object], class_names: Sequence[str], class_colors: Sequence[str], height: int = 320) -> go.Figure:
    """Per-class validation IoU and the logits' scale against the step, for every run.

    `runs` maps a run's label to its RunState. The largest |logit| on the validation images, on a
    log axis, shows a run heading for a blow-up (it climbs by decades) before the NaN guard stops
    it. Dashes tell runs apart, colours classes; dotted vertical lines mark configuration changes
    (named on the loss curves). It changes only at a validation or a change."""
    layout, annotations = _row_of_plots((2, 1), ("Validation IoU per class", "Largest |logit| (validation)"), gap=0.1)
    traces = []
    for index, (label, state) in enumerate(runs.items()):
        dash = RUN_DASHES[index % len(RUN_DASHES)]
        if not state.evaluations:
            continue
        steps = [e.step for e in state.evaluations]
        ious = np.array([e.scores.iou for e in state.evaluations])
        for c, (name, color) in enumerate(zip(class_names, class_colors)):
            traces.append(go.Scatter(x=steps, y=ious[:, c], name=f"{label} {name}", line=dict(dash=dash, color=color), legendgroup=label, mode="lines"))
        traces.append(
            go.Scatter(
                x=steps,
                y=[e.logit_scale for e in state.evaluations],
                name=f"{label} largest |logit|",
                line=dict(dash=dash, color="#d62728"),
                legendgroup=label,
                mode="lines+markers",
                marker=dict(size=4),
                hovertemplate="step %{x}: largest |logit| %{y:.3g}<extra></extra>",
                xaxis="x2",
                yaxis="y2",
            )
        )
    for x in ("xaxis", "xaxis2"):
        layout[x]["title"] = "step"
    layout["yaxis"]["range"] = [0, 1]
    layout["yaxis2"]["type"] = "log"
    return go.Figure(
        traces,
        dict(layout, shapes=_change_lines(runs, (("x", "y"), ("x2", "y2"))), annotations=annotations, height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(font=dict(size=10))),
    )


def probability_maps(probabilities: np.ndarray, class_names: Sequence[str], title: str = "") -> go.Figure:
    """One heatmap per class of the predicted probability, all on the 0–1 scale, with square
    pixels (each map's y axis follows its own x axis)."""
    num_classes = probabilities.shape[-1]
    probabilities = shrink(probabilities)
    layout, annotations = _row_of_plots([1] * num_classes, class_names, gap=0.02, autorange="reversed", showticklabels=False)
    traces = []
    for c in range(num_classes):
        suffix = str(c + 1) if c else ""
        layout[f"xaxis{suffix}"]["showticklabels"] = False
        layout[f"yaxis{suffix}"]["scaleanchor"] = f"x{suffix}"
        traces.append(
            go.Heatmap(
                z=probabilities[..., c], zmin=0, zmax=1, colorscale="Viridis", showscale=c == num_classes - 1,
                hovertemplate="p=%{z:.3f}<extra></extra>", xaxis=f"x{suffix}", yaxis=f"y{suffix}",
            )
        )
    return go.Figure(
        traces,
        dict(layout, annotations=annotations, height=190, margin=dict(l=0, r=0, t=30 if not title else 55, b=0), title=dict(text=title, font=dict(size=13), y=0.98, yanchor="top")),
    )


def confusion_heatmap(normalized_confusion: np.ndarray, class_names: Sequence[str], title: str = "") -> go.Figure:
    """Rows: true class, columns: predicted class; each row sums to 1 (recall on the diagonal)."""
    names = list(class_names)
    fig = go.Figure(
        go.Heatmap(
            z=normalized_confusion,
            x=names,
            y=names,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=np.round(normalized_confusion, 2),
            texttemplate="%{text}",
            hovertemplate="true %{y} → predicted %{x}: %{z:.3f}<extra></extra>",
            showscale=False,
        )
    )
    fig.update_yaxes(autorange="reversed", title="true")
    fig.update_xaxes(title="predicted")
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=40, b=10), title=dict(text=title, font=dict(size=13)))
    return fig
