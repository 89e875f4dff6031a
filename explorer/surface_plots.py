"""Plotly figures of the surfaces, the per-pixel maps and the loss landscape: pure functions from
arrays (no Streamlit, no TensorFlow).

Each figure is built in one ``go.Figure(data, layout)`` call from plain dicts, with the subplot
axes laid out by hand: plotly's ``make_subplots`` and chains of ``update_*`` calls cost more
than the surfaces themselves take to compute."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.plots import shrink

RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c")
A_TITLE = "a: prob. of the class on its own pixels (found)"
B_TITLE = "b: prob. of the class on other pixels (falsely claimed)"
BLACK = [[0, "black"], [1, "black"]]  # contour lines drawn with coloring="lines" take their colour from the scale
LOG_FLOOR = 1e-8  # gradients below this are drawn at this value on log scales
TITLE_FONT = dict(size=13)
AXIS_FONT = dict(size=11)
COMPACT_HEIGHT = 220  # the live view's plane


def _log10(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    finite = np.isfinite(x)
    out[finite] = np.log10(np.maximum(x[finite], LOG_FLOOR))
    return out


def _log_ticks(low: float, high: float) -> dict:
    """Colour-bar ticks at the powers of ten between low and high (log10 values)."""
    exponents = list(range(int(np.ceil(low)), int(np.floor(high)) + 1)) or [int(round(low))]
    if len(exponents) > 7:
        exponents = exponents[:: int(np.ceil(len(exponents) / 7))]
    return dict(tickvals=exponents, ticktext=[f"1e{e}" if abs(e) > 2 else f"{10.0**e:g}" for e in exponents])


def _value_ticks(low: float, high: float) -> dict:
    """Colour-bar ticks for log10 values, labelled in real values: 1-2-5 steps when the range
    spans them, else five evenly spaced ticks."""
    ticks = [e + np.log10(m) for e in range(int(np.floor(low)) - 1, int(np.ceil(high)) + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if low - 1e-9 <= t <= high + 1e-9]
    if len(ticks) > 8:
        ticks = [t for t in ticks if abs(t - round(t)) < 1e-9] or ticks[:: len(ticks) // 6]
    if len(ticks) < 3:
        ticks = list(np.linspace(low, high, 5))
    return dict(tickvals=ticks, ticktext=[f"{10.0**t:.3g}" for t in ticks])


def _colour_values(values: np.ndarray, log: bool) -> tuple[np.ndarray, dict]:
    """The z to colour by and the colour-bar ticks: log10 of the values (floored at 1e-8 and
    at 1e-4 of the maximum, so a zero at the optimum does not stretch the scale) or the values."""
    values = np.asarray(values, dtype=np.float64)
    if not log:
        return values, {}
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 1.0
    floor = max(LOG_FLOOR, 1e-4 * top) if top > 0 else LOG_FLOOR
    z = np.log10(np.clip(values, floor, None))
    zf = z[np.isfinite(z)]
    return z, _value_ticks(float(zf.min()), float(zf.max())) if zf.size else {}


def _shown(values) -> np.ndarray:
    """A plane's values as float32: plotly sends arrays as raw bytes, and a colour or a 4-digit
    hover needs no more than float32 holds, so the browser receives half the bytes."""
    return np.asarray(values, dtype=np.float32)


def _title(text: str | None) -> dict | None:
    return dict(text=text, font=TITLE_FONT) if text else None


def _subplot_axes(count: int, gap: float = 0.1, square: bool = True, **axis) -> dict:
    """Layout entries for ``count`` side-by-side subplots: xaxis, xaxis2, … and yaxis, yaxis2, …"""
    width = (1.0 - gap * (count - 1)) / count
    layout = {}
    for k in range(count):
        suffix = "" if k == 0 else str(k + 1)
        start = k * (width + gap)
        layout[f"xaxis{suffix}"] = dict(domain=[start, start + width], anchor=f"y{suffix}", **axis)
        y = dict(anchor=f"x{suffix}", **axis)
        if square:
            y.update(scaleanchor=f"x{suffix}", constrain="domain")
        layout[f"yaxis{suffix}"] = y
    return layout


def _subplot_titles(titles: Sequence[str], gap: float = 0.1) -> list[dict]:
    width = (1.0 - gap * (len(titles) - 1)) / len(titles)
    return [
        dict(text=t, x=k * (width + gap) + width / 2, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=12))
        for k, t in enumerate(titles)
    ]


# ---------------------------------------------------------------------------------------------
# The pixel view


def pixel_curves(curves: Mapping[str, object], colors: Sequence[str] = RUN_COLORS, log_loss: bool = False) -> go.Figure:
    """Loss and |∂L/∂z_t| (log) against the true class's probability, one line per run.

    ``curves`` maps a label ("A: Focal (γ=2)") to a ``surfaces.Curve``; region losses are dashed."""
    data = []
    for index, (label, curve) in enumerate(curves.items()):
        line = dict(color=colors[index % len(colors)], dash="dash" if curve.kind == "region" else "solid", width=2)
        hover = "p_t=%{x:.3f}<br>%{y:.4g}<extra>" + label + "</extra>"
        loss = np.maximum(curve.loss, LOG_FLOOR) if log_loss else curve.loss
        data.append(dict(type="scatter", x=curve.p, y=loss, name=label, legendgroup=label, mode="lines", line=line, hovertemplate=hover, xaxis="x", yaxis="y"))
        data.append(
            dict(type="scatter", x=curve.p, y=np.maximum(curve.gradient, LOG_FLOOR), name=label, legendgroup=label, showlegend=False, mode="lines", line=line, hovertemplate=hover, xaxis="x2", yaxis="y2")
        )
    layout = _subplot_axes(2, gap=0.08, square=False)
    for k in ("xaxis", "xaxis2"):
        layout[k].update(title=dict(text="p_t: probability of the true class", font=AXIS_FONT), range=[0, 1])
    layout["yaxis"].update(dict(type="log", exponentformat="power") if log_loss else dict(rangemode="tozero"))
    layout["yaxis2"].update(type="log", exponentformat="power")
    layout.update(
        annotations=_subplot_titles(["loss" + (" (log scale)" if log_loss else ""), "|gradient| w.r.t. the true class's logit (×P, log scale)"], gap=0.08),
        legend=dict(orientation="h", y=-0.22, font=dict(size=11)),
        height=400,
        margin=dict(l=10, r=10, t=30, b=10),
    )
    return go.Figure(data=data, layout=layout)


# ---------------------------------------------------------------------------------------------
# The plane view


def _path_traces(path: np.ndarray | None, steps: Sequence[int] | None, color: str, axes: tuple[str, str] = ("x", "y")) -> list[dict]:
    """The run's route over the plane: a line through its (a, b) points, the first point a circle
    and the latest a star."""
    if path is None or len(path) == 0:
        return []
    path = np.asarray(path, dtype=np.float64)
    steps = list(steps) if steps is not None else list(range(len(path)))
    text = [f"step {s}" for s in steps]
    hover = "%{text}<br>a=%{x:.3f}, b=%{y:.4f}<extra></extra>"
    common = dict(type="scatter", showlegend=False, xaxis=axes[0], yaxis=axes[1], hovertemplate=hover)
    ends = [0, len(path) - 1] if len(path) > 1 else [0]
    return [
        dict(common, x=path[:, 0], y=path[:, 1], text=text, mode="lines+markers", line=dict(color=color, width=2), marker=dict(size=5, color=color, line=dict(color="#000", width=1))),
        dict(
            common, x=path[ends, 0], y=path[ends, 1], text=[text[i] for i in ends], mode="markers",
            marker=dict(size=[10, 15][: len(ends)], symbol=["circle-open", "star"][-len(ends):], color=[color, "#ffdd00"][-len(ends):], line=dict(color=[color, "#000"][-len(ends):], width=[2, 1][-len(ends):])),
        ),
    ]


def _plane_axes(count: int, gap: float, a_title: str, b_title: str, b: np.ndarray) -> dict:
    """Square subplots over the unit square; the b axis logarithmic when b is log-spaced."""
    log_b = b[0] > 0 and b[-1] / b[0] > 100
    layout = _subplot_axes(count, gap=gap, square=not log_b)
    for k in range(count):
        suffix = "" if k == 0 else str(k + 1)
        layout[f"xaxis{suffix}"].update(range=[0, 1], title=dict(text=a_title, font=AXIS_FONT))
        if log_b:
            layout[f"yaxis{suffix}"].update(type="log", range=[float(np.log10(b[0])), float(np.log10(b[-1]))], exponentformat="power")
        else:
            layout[f"yaxis{suffix}"].update(range=[0, 1])
        if k == 0:
            layout["yaxis"]["title"] = dict(text=b_title, font=AXIS_FONT)
    return layout


def _reference_line(layout: dict, b_equal: float | None, count: int) -> None:
    """A dotted horizontal line at the b where the falsely claimed pixels are as many as the
    class's own pixels (b = share / (1 − share))."""
    if b_equal is None or not (0 < b_equal < 1):
        return
    shapes = layout.setdefault("shapes", [])
    for k in range(count):
        suffix = "" if k == 0 else str(k + 1)
        shapes.append(dict(type="line", xref=f"x{suffix} domain", yref=f"y{suffix}", x0=0, x1=1, y0=b_equal, y1=b_equal, line=dict(color="#bbbbbb", width=1.5, dash="dot")))


