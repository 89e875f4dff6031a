"""Own datasets at their own resolution: read from a folder or a zip by the uploads' code, trained
on seeded crops, validated on whole padded images, class counts over the full-resolution masks."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import owndata, uploads
from explorer.training import Run, RunConfig

THIN = 3  # class of a 1-pixel line


def write_set(root: Path, sizes=((96, 128), (120, 80), (96, 128), (64, 72)), val_sizes=((96, 128), (88, 64)), seed: int = 0) -> Path:
    """train/ and val/ folders of random images with a block (class 1), a disc (class 2) and a
    1-pixel horizontal line (class 3) in every mask."""
    rng = np.random.default_rng(seed)
    for split, shapes in (("train", sizes), ("val", val_sizes)):
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i, (h, w) in enumerate(shapes):
            image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            mask = np.zeros((h, w), np.uint8)
            mask[5:25, 10:40] = 1
            yy, xx = np.mgrid[:h, :w]
            mask[(yy - h // 2) ** 2 + (xx - w // 2) ** 2 <= 36] = 2
            mask[h - 30, 3 : w - 3] = THIN
            Image.fromarray(image).save(root / split / "images" / f"{i:03d}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"{i:03d}_mask.png")
    return root


def read_masks(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_set(tmp_path_factory.mktemp("own"))


def test_a_folder_is_read_at_its_resolution_crops_to_train_whole_images_to_validate(folder):
    own = owndata.load(folder, crop=32, pool=200, seed=0)
    d = own.dataset
    assert d.train_images.shape == (200, 32, 32, 3) and d.train_masks.shape == (200, 32, 32)
    assert d.train_images.dtype == np.float32 and 0 <= d.train_images.min() and d.train_images.max() <= 1
    # The two validation images, whole, padded to the largest (96, 128): already multiples of 8.
    assert d.val_images.shape == (2, 96, 128, 3)
    truth = read_masks(folder / "val" / "masks")
    assert np.array_equal(d.val_masks[0], truth[0])
    assert np.array_equal(d.val_masks[1, :88, :64], truth[1])
    assert np.all(d.val_masks[1, 88:] == uploads.VOID) and np.all(d.val_masks[1, :, 64:] == uploads.VOID)
    assert d.ignore_index == uploads.VOID
    # Class counts over the full-resolution training masks, counted here independently.
    expected = sum(np.bincount(m.ravel(), minlength=4) for m in read_masks(folder / "train" / "masks"))
    assert own.counts.pixels.tolist() == expected.tolist()
    assert own.image_sizes == ((96, 128), (120, 80), (96, 128), (64, 72))
    assert "4 training images" in own.describe() and "200 crops of 32×32" in own.describe()


def test_every_crop_is_a_window_of_a_training_image_and_the_same_seed_gives_the_same_crops(folder):
    own = owndata.load(folder, crop=32, pool=60, seed=3)
    images = [np.asarray(Image.open(p)) for p in sorted((folder / "train" / "images").glob("*.png"))]
    masks = read_masks(folder / "train" / "masks")
    for k in range(0, 60, 7):
        crop = np.rint(own.dataset.train_images[k] * 255).astype(np.uint8)
        found = [
            (i, top, left)
            for i, image in enumerate(images)
            for top in range(image.shape[0] - 31)
            for left in range(image.shape[1] - 31)
            if image[top, left, 0] == crop[0, 0, 0] and np.array_equal(image[top : top + 32, left : left + 32], crop)
        ]
        assert len(found) == 1, k
        i, top, left = found[0]
        assert np.array_equal(own.dataset.train_masks[k], masks[i][top : top + 32, left : left + 32])
    again = owndata.load(folder, crop=32, pool=60, seed=3)
    assert np.array_equal(again.dataset.train_images, own.dataset.train_images)
    other = owndata.load(folder, crop=32, pool=60, seed=4)
    assert not np.array_equal(other.dataset.train_images, own.dataset.train_images)


def expected_crop_shares(masks: list[np.ndarray], crop: int, classes: int) -> np.ndarray:
    """Class shares of uniform crops, computed from how many crop positions cover each pixel: an
    image is picked in proportion to its area, the crop's top-left corner uniformly."""
    areas = np.array([m.size for m in masks], dtype=np.float64)
    shares = np.zeros(classes)
    for mask, p in zip(masks, areas / areas.sum()):
        h, w = mask.shape
        rows = np.array([min(r, h - crop) - max(0, r - crop + 1) + 1 for r in range(h)], dtype=np.float64)
        cols = np.array([min(x, w - crop) - max(0, x - crop + 1) + 1 for x in range(w)], dtype=np.float64)
        coverage = np.outer(rows, cols) / ((h - crop + 1) * (w - crop + 1) * crop * crop)
        shares += p * np.bincount(mask.ravel(), weights=coverage.ravel(), minlength=classes)
    return shares


