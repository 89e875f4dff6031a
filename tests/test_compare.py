"""The headless comparison: failed runs are listed and never averaged, paired differences against
plain cross-entropy with Student's t intervals, a worker pool that gives the same results, and the
README's table checked against the committed results and the code that made them."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from explorer import compare, data
from explorer.compare import command
from explorer.compare import Outcome, Variant
from test_training import tiny_dataset

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "comparison" / "results.json"


def outcome(loss_id: str, seed: int, mean_iou: float | None, scheme: str = "none", failed: str | None = None, normalization: str = "group") -> Outcome:
    scores = {} if failed else dict(iou=(0.9, 0.5, 0.3, mean_iou), dice=(0.9,) * 4, recall=(0.9,) * 4, mean_iou=mean_iou, pixel_accuracy=0.9)
    return Outcome(Variant(loss_id, scheme, normalization), seed, step=10, seconds=1.0, logit_scale=5.0, failed=failed, **scores)


def test_variants_give_losses_with_class_weights_one_run_per_scheme():
    got = compare.variants(["ce", "dice", "weighted_ce"], ["none", "balanced"], ["group", "none"])
    group = [v.name for v in got if v.normalization == "group"]
    assert group == ["ce", "dice (none)", "dice (balanced)", "weighted_ce (balanced)"], "weighted_ce without weights is ce"
    assert len(got) == 2 * len(group)
    with pytest.raises(SystemExit, match="focal_tversky"):
        compare.variants(["not_a_loss"], ["none"], ["group"])


def test_a_failed_run_is_listed_and_left_out_of_every_mean():
    outcomes = [
        outcome("ce", 0, 0.50), outcome("ce", 1, 0.60), outcome("ce", 2, 0.70),
        outcome("dice", 0, 0.80), outcome("dice", 1, None, failed="step 7 gave a non-finite loss (NaN)"), outcome("dice", 2, 0.90),
    ]
    dataset = data.load_toy()
    table = compare.scores_table(outcomes, "group", dataset)
    dice_row = next(line for line in table.splitlines() if line.startswith("| dice (none)"))
    cells = [c.strip() for c in dice_row.split("|")[1:-1]]
    assert cells[1] == "2/3"
    assert cells[dataset.class_names.index("fibre") + 2] == "0.850 ± 0.050", "the mean of the two finished runs only"
    assert "all background (for scale)" in table
    # Paired with CE on seeds 0 and 2 only: differences 0.30 and 0.20.
    diffs = compare.paired_differences(outcomes, Variant("dice", "none", "group"), lambda o: o.mean_iou)
    assert diffs == pytest.approx([0.30, 0.20])
    paired = compare.paired_table(outcomes, "group", dataset)
    assert "| dice (none) | 2 | +0.250 [" in paired
    assert compare.failures(outcomes) == ["dice (none), group, seed 1: step 7 gave a non-finite loss (NaN)"]


def test_a_variant_with_one_finished_run_shows_its_score_without_a_spread():
    outcomes = [outcome("ce", 0, 0.50), outcome("ce", 1, 0.60), outcome("dice", 0, 0.80), outcome("dice", 1, None, failed="NaN")]
    dataset = data.load_toy()
    dice_row = next(line for line in compare.scores_table(outcomes, "group", dataset).splitlines() if line.startswith("| dice (none)"))
    cells = [c.strip() for c in dice_row.split("|")[1:-1]]
    assert cells[1] == "1/2" and cells[dataset.class_names.index("fibre") + 2] == "0.800", "one run: its score, no ± 0.000"


def test_student_t_quantiles_put_2_5_percent_in_each_tail():
    """Checked against the t density integrated numerically, not against another table."""
    for dof in range(1, 31):
        q = compare.t_quantile_975(dof)
        x = np.linspace(-q, q, 400_001)
        log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
        density = np.exp(log_norm - (dof + 1) / 2 * np.log1p(x**2 / dof))
        inside = np.trapezoid(density, x)
        assert inside == pytest.approx(0.95, abs=2e-4), dof


def test_mean_interval_is_t_times_the_standard_error():
    values = np.array([0.1, 0.3, 0.2, 0.4, 0.25])
    mean, half = compare.mean_interval(values)
    assert mean == pytest.approx(0.25)
    assert half == pytest.approx(2.776 * np.std(values, ddof=1) / math.sqrt(5))
    assert math.isnan(compare.mean_interval([0.3])[1])


def test_a_run_the_nan_guard_halts_is_a_failure_with_its_step_and_reason():
    dataset = tiny_dataset()
    images = dataset.train_images.copy()
    images[:, 0, 0, 0] = np.nan
    poisoned = dataclasses.replace(dataset, train_images=images)
    result = compare.train_one(Variant("ce", "none", "group"), 0, 3, 1e-3, poisoned)
    assert result.failed and "non-finite" in result.failed and "NaN" in result.failed
    assert result.iou is None and result.mean_iou is None


def test_results_do_not_depend_on_the_number_of_workers_nor_on_the_main_module(tmp_path, monkeypatch):
    """Also under a main module that starts TensorFlow, as a Streamlit page does (AppTest leaves
    the page as __main__). Each spawned worker used to run it first: the pool then restarted the
    workers that failed to set their thread count, for ever (CI hung here). Now no worker runs it."""
    dataset = tiny_dataset()
    tasks = [(Variant("dice", "none", "group"), seed, 4, 3e-3) for seed in (0, 1)]
    alone = compare.run_all(tasks, dataset, workers=1, progress=lambda _: None)
    page, ran = tmp_path / "page.py", tmp_path / "the page ran"
    page.write_text(f"import tensorflow as tf\n\ntf.constant(1.0) + 1.0  # starts TensorFlow's context\nopen({str(ran)!r}, 'w').close()\n")
    main = types.SimpleNamespace(__file__=str(page), __spec__=None, __name__="__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    pooled = compare.run_all(tasks, dataset, workers=2, progress=lambda _: None)
    assert not ran.exists(), "the workers do not run the parent's main script (under Streamlit, the whole page)"
    assert all(name not in os.environ for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")), "the parent's environment is left as it was"
    assert sys.modules["__main__"] is main
    for a, b in zip(alone, pooled):
        assert dataclasses.replace(a, seconds=0) == dataclasses.replace(b, seconds=0)
    assert alone[0].mean_iou != alone[1].mean_iou, "different seeds, different runs"


def test_the_command_writes_results_tables_and_a_readme_section(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{compare.README_BEGIN}\nold\n{compare.README_END}\n\nAfter.\n")
    command.main(["--losses", "ce,dice", "--weights", "none,balanced", "--steps", "2", "--seeds", "2", "--out", str(tmp_path), "--readme", str(readme)])
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["runs"]) == 3 * 2 and results["code"] == compare.code_fingerprint()
    text = (tmp_path / "comparison.md").read_text()
    assert text in printed and text == compare.report(results, data.load_toy(), details=True)
    assert "Dice per class" in text and "Recall per class" in text
    assert compare.readme_section(readme.read_text()) == compare.report(results, data.load_toy())
    assert readme.read_text().startswith("# Title") and readme.read_text().endswith("After.\n")
    with open(tmp_path / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["loss"], r["weights"]) for r in rows] == [("ce", "none")] * 2 + [("dice", "none")] * 2 + [("dice", "balanced")] * 2
    assert all(0 <= float(r["mean_iou"]) <= 1 for r in rows)


def test_the_fingerprint_ignores_comments_and_docstrings_but_not_code(tmp_path):
    for name in compare.RESULT_CODE:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / compare.RESULT_DATA, tmp_path / compare.RESULT_DATA)
    original = compare.code_fingerprint(tmp_path)
    assert original == compare.code_fingerprint()
    losses_py = tmp_path / "explorer" / "losses.py"
    source = losses_py.read_text()
    losses_py.write_text(source.replace('"""', '"""Reworded. ', 1) + "\n# a new comment\n")
    assert compare.code_fingerprint(tmp_path) == original
    losses_py.write_text(source.replace("_PROB_EPS = 1e-7", "_PROB_EPS = 1e-6"))
    assert compare.code_fingerprint(tmp_path) != original


def test_the_readme_table_is_the_committed_commands_output_at_this_code():
    """The README's comparison section is exactly the report of docs/comparison/results.json, and
    those results were measured at the code that is here: rerun the command in the section after
    changing the training or scoring code (the fingerprint says so)."""
    results = json.loads(COMMITTED.read_text())
    readme = (ROOT / "README.md").read_text()
    assert compare.readme_section(readme) == compare.report(results, data.load_toy())
    assert results["code"] == compare.code_fingerprint(), (
        "the training or scoring code changed since the README's comparison was measured: rerun\n"
        f"  {results['command']} --workers=2 --out=docs/comparison --readme=README.md"
    )
    assert len(results["settings"]["seeds"]) >= 5


class DiesWhenUnpickled:
    """A worker that receives this dies at once, as one killed for its memory would."""

    def __reduce__(self):
        return (os._exit, (9,))


def test_a_worker_that_dies_is_a_failed_run_and_the_sweep_ends(tmp_path):
    dataset = tiny_dataset()
    deadly = compare.TrainingData(DiesWhenUnpickled(), compare.TrainingData.of(dataset).counts, 0)
    tasks = [(Variant("ce", "none", "group"), seed, 2, 1e-3) for seed in (0, 1)]
    lines = []
    outcomes = compare.run_all(tasks, deadly, workers=1, progress=lines.append)
    assert [o.failed for o in outcomes] == ["its worker process died twice (out of memory, or killed)"] * 2
    assert [(o.variant, o.seed) for o in outcomes] == [t[:2] for t in tasks]
    assert len(lines) == 2 and all("FAILED" in line for line in lines) and " 2/2 " in lines[-1]


def test_a_run_that_raises_is_a_failed_run_and_the_others_finish():
    dataset = tiny_dataset()
    broken = Variant("ce", "none", "no_such_normalization")  # build_unet refuses it
    outcomes = compare.run_all([(broken, 0, 2, 1e-3), (Variant("ce", "none", "group"), 0, 2, 1e-3)], dataset, workers=1, progress=lambda _: None)
    assert outcomes[0].failed.startswith("ValueError: unknown normalization 'no_such_normalization'")
    assert outcomes[1].failed is None and outcomes[1].step == 2 and outcomes[1].prediction is not None


def test_a_stop_cancels_the_runs_not_finished_and_returns_the_finished_ones():
    """Cancel on the page: once should_stop is true the run in flight stops at its next piece (it
    would train for a long while otherwise), the runs not started never start, and both are failed
    runs with the reason "cancelled"."""
    dataset = tiny_dataset()
    ce = Variant("ce", "none", "group")
    tasks = [(ce, 0, 2, 1e-3), (ce, 1, 1000, 1e-3), (ce, 2, 2, 1e-3), (ce, 3, 2, 1e-3)]
    lines = []
    outcomes = compare.run_all(tasks, dataset, workers=1, progress=lines.append, should_stop=lambda: len(lines) >= 1)
    assert outcomes[0].failed is None and outcomes[0].step == 2
    assert [o.failed for o in outcomes[1:]] == [compare.CANCELLED] * 3
    assert [(o.variant, o.seed) for o in outcomes] == [t[:2] for t in tasks]
    assert "FAILED" not in lines[0] and " 1/4 " in lines[0]


def test_a_plan_trains_cross_entropy_too_and_names_its_command_line():
    plan = compare.Plan(("dice",), ("none", "balanced"), steps=20, seeds=2)
    assert plan.loss_ids == ["ce", "dice"], "the paired differences need plain cross-entropy"
    assert [(v.name, seed) for v, seed, *_ in plan.tasks()] == [(name, s) for name in ("ce", "dice (none)", "dice (balanced)") for s in (0, 1)]
    assert plan.command() == "python -m explorer.compare --losses=dice --weights=none,balanced --normalization=group --steps=20 --seeds=2 --lr=0.003"


def test_the_command_compares_losses_on_your_own_data_and_writes_an_html_report(tmp_path, capsys):
    from test_owndata import write_set

    folder = write_set(tmp_path / "mine")
    out = tmp_path / "out"
    command.main(["--data", str(folder), "--crop", "32", "--pool", "48", "--losses", "ce,dice", "--weights", "none",
                  "--steps", "4", "--seeds", "2", "--workers", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "4 training images (3 sizes" in printed and "as 48 crops of 32×32 (uniform); 2 whole validation images (padded to 128×96)" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["command"].startswith("python -m explorer.compare --data=") and "--crop=32" in results["command"]
    assert len(results["runs"]) == 2 * 2 and all(r["failed"] is None for r in results["runs"])
    assert all(len(r["iou_curve"]) == 4 and r["iou_curve"][-1][0] == 4 for r in results["runs"]), "a snapshot for the curves at every step of 4"
    predictions = np.load(out / "predictions.npz")
    assert sorted(predictions.files) == sorted(f"{l}|none|group|{s}" for l in ("ce", "dice") for s in (0, 1))
    assert predictions["ce|none|group|0"].shape == (96, 128), "whole validation images"
    page = (out / "report.html").read_text()
    assert page.count("plotly.js v") == 1 and page.count('<img src="data:image/png;base64,') == 2 + 2
    with pytest.raises(SystemExit, match="does not exist"):
        command.main(["--data", str(tmp_path / "nowhere"), "--out", str(out)])