def loss_plane(a: np.ndarray, b: np.ndarray, values: np.ndarray, title: str, path: np.ndarray | None = None, steps: Sequence[int] | None = None, log: bool = True, b_equal: float | None = None, compact: bool = False) -> go.Figure:
    """The loss over the (a, b) square: a heatmap with contour lines (log-spaced when ``log``),
    and the run's path. ``compact``: small, with short axis titles and no colour bar (the live view)."""
    z, ticks = _colour_values(values, log)
    data = [
        dict(
            type="contour", z=_shown(z), x=a, y=b, colorscale="Viridis", ncontours=16, customdata=_shown(values),
            contours=dict(coloring="heatmap", showlabels=not log, labelfont=dict(size=9, color="white")),
            line=dict(width=0.7, color="rgba(255,255,255,0.6)"),
            colorbar=dict(title=dict(text="loss" + (" (log)" if log else ""), side="right"), thickness=12, **ticks),
            showscale=not compact,
            hovertemplate="a=%{x:.2f}, b=%{y:.2f}<br>loss=%{customdata:.4g}<extra></extra>",
        )
    ]
    data += _path_traces(path, steps, "#ffffff")
    if compact:
        layout = _plane_axes(1, 0.0, "a (found)", "b (falsely claimed)", b)
        layout.update(height=COMPACT_HEIGHT, margin=dict(l=0, r=10, t=24, b=0), title=_title(title))
    else:
        layout = _plane_axes(1, 0.0, A_TITLE, B_TITLE, b)
        layout.update(height=430, margin=dict(l=10, r=10, t=40, b=10), title=_title(title))
    _reference_line(layout, b_equal, 1)
    return go.Figure(data=data, layout=layout)


