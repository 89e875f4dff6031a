"""The toy dataset: its generator, the committed files and what they must be like."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import toydata
from explorer.data import TOY_DIR, Dataset, class_fractions, load_toy, presence

# Pixel shares over the training set required by the design (class order of classes.json).
SHARE_BANDS = {
    "background": (0.85, 0.90),
    "cell": (0.08, 0.10),
    "vesicle": (0.02, 0.03),
    "fibre": (0.003, 0.01),
}
RARE, SMALL, COMMON = "fibre", "vesicle", "cell"
COLOUR_RULE_MAX_IOU = 0.5


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _pixels(data: bytes) -> np.ndarray:
    import io
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


@pytest.fixture(scope="module")
def toy() -> Dataset:
    return load_toy()


# ----------------------------------------------------------------------------- generator


def test_same_seed_writes_same_bytes_and_other_seed_differs(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        toydata.generate(tmp_path / name, seed=seed, n_train=6, n_val=3)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert len(a) == 2 * (6 + 3) + 1
    assert a == b
    assert a.keys() == c.keys()
    images = [k for k in a if "/images/" in k]
    assert all(a[k] != c[k] for k in images), "another seed must give other images"
    assert any(a[k] != c[k] for k in a if "/masks/" in k)


def test_smaller_set_is_a_prefix_and_stale_files_are_removed(tmp_path):
    toydata.generate(tmp_path / "big", seed=1, n_train=5, n_val=4)
    toydata.generate(tmp_path / "small", seed=1, n_train=2, n_val=1)
    toydata.generate(tmp_path / "big", seed=1, n_train=2, n_val=1)  # overwrite in place
    assert _files(tmp_path / "big") == _files(tmp_path / "small")


def test_cli_writes_what_generate_writes(tmp_path):
    toydata.main(["--out", str(tmp_path / "cli"), "--seed", "7", "--train", "3", "--val", "2"])
    toydata.generate(tmp_path / "api", seed=7, n_train=3, n_val=2)
    assert _files(tmp_path / "cli") == _files(tmp_path / "api")
    meta = json.loads((tmp_path / "cli" / "classes.json").read_text())
    assert meta["seed"] == 7
    assert meta["splits"] == {"train": 3, "val": 2}
    assert meta["generator_version"] == toydata.GENERATOR_VERSION


def test_committed_assets_equal_generator_output(tmp_path):
    """assets/toy is exactly what `python -m explorer.toydata` writes; regenerate if not."""
    toydata.main(["--out", str(tmp_path)])  # every other argument at its default
    fresh, committed = _files(tmp_path), _files(TOY_DIR)
    assert sorted(committed) == sorted(fresh), "files differ; run python -m explorer.toydata"
    differing = [k for k in fresh if fresh[k] != committed[k]]
    if differing:
        name = differing[0]
        same_pixels = name.endswith(".png") and np.array_equal(
            _pixels(fresh[name]), _pixels(committed[name]))
        pytest.fail(f"{len(differing)} files differ from the generator's output, e.g. {name} "
                    + ("(same pixels, other PNG encoding: a different zlib?)" if same_pixels
                       else "(different content)")
                    + "; run python -m explorer.toydata")


def test_png_files_carry_no_metadata():
    """Only IHDR, IDAT and IEND chunks: no time stamps or text that would break determinism."""
    for path in (TOY_DIR / "train/images/0000.png", TOY_DIR / "train/masks/0000.png"):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        pos, chunks = 8, []
        while pos < len(data):
            length = int.from_bytes(data[pos:pos + 4], "big")
            chunks.append(data[pos + 4:pos + 8].decode("ascii"))
            pos += 12 + length
        assert set(chunks) == {"IHDR", "IDAT", "IEND"}, chunks


def test_file_formats():
    with Image.open(TOY_DIR / "train/images/0000.png") as im:
        assert (im.mode, im.size) == ("RGB", (64, 64))
    with Image.open(TOY_DIR / "val/masks/0000.png") as im:
        assert (im.mode, im.size) == ("L", (64, 64))
    meta = json.loads((TOY_DIR / "classes.json").read_text())
    for c in meta["classes"]:
        assert re.fullmatch(r"#[0-9a-f]{6}", c["color"]), c


# ----------------------------------------------------------------------------- loading


def test_load_toy_shapes_dtypes_and_ranges(toy):
    assert toy.num_classes == 4
    assert len(set(toy.class_names)) == 4 and toy.class_names[0] == "background"
    assert len(set(toy.class_colors)) == 4
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in toy.class_colors)
    assert toy.train_images.shape[0] >= 400 and toy.val_images.shape[0] >= 100
    for images, masks in ((toy.train_images, toy.train_masks), (toy.val_images, toy.val_masks)):
        assert images.shape[1:] == (64, 64, 3) and images.dtype == np.float32
        assert masks.shape == images.shape[:3] and masks.dtype == np.uint8
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert images.max() > 0.9 and images.min() < 0.3  # really scaled to [0, 1]
        assert set(np.unique(masks)) == {0, 1, 2, 3}
        assert not images.flags.writeable and not masks.flags.writeable


def test_load_toy_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    assert TOY_DIR.is_absolute()
    monkeypatch.chdir(tmp_path)
    assert load_toy().train_masks.shape[0] >= 400


def test_load_toy_matches_the_generator(toy):
    image, mask = toydata.sample(0, "val", 7)
    np.testing.assert_array_equal(toy.val_masks[7], mask)
    np.testing.assert_array_equal(np.rint(toy.val_images[7] * 255).astype(np.uint8), image)


def test_load_toy_reports_missing_and_mismatched_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="explorer.toydata"):
        load_toy(tmp_path)
    toydata.generate(tmp_path, seed=0, n_train=2, n_val=1)
    (tmp_path / "train/masks/0001.png").unlink()
    with pytest.raises(ValueError, match="one to one"):
        load_toy(tmp_path)


def test_class_fractions_and_presence_on_a_small_example():
    masks = np.zeros((3, 2, 2), np.uint8)
    masks[0, 0, 0] = 1
    masks[1] = 1
    masks[2, 1, 1] = 2
    np.testing.assert_allclose(class_fractions(masks, 4), [6 / 12, 5 / 12, 1 / 12, 0])
    np.testing.assert_allclose(presence(masks, 4), [2 / 3, 2 / 3, 1 / 3, 0])
    with pytest.raises(ValueError):
        class_fractions(masks, 2)
    with pytest.raises(ValueError):
        presence(masks, 2)


# ----------------------------------------------------------------------------- imbalance


@pytest.mark.parametrize("split", ["train", "val"])
def test_class_shares_are_in_the_required_bands(toy, split):
    masks = getattr(toy, f"{split}_masks")
    shares = class_fractions(masks, toy.num_classes)
    assert tuple(SHARE_BANDS) == toy.class_names
    for name, share in zip(toy.class_names, shares):
        low, high = SHARE_BANDS[name]
        assert low <= share <= high, f"{split}: {name} covers {share:.2%}, not {low:.1%}..{high:.1%}"


def test_rare_class_is_absent_from_a_third_of_the_images(toy):
    present = presence(toy.train_masks, toy.num_classes)
    rare = toy.class_names.index(RARE)
    assert present[rare] <= 2 / 3
    assert present[rare] >= 0.2  # but not vanishing: the network must see it
    assert present[0] == 1.0


# ----------------------------------------------------------------------------- no colour rule


def _colour_rule_ious(train_x, train_y, val_x, val_y, num_classes, bins):
    """Best IoU per class reachable by a per-pixel colour rule, fitted on train, scored on val.

    Two rules: nearest class-mean colour; and, per class, quantise RGB into bins³ cells, rank
    the cells by the training share of the class, and predict the class on the top cells,
    with the cut chosen to maximise the training IoU (this includes the majority vote).
    """
    def flat(x):
        return np.rint(np.asarray(x).reshape(-1, 3) * 255).astype(np.int64)

    tx, vx = flat(train_x), flat(val_x)
    ty, vy = np.asarray(train_y).ravel(), np.asarray(val_y).ravel()

    def iou(pred, truth):
        union = np.sum(pred | truth)
        return np.sum(pred & truth) / union if union else 1.0

    means = np.stack([tx[ty == c].mean(axis=0) for c in range(num_classes)])
    dist = ((vx[:, None, :] - means[None]) ** 2).sum(axis=-1)
    nearest = dist.argmin(axis=1)
    best = np.array([iou(nearest == c, vy == c) for c in range(num_classes)])

    step = 256 // bins
    weights = np.array([bins * bins, bins, 1])
    tcell, vcell = (tx // step) @ weights, (vx // step) @ weights
    counts = np.bincount(tcell * num_classes + ty, minlength=bins**3 * num_classes)
    counts = counts.reshape(bins**3, num_classes).astype(np.float64)
    total = counts.sum(axis=1)
    for c in range(num_classes):
        positives = counts[:, c]
        share = np.divide(positives, total, out=np.zeros_like(total), where=total > 0)
        order = np.argsort(-share, kind="stable")
        tp, claimed = np.cumsum(positives[order]), np.cumsum(total[order])
        cut = int(np.argmax(tp / (claimed + positives.sum() - tp))) + 1
        chosen = np.zeros(bins**3, bool)
        chosen[order[:cut]] = True
        best[c] = max(best[c], iou(chosen[vcell], vy == c))
    return best


def test_colour_rule_finds_colour_separable_classes():
    """The baseline itself works: on classes that colour does separate it scores ~1."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=(40, 8, 8)).astype(np.uint8)
    palette = np.array([[0.2, 0.2, 0.2], [0.8, 0.1, 0.1], [0.1, 0.7, 0.9]])
    x = np.clip(palette[y] + rng.normal(0, 0.03, y.shape + (3,)), 0, 1)
    ious = _colour_rule_ious(x[:30], y[:30], x[30:], y[30:], 3, bins=16)
    assert ious.min() > 0.95


@pytest.mark.parametrize("bins", [8, 16, 32])
def test_no_per_pixel_colour_rule_segments_the_objects(toy, bins):
    ious = _colour_rule_ious(toy.train_images, toy.train_masks, toy.val_images, toy.val_masks,
                             toy.num_classes, bins)
    for name in (RARE, SMALL, COMMON):
        c = toy.class_names.index(name)
        assert ious[c] < COLOUR_RULE_MAX_IOU, f"colour alone gives {name} an IoU of {ious[c]:.2f}"
