"""The comparison's report as one HTML file that opens offline (plotly.js is inlined, images are
embedded): per-class IoU bars with 95 % intervals, loss and IoU curves, and, for the rarest class,
what every variant predicts on the same validation image; then the tables of comparison.md."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer import compare, plots
from explorer.run_config import NORMALIZATIONS

SEQUENCE = plotly.colors.qualitative.D3  # one colour per variant


def _variants(outcomes: list[compare.Outcome], normalization: str) -> list[compare.Variant]:
    return list(dict.fromkeys(o.variant for o in outcomes if o.variant.normalization == normalization))


def iou_bars(outcomes: list[compare.Outcome], normalization: str, subject: compare.TrainingData) -> go.Figure:
    """Per class, one bar per variant: the mean IoU over its finished runs with the 95 % interval
    of that mean (Student's t); the all-background prediction as a black mark for scale."""
    dataset = subject.dataset
    figure = go.Figure()
    for k, variant in enumerate(_variants(outcomes, normalization)):
        done = compare.finished(outcomes, variant)
        if not done:
            continue
        means, halves = zip(*(compare.mean_interval([o.iou[c] for o in done]) for c in range(dataset.num_classes)))
        runs = sum(o.variant == variant for o in outcomes)
        figure.add_bar(
            name=f"{variant.name} ({len(done)}/{runs} finished)",
            x=list(dataset.class_names),
            y=list(means),
            error_y=dict(type="data", array=[0 if np.isnan(h) else h for h in halves]),
            marker_color=SEQUENCE[k % len(SEQUENCE)],
        )
    base = compare.all_background_scores(dataset)
    figure.add_scatter(name="all background", x=list(dataset.class_names), y=list(base.iou), mode="markers", marker=dict(symbol="line-ew-open", size=30, color="black"))
    figure.update_layout(
        title=f"Validation IoU per class, U-Net with {NORMALIZATIONS[normalization]}: mean over seeds, 95 % interval",
        barmode="group", yaxis=dict(title="IoU", range=[0, 1]), height=420, margin=dict(t=50, b=40),
    )
    return figure


def curves(outcomes: list[compare.Outcome], normalization: str, subject: compare.TrainingData) -> go.Figure:
    """Training loss and validation IoU (mean and rarest class) against the step, averaged over the
    runs of each variant that finished (a failed run's curve stops where it failed and is left out)."""
    rare = subject.rarest
    name = subject.dataset.class_names[rare]
    figure = make_subplots(rows=1, cols=3, subplot_titles=("training loss", "validation mean IoU", f"validation IoU, {name} (rarest)"))
    for k, variant in enumerate(_variants(outcomes, normalization)):
        done = [o for o in compare.finished(outcomes, variant) if o.loss_curve]
        if not done:
            continue
        colour = SEQUENCE[k % len(SEQUENCE)]
        steps = [s for s, _ in done[0].loss_curve]
        loss = np.mean([[v for _, v in o.loss_curve] for o in done], axis=0)
        iou = np.array([[values for _, values in o.iou_curve] for o in done])  # (runs, points, classes)
        iou_steps = [s for s, _ in done[0].iou_curve]
        common = dict(legendgroup=variant.name, line=dict(color=colour))
        figure.add_scatter(x=steps, y=loss, name=variant.name, row=1, col=1, **common)
        figure.add_scatter(x=iou_steps, y=np.nanmean(iou, axis=2).mean(axis=0), name=variant.name, showlegend=False, row=1, col=2, **common)
        figure.add_scatter(x=iou_steps, y=iou[:, :, rare].mean(axis=0), name=variant.name, showlegend=False, row=1, col=3, **common)
    figure.update_yaxes(type="log", row=1, col=1)
    figure.update_yaxes(range=[0, 1], row=1, col=2)
    figure.update_yaxes(range=[0, 1], row=1, col=3)
    figure.update_xaxes(title="step")
    figure.update_layout(title=f"Curves, mean over the finished runs ({NORMALIZATIONS[normalization]})", height=380, margin=dict(t=70, b=40))
    return figure


def prediction_gallery(outcomes: list[compare.Outcome], normalization: str, subject: compare.TrainingData, predictions: dict[str, np.ndarray]) -> str:
    """The example validation image, its truth, and per variant the rarest class's hits, false
    alarms and misses (the first seed that finished)."""
    dataset, rare, index = subject.dataset, subject.rarest, subject.example
    truth = dataset.val_masks[index]
    void = truth == dataset.ignore_index if dataset.ignore_index is not None else np.zeros(truth.shape, bool)
    cells = [
        ("image", plots.png_data_url(plots.enlarge(dataset.val_images[index] * 255))),
        ("truth", plots.png_data_url(plots.enlarge(plots.colorize(truth, dataset.class_colors, dataset.ignore_index)))),
    ]
    for variant in _variants(outcomes, normalization):
        done = [o for o in compare.finished(outcomes, variant) if compare.prediction_key(o) in predictions]
        if not done:
            cells.append((f"{variant.name}: every run failed", ""))
            continue
        run = done[0]
        outcome = plots.outcome_map(truth, predictions[compare.prediction_key(run)], rare)
        outcome[void] = plots.hex_to_rgb(plots.VOID_COLOR)
        cells.append((f"{variant.name}, seed {run.seed}: IoU {dataset.class_names[rare]} {run.iou[rare]:.2f}", plots.png_data_url(plots.enlarge(outcome))))
    legend = ", ".join(f'<span style="color:{c}">■</span> {html.escape(n)}' for n, c in plots.OUTCOME_COLORS.items())
    figures = "".join(
        f'<figure><img src="{src}" alt="{html.escape(label)}"><figcaption>{html.escape(label)}</figcaption></figure>' if src
        else f"<figure><figcaption>{html.escape(label)}</figcaption></figure>"
        for label, src in cells
    )
    return (f"<h3>{html.escape(dataset.class_names[rare])} (the rarest class) on validation image {index}, {NORMALIZATIONS[normalization]}</h3>"
            f"<p>{legend}</p><div class='gallery'>{figures}</div>")


def _inline(text: str) -> str:
    """Escaped text with `code` spans as <code>."""
    parts = html.escape(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick stays a backtick
        return "`".join(parts)
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _markdown_to_html(text: str) -> str:
    """The report's Markdown (paragraphs, bold lines, pipe tables, lists, `code`) as HTML."""
    out, table, items = [], [], []

    def flush():
        if table:
            rows = [[_inline(c.strip()) for c in line.strip("|").split("|")] for line in table if not set(line) <= set("|-")]
            head = "".join(f"<th>{c}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            table.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.startswith("**") and line.endswith("**"):
            out.append(f"<h3>{html.escape(line.strip('*'))}</h3>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush()
    return "\n".join(out)


# The gallery's own rules, scoped to it: the page shows the gallery too (explorer/ui/compare_view.py).
GALLERY_STYLE = """
.gallery { display: flex; flex-wrap: wrap; gap: 0.75em; }
.gallery figure { margin: 0; width: 200px; }
.gallery figure img { image-rendering: pixelated; width: 192px; }
.gallery figcaption { font-size: 0.8em; }
"""
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
""" + GALLERY_STYLE


def render(results: dict, subject: compare.TrainingData, predictions: dict[str, np.ndarray]) -> str:
    outcomes = compare.outcomes_from_json(results)
    settings = results["settings"]
    parts = [f"<h1>Which loss for this data? A comparison of {len(outcomes)} runs</h1>",
             f"<p><code>{html.escape(results['command'])}</code></p>"]
    if settings.get("data"):
        parts.append(f"<p>Data: {html.escape(settings['data'])}.</p>")
    include_js = True
    for normalization in settings["normalizations"]:
        parts.append(f"<h2>U-Net with {NORMALIZATIONS[normalization]}</h2>")
        for figure in (iou_bars(outcomes, normalization, subject), curves(outcomes, normalization, subject)):
            parts.append(figure.to_html(full_html=False, include_plotlyjs=include_js))
            include_js = False  # plotly.js once, inline: the file opens offline
        parts.append(prediction_gallery(outcomes, normalization, subject, predictions))
    parts.append("<h2>Tables</h2>")
    parts.append(_markdown_to_html(compare.report(results, subject, details=True)))
    return f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Loss comparison</title><style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"


def write(path: Path, results: dict, subject: compare.TrainingData, predictions: dict[str, np.ndarray]) -> None:
    Path(path).write_text(render(results, subject, predictions), encoding="utf-8")
