"""Plotly figures and RGB images from arrays: pure functions, no Streamlit, no TensorFlow."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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


def training_curves(
    runs: Mapping[str, object],
    class_names: Sequence[str],
    class_colors: Sequence[str],
) -> go.Figure:
    """Loss, per-class validation IoU and the logits' scale against the step.

    `runs` maps a run's label to its RunState. Losses differ in range (cross-entropy starts
    near ln C, Dice below 1), so each run's loss is drawn relative to its first step and the
    hover shows the value itself. The largest |logit| on the validation images, on a log axis,
    shows a run heading for a blow-up (it climbs by decades) before the NaN guard stops it.
    Dashes tell runs apart, colours classes; dotted vertical lines mark configuration changes."""
    titles = ("Training loss ÷ its first value", "Validation IoU per class", "Largest |logit| (validation)")
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, column_widths=[0.4, 0.4, 0.2])
    for index, (label, state) in enumerate(runs.items()):
        dash = RUN_DASHES[index % len(RUN_DASHES)]
        if state.loss_steps:
            values = np.asarray(state.loss_values)
            fig.add_trace(
                go.Scatter(
                    x=state.loss_steps,
                    y=values / values[0] if values[0] else values,
                    customdata=values,
                    hovertemplate="step %{x}: loss %{customdata:.4g}<extra></extra>",
                    name=f"{label} loss",
                    line=dict(dash=dash, color="#7f7f7f"),
                    legendgroup=label,
                ),
                row=1,
                col=1,
            )
        if state.evaluations:
            steps = [e.step for e in state.evaluations]
            ious = np.array([e.scores.iou for e in state.evaluations])
            for c, (name, color) in enumerate(zip(class_names, class_colors)):
                fig.add_trace(
                    go.Scatter(x=steps, y=ious[:, c], name=f"{label} {name}", line=dict(dash=dash, color=color), legendgroup=label, mode="lines"),
                    row=1,
                    col=2,
                )
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=[e.logit_scale for e in state.evaluations],
                    name=f"{label} largest |logit|",
                    line=dict(dash=dash, color="#d62728"),
                    legendgroup=label,
                    mode="lines+markers",
                    marker=dict(size=4),
                    hovertemplate="step %{x}: largest |logit| %{y:.3g}<extra></extra>",
                ),
                row=1,
                col=3,
            )
        for step, text in state.events:
            for col in (1, 2, 3):
                fig.add_vline(x=step, line=dict(dash="dot", color="#888", width=1), row=1, col=col)
            fig.add_annotation(x=step, y=1, yref="y2 domain", xref="x2", text=f"{label}: {text}", showarrow=False, textangle=-90, xanchor="right", font=dict(size=9))
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=3)
    fig.update_xaxes(title="step")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), legend=dict(font=dict(size=10)))
    return fig


def probability_maps(probabilities: np.ndarray, class_names: Sequence[str], title: str = "") -> go.Figure:
    """One heatmap per class of the predicted probability, all on the 0–1 scale."""
    num_classes = probabilities.shape[-1]
    probabilities = shrink(probabilities)
    fig = make_subplots(rows=1, cols=num_classes, subplot_titles=list(class_names), horizontal_spacing=0.02)
    for c in range(num_classes):
        fig.add_trace(
            go.Heatmap(z=probabilities[..., c], zmin=0, zmax=1, colorscale="Viridis", showscale=c == num_classes - 1, hovertemplate="p=%{z:.3f}<extra></extra>"),
            row=1,
            col=c + 1,
        )
        # Square pixels: each subplot's y axis follows its own x axis.
        fig.update_yaxes(scaleanchor=f"x{c + 1 if c else ''}", row=1, col=c + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(height=190, margin=dict(l=0, r=0, t=30 if not title else 55, b=0), title=dict(text=title, font=dict(size=13), y=0.98, yanchor="top"))
    return fig


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
