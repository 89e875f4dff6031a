"""The comparison's HTML report: bars that are the means of the finished runs with Student's t
intervals, curves of the finished runs only, the rarest class's prediction of every variant on one
validation image, and a file that opens offline."""

from __future__ import annotations

import re

import numpy as np
import pytest

from explorer import compare, html_report
from explorer.compare import Outcome, TrainingData, Variant
from test_training import tiny_dataset

T_975_2 = 4.303  # Student's t, 2 degrees of freedom, 97.5 % (a printed table)


def run(loss_id: str, seed: int, iou: tuple[float, float, float] | None, scheme: str = "none", shape=(8, 16, 16)) -> Outcome:
    variant = Variant(loss_id, scheme, "group")
    curves = dict(loss_curve=((5, 1.0 - 0.1 * seed), (10, 0.5)), iou_curve=((5, (0.5, 0.1, 0.0)), (10, iou or (0.6, 0.2, 0.1))))
    if iou is None:
        return Outcome(variant, seed, 5, 1.0, 3.0, failed="step 5 gave a non-finite loss (NaN)", **curves)
    prediction = np.full(shape[1:], seed % 3, np.uint8)
    return Outcome(variant, seed, 10, 1.0, 3.0, iou=iou, dice=iou, recall=iou, mean_iou=float(np.mean(iou)), pixel_accuracy=0.9, prediction=prediction, **curves)


@pytest.fixture(scope="module")
def comparison():
    subject = TrainingData.of(tiny_dataset())
    outcomes = [
        run("ce", 0, (0.9, 0.5, 0.1)), run("ce", 1, (0.8, 0.4, 0.3)), run("ce", 2, (0.85, 0.6, 0.2)),
        run("dice", 0, (0.7, 0.6, 0.5)), run("dice", 1, None), run("dice", 2, (0.75, 0.5, 0.3)),
        run("dice", 0, None, "balanced"), run("dice", 1, None, "balanced"), run("dice", 2, None, "balanced"),
    ]
    results = {
        "command": "python -m explorer.compare --test", "code": "0" * 16,
        "settings": {"losses": ["ce", "dice"], "weights": ["none", "balanced"], "normalizations": ["group"], "steps": 10, "seeds": [0, 1, 2], "learning_rate": 3e-3, "data": "a test set"},
        "runs": [compare.outcome_json(o) for o in outcomes],
    }
    predictions = {compare.prediction_key(o): o.prediction for o in outcomes if o.prediction is not None}
    return subject, outcomes, results, predictions


def test_the_bars_are_means_of_the_finished_runs_with_t_intervals(comparison):
    subject, outcomes, _, _ = comparison
    figure = html_report.iou_bars(outcomes, "group", subject)
    bars = {trace.name: trace for trace in figure.data if trace.type == "bar"}
    assert set(bars) == {"ce (3/3 finished)", "dice (none) (2/3 finished)"}, "a variant with no finished run has no bar"
    ce = bars["ce (3/3 finished)"]
    fibre = [0.1, 0.3, 0.2]
    assert ce.y[2] == pytest.approx(0.2)
    assert ce.error_y.array[2] == pytest.approx(T_975_2 * np.std(fibre, ddof=1) / np.sqrt(3))
    dice = bars["dice (none) (2/3 finished)"]
    assert dice.y[0] == pytest.approx(0.725), "the failed run is left out"
    background = next(t for t in figure.data if t.name == "all background")
    assert background.y[0] == pytest.approx((subject.dataset.val_masks == 0).mean())


def test_curves_average_the_finished_runs_and_show_the_rarest_class(comparison):
    subject, outcomes, _, _ = comparison
    figure = html_report.curves(outcomes, "group", subject)
    loss = [t for t in figure.data if t.xaxis == "x" and t.name == "ce"]
    assert len(loss) == 1 and list(loss[0].y) == pytest.approx([np.mean([1.0, 0.9, 0.8]), 0.5])
    rare = [t for t in figure.data if t.xaxis == "x3" and t.name == "dice (none)"]
    finished_ious = [(0.7, 0.6, 0.5), (0.75, 0.5, 0.3)]  # seeds 0 and 2; seed 1 failed
    assert rare[0].y[-1] == pytest.approx(np.mean([iou[subject.rarest] for iou in finished_ious]))
    assert subject.dataset.class_names[subject.rarest] in figure.layout.annotations[2].text


def test_the_report_opens_offline_with_one_prediction_per_variant(comparison):
    subject, _, results, predictions = comparison
    page = html_report.render(results, subject, predictions)
    assert not re.search(r"<script[^>]+src=", page), "no script is fetched"
    markup = re.sub(r"<script.*?</script>", "", page, flags=re.S)  # plotly.js holds links, which it does not fetch
    assert not re.search(r"""(src|href)=["']https?://""", markup), "nothing is fetched"
    assert page.count("plotly.js v") == 1, "plotly.js inlined once"
    images = re.findall(r'<img src="data:image/png;base64,', page)
    assert len(images) == 2 + 2, "the image, its truth, and one map per variant with a finished run"
    assert "dice (balanced): every run failed" in page
    assert "Failed runs (left out of every mean): 4." in page
    assert "Dice per class" in page and "Recall per class" in page and "a test set" in page


def test_code_spans_of_the_report_are_code_and_stray_backticks_stay():
    assert html_report._markdown_to_html("Run `python -m x --a <b>` again.") == "<p>Run <code>python -m x --a &lt;b&gt;</code> again.</p>"
    assert html_report._markdown_to_html("one ` alone") == "<p>one ` alone</p>"
    table = html_report._markdown_to_html("| a | b |\n|---|---|\n| `x` | y |")
    assert "<td><code>x</code></td>" in table
