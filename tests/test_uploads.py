"""explorer/uploads.py: every kind of bad file is refused with a message that says what was wrong
and what to do, within the limits and without decoding what it should not; good files give the
statistics, pairs, datasets and scores they should. All files are made here, in memory."""

from __future__ import annotations

import io
import pickle
import re
import stat
import struct
import tomllib
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from explorer import losses, uploads, weights
from explorer.uploads import Entry, UploadError

ROOT = Path(__file__).resolve().parent.parent


# -- making files ---------------------------------------------------------------------------------


def encode(image: Image.Image | np.ndarray, fmt: str = "PNG", **options) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def index_mask(height: int = 32, width: int = 40, classes: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for c in range(1, classes):
        y, x = rng.integers(0, height - 6), rng.integers(0, width - 6)
        mask[y : y + 4 + c, x : x + 5] = c
    return mask


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few dozen bytes whose header claims width×height grey pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def zip_of(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def entry(name: str, data: bytes) -> Entry:
    return Entry(name, name, data)


def refusal(function, *args, **kwargs) -> str:
    with pytest.raises(UploadError) as caught:
        function(*args, **kwargs)
    return caught.value.message


def assert_helpful(message: str) -> None:
    """A message names what was wrong and says what to do (an imperative after the diagnosis)."""
    assert len(message) > 30, message
    verbs = r"\b(Save|Upload|Re-create|Zip|Unpack|Split|Downscale|Check|Set|Raise|Use|Apply|Convert|Merge|Name|Put|Crop|Give|Map|Export|Resize|Replace|export|save|upload|map|give|apply|divide|replace)\b"
    assert re.search(verbs, message), f"no advice in: {message}"


# -- bad files: each kind refused, with its reason and advice ----------------------------------------


def test_corrupt_png():
    data = bytearray(encode(index_mask(64, 64)))
    start = data.index(b"IDAT") + 4
    data[start : start + 40] = bytes(40)  # zeros over the compressed pixels
    message = refusal(uploads.decode_mask, bytes(data), "m.png")
    assert "damaged" in message
    assert_helpful(message)


def test_truncated_png():
    data = encode((np.random.default_rng(0).random((64, 64)) * 3).astype(np.uint8))
    message = refusal(uploads.decode_mask, data[: len(data) // 2], "m.png")
    assert "damaged" in message or "truncated" in message
    assert_helpful(message)


def test_text_file_named_png():
    message = refusal(uploads.decode_mask, b"hello, this is not an image\n", "m.png")
    assert "not an image" in message and "text ('hello, this is not an image')" in message
    assert_helpful(message)


def test_empty_file():
    message = refusal(uploads.decode_mask, b"", "m.png")
    assert "empty (0 bytes)" in message
    assert_helpful(message)
    assert "empty" in refusal(uploads.read_npy, b"")


def test_one_by_one_image():
    message = refusal(uploads.decode_mask, encode(np.zeros((1, 1), np.uint8)), "pixel.png")
    assert "1×1" in message and f"{uploads.MIN_SIDE}×{uploads.MIN_SIDE}" in message
    assert_helpful(message)


def test_decompression_bomb_is_refused_from_the_header_without_decoding():
    bomb = png_claiming(20000, 20000)
    assert len(bomb) < 200
    tracemalloc.start()
    try:
        message = refusal(uploads.decode_mask, bomb, "bomb.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20, f"{peak / 2**20:.1f} MB allocated: the pixels were decoded"
    assert "400 megapixels" in message and "decompression bomb" in message
    assert_helpful(message)


def test_image_over_our_limit_but_under_pillows_is_refused_from_the_header():
    # 5000×5000 = 25 MP: Pillow (89 MP) would decode it; our limit (16.8 MP) refuses it first.
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > 5000 * 5000
    tracemalloc.start()
    try:
        message = refusal(uploads.decode_image, png_claiming(5000, 5000), "big.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20
    assert "5000×5000" in message and "megapixels" in message
    assert_helpful(message)


def test_sixteen_bit_mask_with_values_beyond_the_classes():
    mask = np.zeros((32, 32), np.uint16)
    mask[:8] = 1000
    mask[8:16] = 3
    data = encode(Image.fromarray(mask))
    message = refusal(uploads.decode_mask, data, "m16.png")
    assert "values up to 1000" in message and "16-bit" in message and f"0..{uploads.MAX_CLASSES - 1}" in message
    assert_helpful(message)


def test_mask_with_300_classes():
    mask = (np.arange(60 * 50) % 300).astype(np.uint16).reshape(60, 50)
    message = refusal(uploads.decode_mask, encode(Image.fromarray(mask)), "many.png")
    assert "300 distinct values" in message and f"at most {uploads.MAX_CLASSES} classes" in message
    assert_helpful(message)


def test_rgb_mask_with_anti_aliased_edges():
    size = 128
    yy, xx = np.mgrid[:size, :size]
    # A red disc on black, edges blended over a few pixels: thousands of in-between colours.
    t = np.clip((40 - np.hypot(yy - 64, xx - 64)) / 6 + 0.5, 0, 1)
    green = np.clip((30 - np.abs(xx - yy)) / 8, 0, 1)
    rgb = np.stack([t * 255, green * (1 - t) * 255, (xx / size) * green * 60], -1).astype(np.uint8)
    message = refusal(uploads.decode_mask, encode(rgb), "aa.png")
    assert "distinct colours" in message and "anti-aliasing" in message and "most common colours cover" in message
    assert_helpful(message)


def test_image_and_mask_of_different_sizes():
    images, _ = uploads.read_images([entry("a.png", encode(np.zeros((40, 30, 3), np.uint8)))])
    masks, _ = uploads.read_masks([entry("a.png", encode(index_mask(20, 15)))])
    pairing = uploads.pair(images, masks)
    assert pairing.pairs == ()
    [problem] = pairing.problems
    assert problem.name == "a.png" and "30×40" in problem.message and "15×20" in problem.message
    assert "must have its image's size" in problem.message
    assert_helpful(problem.message)


def test_unpaired_files():
    image = encode(np.zeros((32, 40, 3), np.uint8))
    images, _ = uploads.read_images([entry("0001.jpg", image), entry("0002.jpg", image)])
    masks, _ = uploads.read_masks([entry("0001_mask.png", encode(index_mask())), entry("0003.png", encode(index_mask()))])
    pairing = uploads.pair(images, masks)
    assert pairing.pairs == ((0, 0),)
    messages = {p.name: p.message for p in pairing.problems}
    assert "has no mask with the same name" in messages["0002.jpg"] and "has no image with the same name" in messages["0003.png"]
    assert_helpful(messages["0002.jpg"])
    # Two images for one mask: the first is paired, the second named as a duplicate.
    images, _ = uploads.read_images([entry("images/0001.jpg", image), entry("0001.jpg", image)])
    pairing = uploads.pair(images, masks)
    assert pairing.pairs == ((0, 0),)
    assert "has the same name as 'images/0001.jpg'" in pairing.problems[0].message


def test_zip_entry_climbing_out_of_the_archive():
    archive = zip_of({"masks/0001.png": encode(index_mask()), "../../etc/evil.png": encode(index_mask())})
    entries, problems = uploads.expand([("data.zip", archive)])
    assert entries == []
    [problem] = problems
    assert problem.name == "data.zip" and "outside the archive" in problem.message and "../../etc/evil.png" in problem.message
    assert_helpful(problem.message)


def test_zip_entry_with_an_absolute_path():
    archive = zip_of({"/etc/passwd.png": encode(index_mask())})
    _, problems = uploads.expand([("abs.zip", archive)])
    assert "outside the archive" in problems[0].message


def test_nested_zip():
    inner = zip_of({"0001.png": encode(index_mask())})
    archive = zip_of({"0002.png": encode(index_mask()), "inner.zip": inner, "disguised.png": inner})
    entries, problems = uploads.expand([("outer.zip", archive)])
    assert [e.path for e in entries] == ["0002.png"]
    messages = {p.name: p.message for p in problems}
    assert "nested archives are not opened" in messages["outer.zip/inner.zip"]
    assert "zip inside the zip" in messages["outer.zip/disguised.png"]
    assert_helpful(messages["outer.zip/inner.zip"])


def test_zip_bomb_is_refused_before_unpacking():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("zeros.bmp", "w") as handle:
        block = bytes(2**20)
        for _ in range(60):  # 60 MB of zeros, about 60 kB compressed
            handle.write(block)
    data = buffer.getvalue()
    assert len(data) < 200_000
    tracemalloc.start()
    try:
        _, problems = uploads.expand([("bomb.zip", data)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20, "the bomb was unpacked"
    [problem] = problems
    assert "zip bomb" in problem.message and "expands" in problem.message
    assert_helpful(problem.message)


def test_zip_larger_than_the_unpacked_limit(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_ZIP_BYTES", 10_000)
    archive = zip_of({f"{i}.png": encode(index_mask(64, 64, seed=i)) + bytes(3000) for i in range(5)})
    _, problems = uploads.expand([("big.zip", archive)])
    assert "would expand to" in problems[0].message
    assert_helpful(problems[0].message)


def test_zip_with_too_many_entries(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_ZIP_ENTRIES", 5)
    archive = zip_of({f"{i}.png": b"x" for i in range(6)})
    _, problems = uploads.expand([("many.zip", archive)])
    assert "has 6 entries" in problems[0].message and "Split it" in problems[0].message


def test_too_many_files_in_one_upload(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_FILES", 3)
    message = refusal(uploads.expand, [(f"{i}.png", b"x") for i in range(4)])
    assert "more than 3 files" in message
    assert_helpful(message)


def test_file_named_zip_that_is_not_one_and_a_damaged_zip():
    _, problems = uploads.expand([("masks.zip", b"just some text")])
    assert "is named .zip but is not a zip archive" in problems[0].message
    damaged = zip_of({"0001.png": encode(index_mask())})[:-30]
    _, problems = uploads.expand([("cut.zip", damaged)])
    assert "damaged zip" in problems[0].message
    assert_helpful(problems[0].message)


def test_encrypted_symlinked_and_duplicate_zip_entries():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.png", encode(index_mask()))
        archive.writestr("secret.png", b"not really encrypted")
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("__MACOSX/._ok.png", b"resource fork")
        archive.writestr(".DS_Store", b"junk")
        archive.writestr("OK.PNG", encode(index_mask()))
    data = bytearray(buffer.getvalue())
    # Mark secret.png as encrypted (bit 0 of its flags) in its local and its central header.
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature, data.index(signature) + 1)  # the second record: secret.png
        data[at + flags_at] |= 0x1
    entries, problems = uploads.expand([("mixed.zip", bytes(data))])
    assert [e.path for e in entries] == ["ok.png"]
    messages = {p.name: p.message for p in problems}
    assert "password-protected" in messages["mixed.zip/secret.png"]
    assert "symbolic link" in messages["mixed.zip/link.png"]
    assert "appears twice" in messages["mixed.zip/OK.PNG"]
    assert len(problems) == 3  # the macOS and Finder files are skipped silently


def test_pickled_npy():
    payload = pickle.dumps({"probabilities": [0.5, 0.5]})
    message = refusal(uploads.read_npy, payload)
    assert "pickled Python object" in message and "never loaded" in message
    assert_helpful(message)
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    message = refusal(uploads.read_npy, buffer.getvalue())
    assert "Python objects" in message
    assert_helpful(message)


def test_npz_and_text_named_npy():
    buffer = io.BytesIO()
    np.savez(buffer, p=np.zeros((8, 8, 2)))
    assert ".npz archive" in refusal(uploads.read_npy, buffer.getvalue())
    assert "not a .npy array" in refusal(uploads.read_npy, b"0.5,0.5\n0.5,0.5\n")


def test_npy_header_claiming_a_huge_array_is_refused_before_loading():
    header = {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000, 21)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    data = buffer.getvalue() + bytes(64)
    message = refusal(uploads.read_npy, data)
    assert "(100000, 100000, 21)" in message and "at most" in message
    assert_helpful(message)


def test_truncated_npy():
    buffer = io.BytesIO()
    np.save(buffer, np.full((16, 16, 3), 1 / 3, np.float32))
    message = refusal(uploads.read_npy, buffer.getvalue()[:-100])
    assert "truncated" in message


def test_npy_of_strings():
    buffer = io.BytesIO()
    np.save(buffer, np.array(["a", "b"]))
    assert "holds <U1 values" in refusal(uploads.read_npy, buffer.getvalue())


def probability_prediction(array: np.ndarray, name: str = "p.npy") -> uploads.Prediction:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return uploads.read_prediction(entry(name, buffer.getvalue()))


def test_probabilities_with_nan():
    p = np.full((16, 16, 3), 1 / 3, np.float32)
    p[3, 5] = np.nan
    message = refusal(uploads.prediction_probabilities, probability_prediction(p), np.zeros((16, 16), np.int64), 3)
    assert "NaN" in message and "row 3, column 5" in message
    assert_helpful(message)


def test_probabilities_not_summing_to_one():
    p = np.full((16, 16, 3), 0.5, np.float32)  # sigmoid outputs: each 0.5, summing to 1.5
    message = refusal(uploads.prediction_probabilities, probability_prediction(p), np.zeros((16, 16), np.int64), 3)
    assert "does not sum to 1" in message and "1.5" in message and "softmax" in message


def test_logits_instead_of_probabilities():
    z = np.random.default_rng(0).normal(size=(16, 16, 3)).astype(np.float32) * 4
    message = refusal(uploads.prediction_probabilities, probability_prediction(z), np.zeros((16, 16), np.int64), 3)
    assert "look like logits" in message and "softmax" in message


def test_channels_first_and_wrong_class_count():
    p = np.full((3, 16, 20), 1 / 3, np.float32)
    message = refusal(probability_prediction, p)
    assert "first axis" in message and "np.moveaxis" in message
    assert_helpful(message)
    p = np.full((10, 32, 32), 0.1, np.float32)  # 10 classes first: read as an image, caught against its mask
    message = refusal(uploads.prediction_probabilities, probability_prediction(p), np.zeros((32, 32), np.int64), 10)
    assert "first axis" in message and "np.moveaxis" in message
    p = np.full((16, 20, 4), 0.25, np.float32)
    message = refusal(uploads.prediction_probabilities, probability_prediction(p), np.zeros((16, 20), np.int64), 3)
    assert "has 4 classes on its last axis" in message


def test_prediction_of_another_size_and_with_unknown_classes():
    predicted = entry("p.png", encode(index_mask(32, 40)))
    prediction = uploads.read_prediction(predicted)
    assert "its truth mask is 20×16" in refusal(uploads.prediction_probabilities, prediction, np.zeros((16, 20), np.int64), 3)
    assert "predicts class 2" in refusal(uploads.prediction_probabilities, prediction, np.zeros((32, 40), np.int64), 2)


def test_cmyk_image_as_a_mask():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 0, 0))
    message = refusal(uploads.decode_mask, encode(cmyk, "TIFF"), "m.tif")
    assert "CMYK" in message and "not a mask" in message
    assert_helpful(message)
    # ... while a CMYK *image* is converted to RGB.
    small, size, full = uploads.decode_image(encode(cmyk, "JPEG"), "photo.jpg", keep_full=True)
    assert small.shape == (64, 64, 3) and size == (32, 32) and full.shape == (32, 32, 3)
    assert full[..., 1].mean() < 60 and full[..., 0].mean() > 200, "CMYK (0, 255, 0, 0), magenta, is RGB (255, 0, 255)"


def test_palette_mode_mask_indices_are_the_classes():
    mask = index_mask(32, 32, classes=3)
    image = Image.fromarray(mask).convert("P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 - 3) * 3)
    decoded = uploads.decode_mask(encode(image), "voc.png")
    assert decoded.kind == "index" and np.array_equal(decoded.codes, mask)
    assert decoded.palette[:3] == ("#000000", "#ff0000", "#0000ff")
    masks, _ = uploads.read_masks([entry("voc.png", encode(image))])
    assert masks.class_colours(masks.default_mapping(), 3) == ("#000000", "#ff0000", "#0000ff")


def test_palette_mode_mask_with_the_void_value_255():
    mask = index_mask(32, 32, classes=3)
    mask[0, :] = 255
    image = Image.fromarray(mask).convert("P")
    decoded = uploads.decode_mask(encode(image), "voc.png")
    assert decoded.kind == "index" and np.array_equal(decoded.codes, mask)
    assert any("255 read as void" in w and "no loss, metric, class count or weight" in w for w in decoded.warnings)


def test_animated_gif_and_multipage_tiff():
    frames = [Image.fromarray(index_mask(32, 32, seed=i)).convert("P") for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    message = refusal(uploads.decode_mask, buffer.getvalue(), "anim.gif")
    assert "animated GIF (3 frames)" in message
    assert_helpful(message)
    buffer = io.BytesIO()
    frames[0].convert("L").save(buffer, "TIFF", save_all=True, append_images=[f.convert("L") for f in frames[1:]])
    assert "several pages (3 frames)" in refusal(uploads.decode_mask, buffer.getvalue(), "stack.tif")


def test_float_and_negative_masks():
    floats = Image.fromarray(np.full((16, 16), 0.5, np.float32))
    assert "floating-point" in refusal(uploads.decode_mask, encode(floats, "TIFF"), "f.tif")
    negative = Image.fromarray(np.full((16, 16), -2, np.int32))
    assert "negative value -2" in refusal(uploads.decode_mask, encode(negative, "TIFF"), "n.tif")


def test_exotic_formats_are_not_even_tried():
    # Pillow could read these (EPS would even start Ghostscript); only PNG, BMP, TIFF, JPEG, GIF are tried.
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nshowpage\n"
    assert "not an image that can be read" in refusal(uploads.decode_mask, eps, "m.eps")
    ppm = b"P5 16 16 255\n" + bytes(256)
    assert "not an image that can be read" in refusal(uploads.decode_mask, ppm, "m.png")


def test_mixed_index_and_colour_masks():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:10] = (255, 0, 0)
    masks, problems = uploads.read_masks([entry("a.png", encode(index_mask())), entry("b.png", encode(index_mask())), entry("c.png", encode(rgb))])
    assert masks.kind == "index" and len(masks) == 2
    assert problems[0].name == "c.png" and "Upload one kind at a time" in problems[0].message


def test_colour_masks_together_over_the_colour_limit(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_COLOURS", 4)
    def colours(offset):
        rgb = np.zeros((16, 16, 3), np.uint8)
        for i in range(3):
            rgb[i * 4 : i * 4 + 4] = (offset + 40 * i, 10, 200)
        return encode(rgb)
    masks, problems = uploads.read_masks([entry("a.png", colours(0)), entry("b.png", colours(1))])
    assert len(masks) == 1 and masks.num_codes == 4
    assert problems[0].name == "b.png" and "more than 4" in problems[0].message


def test_too_many_pixels_in_one_upload(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_TOTAL_PIXELS", 3000)
    message = refusal(uploads.read_masks, [entry(f"{i}.png", encode(index_mask(32, 40))) for i in range(3)])
    assert "million pixels in all" in message
    assert_helpful(message)


def test_nothing_readable_names_the_first_problem():
    message = refusal(uploads.read_masks, [entry("a.png", b""), entry("b.png", b"text")])
    assert "None of these files could be read as a mask" in message and "'a.png' is empty" in message and "1 more refused" in message


def test_class_beyond_the_requested_number_of_classes():
    masks, _ = uploads.read_masks([entry("a.png", encode(index_mask(classes=4)))])
    message = refusal(masks.check_mapping, masks.default_mapping(), 3)
    assert "'a.png'" in message and "holds class 3" in message and "Raise the number of classes to at least 4" in message
    assert masks.check_mapping(masks.default_mapping(), 6) == 6
    assert "At most" in refusal(masks.check_mapping, masks.default_mapping(), 65)


def test_too_few_pairs_and_a_single_class():
    images, _ = uploads.read_images([entry(f"{i}.png", encode(np.zeros((32, 40, 3), np.uint8))) for i in range(3)])
    masks, _ = uploads.read_masks([entry(f"{i}.png", encode(index_mask(classes=2))) for i in range(3)])
    message = refusal(uploads.build_dataset, images, masks, uploads.pair(images, masks), masks.default_mapping(), 2, ("a", "b"), ("#000000", "#ffffff"))
    assert "3 image–mask pairs matched" in message and f"at least {uploads.MIN_PAIRS}" in message
    images, _ = uploads.read_images([entry(f"{i}.png", encode(np.zeros((32, 40, 3), np.uint8))) for i in range(6)])
    masks, _ = uploads.read_masks([entry(f"{i}.png", encode(np.zeros((32, 40), np.uint8))) for i in range(6)])
    message = refusal(uploads.build_dataset, images, masks, uploads.pair(images, masks), masks.default_mapping(), 1, ("a",), ("#000000",))
    assert "single class" in message


def test_jpeg_mask_is_read_with_a_warning():
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 2
    decoded = uploads.decode_mask(encode(mask, "JPEG", quality=95), "m.jpg")
    assert decoded.kind == "index"
    assert any("JPEG" in w and "lossy" in w and "PNG" in w for w in decoded.warnings)


def test_every_message_names_no_path_on_disk_and_is_one_paragraph():
    message = refusal(uploads.decode_mask, b"x", "m.png")
    assert "\n" not in message and "/tmp" not in message


# -- good files ---------------------------------------------------------------------------------------


def test_index_masks_of_different_sizes_give_the_counts_of_explorer_weights():
    arrays = [index_mask(32, 40, 4, seed=1), index_mask(50, 20, 4, seed=2), index_mask(16, 16, 2, seed=3)]
    masks, problems = uploads.read_masks([entry(f"{i}.png", encode(a)) for i, a in enumerate(arrays)])
    assert problems == [] and masks.kind == "index"
    mapping = masks.default_mapping()
    k = masks.check_mapping(mapping)
    assert k == 4
    counts = masks.counts(mapping, k)
    expected = weights.count_pixels(arrays, 4)
    np.testing.assert_array_equal(counts.pixels, expected.pixels)
    np.testing.assert_array_equal(counts.images_containing, expected.images_containing)
    np.testing.assert_array_equal(counts.pixels_of_images_containing, expected.pixels_of_images_containing)
    assert counts.num_images == 3 and counts.total_pixels == sum(a.size for a in arrays)


def test_absent_trailing_class_gets_weight_zero_and_a_warning():
    masks, _ = uploads.read_masks([entry("a.png", encode(index_mask(classes=2)))])
    counts = masks.counts(masks.default_mapping(), masks.check_mapping(masks.default_mapping(), 3))
    result = weights.class_weights(counts, "balanced")
    assert result.weights[2] == 0 and result.warnings and np.isfinite(result.weights).all()


def test_sixteen_bit_mask_with_small_values_and_binary_255_masks():
    mask16 = index_mask(classes=5).astype(np.uint16)
    decoded = uploads.decode_mask(encode(Image.fromarray(mask16)), "m16.png")
    assert decoded.kind == "index" and np.array_equal(decoded.codes, mask16)
    binary = (index_mask(classes=2) * 255).astype(np.uint8)
    decoded = uploads.decode_mask(encode(binary), "bin.png")
    assert np.array_equal(decoded.codes, binary // 255)
    assert any("binary" in w and "255 → class 1" in w for w in decoded.warnings)


def test_bilevel_and_grey_as_rgb_masks_are_index_masks():
    mask = index_mask(classes=2)
    decoded = uploads.decode_mask(encode(Image.fromarray(mask.astype(bool))), "bits.png")
    assert decoded.kind == "index" and np.array_equal(decoded.codes, mask)
    grey = np.repeat(index_mask(classes=4)[..., None], 3, axis=-1)
    decoded = uploads.decode_mask(encode(grey), "grey.png")
    assert decoded.kind == "index" and np.array_equal(decoded.codes, grey[..., 0])


def colour_mask(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, classes): black background, red and blue objects."""
    classes = index_mask(40, 48, 3, seed)
    palette = np.array([(0, 0, 0), (255, 0, 0), (0, 0, 255)], np.uint8)
    return palette[classes], classes


def test_colour_masks_palette_detection_and_an_edited_mapping():
    (rgb1, c1), (rgb2, c2) = colour_mask(1), colour_mask(2)
    rgb2[0, 0] = (0, 255, 0)  # a third colour in one mask only
    c2 = c2.copy()
    masks, problems = uploads.read_masks([entry("a.png", encode(rgb1)), entry("b.png", encode(rgb2))])
    assert problems == [] and masks.kind == "colour"
    assert set(masks.colours) == {"#000000", "#ff0000", "#0000ff", "#00ff00"}
    mapping = masks.default_mapping()
    assert mapping[masks.colours.index("#000000")] == 0  # black is the background
    assert sorted(mapping) == [0, 1, 2, 3]
    # Merge green into red's class: three classes.
    edited = mapping.copy()
    edited[masks.colours.index("#00ff00")] = mapping[masks.colours.index("#ff0000")]
    edited = np.unique(edited, return_inverse=True)[1]  # renumber 0..2; black stays 0
    k = masks.check_mapping(edited)
    assert k == 3
    counts = masks.counts(edited, k)
    red = int(edited[masks.colours.index("#ff0000")])
    assert counts.pixels[red] == (c1 == 1).sum() + (c2 == 1).sum() + 1 - (c2[0, 0] == 1)
    colours = masks.class_colours(edited, k)
    assert colours[0] == "#000000" and colours[red] == "#ff0000"


def test_transparent_background_is_a_colour_of_its_own():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:8] = (255, 0, 0, 255)
    decoded = uploads.decode_mask(encode(rgba), "a.png")
    masks, _ = uploads.read_masks([entry("a.png", encode(rgba))])
    assert decoded.kind == "colour" and set(masks.colours) == {"#00000000", "#ff0000"}


def test_zip_with_images_and_masks_folders_gives_pairs_and_a_dataset():
    rng = np.random.default_rng(0)
    files, truth = {}, {}
    for i in range(8):
        m = index_mask(48, 40, 3, seed=i)
        truth[i] = m
        files[f"set/images/{i:04d}.jpg"] = encode((rng.random((48, 40, 3)) * 255).astype(np.uint8), "JPEG")
        files[f"set/masks/{i:04d}.png"] = encode(m)
    files["__MACOSX/set/._0000.png"] = b"junk"
    entries, problems = uploads.expand([("data.zip", zip_of(files))])
    assert problems == [] and len(entries) == 16
    mask_entries, image_entries = uploads.split_roles(entries, "mask")
    assert len(mask_entries) == 8 and len(image_entries) == 8
    masks, _ = uploads.read_masks(mask_entries)
    images, _ = uploads.read_images(image_entries)
    pairing = uploads.pair(images, masks)
    assert len(pairing.pairs) == 8 and pairing.problems == ()
    mapping = masks.default_mapping()
    dataset = uploads.build_dataset(images, masks, pairing, mapping, 3, ("bg", "a", "b"), ("#000000", "#ff0000", "#00ff00"), seed=0)
    assert dataset.num_classes == 3 and dataset.name.startswith("your data")
    assert dataset.train_images.shape[1:] == (64, 64, 3) and dataset.train_images.dtype == np.float32
    assert dataset.train_masks.shape[1:] == (64, 64) and dataset.train_masks.dtype == np.uint8
    assert 0 <= dataset.train_images.min() and dataset.train_images.max() <= 1
    assert len(dataset.val_images) == max(uploads.MIN_VAL, round(0.2 * 8))
    assert len(dataset.train_images) >= uploads.MIN_TRAIN  # 6 training pairs repeated whole
    assert len(dataset.train_images) % 6 == 0
    assert not dataset.train_images.flags.writeable and not dataset.val_masks.flags.writeable
    # Nearest-neighbour: the resized masks hold only classes of the originals.
    assert set(np.unique(dataset.train_masks)) <= {0, 1, 2}
    # The same files and seed give the same split; another seed another one.
    again = uploads.build_dataset(images, masks, pairing, mapping, 3, ("bg", "a", "b"), ("#000000",) * 3, seed=0)
    np.testing.assert_array_equal(again.val_masks, dataset.val_masks)
    other = uploads.build_dataset(images, masks, pairing, mapping, 3, ("bg", "a", "b"), ("#000000",) * 3, seed=5)
    assert not np.array_equal(other.val_images, dataset.val_images)
    # Repeating the training set keeps its class shares exactly.
    unique = dataset.train_masks[: len(dataset.train_masks) // (len(dataset.train_masks) // 6)]
    np.testing.assert_allclose(
        weights.count_pixels(dataset.train_masks, 3).frequencies, weights.count_pixels(unique, 3).frequencies
    )


def test_loose_files_with_mask_suffixes_pair_with_their_images():
    names = ["0001.jpg", "0001_mask.png", "0002.jpg", "0002_mask.png"]
    masks, images = uploads.split_roles([entry(n, b"") for n in names], "mask")
    assert [e.path for e in masks] == ["0001_mask.png", "0002_mask.png"]
    assert [e.path for e in images] == ["0001.jpg", "0002.jpg"]
    pairs, lone_left, lone_right = uploads.match(["b/0002.jpg", "a/0001.jpg"], ["0001_mask.png", "0002_mask.png"], uploads.IMAGE_SUFFIXES)
    assert pairs == [(0, 1), (1, 0)] and lone_left == lone_right == []


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("train/images/0001.png", "train/0001"),
        ("train/masks/0001_mask.png", "train/0001"),
        ("Labels/Img_7.TIF", "img_7"),
        ("0001_pred.npy", "0001"),
    ],
)
def test_match_key(path, key):
    suffixes = uploads.MASK_SUFFIXES + uploads.PREDICTION_SUFFIXES
    assert uploads.match_key(path, suffixes) == key


def test_display_name_strips_control_characters_and_shortens():
    assert uploads.display_name("a\x00b\nc.png") == "a?b?c.png"
    assert len(uploads.display_name("x" * 500)) <= 120


def test_class_names():
    names, note = uploads.class_names_from("background, tumour", 3)
    assert names == ("background", "tumour", "class 2") and "2 names for 3 classes" in note
    assert uploads.class_names_from("", 2) == (("class 0", "class 1"), None)
    assert uploads.class_names_from("a, a", 2)[0] == ("a", "a (1)")


def test_predictions_are_matched_to_masks_by_name():
    pairs, lone = uploads.match_predictions(["0002_pred.npy", "0001_probs.npy", "zzz.npy"], ["0001.png", "0002.png"])
    assert sorted(pairs) == [(0, 1), (1, 0)] and lone == [2]
    assert uploads.match_predictions(["anything.npy"], ["else.png"]) == ([(0, 0)], [])


def test_prediction_kinds():
    truth = index_mask(16, 16, 3)
    p = np.full((16, 16, 3), 1 / 3, np.float32)
    probabilities = uploads.prediction_probabilities(probability_prediction(p), truth, 3)
    np.testing.assert_allclose(probabilities, 1 / 3, rtol=1e-6)
    hard = uploads.prediction_probabilities(uploads.read_prediction(entry("m.png", encode(truth))), truth, 3)
    np.testing.assert_array_equal(hard.argmax(-1), truth)
    binary = uploads.prediction_probabilities(probability_prediction(np.full((16, 16), 0.25, np.float32)), truth % 2, 2)
    np.testing.assert_allclose(binary[..., 1], 0.25)
    classes = uploads.prediction_probabilities(probability_prediction(truth.astype(np.int64)), truth, 3)
    np.testing.assert_array_equal(classes.argmax(-1), truth)
    assert "only describes 2 classes" in refusal(uploads.prediction_probabilities, probability_prediction(np.full((16, 16), 0.5, np.float32)), truth, 3)


def test_colour_prediction_uses_the_masks_palette():
    rgb, classes = colour_mask(3)
    masks, _ = uploads.read_masks([entry("a.png", encode(rgb))])
    mapping = masks.default_mapping()
    truth = mapping[masks.codes[0]]
    prediction = uploads.read_prediction(entry("a_pred.png", encode(rgb)))
    probabilities = uploads.prediction_probabilities(prediction, truth, 3, masks, mapping)
    np.testing.assert_array_equal(probabilities.argmax(-1), truth)
    rgb[0, 0] = (0, 255, 0)
    prediction = uploads.read_prediction(entry("a_pred.png", encode(rgb)))
    assert "#00ff00" in refusal(uploads.prediction_probabilities, prediction, truth, 3, masks, mapping)


def test_score_every_loss_with_per_pixel_maps():
    rng = np.random.default_rng(0)
    truth = index_mask(24, 32, 3)
    p = rng.dirichlet(np.ones(3), size=truth.shape)
    scores = uploads.score(truth, p, class_weights=[0.5, 2.0, 3.0])
    assert [s.loss_id for s in scores] == list(losses.REGISTRY)
    for s in scores:
        assert np.isfinite(s.value), s.loss_id
        assert s.gradient.shape == truth.shape and np.isfinite(s.gradient).all()
        assert (s.per_pixel is not None) == (s.kind == "pixel")
    ce = scores[0]
    assert ce.loss_id == "ce"
    p_true = np.take_along_axis(p, truth[..., None], -1)[..., 0]
    np.testing.assert_allclose(ce.per_pixel, -np.log(p_true), rtol=1e-4)
    np.testing.assert_allclose(ce.value, -np.log(p_true).mean(), rtol=1e-4)
    # Cross-entropy's gradient w.r.t. the logits, ×H·W, is p − y per pixel.
    y = np.eye(3)[truth]
    np.testing.assert_allclose(ce.gradient, np.linalg.norm(p - y, axis=-1), rtol=1e-3, atol=1e-5)


def test_score_of_a_perfect_hard_prediction_is_near_zero_for_ce_and_dice():
    truth = index_mask(24, 32, 3)
    probabilities = np.eye(3, dtype=np.float32)[truth]
    scores = {s.loss_id: s for s in uploads.score(truth, probabilities, loss_ids=["ce", "dice"])}
    assert scores["ce"].value < 1e-4 and scores["dice"].value < 1e-3


# -- void pixels ----------------------------------------------------------------------------------------


def bordered(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """``mask`` with a void (255) border ``width`` pixels wide, as PASCAL VOC draws around objects."""
    out = mask.copy()
    out[:width], out[-width:], out[:, :width], out[:, -width:] = 255, 255, 255, 255
    return out


def test_index_masks_with_a_void_border_give_classes_void_and_counts_without_it():
    arrays = [bordered(index_mask(32, 40, 3, seed=i)) for i in range(6)]
    decoded = uploads.decode_mask(encode(arrays[0]), "0.png")
    assert decoded.kind == "index" and np.array_equal(decoded.codes, arrays[0])
    masks, problems = uploads.read_masks([entry(f"{i}.png", encode(a)) for i, a in enumerate(arrays)])
    assert problems == [] and masks.num_codes == 3  # 255 is no code: three classes, not 256
    assert [n.name for n in masks.warnings] == [f"{i}.png" for i in range(6)]
    assert all("255 read as void" in n.message for n in masks.warnings)
    void = sum(int((a == 255).sum()) for a in arrays)
    mapping = masks.default_mapping()
    assert masks.void_pixels(mapping) == void and masks.total_pixels == sum(a.size for a in arrays)
    k = masks.check_mapping(mapping)
    assert k == 3
    counts = masks.counts(mapping, k)
    np.testing.assert_array_equal(counts.pixels, [sum(int((a == c).sum()) for a in arrays) for c in range(3)])
    assert counts.total_pixels == masks.total_pixels - void
    np.testing.assert_allclose(counts.frequencies.sum(), 1.0)
    assert np.isfinite(weights.class_weights(counts, "balanced").weights).all()


def test_dataset_of_void_bordered_masks_has_ignore_index_and_keeps_the_border_void():
    arrays = [bordered(index_mask(48, 40, 3, seed=i), width=3) for i in range(6)]
    masks, _ = uploads.read_masks([entry(f"{i}.png", encode(a)) for i, a in enumerate(arrays)])
    images, _ = uploads.read_images([entry(f"{i}.png", encode(np.zeros((48, 40, 3), np.uint8))) for i in range(6)])
    dataset = uploads.build_dataset(images, masks, uploads.pair(images, masks), masks.default_mapping(), 3, ("bg", "a", "b"), ("#000000",) * 3)
    assert dataset.ignore_index == uploads.VOID == 255
    for y in (dataset.train_masks, dataset.val_masks):
        assert set(np.unique(y)) <= {0, 1, 2, 255}
        # Resized 40 → 64 wide and 48 → 64 high, nearest-neighbour: the border stays void all round.
        assert (y[:, 0] == 255).all() and (y[:, -1] == 255).all() and (y[:, :, 0] == 255).all() and (y[:, :, -1] == 255).all()
        assert (y[:, 8:-8, 8:-8] != 255).all()
    # The same masks without a border: no void label.
    plain, _ = uploads.read_masks([entry(f"{i}.png", encode(index_mask(48, 40, 3, seed=i))) for i in range(6)])
    dataset = uploads.build_dataset(images, plain, uploads.pair(images, plain), plain.default_mapping(), 3, ("bg", "a", "b"), ("#000000",) * 3)
    assert dataset.ignore_index is None and plain.void_pixels(plain.default_mapping()) == 0


def test_binary_masks_of_0_and_255_or_255_alone_are_still_binary():
    binary = (index_mask(classes=2) * 255).astype(np.uint8)
    for mask in (binary, np.full((16, 16), 255, np.uint8)):
        decoded = uploads.decode_mask(encode(mask), "bin.png")
        assert np.array_equal(decoded.codes, mask // 255)
        assert any("255 → class 1" in w for w in decoded.warnings)
        assert not any("void" in w for w in decoded.warnings)


def test_255_is_void_only_in_8_bit_masks_and_only_next_to_classes():
    mask16 = bordered(index_mask(classes=3)).astype(np.uint16)
    message = refusal(uploads.decode_mask, encode(Image.fromarray(mask16)), "m16.png")
    assert "16-bit" in message and "only in an 8-bit mask" in message
    assert_helpful(message)
    # 65535 with classes is not void either (and 0/65535 alone stays binary).
    mask16[0, 0] = 65535
    assert "values up to 65535" in refusal(uploads.decode_mask, encode(Image.fromarray(mask16)), "m16.png")
    # 255 next to a value that is no class: refused, not void.
    scaled = index_mask(classes=3) * 100
    scaled[0] = 255
    assert "values up to 255" in refusal(uploads.decode_mask, encode(scaled), "scaled.png")


def test_a_colour_marked_void_leaves_its_pixels_out_of_the_counts():
    (rgb, classes) = colour_mask(1)
    rgb[:, :2] = (255, 255, 0)  # a yellow 'ignore' band
    masks, _ = uploads.read_masks([entry("a.png", encode(rgb))])
    mapping = masks.default_mapping()
    assert uploads.VOID not in mapping  # no colour is void unless marked
    yellow = masks.colours.index("#ffff00")
    mapping[yellow] = uploads.VOID
    kept = [c for c in range(masks.num_codes) if c != yellow]
    mapping[kept] = np.unique(mapping[kept], return_inverse=True)[1]  # the other colours: classes 0..2
    k = masks.check_mapping(mapping)
    assert k == 3  # void is not a class
    assert masks.void_pixels(mapping) == 2 * rgb.shape[0]
    [mask] = masks.class_masks(mapping)
    assert (mask[:, :2] == uploads.VOID).all() and (mask[:, 2:] != uploads.VOID).all()
    counts = masks.counts(mapping, k)
    assert counts.total_pixels == rgb.shape[0] * (rgb.shape[1] - 2)
    black = int(mapping[masks.colours.index("#000000")])
    assert counts.pixels[black] == (classes[:, 2:] == 0).sum()
    # Every colour void: no class left, refused.
    assert "Untick void" in refusal(masks.check_mapping, np.full(masks.num_codes, uploads.VOID))


def test_pascal_voc_boundary_colour_starts_void():
    rgb, _ = colour_mask(2)
    rgb[:3] = (224, 224, 192)
    masks, _ = uploads.read_masks([entry("voc.png", encode(rgb))])
    mapping = masks.default_mapping()
    assert mapping[masks.colours.index(uploads.VOC_BOUNDARY)] == uploads.VOID
    assert sorted(int(m) for m in mapping if m != uploads.VOID) == [0, 1, 2]
    assert masks.check_mapping(mapping) == 3 and masks.void_pixels(mapping) == 3 * rgb.shape[1]


def test_score_leaves_void_pixels_out_of_every_loss():
    rng = np.random.default_rng(1)
    truth = bordered(index_mask(24, 32, 3))
    valid = truth != 255
    p = rng.dirichlet(np.ones(3), size=truth.shape)
    scores = {s.loss_id: s for s in uploads.score(truth, p)}
    assert all(np.isfinite(s.value) for s in scores.values())
    ce = scores["ce"]
    p_true = np.take_along_axis(p, np.where(valid, truth, 0)[..., None].astype(np.int64), -1)[..., 0]
    np.testing.assert_allclose(ce.value, -np.log(p_true[valid]).mean(), rtol=1e-4)
    assert (ce.per_pixel[~valid] == 0).all() and (ce.gradient[~valid] == 0).all()


# -- limits and robustness ------------------------------------------------------------------------------


def test_uploads_are_read_in_memory_and_never_touch_the_disk(monkeypatch):
    import builtins
    import os
    import tempfile

    rgb, _ = colour_mask(4)
    files = {"set/images/0001.png": encode(np.zeros((40, 48, 3), np.uint8)), "set/masks/0001.png": encode(rgb)}
    tiff = encode(Image.fromarray(index_mask()), "TIFF", compression="tiff_lzw")  # decoded by libtiff
    probabilities = io.BytesIO()
    np.save(probabilities, np.full((16, 16, 3), 1 / 3, np.float32))

    def read_everything():
        entries, problems = uploads.expand([("data.zip", zip_of(files)), ("m.tif", tiff)])
        assert problems == []
        masks, images = uploads.split_roles(entries, "mask")
        uploads.read_masks(masks)
        uploads.read_images(images)
        uploads.read_prediction(entry("p.npy", probabilities.getvalue()))

    read_everything()  # Pillow's plugins are imported now

    def no_disk(*args, **kwargs):
        raise AssertionError(f"an upload touched the disk: {args!r}")

    for target, name in ((builtins, "open"), (io, "open"), (os, "open"), (tempfile, "mkstemp"), (tempfile, "NamedTemporaryFile"), (tempfile, "TemporaryFile"), (tempfile, "mkdtemp")):
        monkeypatch.setattr(target, name, no_disk)
    read_everything()



def test_upload_limit_matches_the_server_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == uploads.MAX_UPLOAD_MB


def test_limits_are_consistent():
    assert uploads.MAX_ENTRY_BYTES <= uploads.MAX_ZIP_BYTES
    assert uploads.MAX_IMAGE_PIXELS <= uploads.MAX_TOTAL_PIXELS
    assert Image.MAX_IMAGE_PIXELS is None or uploads.MAX_IMAGE_PIXELS < Image.MAX_IMAGE_PIXELS
    assert uploads.MAX_COLOURS <= 256 and uploads.MAX_CLASSES <= 256  # codes are uint8
    assert uploads.MAX_CLASSES <= uploads.VOID <= 255 and uploads.MAX_COLOURS <= uploads.VOID  # void is no class and no colour code
    assert uploads.MIN_PAIRS > uploads.MIN_VAL


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_are_refused_cleanly(data):
    for function in (uploads.decode_mask, uploads.decode_image):
        try:
            function(data, "fuzz.png")
        except UploadError as error:
            assert error.message
    try:
        uploads.read_npy(data)
    except UploadError:
        pass
    try:
        uploads.expand([("fuzz.zip", b"PK\x03\x04" + data)])
    except UploadError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from(["PNG", "BMP", "TIFF", "GIF", "JPEG"]))
def test_damaged_images_are_refused_cleanly(position, value, fmt):
    mask = index_mask(32, 32, 3)
    data = bytearray(encode(mask if fmt != "GIF" else Image.fromarray(mask).convert("P"), fmt))
    data[position % len(data)] = value
    try:
        decoded = uploads.decode_mask(bytes(data), "m")
    except UploadError as error:
        assert error.message
    else:
        assert decoded.codes.shape[0] >= uploads.MIN_SIDE


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(8, 40), st.integers(8, 40), st.integers(1, 6), st.integers(0, 99)), min_size=1, max_size=5))
def test_counts_over_uploaded_masks_equal_explorer_weights(shapes):
    arrays = [index_mask(h, w, k, seed) for h, w, k, seed in shapes]
    masks, problems = uploads.read_masks([entry(f"{i}.png", encode(a)) for i, a in enumerate(arrays)])
    assert problems == []
    k = max(int(a.max()) for a in arrays) + 1
    counts = masks.counts(masks.default_mapping(), masks.check_mapping(masks.default_mapping()))
    expected = weights.count_pixels(arrays, k)
    np.testing.assert_array_equal(counts.pixels, expected.pixels)
    np.testing.assert_array_equal(counts.images_containing, expected.images_containing)
