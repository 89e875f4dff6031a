"""The user's own dataset at its own resolution: read from a folder or a zip, trained on crops,
validated on whole images.

A dataset is read through the same code as the page's uploads (explorer/uploads.py: the same
naming rules, checks, limits and messages): ``images/`` and ``masks/`` folders, or names such as
``0001.png`` ↔ ``0001_mask.png``. An optional ``classes.json`` (the toy set's format: a list of
classes with a name and a colour) names the classes. When every pair sits under a ``train/`` or
``val/`` folder, that split is kept; otherwise a seeded split takes a fifth for validation.

Training: a pool of ``pool`` random crops of ``crop``×``crop`` pixels is cut from the training
images once (seeded: the same seed gives the same crops), and a run draws its batches from the
pool as it does from the toy set. An image is chosen in proportion to its area and the crop's
position uniformly within it, so, as with any random crop, pixels closer than half a crop to the
border fall in fewer crops than the rest. Only when asked (``rare_share`` > 0)
that share of the crops is centred on a pixel of a rare class (every class but the most frequent,
in equal parts); the pool's class shares then differ from the images', and both are reported.

Validation: whole images, padded with void to a common size that is a multiple of the U-Net's
stride (2**depth); void pixels count in no loss or metric.

Class counts (and so every weighting scheme) are taken over the full-resolution training masks,
not over the crops.

Memory: everything is held in memory, bounded by the uploads' limits: at most
``uploads.MAX_TOTAL_PIXELS`` (64 million) pixels are read (about 256 MB as uint8 images and
masks); the pool holds ``pool`` × ``crop``² pixels as float32 (2048 crops of 64×64: 100 MB); the
validation images are float32 (12 bytes a pixel) and refused beyond ``MAX_VALIDATION_PIXELS``.
Nothing is streamed from disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer import uploads, weights
from explorer.data import Dataset
from explorer.training import RunConfig

CROP = 64
POOL = 2048
STRIDE = 2 ** RunConfig().depth  # whole images are padded to a multiple of it
MAX_VALIDATION_PIXELS = 16_000_000  # padded, all validation images: 192 MB as float32 RGB
TRAIN_FOLDERS = frozenset({"train", "training"})
VAL_FOLDERS = frozenset({"val", "valid", "validation"})
_CROP_STREAM = 7919  # a seed sequence of its own: crops do not move when the split's seed is reused


@dataclass(frozen=True, eq=False)
class OwnData:
    """A dataset at its own resolution, ready for explorer.training.Run: ``dataset`` holds the crop
    pool as its training set and the padded whole images as its validation set; ``counts`` are the
    full-resolution training masks' class counts."""

    dataset: Dataset
    counts: weights.ClassCounts
    crop: int
    rare_share: float
    pool_shares: np.ndarray  # class shares of the crop pool (void left out)
    image_sizes: tuple[tuple[int, int], ...]  # (H, W) of the training images
    problems: tuple[uploads.Problem, ...] = ()  # files left out, with why
    val_total: int = 0  # validation images in the split; the dataset holds the first ones that fit

    def describe(self) -> str:
        sizes = sorted(set(self.image_sizes), key=lambda hw: (hw[0] * hw[1], hw))
        size = f"{sizes[0][1]}×{sizes[0][0]}" if len(sizes) == 1 else f"{len(sizes)} sizes from {sizes[0][1]}×{sizes[0][0]} to {sizes[-1][1]}×{sizes[-1][0]}"
        rare = f", {self.rare_share:.0%} of them centred on a pixel of a rare class (asked for)" if self.rare_share else " (uniform)"
        v = self.dataset.val_images
        kept = f"the first {len(v)} of {self.val_total}" if self.val_total > len(v) else f"{len(v)}"
        return (f"{len(self.image_sizes)} training images ({size}) as {len(self.dataset.train_images)} crops of {self.crop}×{self.crop}{rare}; "
                f"{kept} whole validation images (padded to {v.shape[2]}×{v.shape[1]})")


# -- reading ---------------------------------------------------------------------------------------


def read_files(path: Path) -> list[tuple[str, bytes]]:
    """The files of a dataset folder or zip as (path inside it, bytes); uploads.expand opens a zip
    with every limit of an upload."""
    path = Path(path)
    if not path.exists():
        raise uploads.UploadError(f"{path} does not exist. Give a folder with images/ and masks/, or a zip of one.")
    if path.is_file():
        return [(path.name, path.read_bytes())]
    files = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path)
        if any(part.startswith(".") for part in relative.parts) or file.name.lower() in uploads.JUNK_NAMES:
            continue
        if file.stat().st_size > uploads.MAX_UPLOAD_MB * 2**20:
            raise uploads.UploadError(f"{relative.as_posix()} is larger than {uploads.MAX_UPLOAD_MB} MB, the limit per file. Downscale it, or leave it out.")
        files.append((relative.as_posix(), file.read_bytes()))
        if len(files) > uploads.MAX_FILES:
            break  # uploads.expand says what to do
    return files