def gradient_range(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    """One log10 colour range for gradient planes: the 1st percentile to the maximum over all."""
    logs = [_log10(a) for a in arrays]
    finite = np.concatenate([z[np.isfinite(z)] for z in logs]) if logs else np.array([])
    low, high = (float(np.percentile(finite, 1)), float(finite.max())) if finite.size else (0.0, 1.0)
    return low, (high if high > low else low + 1.0)


def gradient_planes(a: np.ndarray, b: np.ndarray, missed: np.ndarray, false_alarm: np.ndarray, title: str, path: np.ndarray | None = None, steps: Sequence[int] | None = None, b_equal: float | None = None, zrange: tuple[float, float] | None = None) -> go.Figure:
    """|gradient| (×P, log10) of a missed pixel of the class and of a falsely claimed pixel, on
    one colour scale so the two can be compared directly; ``zrange`` (log10, from
    :func:`gradient_range`) shares it with other runs."""
    lm, lf = _shown(_log10(missed)), _shown(_log10(false_alarm))
    low, high = zrange if zrange is not None else gradient_range([missed, false_alarm])
    data = []
    for k, z in enumerate((lm, lf)):
        suffix = "" if k == 0 else "2"
        data.append(
            dict(
                type="heatmap", z=z, x=a, y=b, zmin=low, zmax=high, colorscale="Magma", showscale=k == 1, xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                colorbar=dict(title=dict(text="|grad|", side="right"), thickness=10, orientation="h", y=-0.32, yanchor="top", len=0.9, **_log_ticks(low, high)),
                customdata=_shown(10.0**z), hovertemplate="a=%{x:.2f}, b=%{y:.2g}<br>|grad|=%{customdata:.3g}<extra></extra>",
            )
        )
        data += _path_traces(path, steps, "#00e5ff", (f"x{suffix}", f"y{suffix}"))
    layout = _plane_axes(2, 0.08, "a", "b", b)
    layout["yaxis2"]["showticklabels"] = False  # the same b axis as the first panel
    layout.update(
        annotations=_subplot_titles(["missed pixel", "false alarm"], gap=0.08),
        height=340, margin=dict(l=10, r=10, t=60, b=10), title=_title(title),
    )
    _reference_line(layout, b_equal, 2)
    return go.Figure(data=data, layout=layout)


def ratio_plane(a: np.ndarray, b: np.ndarray, ratio: np.ndarray, title: str, path: np.ndarray | None = None, steps: Sequence[int] | None = None, limit: float = 4.0, b_equal: float | None = None, balance: float | None = None) -> go.Figure:
    """log10 of (a missed pixel's |gradient|) / (a false alarm's |gradient|): red where a missed
    pixel of the class is louder, blue where a false alarm is, the line of equal loudness black.
    ``balance`` (the other pixels per class pixel, (1 − share)/share) adds a dashed line where the
    class's pixels all together push as hard as all the other pixels together."""
    z = _shown(np.clip(_log10(ratio), -limit, limit))
    data = [
        dict(
            type="heatmap", z=z, x=a, y=b, zmin=-limit, zmax=limit, zmid=0, colorscale="RdBu", reversescale=True,
            colorbar=dict(title=dict(text="missed ÷ false alarm", side="right"), thickness=12, **_log_ticks(-limit, limit)),
            customdata=_shown(ratio), hovertemplate="a=%{x:.2f}, b=%{y:.2f}<br>ratio=%{customdata:.3g}<extra></extra>",
        )
    ]
    finite = z[np.isfinite(z)]
    low, high = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
    if low < 0 < high:
        data.append(dict(type="contour", z=z, x=a, y=b, showscale=False, contours=dict(start=0, end=0, size=1, coloring="lines"), colorscale=BLACK, line=dict(width=2), hoverinfo="skip"))
    if balance is not None and balance > 0:
        level = float(np.log10(balance))
        if low < level < high:
            data.append(dict(type="contour", z=z, x=a, y=b, showscale=False, contours=dict(start=level, end=level, size=1, coloring="lines"), colorscale=BLACK, line=dict(width=2, dash="dash"), hoverinfo="skip"))
    data += _path_traces(path, steps, "#333333")
    layout = _plane_axes(1, 0.0, "a", "b", b)
    layout.update(height=330, margin=dict(l=10, r=10, t=40, b=10), title=_title(title))
    if not finite.size:  # 0 ÷ 0 everywhere: say so rather than draw an empty square
        layout["annotations"] = [
            dict(text="no ratio anywhere on this plane:<br>a false alarm gets no gradient<br>(a class weight of 0?)", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=12))
        ]
    _reference_line(layout, b_equal, 1)
    return go.Figure(data=data, layout=layout)


