"""Datasets: the bundled toy dataset (``assets/toy``) and class statistics over masks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TOY_DIR: Path = Path(__file__).resolve().parent.parent / "assets" / "toy"
_REGENERATE = "Regenerate it with `python -m explorer.toydata`."


@dataclass(frozen=True)
class Dataset:
    """Images and index masks of a train and a validation split.

    The arrays are read-only, so one loaded dataset can be shared safely.
    """

    name: str
    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]  # '#rrggbb'
    train_images: np.ndarray  # (N, H, W, 3) float32 in [0, 1]
    train_masks: np.ndarray  # (N, H, W) uint8 class indices
    val_images: np.ndarray
    val_masks: np.ndarray
    ignore_index: int | None = None  # the masks' void label (e.g. 255): no loss, metric or count

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _read_split(root: Path, split: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    image_dir, mask_dir = root / split / "images", root / split / "masks"
    image_files = sorted(image_dir.glob("*.png"))
    mask_files = sorted(mask_dir.glob("*.png"))
    if not image_files:
        raise FileNotFoundError(f"No PNG images in {image_dir}. {_REGENERATE}")
    image_names = [f.name for f in image_files]
    mask_names = [f.name for f in mask_files]
    if image_names != mask_names:
        missing = sorted(set(image_names) ^ set(mask_names))
        raise ValueError(f"Images and masks of the {split!r} split do not match one to one "
                         f"(for example {missing[:3]}). {_REGENERATE}")

    images: np.ndarray | None = None
    masks: np.ndarray | None = None
    for i, (image_file, mask_file) in enumerate(zip(image_files, mask_files)):
        with Image.open(image_file) as im:
            image = np.asarray(im.convert("RGB"))
        with Image.open(mask_file) as im:
            if im.mode not in ("L", "P"):
                raise ValueError(f"{mask_file} is a {im.mode!r} image; a mask must be a "
                                 "single-channel 8-bit index image (mode 'L').")
            mask = np.asarray(im)
        if images is None:
            images = np.empty((len(image_files), *image.shape), dtype=np.uint8)
            masks = np.empty((len(mask_files), *image.shape[:2]), dtype=np.uint8)
        if image.shape != images.shape[1:] or mask.shape != masks.shape[1:]:
            raise ValueError(f"{image_file.name} in the {split!r} split: image {image.shape} "
                             f"and mask {mask.shape} do not match the first image "
                             f"{images.shape[1:]}.")
        images[i] = image
        masks[i] = mask

    assert images is not None and masks is not None
    if int(masks.max()) >= num_classes:
        raise ValueError(f"Masks of the {split!r} split hold class index {int(masks.max())}, "
                         f"but classes.json names only {num_classes} classes.")
    float_images = images.astype(np.float32)
    float_images /= 255.0
    float_images.flags.writeable = False
    masks.flags.writeable = False
    return float_images, masks


def load_toy(root: Path = TOY_DIR) -> Dataset:
    """Load the toy dataset written by ``python -m explorer.toydata``."""
    root = Path(root)
    meta_file = root / "classes.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{meta_file} not found. {_REGENERATE}")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    classes = meta["classes"]
    class_names = tuple(str(c["name"]) for c in classes)
    class_colors = tuple(str(c["color"]) for c in classes)
    train_images, train_masks = _read_split(root, "train", len(classes))
    val_images, val_masks = _read_split(root, "val", len(classes))
    return Dataset(
        name=str(meta.get("name", root.name)),
        class_names=class_names,
        class_colors=class_colors,
        train_images=train_images,
        train_masks=train_masks,
        val_images=val_images,
        val_masks=val_masks,
    )


def _check_masks(masks: np.ndarray, num_classes: int) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.size == 0:
        raise ValueError("No mask pixels to count.")
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"Masks must hold integer class indices, not {masks.dtype}.")
    low, high = int(masks.min()), int(masks.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"Masks hold class indices {low}..{high}, outside 0..{num_classes - 1}.")
    return masks


def class_fractions(masks: np.ndarray, num_classes: int) -> np.ndarray:
    """Share of all pixels that belong to each class, shape (num_classes,), sums to 1."""
    masks = _check_masks(masks, num_classes)
    counts = np.bincount(masks.ravel(), minlength=num_classes)
    return counts / masks.size


def presence(masks: np.ndarray, num_classes: int) -> np.ndarray:
    """Share of the images (masks of shape (N, H, W)) that contain each class."""
    masks = _check_masks(masks, num_classes)
    if masks.ndim != 3:
        raise ValueError(f"Expected masks of shape (N, H, W), got {masks.shape}.")
    n = masks.shape[0]
    codes = masks.reshape(n, -1).astype(np.int64) + num_classes * np.arange(n)[:, None]
    counts = np.bincount(codes.ravel(), minlength=n * num_classes).reshape(n, num_classes)
    return (counts > 0).mean(axis=0)