def load(path: Path, *, crop: int = CROP, pool: int = POOL, rare_share: float = 0.0, seed: int = 0, validation_pixels: int | None = None) -> OwnData:
    """Read a dataset folder or zip (see the module docstring). Raises uploads.UploadError with a
    message that says what was wrong and what to do."""
    entries, problems = uploads.expand(read_files(path))
    classes, entries = uploads.take_class_table(entries)
    mask_entries, image_entries = uploads.split_roles(entries, default="image")
    if not mask_entries:
        raise uploads.UploadError(f"No masks found in {path}. Put the masks in a masks/ folder (or name them like 0001_mask.png) next to images/.")
    images, image_problems = uploads.read_images(image_entries, keep_full=True)
    masks, mask_problems = uploads.read_masks(mask_entries)
    pairing = uploads.pair(images, masks)
    mapping = masks.default_mapping()
    num_classes = masks.check_mapping(mapping, len(classes) if classes else 0)
    if classes:
        names = tuple(c["name"] for c in classes)
        colours = tuple(c["color"] for c in classes)
    else:
        names, _ = uploads.class_names_from("", num_classes)
        colours = masks.class_colours(mapping, num_classes)
    found = (*problems, *image_problems, *mask_problems, *masks.warnings, *pairing.problems)
    return at_resolution(images, masks, pairing, mapping, num_classes, names, colours, crop=crop, pool=pool, rare_share=rare_share, seed=seed, problems=found,
                        validation_pixels=validation_pixels)


# -- building --------------------------------------------------------------------------------------