# ---------------------------------------------------------------------------------------------
# Per-pixel maps


def pixel_maps(loss_map: np.ndarray | None, magnitude: np.ndarray, title: str, loss_range: tuple[float, float] | None, gradient_range: tuple[float, float] | None) -> go.Figure:
    """Per-pixel loss (when the loss has one) and |∂L/∂z| (×H·W) of one image, both log10.

    The ranges are log10 colour ranges; pass the same ones to every run compared (None: this map's
    own range)."""
    panels = [("per-pixel loss", loss_map, loss_range, "Viridis")] if loss_map is not None else []
    panels.append(("|gradient| w.r.t. the logits", magnitude, gradient_range, "Magma"))
    gap = 0.16
    count = len(panels)
    width = (1.0 - gap * (count - 1)) / count
    data = []
    for k, (name, values, zrange, scale) in enumerate(panels):
        suffix = "" if k == 0 else str(k + 1)
        values = shrink(values)
        z = _log10(values)
        low, high = zrange if zrange is not None else (float(np.nanpercentile(z, 1)), float(np.nanmax(z)))
        high = high if high > low else low + 1.0
        data.append(
            dict(
                type="heatmap", z=z, zmin=low, zmax=high, colorscale=scale, customdata=values, xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                colorbar=dict(thickness=10, len=0.9, x=k * (width + gap) + width + 0.01, xanchor="left", **_log_ticks(low, high)),
                hovertemplate=f"{name}: " + "%{customdata:.3g}<extra></extra>",
            )
        )
    layout = _subplot_axes(count, gap=gap, showticklabels=False, showgrid=False, zeroline=False)
    for k in range(count):
        layout[f"yaxis{'' if k == 0 else k + 1}"]["autorange"] = "reversed"
    annotations = _subplot_titles([p[0] for p in panels], gap=gap)
    if loss_map is None:
        annotations.append(dict(text="(a region loss has no per-pixel loss)", xref="paper", yref="paper", x=0.5, y=-0.06, showarrow=False, font=dict(size=11, color="#666")))
    layout.update(annotations=annotations, height=290, margin=dict(l=10, r=40, t=60, b=20), title=_title(title))
    return go.Figure(data=data, layout=layout)


