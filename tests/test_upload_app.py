"""The "Your data" section of the page, driven with streamlit.testing.v1.AppTest, whose
``file_uploader`` accepts files in Streamlit 1.67 (``set_value([(name, bytes, mime), ...])``): the
same path as a browser upload, through the real widgets. Good files show their statistics, pairs
train the runs, predictions are scored; bad files are refused with a message each, and the runs,
their history and the other uploads stay as they were."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image
from page_session import assert_every_section_whole, assert_no_exception, open_section, section
from page_session import open_page as fresh_app
from streamlit.testing.v1 import AppTest

from explorer import losses, weights
from explorer.ui import sections

# -- files ------------------------------------------------------------------------------------------


def encode(array_or_image, fmt: str = "PNG") -> bytes:
    image = Image.fromarray(array_or_image) if isinstance(array_or_image, np.ndarray) else array_or_image
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def index_mask(height: int, width: int, classes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for c in range(1, classes):
        y, x = rng.integers(0, height - 10), rng.integers(0, width - 10)
        mask[y : y + 3 + 2 * c, x : x + 6] = c
    return mask


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def png_file(name: str, data: bytes) -> tuple[str, bytes, str]:
    return (name, data, "image/png")


def pairs_zip(count: int = 8) -> tuple[bytes, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    files, masks = {}, {}
    for i in range(count):
        mask = index_mask(48, 40, 3, seed=i)
        masks[f"{i:04d}"] = mask
        image = (rng.random((48, 40, 3)) * 80).astype(np.uint8)
        image[mask == 1] = (220, 60, 60)
        image[mask == 2] = (60, 60, 220)
        files[f"images/{i:04d}.png"] = encode(image)
        files[f"masks/{i:04d}.png"] = encode(mask)
    return zip_of(files), masks


# -- the page -------------------------------------------------------------------------------------------
# "Your data" always runs (its uploaders keep their files only while drawn), whichever section is
# open; the page opens on the live view.


def upload(at: AppTest, key: str, files) -> AppTest:
    at.file_uploader(key=key).set_value(files).run()
    assert_no_exception(at)
    return at


def class_table(at: AppTest):
    tables = [d.value for d in at.dataframe if "pixels" in d.value.columns]
    assert len(tables) == 1, [list(d.value.columns) for d in at.dataframe]
    return tables[0]


def weights_table(at: AppTest, class_names):
    tables = [d.value for d in at.dataframe if list(d.value.columns) == list(class_names) and "Balanced (scikit-learn)" in d.value.index]
    return tables


def dataset_section(at: AppTest):
    """Opens the dataset section: the tab of the data the runs train on."""
    open_section(at, sections.DATASET)
    return section(at, sections.DATASET)


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def charts(at: AppTest) -> set[str]:
    return {c.key for c in at.get("plotly_chart") if c.key}


def history(at: AppTest) -> dict:
    return {label: (run, run.state.step, run.state.loss_values) for label, run in at.session_state["runs"].items()}


def assert_runs_kept(at: AppTest, before: dict) -> None:
    runs = at.session_state["runs"]
    assert list(runs) == list(before)
    for label, (run, step, values) in before.items():
        assert runs[label] is run, f"run {label} was rebuilt"
        assert run.state.step == step and run.state.loss_values == values, f"run {label} lost its history"


def assert_weights_counted_on_the_training_masks(at: AppTest, masks: list[np.ndarray], dataset, expected_count: int | None = None) -> None:
    """Run B's class-weight boxes hold its scheme's weights counted on the whole training masks
    (the uploaded masks that are not validation masks), 3 classes."""
    train_masks = [m for m in masks if not any(np.array_equal(m, v) for v in dataset.val_masks)]
    if expected_count is not None:
        assert len(train_masks) == expected_count
    scheme = at.selectbox(key="B_scheme").value
    expected = weights.class_weights(weights.count_pixels(train_masks, 3), scheme).weights
    boxes = [b.value for b in at.sidebar.number_input if b.key and b.key.startswith(f"B_{scheme}_w")]
    np.testing.assert_allclose(boxes, np.round(expected, 4), atol=1e-4)


# -- tests ------------------------------------------------------------------------------------------------


def test_index_masks_show_their_classes_weights_warning_and_planes():
    at = fresh_app()
    toy = at.session_state["runs"]["A"].data
    before = history(at)
    arrays = [index_mask(48, 40, 3, 0), index_mask(30, 64, 3, 1), index_mask(40, 40, 2, 2)]
    upload(at, "upload_masks", [png_file(f"m{i}.png", encode(a)) for i, a in enumerate(arrays)])
    at.number_input(key="upload_num_classes").set_value(4).run()
    at.text_input(key="upload_class_names").set_value("background, cell, vessel, tumour").run()
    assert_no_exception(at)

    table = class_table(at)
    expected = weights.count_pixels(arrays, 4)
    assert list(table["class"]) == ["background", "cell", "vessel", "tumour"]
    np.testing.assert_array_equal(table["pixels"].to_numpy(), expected.pixels)
    np.testing.assert_allclose(table["% of pixels"].to_numpy(), np.round(100 * expected.frequencies, 4))
    np.testing.assert_allclose(table["% of images"].to_numpy(), [100, 100, 66.7, 0], atol=0.05)
    [weight_table] = weights_table(at, table["class"])
    assert np.isfinite(weight_table.to_numpy(dtype=float)).all()
    assert (weight_table["tumour"] == 0).all()  # no pixels: weight 0 under every scheme
    assert any("No pixels of tumour" in w.value for w in at.warning)
    assert {"upload_plane_A", "upload_plane_B"} <= charts(at)
    assert_every_section_whole(at)
    # Statistics only: the runs still train on the toy dataset, untouched.
    assert_runs_kept(at, before)
    assert at.session_state["runs"]["A"].data is toy


def test_colour_masks_palette_table_is_editable():
    at = fresh_app()
    palette = np.array([(0, 0, 0), (255, 0, 0), (0, 0, 255)], np.uint8)
    arrays = [index_mask(40, 48, 3, 3), index_mask(40, 48, 3, 4)]
    upload(at, "upload_masks", [png_file(f"c{i}.png", encode(palette[a])) for i, a in enumerate(arrays)])
    [editor] = at.data_editor
    colours = list(editor.value["colour"])
    assert sorted(colours) == ["#000000", "#0000ff", "#ff0000"]
    assert editor.value["class"][colours.index("#000000")] == 0
    table = class_table(at)
    assert len(table) == 3
    total = sum(a.size for a in arrays)
    red_class = int(editor.value["class"][colours.index("#ff0000")])
    blue_class = int(editor.value["class"][colours.index("#0000ff")])
    assert table["pixels"][red_class] == sum((a == 1).sum() for a in arrays)

    # Merge blue into red's class.
    at.session_state[editor.key] = {"edited_rows": {colours.index("#0000ff"): {"class": red_class}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert_no_exception(at)
    table = class_table(at)
    merged = sum(((a == 1) | (a == 2)).sum() for a in arrays)
    if blue_class > red_class:  # the largest class is gone: two classes
        assert len(table) == 2
    else:  # a class in the middle is left empty: still three, one with no pixels (and a warning)
        assert len(table) == 3 and table["pixels"][blue_class] == 0
        assert any("No pixels of class" in w.value for w in at.warning)
    assert table["pixels"][red_class] == merged
    assert table["pixels"].sum() == total
    # A class beyond MAX: refused with a message, the last valid classes stay.
    at.session_state[editor.key] = {"edited_rows": {colours.index("#0000ff"): {"class": 1}}, "added_rows": [], "deleted_rows": []}
    at.number_input(key="upload_num_classes").set_value(1).run()
    assert_no_exception(at)
    assert "Raise the number of classes" in errors(at)
    assert len(class_table(at)) >= 2


BAD_MASKS = {
    "text.png": (b"this is a text file, not an image\n", "is not an image that can be read"),
    "empty.png": (b"", "is empty (0 bytes)"),
    "pixel.png": (encode(np.zeros((1, 1), np.uint8)), "is only 1×1 pixels"),
    "bomb.png": (png_claiming(20000, 20000), "decompression bomb"),
    "mask16.png": (encode(Image.fromarray(np.full((32, 32), 1000, np.uint16))), "values up to 1000"),
    "classes300.png": (encode(Image.fromarray((np.arange(3000) % 300).astype(np.uint16).reshape(60, 50))), "300 distinct values"),
    "cmyk.tif": (encode(Image.new("CMYK", (32, 32), (0, 200, 0, 0)), "TIFF"), "CMYK"),
    "float.tif": (encode(Image.fromarray(np.full((16, 16), 0.5, np.float32)), "TIFF"), "floating-point"),
    "traversal.zip": (zip_of({"../evil.png": encode(index_mask(32, 32, 2, 0))}), "outside the archive"),
    "nested.zip": (zip_of({"inner.zip": zip_of({"a.png": encode(index_mask(32, 32, 2, 0))})}), "nested archives"),
    "notazip.zip": (b"plain text", "is named .zip but is not a zip archive"),
}


def corrupt_png() -> bytes:
    data = bytearray(encode(index_mask(64, 64, 3, 9)))
    start = data.index(b"IDAT") + 4
    data[start : start + 40] = bytes(40)
    return bytes(data)


def animated_gif() -> bytes:
    frames = [Image.fromarray(index_mask(32, 32, 3, i)).convert("P") for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    return buffer.getvalue()


def anti_aliased() -> bytes:
    yy, xx = np.mgrid[:96, :96]
    t = np.clip((30 - np.hypot(yy - 48, xx - 48)) / 5 + 0.5, 0, 1)
    rgb = np.stack([t * 255, (1 - t) * xx * 2.5, (yy / 96) * 200 * (1 - t)], -1).astype(np.uint8)
    return encode(rgb)


def test_bad_masks_are_refused_one_by_one_and_nothing_else_changes():
    at = fresh_app()
    at.button(key="step").click().run()
    assert_no_exception(at)
    good = index_mask(40, 40, 3, 5)
    upload(at, "upload_masks", [png_file("good.png", encode(good))])
    before = history(at)
    assert before["A"][1] > 0

    bad = dict(BAD_MASKS)
    bad["corrupt.png"] = (corrupt_png(), "damaged")
    bad["animated.gif"] = (animated_gif(), "animated GIF (3 frames)")
    bad["antialiased.png"] = (anti_aliased(), "distinct colours")
    assert len(bad) >= 14
    files = [png_file("good.png", encode(good)), png_file("good2.png", encode(index_mask(40, 40, 3, 6)))]
    files += [(name, data, "application/octet-stream") for name, (data, _) in bad.items()]
    upload(at, "upload_masks", files)
    text = errors(at)
    assert f"{len(bad)} files refused" in text
    for name, (_, reason) in bad.items():
        line = next((line for line in text.splitlines() if name in line), None)
        assert line is not None, f"{name} is not named in:\n{text}"
        assert reason in line, f"{name}: expected {reason!r} in {line!r}"
    assert len(class_table(at)) == 3 and class_table(at)["pixels"].sum() == 2 * 40 * 40  # the two good masks
    assert_runs_kept(at, before)

    # An upload of only bad files: its reason, and the previous masks stay on the page.
    upload(at, "upload_masks", [png_file("empty.png", b""), png_file("text.png", b"no")])
    assert "None of these files could be read as a mask" in errors(at)
    assert any("Still using your previous masks (2 files)" in i.value for i in at.info)
    assert class_table(at)["pixels"].sum() == 2 * 40 * 40
    assert_runs_kept(at, before)
    # The toy dataset's own panel is still there.
    panel = dataset_section(at)
    assert [h.value for h in panel.subheader] == ["toy cells: 400 training and 100 validation images"]
    assert [d for d in panel.dataframe if list(d.value.columns) == ["class", "colour", "% of pixels", "% of images"]]


def test_image_mask_pairs_train_the_runs_and_bad_images_keep_them():
    at = fresh_app()
    toy = at.session_state["runs"]["A"].data
    data, masks = pairs_zip(8)
    upload(at, "upload_masks", [("pairs.zip", data, "application/zip")])
    assert len(class_table(at)) == 3
    assert any("8 image–mask pairs" in m.value for m in at.markdown)
    at.toggle(key="upload_train").set_value(True).run()
    assert_no_exception(at)
    runs = at.session_state["runs"]
    dataset = runs["A"].data
    assert dataset is not toy and all(run.data is dataset for run in runs.values())
    assert dataset.num_classes == 3 and dataset.train_images.shape[1:] == (64, 64, 3)
    assert len(dataset.val_images) == 2 and len(dataset.train_images) >= 32
    assert [h.value for h in dataset_section(at).subheader] == [f"{dataset.name}: {len(dataset.train_images)} training and 2 validation images"]
    assert dataset.name.startswith("your data")
    assert_every_section_whole(at)  # every section draws the runs on your data
    open_section(at, sections.LIVE)
    # The sidebar's class weights are your data's, not the toy dataset's (same box keys), counted
    # on the whole training masks (not on the crops the runs train on).
    assert_weights_counted_on_the_training_masks(at, list(masks.values()), dataset, expected_count=6)
    at.button(key="step").click().run()
    assert_no_exception(at)
    assert all(run.state.step > 0 and np.isfinite(run.state.loss_values).all() for run in runs.values())
    before = history(at)

    # Bad images (and an unpaired one) on the images tab: refused, the runs train on as they were.
    files = [
        png_file("0001.png", b"not an image"),
        png_file("bomb.png", png_claiming(20000, 20000)),
        png_file("lonely.png", encode(np.zeros((48, 40, 3), np.uint8))),
        png_file("0003.png", encode(np.zeros((48, 40, 3), np.uint8))),  # a second image for mask 0003
    ]
    upload(at, "upload_images", files)
    text = errors(at)
    assert "0001.png" in text and "bomb.png" in text and "decompression bomb" in text
    warnings_text = "\n".join(w.value for w in at.warning)
    assert "lonely.png" in warnings_text and "has no mask with the same name" in warnings_text
    assert "0003.png** has the same name as" in warnings_text
    assert_runs_kept(at, before)
    assert at.session_state["runs"]["A"].data is dataset

    # Switching back: the runs start afresh on the toy dataset.
    at.toggle(key="upload_train").set_value(False).run()
    assert_no_exception(at)
    assert all(run.data is toy and run.state.step == 0 for run in at.session_state["runs"].values())


def test_prediction_is_scored_under_every_loss_and_bad_predictions_are_refused():
    at = fresh_app()
    before = history(at)
    truth = index_mask(40, 48, 3, 7)
    upload(at, "upload_masks", [png_file("0007.png", encode(truth))])
    rng = np.random.default_rng(0)
    good = rng.dirichlet(np.ones(3), size=truth.shape).astype(np.float32)
    nan = good.copy()
    nan[2, 3] = np.nan
    files = [
        ("0007_probs.npy", npy(good), "application/octet-stream"),
        ("nan.npy", npy(nan), "application/octet-stream"),
        ("pickled.npy", pickle.dumps({"p": good}), "application/octet-stream"),
        ("sigmoid.npy", npy(np.full(truth.shape + (3,), 0.5, np.float32)), "application/octet-stream"),
    ]
    upload(at, "upload_prediction", files)
    text = errors(at)
    assert "pickled" in text and "has no mask with the same name" in text
    # nan.npy and sigmoid.npy have no mask of their name either; renamed, they get their own reasons.
    files = [("0007.npy", npy(nan), "application/octet-stream")]
    upload(at, "upload_prediction", files)
    assert "NaN" in errors(at) and "row 2, column 3" in errors(at)
    upload(at, "upload_prediction", [("0007.npy", npy(np.full(truth.shape + (3,), 0.5, np.float32)), "application/octet-stream")])
    assert "does not sum to 1" in errors(at)

    upload(at, "upload_prediction", [("0007_probs.npy", npy(good), "application/octet-stream")])
    assert not at.error
    scores = next(d.value for d in at.dataframe if list(d.value.columns) == ["loss", "id", "kind", "value"])
    assert list(scores["id"]) == list(losses.REGISTRY)
    assert np.isfinite(scores["value"].to_numpy(dtype=float)).all()
    p_true = np.take_along_axis(good, truth[..., None].astype(np.int64), -1)[..., 0]
    ce = float(scores.loc[scores["id"] == "ce", "value"].iloc[0])
    assert ce == pytest.approx(-np.log(p_true).mean(), rel=1e-4)
    assert "upload_pixel_maps" in charts(at)
    at.selectbox(key="upload_maps_loss").set_value("dice").run()
    assert_no_exception(at)
    assert "upload_pixel_maps" in charts(at)
    assert_runs_kept(at, before)


# -- void pixels ------------------------------------------------------------------------------------------


def void_pairs_zip(count: int = 8) -> tuple[bytes, list[np.ndarray]]:
    """Image–mask pairs whose masks have a void (255) border two pixels wide, as PASCAL VOC's."""
    rng = np.random.default_rng(2)
    files, masks = {}, []
    for i in range(count):
        mask = index_mask(48, 40, 3, seed=10 + i)
        image = (rng.random((48, 40, 3)) * 80).astype(np.uint8)
        image[mask == 1] = (220, 60, 60)
        image[mask == 2] = (60, 60, 220)
        mask[:2], mask[-2:], mask[:, :2], mask[:, -2:] = 255, 255, 255, 255
        masks.append(mask)
        files[f"images/{i:04d}.png"] = encode(image)
        files[f"masks/{i:04d}.png"] = encode(mask)
    return zip_of(files), masks


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def thin_pairs_zip(count: int = 6, size: int = 256) -> tuple[bytes, list[np.ndarray]]:
    """Large image–mask pairs: a block (class 1) and a vertical line one pixel wide (class 2)."""
    rng = np.random.default_rng(3)
    files, masks = {}, []
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        mask[40:100, 50:120] = 1
        mask[:, 131 + 20 * i] = 2
        image = (rng.random((size, size, 3)) * 80).astype(np.uint8)
        image[mask == 1] = (220, 60, 60)
        image[mask == 2] = (60, 60, 220)
        masks.append(mask)
        files[f"images/{i:04d}.png"] = encode(image)
        files[f"masks/{i:04d}.png"] = encode(mask)
    files["classes.json"] = b'{"classes": [{"name": "bg", "color": "#101010"}, {"name": "block", "color": "#ff0000"}, {"name": "line", "color": "#0000ff"}]}'
    return zip_of(files), masks


