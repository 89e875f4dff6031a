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


# ----------------------------------------------------------------------------- sizes

LARGE = 256  # four times the committed size
N_SIZED = 12  # samples compared across sizes: 6 of the first 12 (seed 0) have fibres


@pytest.fixture(scope="module")
def by_size() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Images and masks of the first training samples at 64 and at LARGE pixels."""
    out = {}
    for size in (64, LARGE):
        pairs = [toydata.sample(0, "train", i, size) for i in range(N_SIZED)]
        out[size] = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    return out


def _erode(m: np.ndarray) -> np.ndarray:
    """Binary erosion of (N, H, W) masks by a 3x3 cross: a pixel stays if its 4 neighbours do."""
    p = np.pad(m, [(0, 0), (1, 1), (1, 1)])
    return p[:, 1:-1, 1:-1] & p[:, :-2, 1:-1] & p[:, 2:, 1:-1] & p[:, 1:-1, :-2] & p[:, 1:-1, 2:]


def test_erode_on_a_small_example():
    m = np.zeros((1, 7, 9), bool)
    m[0, 1:4, 1:8] = True  # a bar 3 pixels high keeps its middle row but the ends
    m[0, 5:7, :] = True  # one 2 pixels high, on the border, vanishes
    expected = np.zeros_like(m)
    expected[0, 2, 2:7] = True
    np.testing.assert_array_equal(_erode(m), expected)


def test_fibres_stay_thin_at_a_large_size(by_size):
    """Fibres are 1-2 pixels wide at any size: one erosion removes them, not the cells."""
    masks = by_size[LARGE][1]
    fibre, cell = masks == toydata.FIBRE, masks == toydata.CELL
    assert fibre.any(axis=(1, 2)).sum() >= 4, "too few samples with fibres to judge"
    assert _erode(fibre).sum() <= 0.05 * fibre.sum()  # measured: none is left
    assert _erode(cell).sum() >= 0.7 * cell.sum()  # measured: 93 %


def test_class_shares_at_a_large_size(by_size):
    """Same order of classes at 64 and LARGE; fibres, being thin, cover 4 times less."""
    shares = {size: class_fractions(masks, len(toydata.CLASSES))
              for size, (_, masks) in by_size.items()}
    for size, share in shares.items():
        assert share[0] > share[1] > share[2] > share[3] > 0, (size, share)
    small, large = shares[64], shares[LARGE]
    fibre = toydata.FIBRE
    # measured 0.24: a quarter, as long fibres but not wider on 16 times the pixels
    assert 0.15 * small[fibre] <= large[fibre] <= 0.3 * small[fibre], (small, large)
    np.testing.assert_allclose(large[:fibre], small[:fibre], rtol=0.1)  # measured: within 2 %


def test_a_larger_size_draws_the_same_scenes(by_size):
    """Sample i at LARGE is sample i at 64 drawn finer, background included."""
    (small_x, small_y), (large_x, large_y) = by_size[64], by_size[LARGE]
    k = LARGE // 64
    coarse = large_y[:, k // 2::k, k // 2::k]  # the pixel nearest each pixel centre at 64
    for c, min_iou in ((toydata.BACKGROUND, 0.97), (toydata.CELL, 0.9), (toydata.VESICLE, 0.85)):
        a, b = coarse == c, small_y == c
        iou = (a & b).sum() / (a | b).sum()
        assert iou >= min_iou, f"class {c}: IoU {iou:.2f}"  # measured 0.99, 0.96, 0.92
    has_fibre = [(y == toydata.FIBRE).any(axis=(1, 2)) for y in (small_y, large_y)]
    np.testing.assert_array_equal(*has_fibre)
    means = large_x.reshape(N_SIZED, 64, k, 64, k, 3).mean(axis=(2, 4))
    same = np.abs(means - small_x).mean()
    other = np.abs(means - small_x[::-1]).mean()
    assert same < 0.5 * other, (same, other)  # measured 10 and 37 grey levels


def test_cli_size(tmp_path, capsys):
    args = ["--train", "2", "--val", "1", "--out"]
    for bad in ("100", "24", "1032", "0"):
        with pytest.raises(SystemExit) as err:
            toydata.main(args + [str(tmp_path / "bad"), "--size", bad])
        assert err.value.code == 2
        assert "--size must be" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    toydata.main(args + [str(tmp_path / "big"), "--size", "128"])
    for split, count in (("train", 2), ("val", 1)):
        for kind, mode in (("images", "RGB"), ("masks", "L")):
            files = sorted((tmp_path / "big" / split / kind).glob("*.png"))
            assert len(files) == count
            for path in files:
                with Image.open(path) as im:
                    assert (im.mode, im.size) == (mode, (128, 128)), path
    meta = json.loads((tmp_path / "big" / "classes.json").read_text())
    assert meta["image_size"] == [128, 128]


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
