"""Generator of the bundled toy dataset (``assets/toy``).

Run ``python -m explorer.toydata`` to (re)write it. The dataset imitates a stained microscope
slide with four classes, imbalanced on purpose (pixel shares over the training set):

========== ========= =============================================================
class      share     what it looks like
========== ========= =============================================================
background ~88 %     smooth stain variation, pixel noise, soft blobs and specks
cell       ~9 %      a large ellipse with a thin dark membrane and a striped inside
vesicle    ~2.5 %    a small disc with a bright rim and a darker centre (a bubble)
fibre      ~0.6 %    a thin dark curved line, in only about half of the images
========== ========= =============================================================

Colour alone does not separate the classes: every object is drawn as a brightness change of
the local stain, and the background holds distractors of the same colours (soft bright blobs
like vesicle rims, soft dark blobs and specks like fibres and membranes). What tells the
classes apart is shape, edges and texture, so a network needs spatial context.

Every sample is drawn from its own ``numpy.random.Generator`` seeded with
``(seed, split, index)``, so the same seed writes the same bytes and a smaller set is a prefix
of a larger one. PNGs are written without metadata (no timestamps).

``--size`` (default 64; a multiple of 8 from 32 to 1024, so a U-Net of depth 3 takes whole
images) draws the same scenes at another resolution: sample 5 at 256 pixels is sample 5 at 64
drawn four times finer. Every length scales with the size: positions, radii, the membranes
and rims, the stripes, the blobs and specks, the fibres' length and bend, the smoothness of
the stain. Two things do not. The pixel noise stays per pixel. And the fibres stay lines of 1
to 2 pixels: at 256 their share is a quarter of the one at 64 (about 0.15 % instead of 0.6 %),
and shrinking a 256 image to 64 wipes them out. That is the point: a thin class is what
resizing loses first. The other shares are the same at any size. ``assets/toy`` is at 64.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

GENERATOR_VERSION = 1
SIZE = 64  # the default size, and the one the lengths below are written for
MIN_SIZE, MAX_SIZE, SIZE_STEP = 32, 1024, 8
DEFAULT_OUT = Path("assets/toy")
DEFAULT_SEED = 0
DEFAULT_TRAIN = 400
DEFAULT_VAL = 100

SPLITS = {"train": 0, "val": 1}

CLASSES = (
    {"name": "background", "color": "#262626",
     "description": "stained slide: smooth stain variation, noise, soft blobs and dark specks"},
    {"name": "cell", "color": "#3b8fe0",
     "description": "large ellipse, thin dark membrane, faintly striped inside"},
    {"name": "vesicle", "color": "#f2a516",
     "description": "small disc with a bright rim and a darker centre"},
    {"name": "fibre", "color": "#e8175d",
     "description": "thin dark curved line, absent from many images"},
)
BACKGROUND, CELL, VESICLE, FIBRE = range(4)


@dataclass(frozen=True)
class _Canvas:
    """What the drawing functions need to know of the image size."""

    size: int
    scale: float  # size / SIZE: every length below is written for SIZE and multiplied by it
    yy: np.ndarray  # pixel centres, read-only
    xx: np.ndarray


@functools.lru_cache(maxsize=4)
def _canvas(size: int) -> _Canvas:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    yy.flags.writeable = xx.flags.writeable = False  # shared by every sample of this size
    return _Canvas(size, size / SIZE, yy, xx)


# --------------------------------------------------------------------------- background


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflected borders, as plain shifted sums.

    Shifted sums rather than FFT or BLAS keep the arithmetic identical on every machine.
    """
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    for axis in (0, 1):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(a, pad, mode="reflect")
        n = a.shape[axis]
        out = np.zeros_like(a)
        for k, t in enumerate(taps):
            out += t * np.take(padded, np.arange(k, k + n), axis=axis)
        a = out
    return a


def _smooth_noise(rng: np.random.Generator, cv: _Canvas, sigma: float,
                  channels: int = 1) -> np.ndarray:
    """Low-frequency noise of unit standard deviation, shape (size, size, channels).

    Drawn and blurred at SIZE, then resampled to the size: so a sample takes the same random
    numbers at any size, and the objects drawn after it land on the same places (the same
    scene). Blurring a finer noise with a larger sigma would look the same but take more draws.
    """
    field = _blur(rng.standard_normal((SIZE, SIZE, channels)), sigma)
    if cv.size != SIZE:
        field = _resample(field, cv.size)
    field -= field.mean(axis=(0, 1))
    return field / field.std(axis=(0, 1))


