"""The headless comparison command on a tiny case: it trains, tabulates and writes its files."""

import csv

import numpy as np
import pytest

from explorer import compare, data


def test_compare_command_writes_a_table_per_loss(tmp_path, capsys):
    compare.main(["--losses", "ce,dice", "--steps", "3", "--seeds", "2", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    markdown = (tmp_path / "comparison.md").read_text()
    assert markdown in printed
    lines = markdown.strip().splitlines()
    assert lines[0].startswith("| loss | IoU background |") and len(lines) == 4
    with open(tmp_path / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["loss"] for r in rows] == ["ce", "dice"]
    for row in rows:
        for key in ("mean_iou_mean", "pixel_accuracy_mean", "iou_fibre_mean"):
            assert 0.0 <= float(row[key]) <= 1.0
        assert float(row["seconds_per_run"]) > 0


def test_compare_runs_each_seed_from_its_own_start_and_reports_spread():
    dataset = data.load_toy()
    (row,) = compare.compare(["ce"], steps=2, seeds=2, dataset=dataset)
    assert row.iou.shape == (2, dataset.num_classes)
    assert row.mean_iou.shape == (2,) and np.all(np.isfinite(row.mean_iou))
    assert row.mean_iou[0] != row.mean_iou[1], "different seeds, different initial weights"


def test_unknown_loss_is_refused_with_the_valid_names():
    with pytest.raises(SystemExit, match="focal_tversky"):
        compare.compare(["not_a_loss"], steps=1, seeds=1)
