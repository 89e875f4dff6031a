"""The page's figures are laid out by hand (explorer/plots.py): each trace on its own plot, change
markers on every plot, titles over their plots, square pixels in the probability maps."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from explorer import plots

CLASSES = ("background", "cell", "fibre", "speck")
COLORS = ("#000000", "#ff0000", "#00ff00", "#0000ff")


def state(events=(), steps=30):
    evaluations = [SimpleNamespace(step=s, scores=SimpleNamespace(iou=np.linspace(0, 1, 4)), logit_scale=2.0 + s) for s in range(0, steps, 10)]
    return SimpleNamespace(loss_steps=list(range(steps)), loss_values=list(np.linspace(2, 1, steps)), evaluations=evaluations, events=tuple(events))


def domains(layout, axis: str, count: int) -> list[tuple[float, float]]:
    return [tuple(layout[f"{axis}{i + 1 if i else ''}"]["domain"]) for i in range(count)]


def test_every_change_is_a_dotted_line_on_each_of_the_three_plots_and_named_once_on_the_loss_plot():
    events_b = ((10, "loss focal_tversky → dice"), (20, "learning rate 0.001 → 0.01"))
    runs = {"A": state(), "B": state(events_b)}
    loss = plots.loss_curves(runs).to_plotly_json()["layout"]
    validation = plots.validation_curves(runs, CLASSES, COLORS).to_plotly_json()["layout"]
    for step, _ in events_b:
        for layout, plots_drawn in ((loss, [("x", "y domain")]), (validation, [("x", "y domain"), ("x2", "y2 domain")])):
            lines = [s for s in layout["shapes"] if s["x0"] == step == s["x1"]]
            assert sorted((s["xref"], s["yref"]) for s in lines) == plots_drawn
            assert all(s["line"]["dash"] == "dot" for s in lines)
    named = [a for a in loss["annotations"] if a["text"].startswith("B: ")]
    assert [(a["x"], a["text"]) for a in named] == [(step, f"B: {text}") for step, text in events_b]
    assert not [a for a in loss["annotations"] + validation["annotations"] if a["text"].startswith("A: ")]
    assert not [a for a in validation["annotations"] if a["text"].startswith("B: ")]


def test_each_curve_sits_on_its_own_plot_and_the_plots_keep_their_widths_and_titles():
    runs = {"A": state(), "B": state()}
    loss = plots.loss_curves(runs).to_plotly_json()
    assert [t["name"] for t in loss["data"]] == ["A", "B"]
    # Above the plot, where no curve goes: the title on the left, the legend in a row on the right.
    legend, (title,) = loss["layout"]["legend"], loss["layout"]["annotations"]
    assert (legend["orientation"], legend["y"], legend["yanchor"], legend["xanchor"]) == ("h", 1, "bottom", "right")
    assert (title["x"], title["xanchor"], title["y"], title["yanchor"]) == (0, "left", 1, "bottom")
    assert all((t.get("xaxis", "x"), t.get("yaxis", "y")) == ("x", "y") for t in loss["data"])
    assert [t["line"]["dash"] for t in loss["data"]] == list(plots.RUN_DASHES[:2])
    assert [a["text"] for a in loss["layout"]["annotations"]] == ["Training loss ÷ its first value"]
    validation = plots.validation_curves(runs, CLASSES, COLORS).to_plotly_json()
    axes = {trace["name"]: (trace.get("xaxis", "x"), trace.get("yaxis", "y")) for trace in validation["data"]}
    assert all(axes[f"{run} {name}"] == ("x", "y") for run in "AB" for name in CLASSES)
    assert axes["A largest |logit|"] == axes["B largest |logit|"] == ("x2", "y2")
    assert len(axes) == 2 * (len(CLASSES) + 1)
    layout = validation["layout"]
    (l1, r1), (l2, r2) = domains(layout, "xaxis", 2)
    assert 0 == l1 < r1 < l2 < r2 == pytest.approx(1)
    assert (r1 - l1) == pytest.approx(2 * (r2 - l2))
    assert layout["yaxis"]["range"] == [0, 1] and layout["yaxis2"]["type"] == "log"
    assert [(t["text"], t["x"]) for t in layout["annotations"]] == [
        ("Validation IoU per class", pytest.approx((l1 + r1) / 2)),
        ("Largest |logit| (validation)", pytest.approx((l2 + r2) / 2)),
    ]


def test_a_long_loss_curve_is_drawn_with_every_kth_step_the_first_and_last_kept_and_relative_to_the_first_loss():
    steps = 2345
    long = SimpleNamespace(loss_steps=tuple(range(1, steps + 1)), loss_values=tuple(3.0 - np.arange(steps) / steps), evaluations=(), events=())
    (trace,) = plots.loss_curves({"A": long}).data
    x = np.asarray(trace.x)
    assert len(x) <= plots.LOSS_CURVE_POINTS + 1
    assert x[0] == 1 and x[-1] == steps
    gaps = np.diff(x)
    assert gaps[:-1].min() == gaps[:-1].max() == -(-steps // plots.LOSS_CURVE_POINTS)  # evenly spaced but the last
    np.testing.assert_allclose(trace.customdata, 3.0 - (x - 1) / steps)  # the loss at exactly those steps
    np.testing.assert_allclose(trace.y, np.asarray(trace.customdata) / 3.0)
    (short,) = plots.loss_curves({"A": state()}).data
    assert list(short.x) == list(range(30))  # a short curve is drawn whole


@pytest.mark.parametrize("side", [16, 300])
def test_probability_maps_one_square_pixelled_map_per_class_under_its_name(side):
    probabilities = np.random.default_rng(0).dirichlet(np.ones(4), size=(side, side))
    figure = plots.probability_maps(probabilities, CLASSES, "Probability per class")
    heatmaps, layout = figure.to_plotly_json()["data"], figure.to_plotly_json()["layout"]
    assert [h["type"] for h in heatmaps] == ["heatmap"] * 4
    assert [h.get("showscale") for h in heatmaps] == [False, False, False, True]  # one shared colour bar
    shown = plots.shrink(probabilities)
    for c, heatmap in enumerate(heatmaps):
        suffix = str(c + 1) if c else ""
        assert (heatmap["xaxis"], heatmap["yaxis"]) == (f"x{suffix}", f"y{suffix}")
        np.testing.assert_array_equal(figure.data[c].z, shown[..., c])
        assert layout[f"yaxis{suffix}"]["scaleanchor"] == f"x{suffix}"  # square pixels
        assert layout[f"yaxis{suffix}"]["autorange"] == "reversed"  # row 0 at the top, as in an image
    spans = domains(layout, "xaxis", 4)
    assert all(right < next_left for (_, right), (next_left, _) in zip(spans, spans[1:]))
    assert [(a["text"], a["x"]) for a in layout["annotations"]] == [(name, pytest.approx((l + r) / 2)) for name, (l, r) in zip(CLASSES, spans)]


def test_enlarge_repeats_each_pixel_up_to_the_target_width_and_leaves_large_images_alone():
    mask = np.arange(64 * 50).reshape(64, 50) % 7
    big = plots.enlarge(mask)  # 192 // 64 = 3
    assert big.shape == (192, 150)
    assert np.array_equal(big[::3, ::3], mask) and np.array_equal(big[2::3, 1::3], mask)
    large = np.zeros((200, 120, 3), np.uint8)
    assert plots.enlarge(large).shape == large.shape


def test_png_data_url_holds_the_image_exactly():
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    url = plots.png_data_url(rgb)
    assert url.startswith("data:image/png;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert np.array_equal(decoded, rgb)
