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


def test_every_change_is_a_dotted_line_on_each_of_the_three_plots_and_named_once():
    events_b = ((10, "loss focal_tversky → dice"), (20, "learning rate 0.001 → 0.01"))
    figure = plots.training_curves({"A": state(), "B": state(events_b)}, CLASSES, COLORS).to_plotly_json()
    layout = figure["layout"]
    for step, _ in events_b:
        lines = [s for s in layout["shapes"] if s["x0"] == step == s["x1"]]
        assert sorted((s["xref"], s["yref"]) for s in lines) == [("x", "y domain"), ("x2", "y2 domain"), ("x3", "y3 domain")]
        assert all(s["line"]["dash"] == "dot" for s in lines)
    named = [a for a in layout["annotations"] if a["text"].startswith("B: ")]
    assert [(a["x"], a["text"]) for a in named] == [(step, f"B: {text}") for step, text in events_b]
    assert not [a for a in layout["annotations"] if a["text"].startswith("A: ")]


def test_each_curve_sits_on_its_own_plot_and_the_plots_keep_their_widths_and_titles():
    figure = plots.training_curves({"A": state(), "B": state()}, CLASSES, COLORS).to_plotly_json()
    axes = {trace["name"]: (trace.get("xaxis", "x"), trace.get("yaxis", "y")) for trace in figure["data"]}
    assert axes["A loss"] == axes["B loss"] == ("x", "y")
    assert all(axes[f"{run} {name}"] == ("x2", "y2") for run in "AB" for name in CLASSES)
    assert axes["A largest |logit|"] == axes["B largest |logit|"] == ("x3", "y3")
    layout = figure["layout"]
    (l1, r1), (l2, r2), (l3, r3) = domains(layout, "xaxis", 3)
    assert 0 == l1 < r1 < l2 < r2 < l3 < r3 == pytest.approx(1)
    assert (r1 - l1) == pytest.approx(r2 - l2) == pytest.approx(2 * (r3 - l3))
    assert layout["yaxis2"]["range"] == [0, 1] and layout["yaxis3"]["type"] == "log"
    titles = layout["annotations"][:3]
    assert [t["text"] for t in titles] == ["Training loss ÷ its first value", "Validation IoU per class", "Largest |logit| (validation)"]
    assert [t["x"] for t in titles] == pytest.approx([(l1 + r1) / 2, (l2 + r2) / 2, (l3 + r3) / 2])


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