def test_large_images_train_on_crops_at_their_resolution_and_validate_whole():
    at = fresh_app()
    data, masks = thin_pairs_zip()
    upload(at, "upload_masks", [("thin.zip", data, "application/zip")])
    assert list(class_table(at)["class"]) == ["bg", "block", "line"] and "Class names and colours from classes.json" in texts(at)
    at.toggle(key="upload_train").set_value(True).run()
    assert_no_exception(at)
    runs = at.session_state["runs"]
    dataset = runs["A"].data
    # Crops of 64×64 (the default), as many pixels as 1000 resized images; whole validation images.
    assert dataset.train_images.shape == (1000, 64, 64, 3) and dataset.val_images.shape == (2, 256, 256, 3)
    assert dataset.class_names == ("bg", "block", "line") and dataset.class_colors == ("#101010", "#ff0000", "#0000ff")
    assert "crops of 64×64" in texts(at) and "whole validation images" in texts(at)
    assert_every_section_whole(at)
    # The line stays one pixel wide in the crops (resizing to 64×64 would keep one column in four).
    line = dataset.train_masks == 2
    assert line.any() and (line.sum(axis=2) <= 1).all()
    # The weights come from the whole training masks.
    assert_weights_counted_on_the_training_masks(at, masks, dataset)
    at.button(key="step").click().run()
    assert_no_exception(at)
    for run in runs.values():
        assert run.state.step > 0 and np.isfinite(run.state.loss_values).all()
        assert run.state.latest.probabilities.shape == (2, 256, 256, 3)

    # Resized instead: the runs start afresh on 64×64 images.
    at.selectbox(key="upload_resolution").set_value(0).run()  # 0: resized
    assert_no_exception(at)
    resized = at.session_state["runs"]["A"].data
    assert resized is not dataset and resized.train_images.shape[1:] == (64, 64, 3) and resized.val_images.shape == (2, 64, 64, 3)
    assert all(run.data is resized and run.state.step == 0 for run in at.session_state["runs"].values())

    # A classes.json that cannot be read is refused with what it must hold; the runs keep their data.
    upload(at, "upload_images", [("bad.zip", zip_of({"classes.json": b'{"classes": [{"name": "bg"}]}', "masks/0000.png": encode(masks[0])}), "application/zip")])
    assert "classes.json could not be read" in errors(at) and "one entry per class" in errors(at)
    assert at.session_state["runs"]["A"].data is resized