def _given_split(paths: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    tops = [uploads.match_key(p).split("/", 1)[0] for p in paths]
    if all(t in TRAIN_FOLDERS | VAL_FOLDERS for t in tops):
        train = np.array([i for i, t in enumerate(tops) if t in TRAIN_FOLDERS])
        val = np.array([i for i, t in enumerate(tops) if t in VAL_FOLDERS])
        if len(train) and len(val) >= uploads.MIN_VAL:
            return train, val
    return None


def at_resolution(
    images: uploads.ImageSet,
    masks: uploads.MaskSet,
    pairing: uploads.Pairing,
    mapping,
    num_classes: int,
    class_names,
    class_colours,
    *,
    crop: int = CROP,
    pool: int = POOL,
    rare_share: float = 0.0,
    seed: int = 0,
    problems: tuple[uploads.Problem, ...] = (),
    validation_pixels: int | None = None,
) -> OwnData:
    """The OwnData of paired images (read with ``keep_full``) and masks. ``validation_pixels``
    None validates on every validation image (refused beyond MAX_VALIDATION_PIXELS, padded); a
    number keeps only the first validation images whose padded size fits in it (the page: its
    snapshots must stay quick), at least one."""
    if crop < STRIDE or crop % STRIDE:
        raise uploads.UploadError(f"The crop size {crop} must be a multiple of {STRIDE} (the U-Net halves the image {STRIDE.bit_length() - 1} times). Try 64.")
    if not 0 <= rare_share <= 1:
        raise uploads.UploadError(f"The share of rare-class crops must be within 0..1, not {rare_share}.")
    if pool < RunConfig().batch_size:
        raise uploads.UploadError(f"A pool of {pool} crops is smaller than a batch ({RunConfig().batch_size}). Use a few thousand.")
    if not images.full:
        raise ValueError("the images were read without keep_full")
    pairs = uploads.check_pairs(pairing, num_classes)
    train, val = _given_split([images.paths[i] for i, _ in pairs]) or uploads.split(len(pairs), seed)
    val_total = len(val)
    image_of = [images.full[pairs[k][0]] for k in range(len(pairs))]
    mask_of = [masks.class_mask(pairs[k][1], mapping) for k in range(len(pairs))]
    train_images, train_masks = [image_of[k] for k in train], [mask_of[k] for k in train]
    counts = weights.count_pixels(train_masks, num_classes, ignore_index=uploads.VOID)
    x, y = training_crops(train_images, train_masks, counts, crop=crop, count=pool, seed=seed, rare_share=rare_share)
    if validation_pixels is not None:
        val = val[: _fitting(val, mask_of, validation_pixels)]
    val_x, val_y = pad_to_stride([image_of[k] for k in val], [mask_of[k] for k in val])
    pool_counts = weights.count_pixels(y, num_classes, ignore_index=uploads.VOID)
    for array in (x, y, val_x, val_y):
        array.setflags(write=False)
    void = bool(np.any(y == uploads.VOID) or np.any(val_y == uploads.VOID))
    dataset = Dataset(
        name=f"your data at its resolution ({len(train)} training images as {pool} crops of {crop}×{crop}, {len(val)} whole validation images)",
        class_names=tuple(class_names),
        class_colors=tuple(class_colours),
        train_images=x,
        train_masks=y,
        val_images=val_x,
        val_masks=val_y,
        ignore_index=uploads.VOID if void else None,
    )
    return OwnData(dataset, counts, crop, rare_share, pool_counts.frequencies, tuple(m.shape for m in train_masks), tuple(problems), val_total)


def training_crops(images, masks, counts: weights.ClassCounts, *, crop: int, count: int, seed: int, rare_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` crops of crop×crop: (count, crop, crop, 3) float32 in [0, 1] and (count, crop,
    crop) uint8 classes, void where a crop reaches past a smaller image. Uniform crops pick an image
    in proportion to its area and a position uniformly; ``rare_share`` of them are centred on a
    random pixel of a rare class (every present class but the most frequent, in equal parts)."""
    rng = np.random.default_rng([seed, _CROP_STREAM])
    areas = np.array([m.size for m in masks], dtype=np.float64)
    present = np.flatnonzero(counts.pixels > 0)
    rare = [int(c) for c in present if c != int(np.argmax(counts.pixels))]
    n_rare = int(round(rare_share * count)) if rare else 0
    if n_rare:
        classes = len(counts.pixels)
        per_image = np.array([np.bincount(m[m != uploads.VOID].ravel(), minlength=classes)[:classes] for m in masks], dtype=np.float64)
    x = np.zeros((count, crop, crop, 3), np.float32)
    y = np.full((count, crop, crop), uploads.VOID, np.uint8)
    for k in range(count):
        if k < n_rare:
            c = rare[k % len(rare)]
            i = int(rng.choice(len(masks), p=per_image[:, c] / per_image[:, c].sum()))
            where = np.flatnonzero(masks[i] == c)
            cy, cx = divmod(int(where[rng.integers(len(where))]), masks[i].shape[1])
            top, left = cy - crop // 2, cx - crop // 2
        else:
            i = int(rng.choice(len(masks), p=areas / areas.sum()))
            height, width = masks[i].shape
            top, left = int(rng.integers(max(1, height - crop + 1))), int(rng.integers(max(1, width - crop + 1)))
        height, width = masks[i].shape
        top, left = min(max(top, 0), max(0, height - crop)), min(max(left, 0), max(0, width - crop))
        patch = masks[i][top : top + crop, left : left + crop]
        y[k, : patch.shape[0], : patch.shape[1]] = patch
        x[k, : patch.shape[0], : patch.shape[1]] = images[i][top : top + crop, left : left + crop] / np.float32(255)
    return x, y


def _padded_size(masks) -> tuple[int, int]:
    """(height, width) of the largest mask, each rounded up to a multiple of STRIDE."""
    return (-(-max(m.shape[0] for m in masks) // STRIDE) * STRIDE, -(-max(m.shape[1] for m in masks) // STRIDE) * STRIDE)


def _fitting(order, masks, pixels: int) -> int:
    """How many of the masks ``order`` names, from the first, fit padded within ``pixels`` (≥ 1)."""
    count = 1
    while count < len(order):
        height, width = _padded_size([masks[k] for k in order[: count + 1]])
        if (count + 1) * height * width > pixels:
            break
        count += 1
    return count


def pad_to_stride(images, masks) -> tuple[np.ndarray, np.ndarray]:
    """Whole images in one array: padded (image 0, mask void) at the bottom and right to the largest
    height and width, rounded up to a multiple of STRIDE."""
    height, width = _padded_size(masks)
    if len(masks) * height * width > MAX_VALIDATION_PIXELS:
        raise uploads.UploadError(
            f"The {len(masks)} validation images padded to {width}×{height} hold {len(masks) * height * width / 1e6:.0f} million pixels; "
            f"at most {MAX_VALIDATION_PIXELS / 1e6:.0f} million. Use fewer or smaller validation images, or images of one size."
        )
    x = np.zeros((len(images), height, width, 3), np.float32)
    y = np.full((len(masks), height, width), uploads.VOID, np.uint8)
    for k, (image, mask) in enumerate(zip(images, masks)):
        x[k, : mask.shape[0], : mask.shape[1]] = image / np.float32(255)
        y[k, : mask.shape[0], : mask.shape[1]] = mask
    return x, y