# ---------------------------------------------------------------------------------------------
# The loss landscape


def landscape(x: np.ndarray, y: np.ndarray, values: np.ndarray, title: str, log: bool = True) -> go.Figure:
    """The loss over the (x, y) grid of the two directions (rows not computed yet are NaN), the
    current weights marked at the centre; log-spaced colours by default (the loss grows by orders
    of magnitude away from trained weights)."""
    values = np.asarray(values, dtype=np.float64)
    data = []
    if np.isfinite(values).any():
        z, ticks = _colour_values(values, log)
        data.append(
            dict(
                type="contour", z=z, x=x, y=y, colorscale="Viridis", ncontours=20, connectgaps=False, customdata=values,
                contours=dict(coloring="heatmap", showlabels=not log, labelfont=dict(size=9, color="white")),
                line=dict(width=0.6, color="rgba(255,255,255,0.6)"),
                colorbar=dict(title=dict(text="loss" + (" (log)" if log else ""), side="right"), thickness=12, **ticks),
                hovertemplate="x=%{x:.2f}, y=%{y:.2f}<br>loss=%{customdata:.4g}<extra></extra>",
            )
        )
    data.append(dict(type="scatter", x=[0], y=[0], mode="markers", marker=dict(symbol="x", size=11, color="red"), hovertemplate="current weights<extra></extra>"))
    layout = dict(
        xaxis=dict(title=dict(text="along direction 1 (filter-normalised)", font=AXIS_FONT), range=[float(x[0]), float(x[-1])], constrain="domain"),
        yaxis=dict(title=dict(text="along direction 2", font=AXIS_FONT), range=[float(y[0]), float(y[-1])], scaleanchor="x", constrain="domain"),
        showlegend=False, height=420, margin=dict(l=10, r=10, t=40, b=10), title=_title(title),
    )
    return go.Figure(data=data, layout=layout)