def test_masks_with_a_void_border_train_the_runs_and_show_the_void_share():
    at = fresh_app()
    data, masks = void_pairs_zip()
    upload(at, "upload_masks", [("voc.zip", data, "application/zip")])
    assert not at.error
    assert any("255 read as void" in w.value for w in at.warning)
    table = class_table(at)
    assert len(table) == 3  # 255 is no class
    expected = weights.count_pixels(masks, 3, ignore_index=255)
    np.testing.assert_array_equal(table["pixels"].to_numpy(), expected.pixels)
    void = sum(int((m == 255).sum()) for m in masks)
    assert f"void: {100 * void / sum(m.size for m in masks):.1f} % of pixels ({void:,}), ignored" in texts(at)
    [weight_table] = weights_table(at, table["class"])
    assert np.isfinite(weight_table.to_numpy(dtype=float)).all()
    # A prediction scored against a void-bordered mask: the border counts in no loss.
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), size=masks[0].shape).astype(np.float32)
    upload(at, "upload_prediction", [("0000_probs.npy", npy(probabilities), "application/octet-stream")])
    assert not at.error
    scores = next(d.value for d in at.dataframe if list(d.value.columns) == ["loss", "id", "kind", "value"])
    assert np.isfinite(scores["value"].to_numpy(dtype=float)).all()
    valid = masks[0] != 255
    p_true = np.take_along_axis(probabilities, np.where(valid, masks[0], 0)[..., None].astype(np.int64), -1)[..., 0]
    ce = float(scores.loc[scores["id"] == "ce", "value"].iloc[0])
    assert ce == pytest.approx(-np.log(p_true[valid]).mean(), rel=1e-4)

    at.toggle(key="upload_train").set_value(True).run()
    assert_no_exception(at)
    runs = at.session_state["runs"]
    dataset = runs["A"].data
    assert all(run.data is dataset for run in runs.values())
    assert dataset.ignore_index == 255 and (dataset.train_masks[:, 0] == 255).all()
    assert all(run.loss.params.get("ignore_index") == 255 for run in runs.values())
    # The dataset panel says how much of the training pixels is void; its shares leave it out.
    train_void = int((dataset.train_masks == 255).sum())
    panel = dataset_section(at)
    assert any(f"Training masks: void: {100 * train_void / dataset.train_masks.size:.1f} % of pixels" in c.value for c in panel.caption)
    assert_every_section_whole(at)
    open_section(at, sections.LIVE)
    at.button(key="step").click().run()
    assert_no_exception(at)
    for run in runs.values():
        assert run.state.step > 0 and np.isfinite(run.state.loss_values).all()