def test_uniform_crops_keep_the_class_shares_and_rare_crops_are_only_taken_when_asked(folder):
    uniform = owndata.load(folder, crop=32, pool=1500, seed=0)
    expected = expected_crop_shares(read_masks(folder / "train" / "masks"), 32, 4)
    assert expected.sum() == pytest.approx(1.0)
    assert uniform.pool_shares == pytest.approx(expected, rel=0.1)
    assert "uniform" in uniform.describe()
    rare = owndata.load(folder, crop=32, pool=300, seed=0, rare_share=0.6)
    containing = [(rare.dataset.train_masks == c).any(axis=(1, 2)).mean() for c in range(4)]
    # Every class but the most frequent (background) gets a third of the 60 %; uniform crops add more.
    for c in (1, 2, THIN):
        assert containing[c] >= 0.2, (c, containing)
    # The asked-for crops are centred on a rare-class pixel (moved only where the image ends).
    centre = lambda own: np.isin(own.dataset.train_masks[:, 16, 16], (1, 2, THIN)).mean()  # noqa: E731
    assert centre(rare) >= 0.58 and centre(uniform) < 0.4, (centre(rare), centre(uniform))
    assert rare.pool_shares[0] < uniform.pool_shares[0] - 0.05, "the pool's shares differ from the images' and are reported"
    assert "60% of them centred on a pixel of a rare class" in rare.describe()
    assert rare.counts.pixels.tolist() == uniform.counts.pixels.tolist(), "weights still come from the whole images"


def test_a_zip_of_the_folder_gives_the_same_dataset(folder, tmp_path):
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, path.relative_to(folder).as_posix())
    a, b = owndata.load(folder, crop=32, pool=40), owndata.load(archive, crop=32, pool=40)
    for name in ("train_images", "train_masks", "val_images", "val_masks"):
        assert np.array_equal(getattr(a.dataset, name), getattr(b.dataset, name)), name


def test_classes_json_names_the_classes_and_a_folder_without_split_is_split_by_seed(tmp_path):
    root = tmp_path / "flat"
    write_set(tmp_path / "src", sizes=((64, 64),) * 5, val_sizes=((64, 64),) * 2)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        for split in ("train", "val"):
            for p in (tmp_path / "src" / split / sub).glob("*.png"):
                p.rename(root / sub / f"{split}{p.name}")
    (root / "classes.json").write_text('{"classes": [{"name": "bg", "color": "#000000"}, {"name": "block", "color": "#ff0000"}, '
                                       '{"name": "disc", "color": "#00ff00"}, {"name": "line", "color": "#0000ff"}]}')
    own = owndata.load(root, crop=32, pool=32)
    assert own.dataset.class_names == ("bg", "block", "disc", "line")
    assert len(own.image_sizes) + len(own.dataset.val_images) == 7 and len(own.dataset.val_images) >= uploads.MIN_VAL


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(crop=30), "multiple of 8"),
        (dict(crop=32, pool=4), "smaller than a batch"),
        (dict(crop=32, rare_share=1.5), "within 0..1"),
    ],
)
def test_bad_settings_are_refused_with_what_to_do(folder, change, expected):
    with pytest.raises(uploads.UploadError, match=expected):
        owndata.load(folder, **change)


def test_bad_folders_are_refused_with_what_to_do(tmp_path):
    with pytest.raises(uploads.UploadError, match="does not exist"):
        owndata.load(tmp_path / "nowhere")
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    with pytest.raises(uploads.UploadError, match="No masks found.*masks/ folder"):
        owndata.load(tmp_path)
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "masks" / "a.png")
    (tmp_path / "classes.json").write_text('{"classes": [{"name": "bg"}]}')
    with pytest.raises(uploads.UploadError, match="classes.json could not be read .KeyError.*one entry per class"):
        owndata.load(tmp_path)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(uploads.UploadError):
        owndata.load(broken)


def test_validation_images_too_large_once_padded_are_refused(monkeypatch, folder):
    monkeypatch.setattr(owndata, "MAX_VALIDATION_PIXELS", 2 * 96 * 128 - 1)
    with pytest.raises(uploads.UploadError, match="validation images padded to 128×96"):
        owndata.load(folder, crop=32, pool=32)


def test_a_validation_budget_keeps_the_first_whole_images_that_fit(folder):
    """The page's budget: the first validation images whose padded size fits, at least one, said so."""
    both = 2 * 96 * 128
    own = owndata.load(folder, crop=32, pool=32, validation_pixels=both - 1)
    assert own.dataset.val_images.shape == (1, 96, 128, 3) and own.val_total == 2
    assert np.array_equal(own.dataset.val_masks[0], read_masks(folder / "val" / "masks")[0])
    assert "the first 1 of 2 whole validation images" in own.describe()
    assert owndata.load(folder, crop=32, pool=32, validation_pixels=10).dataset.val_images.shape[0] == 1
    everything = owndata.load(folder, crop=32, pool=32, validation_pixels=both)
    assert everything.dataset.val_images.shape == (2, 96, 128, 3) and "the first" not in everything.describe()


def test_a_run_trains_on_the_crops_and_predicts_whole_validation_images(folder):
    own = owndata.load(folder, crop=32, pool=64)
    run = Run(RunConfig(batch_size=8, depth=2, width=4), own.dataset)
    state = run.advance(3)
    assert state.step == 3 and not state.halted
    assert state.latest.probabilities.shape == (2, 96, 128, 4)
    assert np.isfinite(state.latest.scores.mean_iou)