def _resample(field: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resampling of a smooth (n, n, c) field to (size, size, c), edges held."""
    n = field.shape[0]
    x = np.clip((np.arange(size) + 0.5) * (n / size) - 0.5, 0, n - 1)  # pixel centres
    i = np.minimum(x.astype(int), n - 2)
    w = (x - i)[:, None, None]
    field = (1 - w) * field[i] + w * field[i + 1]
    w = w.reshape(1, size, 1)
    return (1 - w) * field[:, i] + w * field[:, i + 1]


def _soft_blob(cv: _Canvas, cx: float, cy: float, rx: float, ry: float,
               theta: float) -> np.ndarray:
    """A Gaussian bump in [0, 1] with radii rx, ry (one standard deviation), rotated."""
    c, s = np.cos(theta), np.sin(theta)
    dx, dy = cv.xx - cx, cv.yy - cy
    u = (c * dx + s * dy) / rx
    v = (-s * dx + c * dy) / ry
    return np.exp(-0.5 * (u * u + v * v))


def _background(rng: np.random.Generator, cv: _Canvas) -> np.ndarray:
    """Stained slide: tint per image, smooth brightness and hue variation."""
    tint = np.array([0.74, 0.58, 0.70]) + rng.normal(0.0, 0.035, 3)
    brightness = 0.11 * _smooth_noise(rng, cv, 9.0) + 0.06 * _smooth_noise(rng, cv, 3.0)
    hue = 0.035 * _smooth_noise(rng, cv, 6.0, channels=3)
    return tint * (1.0 + brightness) + hue


def _clutter(rng: np.random.Generator, cv: _Canvas, img: np.ndarray) -> None:
    """Background distractors: soft blobs (bright or dark) and small dark specks."""
    s = cv.scale
    for _ in range(rng.integers(4, 10)):
        cx, cy = rng.uniform(0, cv.size, 2)
        r = rng.uniform(1.3, 5.0) * s
        blob = _soft_blob(cv, cx, cy, r * rng.uniform(0.7, 1.4), r, rng.uniform(0, np.pi))
        gain = rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.4)
        img *= (1.0 + gain * blob)[..., None]
    for _ in range(rng.integers(0, 6)):
        cx, cy = rng.uniform(0, cv.size, 2)
        speck = _soft_blob(cv, cx, cy, rng.uniform(0.6, 1.0) * s, rng.uniform(0.6, 1.0) * s, 0.0)
        img *= (1.0 - rng.uniform(0.3, 0.5) * speck)[..., None]


# --------------------------------------------------------------------------- objects


def _cells(rng: np.random.Generator, cv: _Canvas, img: np.ndarray, mask: np.ndarray) -> None:
    """Large ellipses with a thin dark membrane and a striped inside."""
    s = cv.scale
    placed: list[tuple[float, float, float]] = []
    n = rng.choice([1, 2, 2, 3])
    for _ in range(n):
        for _attempt in range(20):
            a, b = rng.uniform(5.5, 10.5, 2) * s
            cx, cy = rng.uniform(2 * s, cv.size - 2 * s, 2)
            if all(np.hypot(cx - px, cy - py) > 0.9 * (max(a, b) + pr) for px, py, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, max(a, b)))
        theta = rng.uniform(0, np.pi)
        cos, sin = np.cos(theta), np.sin(theta)
        dx, dy = cv.xx - cx, cv.yy - cy
        r = np.hypot((cos * dx + sin * dy) / a, (-sin * dx + cos * dy) / b)
        inside = r <= 1.0
        membrane = inside & (r > 1.0 - 1.2 * s / min(a, b))
        phi = rng.uniform(0, np.pi)
        period = rng.uniform(3.0, 4.5) * s
        stripes = np.sin(2 * np.pi * (np.cos(phi) * cv.xx + np.sin(phi) * cv.yy) / period
                         + rng.uniform(0, 2 * np.pi))
        gain = rng.uniform(-0.06, 0.06) + 0.09 * stripes
        factor = np.where(membrane, 1.0 - rng.uniform(0.3, 0.45), 1.0 + gain)
        img *= np.where(inside, factor, 1.0)[..., None]
        mask[inside] = CELL


def _vesicles(rng: np.random.Generator, cv: _Canvas, img: np.ndarray, mask: np.ndarray) -> None:
    """Small discs with a bright rim and a darker centre."""
    s = cv.scale
    placed: list[tuple[float, float, float]] = []
    for _ in range(rng.choice([1, 2, 3, 3, 4, 4, 5, 6])):
        for _attempt in range(20):
            radius = rng.uniform(2.4, 3.6) * s
            cx, cy = rng.uniform(s, cv.size - s, 2)
            if all(np.hypot(cx - px, cy - py) > radius + pr + s for px, py, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, radius))
        d = np.hypot(cv.xx - cx, cv.yy - cy)
        disc = d <= radius
        rim = disc & (d > radius - 1.2 * s)
        factor = np.where(rim, 1.0 + rng.uniform(0.22, 0.38), 1.0 - rng.uniform(0.0, 0.12))
        img *= np.where(disc, factor, 1.0)[..., None]
        mask[disc] = VESICLE


def _fibres(rng: np.random.Generator, cv: _Canvas, img: np.ndarray, mask: np.ndarray) -> None:
    """Thin dark curved lines (quadratic Bezier curves), in about half of the images.

    Length and bend scale with the image, the width does not: a fibre is 1 to 2 pixels wide
    at any size (the distances 0.9 and 0.65 below are in pixels of this image).
    """
    s = cv.scale
    if rng.uniform() >= 0.55:
        return
    for _ in range(rng.choice([1, 2])):
        length = rng.uniform(18.0, 36.0) * s
        start = rng.uniform(4 * s, cv.size - 4 * s, 2)
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        end = start + length * direction
        control = (start + end) / 2 + rng.uniform(-5.0, 5.0) * s * normal
        t = np.linspace(0.0, 1.0, int(4 * length))[:, None]  # a point every quarter pixel
        points = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end
        # A fibre changes no pixel farther than 1.26 from the curve, so each point needs the
        # distances of only the 5x5 pixels around it, not of the whole image (as fast at any
        # size); the inf left elsewhere changes nothing.
        dist = np.full((cv.size, cv.size), np.inf)
        for px, py in points:
            x, y = int(np.floor(px)), int(np.floor(py))
            box = slice(max(y - 2, 0), max(y + 3, 0)), slice(max(x - 2, 0), max(x + 3, 0))
            near = dist[box]
            np.minimum(near, np.hypot(cv.xx[box] - px, cv.yy[box] - py), out=near)
        coverage = np.clip(1.4 - dist / 0.9, 0.0, 1.0)
        img *= (1.0 - rng.uniform(0.4, 0.55) * coverage)[..., None]
        mask[dist <= 0.65] = FIBRE


# --------------------------------------------------------------------------- samples


def render_sample(rng: np.random.Generator,
                  size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Draw one sample: a (size, size, 3) uint8 RGB image and its (size, size) uint8 mask."""
    cv = _canvas(size)
    img = _background(rng, cv)
    mask = np.zeros((size, size), dtype=np.uint8)
    _clutter(rng, cv, img)
    _cells(rng, cv, img, mask)
    _vesicles(rng, cv, img, mask)
    _fibres(rng, cv, img, mask)
    img += rng.normal(0.0, 0.045, img.shape)
    img = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return img, mask


def sample(seed: int, split: str, index: int,
           size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The sample ``index`` of ``split`` ('train' or 'val') for ``seed``, ``size`` pixels wide."""
    rng = np.random.default_rng([seed, SPLITS[split], index])
    return render_sample(rng, size)


def _save_png(array: np.ndarray, path: Path) -> None:
    # No pnginfo is passed, so Pillow writes no text or time chunks; fixed compression level.
    Image.fromarray(array).save(path, format="PNG", optimize=False, compress_level=9)


def metadata(seed: int, n_train: int, n_val: int, size: int = SIZE) -> dict:
    return {
        "name": "toy cells",
        "description": "Synthetic stained slide, imbalanced on purpose; written by "
                       "`python -m explorer.toydata`.",
        "generator": "explorer.toydata",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "image_size": [size, size],
        "splits": {"train": n_train, "val": n_val},
        "classes": [dict(c) for c in CLASSES],
    }


def generate(out: Path = DEFAULT_OUT, seed: int = DEFAULT_SEED,
             n_train: int = DEFAULT_TRAIN, n_val: int = DEFAULT_VAL, size: int = SIZE) -> None:
    """Write the dataset to ``out``, replacing what an earlier run wrote there."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        if (out / split).exists():
            shutil.rmtree(out / split)
    counts = {"train": n_train, "val": n_val}
    for split, count in counts.items():
        (out / split / "images").mkdir(parents=True)
        (out / split / "masks").mkdir(parents=True)
        for index in range(count):
            img, mask = sample(seed, split, index, size)
            _save_png(img, out / split / "images" / f"{index:04d}.png")
            _save_png(mask, out / split / "masks" / f"{index:04d}.png")
    text = json.dumps(metadata(seed, n_train, n_val, size), indent=2) + "\n"
    (out / "classes.json").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m explorer.toydata", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="random seed (default: %(default)s)")
    parser.add_argument("--train", type=int, default=DEFAULT_TRAIN,
                        help="number of training images (default: %(default)s)")
    parser.add_argument("--val", type=int, default=DEFAULT_VAL,
                        help="number of validation images (default: %(default)s)")
    parser.add_argument("--size", type=int, default=SIZE,
                        help=f"image width and height in pixels, a multiple of {SIZE_STEP} "
                             f"from {MIN_SIZE} to {MAX_SIZE} (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.train < 1 or args.val < 1:
        parser.error("--train and --val must be at least 1")
    if args.seed < 0:
        parser.error("--seed must be non-negative")
    if not (MIN_SIZE <= args.size <= MAX_SIZE and args.size % SIZE_STEP == 0):
        parser.error(f"--size must be a multiple of {SIZE_STEP} from {MIN_SIZE} to {MAX_SIZE}")
    generate(args.out, args.seed, args.train, args.val, args.size)
    print(f"wrote {args.train} training and {args.val} validation images of "
          f"{args.size}x{args.size} pixels to {args.out}")


if __name__ == "__main__":
    main()