def test_a_colour_is_marked_void_in_the_colour_table():
    at = fresh_app()
    palette = np.array([(0, 0, 0), (255, 0, 0), (0, 0, 255)], np.uint8)
    arrays = [index_mask(40, 48, 3, 3), index_mask(40, 48, 3, 4)]
    rgbs = [palette[a] for a in arrays]
    for rgb in rgbs:
        rgb[:, :4] = (255, 255, 0)  # an 'ignore' band in yellow
        rgb[:2] = (224, 224, 192)  # PASCAL VOC's boundary colour
    upload(at, "upload_masks", [png_file(f"c{i}.png", encode(rgb)) for i, rgb in enumerate(rgbs)])
    [editor] = at.data_editor
    colours = list(editor.value["colour"])
    void = dict(zip(colours, editor.value["void"]))
    assert void == {"#000000": False, "#ff0000": False, "#0000ff": False, "#ffff00": False, "#e0e0c0": True}
    assert len(class_table(at)) == 4  # black, red, blue, yellow; the VOC colour is void
    total = sum(a.size for a in arrays)
    voc = 2 * 48 * 2
    yellow_class = int(editor.value["class"][colours.index("#ffff00")])

    at.session_state[editor.key] = {"edited_rows": {colours.index("#ffff00"): {"void": True}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert_no_exception(at)
    assert not at.error
    table = class_table(at)
    # Yellow's class keeps its number but has no pixels left (renumbering is the user's choice, as for a merge).
    assert len(table) == 4 and table["pixels"][yellow_class] == 0
    yellow = 2 * (40 - 2) * 4
    assert table["pixels"].sum() == total - voc - yellow
    assert f"void: {100 * (voc + yellow) / total:.1f} % of pixels ({voc + yellow:,}), ignored" in texts(at)
