"""Tests for explorer.weights against references written here as plain loops."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.weights import (
    SCHEMES,
    ClassCounts,
    class_weights,
    count_pixels,
    per_batch_weights,
    weights_table,
)

DATASET_SCHEMES = [sid for sid, s in SCHEMES.items() if s.dataset_level]


def one_image_counts(pixels):
    """ClassCounts of a single image holding `pixels[c]` pixels of class c."""
    pixels = np.asarray(pixels, np.int64)
    n = int(pixels.sum())
    present = pixels > 0
    return ClassCounts(
        pixels=pixels,
        images_containing=present.astype(np.int64),
        pixels_of_images_containing=np.where(present, n, 0).astype(np.int64),
        num_images=1,
        total_pixels=n,
    )


# --- reference weights, one class at a time, straight from docs/losses.md -----------------


def reference_weights(counts, scheme, beta=0.999):
    n = [int(x) for x in counts.pixels]
    total = sum(n)
    k = sum(1 for x in n if x > 0)
    freqs = {
        c: n[c] / int(counts.pixels_of_images_containing[c]) for c in range(len(n)) if n[c] > 0
    }
    out = []
    for c, nc in enumerate(n):
        if nc == 0:
            out.append(0.0)
        elif scheme == "none":
            out.append(1.0)
        elif scheme == "inverse":
            out.append(total / nc)
        elif scheme == "balanced":
            out.append(total / (k * nc))
        elif scheme == "median_frequency":
            values = sorted(freqs.values())
            m = len(values)
            median = values[m // 2] if m % 2 else (values[m // 2 - 1] + values[m // 2]) / 2
            out.append(median / freqs[c])
        elif scheme == "effective_number":
            out.append((1 - beta) / (1 - beta**nc))
        elif scheme == "inverse_sqrt":
            out.append(1 / math.sqrt(nc / total))
        elif scheme == "log":
            out.append(1 / math.log(1.02 + nc / total))
    if scheme == "effective_number" and k:
        s = sum(out)
        out = [w * k / s for w in out]
    return np.array(out)


counts_lists = st.lists(st.integers(0, 10**7), min_size=1, max_size=8)


# --- balanced == scikit-learn ------------------------------------------------------------


def test_balanced_matches_sklearn_on_fixed_case():
    # sklearn compute_class_weight('balanced') = N / (K * n_c).
    # counts [6, 3, 1]: N = 10, K = 3 -> 10/18, 10/9, 10/3.
    result = class_weights(one_image_counts([6, 3, 1]), "balanced")
    np.testing.assert_allclose(result.weights, [0.5556, 1.1111, 3.3333], atol=1e-4)
    assert result.warnings == ()


def test_balanced_counts_only_present_classes():
    # counts [6, 3, 0, 1]: K = 3 classes present, so the same weights, and 0 for class 2.
    result = class_weights(one_image_counts([6, 3, 0, 1]), "balanced")
    np.testing.assert_allclose(result.weights, [0.5556, 1.1111, 0.0, 3.3333], atol=1e-4)
    assert len(result.warnings) == 1 and "class 2" in result.warnings[0]


def test_balanced_dataset_gets_all_ones():
    np.testing.assert_allclose(class_weights(one_image_counts([5, 5, 5]), "balanced").weights, 1)


# --- every scheme against the loop reference --------------------------------------------


@pytest.mark.parametrize("scheme", DATASET_SCHEMES)
@given(pixels=counts_lists)
@settings(max_examples=60, deadline=None)
def test_scheme_matches_reference(scheme, pixels):
    counts = one_image_counts(pixels)
    result = class_weights(counts, scheme)
    np.testing.assert_allclose(result.weights, reference_weights(counts, scheme), rtol=1e-9)


@pytest.mark.parametrize("scheme", DATASET_SCHEMES)
@given(pixels=counts_lists)
@settings(max_examples=60, deadline=None)
def test_zero_count_class_gets_zero_and_warning(scheme, pixels):
    result = class_weights(one_image_counts(pixels), scheme)
    w = result.weights
    assert w.dtype == np.float64 and w.shape == (len(pixels),)
    assert np.all(np.isfinite(w))
    absent = [c for c, n in enumerate(pixels) if n == 0]
    for c in range(len(pixels)):
        if c in absent:
            assert w[c] == 0.0
        else:
            assert w[c] > 0.0
    assert len(result.warnings) == len(absent)
    for c, message in zip(absent, result.warnings):
        assert f"class {c} " in message


def test_all_classes_absent_gives_zeros_and_a_warning_each():
    counts = count_pixels([], 3)
    for scheme in DATASET_SCHEMES:
        result = class_weights(counts, scheme)
        np.testing.assert_array_equal(result.weights, [0.0, 0.0, 0.0])
        assert len(result.warnings) == 3


def test_warning_uses_class_names():
    result = class_weights(one_image_counts([4, 0]), "inverse", class_names=["sky", "boat"])
    assert result.warnings == ("class 1 (boat) has no pixels in the dataset: its weight is 0",)


def test_inverse_and_friends_by_hand():
    counts = one_image_counts([90, 10])  # N = 100
    np.testing.assert_allclose(class_weights(counts, "inverse").weights, [100 / 90, 10])
    np.testing.assert_allclose(
        class_weights(counts, "inverse_sqrt").weights, [math.sqrt(100 / 90), math.sqrt(10)]
    )
    np.testing.assert_allclose(
        class_weights(counts, "log").weights, [1 / math.log(1.92), 1 / math.log(1.12)]
    )


def test_log_weights_bounded_by_enet_cap():
    w = class_weights(one_image_counts([10**9, 1]), "log").weights
    assert w[1] < 1 / math.log(1.02)
    assert w[1] == pytest.approx(1 / math.log(1.02), rel=1e-6)


# --- median frequency, worked by hand ----------------------------------------------------


def test_median_frequency_hand_worked():
    # Three 4x4 images (16 pixels each):
    #   image 1: 12 px of class 0, 4 of class 1
    #   image 2: 16 px of class 0
    #   image 3: 10 px of class 0, 4 of class 1, 2 of class 2
    # n = [38, 8, 2]; images containing c: [3, 2, 1] -> pixels of those images [48, 32, 16]
    # f = [38/48, 8/32, 2/16] = [0.7917, 0.25, 0.125], median 0.25
    # w = 0.25 / f = [12/38, 1, 2]
    a = np.zeros((4, 4), np.uint8)
    a[0] = 1
    b = np.zeros((4, 4), np.uint8)
    c = np.zeros((4, 4), np.uint8)
    c[0] = 1
    c[1, :2] = 2
    counts = count_pixels([a, b, c], 3)
    np.testing.assert_array_equal(counts.pixels, [38, 8, 2])
    np.testing.assert_array_equal(counts.images_containing, [3, 2, 1])
    np.testing.assert_array_equal(counts.pixels_of_images_containing, [48, 32, 16])
    w = class_weights(counts, "median_frequency").weights
    np.testing.assert_allclose(w, [12 / 38, 1.0, 2.0])


# --- effective number -------------------------------------------------------------------


@given(pixels=counts_lists, beta=st.floats(0.0, 0.99999))
@settings(max_examples=100, deadline=None)
def test_effective_number_sums_to_k(pixels, beta):
    w = class_weights(one_image_counts(pixels), "effective_number", beta=beta).weights
    k = sum(1 for n in pixels if n > 0)
    assert w.sum() == pytest.approx(k, rel=1e-9, abs=1e-12)


def test_effective_number_hand_worked():
    # beta = 0.9, n = [1, 2]: raw (0.1/0.1, 0.1/0.19) = (1, 10/19); scaled to sum 2:
    # 2 * 19/29 = 38/29, 2 * 10/29 = 20/29
    w = class_weights(one_image_counts([1, 2]), "effective_number", beta=0.9).weights
    np.testing.assert_allclose(w, [38 / 29, 20 / 29])


def test_effective_number_beta_zero_is_uniform_and_default_is_exposed():
    assert SCHEMES["effective_number"].params["beta"].default == 0.999
    w = class_weights(one_image_counts([1000, 10, 1]), "effective_number", beta=0.0).weights
    np.testing.assert_allclose(w, 1.0)


def test_effective_number_rejects_beta_out_of_range():
    with pytest.raises(ValueError, match="beta"):
        class_weights(one_image_counts([1, 2]), "effective_number", beta=1.0)


# --- registry, table, errors ------------------------------------------------------------


def test_registry_lists_losses_md_schemes_in_order():
    assert list(SCHEMES) == [
        "none",
        "inverse",
        "balanced",
        "median_frequency",
        "effective_number",
        "inverse_sqrt",
        "log",
        "per_batch",
    ]
    for sid, scheme in SCHEMES.items():
        assert scheme.id == sid and scheme.name and scheme.formula and scheme.note
    assert not SCHEMES["per_batch"].dataset_level


def test_weights_table_has_every_dataset_scheme():
    counts = one_image_counts([70, 20, 0, 10])
    table = weights_table(counts)
    assert list(table) == DATASET_SCHEMES
    for sid, w in table.items():
        np.testing.assert_allclose(w, reference_weights(counts, sid), rtol=1e-9)


def test_class_weights_errors():
    counts = one_image_counts([3, 1])
    with pytest.raises(ValueError, match="unknown weighting scheme"):
        class_weights(counts, "inverse_frequency")
    with pytest.raises(ValueError, match="per_batch_weights"):
        class_weights(counts, "per_batch")
    with pytest.raises(ValueError, match="no parameter"):
        class_weights(counts, "inverse", beta=0.9)


# --- per batch: the trap ----------------------------------------------------------------


def test_per_batch_weight_explodes_for_missing_class():
    # Dataset: class 2 present (in image 2). Batch: only image 1, which lacks class 2.
    image1 = np.zeros((8, 8), np.int64)
    image1[:2] = 1
    image2 = image1.copy()
    image2[7, 7] = 2
    dataset = class_weights(count_pixels([image1, image2], 3), "inverse").weights
    batch = per_batch_weights(image1[None], 3)
    assert np.all(np.isfinite(dataset)) and dataset.max() < 200
    assert batch.weights[2] == pytest.approx(64 / 1e-6)  # P_batch / eps
    assert batch.weights[2] > 1e5 * dataset[2]  # 6.4e7 against 128
    assert len(batch.warnings) == 1 and "class 2 " in batch.warnings[0]


def test_per_batch_equals_inverse_when_batch_is_the_dataset():
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 4, size=(3, 16, 16))
    batch = per_batch_weights(masks, 4, eps=1e-12).weights
    dataset = class_weights(count_pixels(masks, 4), "inverse").weights
    np.testing.assert_allclose(batch, dataset, rtol=1e-9)


def test_per_batch_rejects_non_positive_eps():
    with pytest.raises(ValueError, match="eps"):
        per_batch_weights(np.zeros((1, 2, 2), int), 2, eps=0.0)


# --- counting ---------------------------------------------------------------------------


def reference_counts(images, num_classes):
    """Loop over every pixel of every (H, W) image."""
    pixels = [0] * num_classes
    containing = [0] * num_classes
    pixels_containing = [0] * num_classes
    for image in images:
        seen = set()
        for value in np.asarray(image).ravel().tolist():
            pixels[value] += 1
            seen.add(value)
        for c in seen:
            containing[c] += 1
            pixels_containing[c] += image.size
    return pixels, containing, pixels_containing


def assert_counts_equal(counts, images, num_classes):
    pixels, containing, pixels_containing = reference_counts(images, num_classes)
    np.testing.assert_array_equal(counts.pixels, pixels)
    np.testing.assert_array_equal(counts.images_containing, containing)
    np.testing.assert_array_equal(counts.pixels_of_images_containing, pixels_containing)
    assert counts.num_images == len(images)
    assert counts.total_pixels == sum(im.size for im in images)
    assert counts.pixels.dtype == np.int64


@given(seed=st.integers(0, 2**32 - 1), num_classes=st.integers(1, 6))
@settings(max_examples=40, deadline=None)
def test_streaming_equals_stacked(seed, num_classes):
    rng = np.random.default_rng(seed)
    # Skewed draw so that some classes are missing from some images.
    p = rng.dirichlet(np.full(num_classes, 0.3))
    stacked = rng.choice(num_classes, size=(7, 5, 6), p=p).astype(np.uint8)
    from_stack = count_pixels(stacked, num_classes)
    streamed = count_pixels(iter(list(stacked)), num_classes)  # a one-shot iterator
    in_batches = count_pixels((stacked[i : i + 3] for i in range(0, 7, 3)), num_classes)
    for counts in (from_stack, streamed, in_batches):
        assert_counts_equal(counts, list(stacked), num_classes)


def test_masks_of_different_sizes():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 3, size=shape) for shape in [(4, 4), (2, 9), (7, 3), (1, 1)]]
    images[3][:] = 2  # a one-pixel image holding only class 2
    batch = rng.integers(0, 2, size=(2, 3, 5))  # a batch mixed in with single masks
    counts = count_pixels([*images, batch], 3)
    assert_counts_equal(counts, [*images, *batch], 3)


def test_single_2d_mask_is_one_image():
    counts = count_pixels(np.array([[0, 1], [1, 1]]), 2)
    np.testing.assert_array_equal(counts.pixels, [1, 3])
    assert counts.num_images == 1


def test_counts_are_read_only():
    counts = count_pixels([np.zeros((2, 2), int)], 2)
    with pytest.raises(ValueError):
        counts.pixels[0] = 5


@pytest.mark.parametrize(
    "mask, match",
    [
        (np.array([[0, 3]]), "value 3"),
        (np.array([[0, -1]]), "value -1"),
        (np.array([[0.0, 1.0]]), "integer"),
        (np.array([0, 1]), "shape"),
    ],
)
def test_bad_masks_raise_clear_errors(mask, match):
    with pytest.raises(ValueError, match=match):
        count_pixels([np.zeros((2, 2), int), mask], 3)


def test_out_of_range_message_names_the_mask_and_the_valid_range():
    with pytest.raises(ValueError, match=r"mask 1 contains the value 5.*0 to 2"):
        count_pixels([np.zeros((2, 2), int), np.full((2, 2), 5)], 3)


def test_no_streamlit_import():
    code = "import sys, explorer.weights, explorer.metrics; print('streamlit' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --- a void label, and the other forms of counts ------------------------------------------

VOID = 255


def test_count_pixels_leaves_void_pixels_out():
    rng = np.random.default_rng(11)
    masks = rng.integers(0, 4, (5, 6, 7))
    masks[1] = 0  # classes 1..3 absent from image 1
    void = rng.random(masks.shape) < 0.3
    with_void = np.where(void, VOID, masks).astype(np.uint8)
    counts = count_pixels(with_void, 4, ignore_index=VOID)
    # Reference: loop over each image's non-void pixels.
    for c in range(4):
        kept = [[int(m) for m, v in zip(masks[i].ravel(), void[i].ravel()) if not v] for i in range(5)]
        assert counts.pixels[c] == sum(k.count(c) for k in kept)
        assert counts.images_containing[c] == sum(1 for k in kept if c in k)
        assert counts.pixels_of_images_containing[c] == sum(len(k) for k in kept if c in k)
    assert counts.total_pixels == np.count_nonzero(~void)
    assert counts.num_images == 5


def test_void_value_without_ignore_index_is_refused_with_the_way_out():
    with pytest.raises(ValueError, match="contains the value 255.*ignore_index"):
        count_pixels(np.full((2, 2), VOID, np.uint8), 3)
    with pytest.raises(ValueError, match="contains the value 7.*255 for void"):
        count_pixels(np.array([[0, 7], [VOID, 1]]), 3, ignore_index=VOID)


@pytest.mark.parametrize("scheme", [s for s in DATASET_SCHEMES if s != "median_frequency"])
def test_class_weights_from_plain_counts(scheme):
    pixels = [5000, 300, 0, 12]
    from_counts = class_weights(one_image_counts(pixels), scheme)
    for plain in (pixels, np.array(pixels), np.array(pixels, float)):
        result = class_weights(plain, scheme)
        np.testing.assert_allclose(result.weights, reference_weights(one_image_counts(pixels), scheme))
        assert result.warnings == from_counts.warnings


def test_median_frequency_needs_per_image_counts():
    with pytest.raises(ValueError, match="median_frequency needs.*count_pixels"):
        class_weights([10, 5], "median_frequency")


@pytest.mark.parametrize("bad", [[1.5, 2], [-1, 4], ["a", "b"], 3])
def test_plain_counts_are_checked(bad):
    with pytest.raises(ValueError, match="counts"):
        class_weights(bad, "inverse")


@pytest.mark.parametrize("scheme", DATASET_SCHEMES)
def test_class_weights_from_a_stack_of_masks_with_void(scheme):
    rng = np.random.default_rng(12)
    masks = rng.integers(0, 3, (4, 5, 5))
    masks[0, :2] = VOID
    expected = class_weights(count_pixels(masks, 3, ignore_index=VOID), scheme).weights
    result = class_weights(masks, scheme, num_classes=3, ignore_index=VOID)
    np.testing.assert_allclose(result.weights, expected)
    # The void pixels were not counted: the same weights as from the masks without them.
    kept = masks[masks != VOID]
    np.testing.assert_allclose(
        class_weights(np.bincount(kept, minlength=3), scheme).weights if scheme != "median_frequency" else expected,
        result.weights,
    )


def test_a_stack_of_masks_needs_num_classes():
    with pytest.raises(ValueError, match="pass num_classes"):
        class_weights(np.zeros((2, 3, 3), int), "balanced")
