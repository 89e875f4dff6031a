"""The user's own files: masks, image–mask pairs and predictions, read and checked in memory.

Nothing here imports Streamlit, and nothing is ever written to disk: every upload is decoded from
its bytes (``io.BytesIO``), zip archives are read entry by entry in memory, and a file's name is
only ever used to match images to masks and to name it in a message.

Every refusal is an :class:`UploadError` whose message says what was wrong with which file and
what to do about it. Functions that read many files at once return the files they could read and
a list of :class:`Problem` (one per refused file) rather than stopping at the first bad one; they
raise :class:`UploadError` only for what refuses the whole upload (too many files or pixels, or
no usable file at all).

The limits (module constants) bound the memory and the time one upload can cost:

- per image: at most ``MAX_IMAGE_PIXELS`` pixels, checked from the header *before* decoding, so
  a decompression bomb (a tiny PNG that claims 20000×20000) is refused without allocating it;
  at least ``MIN_SIDE`` pixels a side; one frame (no animated GIF or multi-page TIFF);
- per upload: ``MAX_FILES`` files and ``MAX_TOTAL_PIXELS`` pixels in all;
- per zip: ``MAX_ZIP_ENTRIES`` entries, ``MAX_ZIP_BYTES`` uncompressed in all, ``MAX_ENTRY_BYTES``
  per entry, a compression ratio of at most ``MAX_RATIO`` for entries above ``RATIO_CHECKED_ABOVE``
  bytes; no nested archives, no entry path that climbs out of the archive (``../``) or is absolute;
- masks: at most ``MAX_CLASSES`` classes and, for colour masks, ``MAX_COLOURS`` colours;
- ``.npy`` predictions: read with ``allow_pickle=False`` after their header has been checked
  (dtype, shape and size against ``MAX_PREDICTION_VALUES`` and the file's length).

Masks are kept as *codes*: for an index mask the code is the class index itself; for a colour mask
it is the colour's entry in the palette found over all the masks, and a mapping (colour → class,
editable on the page) turns codes into classes. Statistics are counted by
:func:`explorer.weights.count_pixels` on the mapped masks, exactly as for the toy dataset.

Void: the value ``VOID`` (255) in an 8-bit index mask that otherwise holds classes stays ``VOID``
(its code and its class), and a colour can be mapped to ``VOID``. Void pixels count in no class
count, weight, loss or metric: the counts skip them, and a dataset that holds any has
``ignore_index=VOID``.
"""

from __future__ import annotations

import io
import json
import math
import re
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from explorer import weights
from explorer.data import Dataset

# ---------------------------------------------------------------------------------------------
# Limits

MAX_UPLOAD_MB = 100  # per file; must equal server.maxUploadSize in .streamlit/config.toml
MAX_IMAGE_PIXELS = 4096 * 4096  # per image, from the header, before decoding (RGB: 48 MB decoded)
MIN_SIDE = 8  # pixels; a 1×1 "mask" is a placeholder or a tracking pixel, not a segmentation
MAX_TOTAL_PIXELS = 64_000_000  # per upload; masks are kept as uint8 codes: at most 64 MB a session
MAX_FILES = 1000  # files per upload, after opening zips
MAX_ZIP_ENTRIES = 2000  # entries listed in one zip (folders and system files included)
MAX_ZIP_BYTES = 512 * 2**20  # uncompressed, all entries of one zip
MAX_ENTRY_BYTES = 64 * 2**20  # uncompressed, one entry (a 4096×4096 RGBA BMP)
MAX_RATIO = 200  # uncompressed ÷ compressed, for entries above RATIO_CHECKED_ABOVE
RATIO_CHECKED_ABOVE = 2**20  # small entries may compress well (a blank BMP mask); bombs are large
MAX_CLASSES = 64
VOID = 255  # the void ('ignore') label of PASCAL VOC and Cityscapes: its pixels count nowhere
VOC_BOUNDARY = "#e0e0c0"  # PASCAL VOC's void colour: void by default in a colour mask's table
MAX_COLOURS = 64  # distinct colours over all colour masks (several colours may map to one class)
MIN_PAIRS = 5  # image–mask pairs to train on: at least 3 training and MIN_VAL validation images
MIN_VAL = 2  # the page's validation-image slider needs two images
MAX_PAIRS = 1000  # 64×64 float32 images: 49 MB, held by every run as a tensor
SIZE = 64  # the model's resolution: pairs are resized to SIZE×SIZE
VAL_FRACTION = 0.2
MIN_TRAIN = 32  # the largest batch size the sidebar offers: smaller training sets are repeated
MAX_PREDICTION_VALUES = 8 * 2**20  # H·W·C of one prediction (32 MB of float32)
MAX_NPY_HEADER = 10_000  # bytes, numpy's own default cap

MASK_FORMATS = ("PNG", "BMP", "TIFF", "JPEG", "GIF")
IMAGE_FORMATS = MASK_FORMATS + ("WEBP",)
MASK_EXTENSIONS = ("png", "bmp", "tif", "tiff", "jpg", "jpeg", "gif", "zip")
IMAGE_EXTENSIONS = MASK_EXTENSIONS + ("webp",)
PREDICTION_EXTENSIONS = MASK_EXTENSIONS + ("npy",)
LOSSY_FORMATS = ("JPEG",)

# Where a file sits or how it is named says whether it is an image or a mask.
MASK_FOLDERS = frozenset(
    "mask masks label labels annotation annotations gt groundtruth ground_truth segmentation "
    "segmentations seg segmentationclass target targets trimaps".split()
)
IMAGE_FOLDERS = frozenset("image images img imgs jpegimages input inputs photo photos rgb".split())
MASK_SUFFIXES = ("_mask", "-mask", "_masks", "_label", "-label", "_labels", "_gt", "-gt", "_seg",
                 "_segmentation", "_annotation", "_target", "_trimap")
IMAGE_SUFFIXES = ("_image", "-image", "_img", "-img")
PREDICTION_SUFFIXES = ("_prediction", "-prediction", "_pred", "-pred", "_probabilities", "_probs",
                       "_prob", "_output", "_out")
JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
ARCHIVE_EXTENSIONS = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".npz")

# Colours for index masks without a palette (class 0 dark, the rest well apart).
DEFAULT_COLOURS = (
    "#202020", "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
    "#f032e6", "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000",
    "#aaffc3", "#808000", "#ffd8b1", "#000075", "#a9a9a9",
)

_FORMAT_HELP = "PNG, BMP or TIFF (JPEG and GIF are read too)"


class UploadError(ValueError):
    """A refused upload. The message says what was wrong and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Problem:
    """One refused file: its display name and why (what was wrong, what to do)."""

    name: str
    message: str


@dataclass(frozen=True, eq=False)
class Entry:
    """One file of an upload: ``name`` to show, ``path`` inside the upload ('/'-separated, the zip's
    own path for a zip entry, the file name for a loose file), its bytes."""

    name: str
    path: str
    data: bytes = field(repr=False)


# ---------------------------------------------------------------------------------------------
# Names


def display_name(name: str, limit: int = 120) -> str:
    """A file name safe to show: control characters replaced, long names shortened."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(name)) or "(no name)"
    return text if len(text) <= limit else text[: limit // 2 - 1] + "…" + text[-(limit // 2) :]


def _parts(path: str) -> list[str]:
    return [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]


def _stem(path: str) -> str:
    base = _parts(path)[-1] if _parts(path) else path
    return base.rsplit(".", 1)[0] if "." in base[1:] else base


def _strip_suffix(stem: str, suffixes: Sequence[str]) -> tuple[str, bool]:
    low = stem.lower()
    for suffix in suffixes:
        if low.endswith(suffix) and len(low) > len(suffix):
            return stem[: -len(suffix)], True
    return stem, False


def match_key(path: str, suffixes: Sequence[str] = ()) -> str:
    """What an image and its mask share: the path without its extension, without the folders that
    only say 'images' or 'masks', and without a role suffix (``_mask``, ``_pred``, …), lower case.
    ``train/images/0001.png`` and ``train/masks/0001_mask.png`` both give ``train/0001``."""
    parts = _parts(path.lower())
    if not parts:
        return ""
    stem, _ = _strip_suffix(_stem(parts[-1]), tuple(suffixes))
    folders = [p for p in parts[:-1] if p not in MASK_FOLDERS and p not in IMAGE_FOLDERS]
    return "/".join(folders + [stem])


def _base_key(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def role_of(path: str, default: str) -> str:
    """'mask' or 'image': from a folder named like masks/ or images/, then from a suffix such as
    ``_mask``; otherwise ``default`` (the uploader the file came through)."""
    parts = _parts(path.lower())
    for folder in reversed(parts[:-1]):
        if folder in MASK_FOLDERS:
            return "mask"
        if folder in IMAGE_FOLDERS:
            return "image"
    stem = _stem(parts[-1]) if parts else ""
    if _strip_suffix(stem, MASK_SUFFIXES)[1]:
        return "mask"
    if _strip_suffix(stem, IMAGE_SUFFIXES)[1]:
        return "image"
    return default


CLASS_TABLE = "classes.json"  # class names and colours, the toy set's format


def take_class_table(entries: Sequence[Entry]) -> tuple[list[dict] | None, list[Entry]]:
    """The classes of a classes.json among ``entries`` (the one nearest the top), and the other
    entries; UploadError saying what it must hold when it cannot be read."""
    tables = [e for e in entries if e.path.rsplit("/", 1)[-1].lower() == CLASS_TABLE]
    rest = [e for e in entries if e not in tables]
    if not tables:
        return None, rest
    entry = min(tables, key=lambda e: e.path.count("/"))
    try:
        classes = json.loads(entry.data.decode("utf-8"))["classes"]
        return [{"name": str(c["name"]), "color": str(c["color"])} for c in classes], rest
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise UploadError(
            f"{entry.name} could not be read ({type(error).__name__}: {error}). It must hold "
            '{"classes": [{"name": "background", "color": "#000000"}, ...]}, one entry per class in index order.'
        ) from None


def split_roles(entries: Sequence[Entry], default: str) -> tuple[list[Entry], list[Entry]]:
    """(masks, images) of one upload. Besides folders and suffixes: in a mask upload, a file whose
    name is another file's name plus a mask suffix (``0001.jpg`` next to ``0001_mask.png``) is that
    mask's image."""
    roles = [role_of(e.path, default) for e in entries]
    if default == "mask":
        suffixed = {match_key(e.path, MASK_SUFFIXES) for e in entries if _strip_suffix(_stem(e.path), MASK_SUFFIXES)[1]}
        for i, entry in enumerate(entries):
            if roles[i] == "mask" and not _strip_suffix(_stem(entry.path), MASK_SUFFIXES)[1] and match_key(entry.path) in suffixed:
                roles[i] = "image"
    masks = [e for e, r in zip(entries, roles) if r == "mask"]
    images = [e for e, r in zip(entries, roles) if r == "image"]
    return masks, images


# ---------------------------------------------------------------------------------------------
# What a file is (for messages)


def _sniff(data: bytes) -> str:
    head = data[:16]
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "a zip archive"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in range(2, 6):
        return "a pickled Python object"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head.startswith(b"8BPS"):
        return "a Photoshop document"
    if head.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "a WebP image"
    if head.startswith(b"\xff\xd8"):
        return "a JPEG image"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    sample = data[:512]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        preview = display_name(text.strip().splitlines()[0] if text.strip() else "", 40)
        return f"text ('{preview}')" if preview else "blank text"
    return f"of an unknown kind (it starts with the bytes {data[:8].hex(' ')})"


def is_zip(entry: Entry) -> bool:
    return entry.data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or entry.path.lower().endswith(".zip")


# ---------------------------------------------------------------------------------------------
# Zip archives and multi-file uploads


def expand(files: Iterable[tuple[str, bytes]]) -> tuple[list[Entry], list[Problem]]:
    """The files of an upload, zips opened (one level): (entries, problems).

    Raises UploadError when the upload as a whole has more than MAX_FILES files."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    for name, data in files:
        entry = Entry(display_name(name), str(name), bytes(data))
        if is_zip(entry):
            try:
                entries.extend(_zip_entries(entry, problems))
            except UploadError as error:
                problems.append(Problem(entry.name, error.message))
        else:
            entries.append(entry)
        if len(entries) > MAX_FILES:
            raise UploadError(
                f"This upload holds more than {MAX_FILES} files. Upload at most {MAX_FILES} at a time "
                "(a representative subset gives the same class shares within a fraction of a percent)."
            )
    return entries, problems


def _unsafe_path(path: str) -> bool:
    raw = path.replace("\\", "/")
    return raw.startswith("/") or bool(re.match(r"^[a-zA-Z]:", raw)) or ".." in raw.split("/") or "\x00" in raw


def _is_junk(path: str) -> bool:
    parts = _parts(path)
    if not parts:
        return True
    return parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1].lower() in JUNK_NAMES


def _zip_entries(archive: Entry, problems: list[Problem]) -> list[Entry]:
    """Entries of one zip, read in memory with every limit checked before (declared sizes) and
    while (actual sizes) reading. Raises UploadError for what makes the whole archive suspect."""
    name = archive.name
    if archive.data[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise UploadError(f"is named .zip but is not a zip archive (it is {_sniff(archive.data)}). Re-create the zip, or upload the files themselves.")
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive.data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
        raise UploadError(f"is a damaged zip archive ({error}). Re-create it (for example: zip -r masks.zip masks) and upload it again.") from None
    if len(infos) > MAX_ZIP_ENTRIES:
        raise UploadError(f"has {len(infos)} entries; at most {MAX_ZIP_ENTRIES} are opened. Split it into smaller archives.")
    for info in infos:
        if _unsafe_path(info.filename):
            raise UploadError(
                f"contains an entry whose path points outside the archive ('{display_name(info.filename, 60)}'): "
                "an unsafe archive, refused as a whole. Re-create the zip from the folder itself "
                "(for example: cd data, then zip -r ../masks.zip masks)."
            )
    declared = sum(info.file_size for info in infos)
    if declared > MAX_ZIP_BYTES:
        raise UploadError(
            f"would expand to {declared / 2**20:,.0f} MB; at most {MAX_ZIP_BYTES // 2**20} MB are unpacked. "
            "Upload fewer or smaller files (PNG masks are far smaller than BMP or TIFF)."
        )
    for info in infos:
        if info.file_size > RATIO_CHECKED_ABOVE and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UploadError(
                f"has an entry ('{display_name(info.filename, 60)}') that expands {info.file_size / max(info.compress_size, 1):,.0f} "
                f"times ({info.file_size / 2**20:,.0f} MB from {info.compress_size / 2**10:,.0f} kB), the mark of a zip bomb; "
                f"at most {MAX_RATIO} times is accepted. Zip already-compressed files such as PNG masks."
            )
    entries: list[Entry] = []
    seen: set[str] = set()
    unpacked = 0
    for info in infos:
        path = info.filename
        shown = f"{name}/{display_name(path)}"
        if info.is_dir() or _is_junk(path):
            continue
        if info.flag_bits & 0x1:
            problems.append(Problem(shown, "is password-protected. Zip it again without a password."))
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.append(Problem(shown, "is a symbolic link, not a file. Zip the files themselves (zip without -y)."))
            continue
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.append(Problem(shown, f"uses compression method {info.compress_type}; only stored and deflate (the usual zip) are read. Re-create the zip with a standard tool."))
            continue
        if path.lower().endswith(ARCHIVE_EXTENSIONS):
            problems.append(Problem(shown, "is an archive inside the archive; nested archives are not opened. Unpack it and put its files in the zip itself."))
            continue
        if info.file_size > MAX_ENTRY_BYTES:
            problems.append(Problem(shown, f"is {info.file_size / 2**20:,.0f} MB uncompressed; at most {MAX_ENTRY_BYTES // 2**20} MB per file. Save it as PNG or make it smaller."))
            continue
        key = path.lower()
        if key in seen:
            problems.append(Problem(shown, "appears twice in the archive; the first copy is used."))
            continue
        try:
            with zf.open(info) as handle:
                data = handle.read(min(info.file_size, MAX_ENTRY_BYTES) + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError, NotImplementedError) as error:
            problems.append(Problem(shown, f"could not be unpacked ({error}). Re-create the zip and upload it again."))
            continue
        if len(data) > info.file_size or len(data) > MAX_ENTRY_BYTES:
            raise UploadError(f"has an entry ('{display_name(path, 60)}') that holds more data than its header declares: a forged archive, refused as a whole. Re-create the zip.")
        unpacked += len(data)
        if unpacked > MAX_ZIP_BYTES:
            raise UploadError(f"expands to more than {MAX_ZIP_BYTES // 2**20} MB. Upload fewer or smaller files.")
        if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            problems.append(Problem(shown, "is a zip inside the zip; nested archives are not opened. Unpack it and put its files in the zip itself."))
            continue
        seen.add(key)
        entries.append(Entry(shown, path, data))
        if len(entries) > MAX_FILES:
            raise UploadError(f"holds more than {MAX_FILES} files; upload at most {MAX_FILES} at a time.")
    if not entries and not problems:
        raise UploadError("is empty (no files, or only folders and system files). Put the masks or images in it and zip it again.")
    return entries


# ---------------------------------------------------------------------------------------------
# Decoding one image


def open_image(data: bytes, name: str, formats: Sequence[str] = IMAGE_FORMATS) -> Image.Image:
    """Open, check and decode one image from its bytes.

    The header is read first; the size (from the header: nothing is decoded yet), the number of
    frames and the minimum side are checked; then the pixels are decoded. Only ``formats`` are
    tried (never Pillow's other plugins, some of which call external programs). Pillow's own
    decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``) also applies but is not relied on:
    ``MAX_IMAGE_PIXELS`` here is lower."""
    if not data:
        raise UploadError("is empty (0 bytes). Save it again and upload the saved file.")
    try:
        image = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError as error:
        match = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(match.group(1)) / 1e6:,.0f} megapixels" if match else "far too many pixels"
        raise UploadError(f"claims {size} (a decompression bomb?); at most {MAX_IMAGE_PIXELS / 1e6:.1f} megapixels per image. Downscale or tile it.") from None
    except UnidentifiedImageError:
        raise UploadError(f"is not an image that can be read: it is {_sniff(data)}. Upload {_FORMAT_HELP} files.") from None
    except Exception as error:  # a damaged header: decoders raise many kinds of error
        raise UploadError(f"is a damaged image ({type(error).__name__}: {error}). Save it again and upload the saved file.") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise UploadError(
            f"is {width}×{height} ({width * height / 1e6:,.0f} megapixels); at most {MAX_IMAGE_PIXELS / 1e6:.1f} megapixels "
            f"per image (for example 4096×4096). Downscale it (nearest-neighbour for masks) or cut it into tiles."
        )
    if min(width, height) < MIN_SIDE:
        raise UploadError(f"is only {width}×{height} pixels; at least {MIN_SIDE}×{MIN_SIDE} is needed. Is it a placeholder? Upload the full-size file.")
    try:
        frames = getattr(image, "n_frames", 1)  # walks the frames' headers (TIFF pages, GIF frames)
    except Exception as error:
        raise UploadError(f"is a damaged image ({type(error).__name__}: {error}). Save it again and upload the saved file.") from None
    if frames > 1:
        kind = "an animated GIF" if image.format == "GIF" else f"a {image.format} with several pages"
        raise UploadError(f"is {kind} ({frames} frames). Save each frame as its own PNG and upload those.")
    try:
        image.load()
    except Exception as error:
        raise UploadError(f"is damaged or truncated: its pixels could not be decoded ({type(error).__name__}: {error}). Save it again and upload the saved file.") from None
    return image


# ---------------------------------------------------------------------------------------------
# Masks


@dataclass(frozen=True, eq=False)
class DecodedMask:
    """One mask file: ``kind`` 'index' (codes are class indices) or 'colour' (codes index
    ``colours``, packed RGBA keys); ``palette`` the P-mode palette colours of an index mask."""

    kind: str
    codes: np.ndarray  # (H, W) uint8
    colours: tuple[int, ...] = ()
    palette: tuple[str, ...] | None = None
    warnings: tuple[str, ...] = ()


def _hex(key: int) -> str:
    r, g, b, a = key & 255, (key >> 8) & 255, (key >> 16) & 255, (key >> 24) & 255
    return f"#{r:02x}{g:02x}{b:02x}" + ("" if a == 255 else f"{a:02x}")


def _pack(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 → (H, W) uint32 keys (R in the low byte)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    return rgba.view("<u4").reshape(rgba.shape[:2])


def _index_values(values: np.ndarray, name_bits: str, warnings: list[str], lossy: bool) -> np.ndarray:
    """Integer values (H, W) → uint8 class indices, or UploadError."""
    low, high = int(values.min()), int(values.max())
    if low < 0:
        raise UploadError(f"holds the negative value {low}; class indices are 0, 1, 2, … Save the classes as 0..K−1.")
    if high < MAX_CLASSES:
        return values.astype(np.uint8)
    distinct = np.unique(values)
    full = 255 if name_bits == "8-bit" else 65535
    if len(distinct) <= 2 and distinct[-1] == full and (len(distinct) == 1 or distinct[0] == 0):
        warnings.append(f"read as a binary mask: {full} → class 1 (it holds only 0 and {full})")
        return (values == full).astype(np.uint8)
    n = len(distinct)
    looks_void = high == VOID and n > 1 and distinct[-2] < MAX_CLASSES
    # Only 8-bit masks have a void value: in a 16- or 32-bit mask 255 may be a real id.
    if looks_void and name_bits == "8-bit":
        warnings.append(f"{VOID} read as void: those pixels count in no loss, metric, class count or weight")
        return values.astype(np.uint8)
    if lossy:
        hint = " JPEG compression created in-between values at the edges: save masks as PNG."
    elif n == 1:
        hint = f" Save the class index of each pixel (0..{MAX_CLASSES - 1}) instead of {high}."
    elif looks_void:
        hint = f" {VOID} is read as void (ignored) only in an 8-bit mask: save it as an 8-bit PNG, or give those pixels a class."
    elif n <= MAX_CLASSES:
        hint = f" Its {n} distinct values look like scaled labels or ids: map them to 0..{n - 1}."
    else:
        hint = f" Merge classes until at most {MAX_CLASSES} remain, and save them as 0..K−1 (instance ids are not classes)."
    raise UploadError(
        f"holds values up to {high} ({name_bits}, {n} distinct value{'s' if n != 1 else ''}), but class indices must be "
        f"0..{MAX_CLASSES - 1} (at most {MAX_CLASSES} classes).{hint}"
    )


def decode_mask(data: bytes, name: str = "") -> DecodedMask:
    """One mask: a single-channel index mask (mode 1, L, P, I;16, I) or an RGB(A) colour mask."""
    image = open_image(data, name, MASK_FORMATS)
    warnings: list[str] = []
    lossy = image.format in LOSSY_FORMATS
    if lossy:
        warnings.append(
            "JPEG, read with a warning: its lossy compression changes pixel values near the edges, so some "
            "labels there are probably wrong. Save masks as PNG."
        )
    mode = image.mode
    if mode == "1":
        return DecodedMask("index", np.asarray(image, dtype=np.uint8), warnings=tuple(warnings))
    if mode in ("L", "LA", "La", "P", "PA"):
        band = image.getchannel(0) if mode in ("LA", "La", "PA") else image
        if mode in ("LA", "La", "PA"):
            warnings.append("alpha channel ignored: the first channel holds the classes")
        values = np.asarray(band)
        if mode in ("P", "PA") and image.info.get("transparency") is not None:
            pass  # the indices are the classes; transparency only affects how it is displayed
        codes = _index_values(values, "8-bit", warnings, lossy)
        palette = None
        if mode in ("P", "PA"):
            flat = image.getpalette("RGB") or []
            palette = tuple(f"#{flat[3 * i]:02x}{flat[3 * i + 1]:02x}{flat[3 * i + 2]:02x}" for i in range(min(len(flat) // 3, MAX_CLASSES)))
        return DecodedMask("index", codes, palette=palette, warnings=tuple(warnings))
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image)
        if values.dtype.byteorder not in ("=", "|"):
            values = values.astype(values.dtype.newbyteorder("="))
        bits = "16-bit" if mode.startswith("I;16") else "32-bit"
        return DecodedMask("index", _index_values(values, "16-bit" if bits == "16-bit" else bits, warnings, lossy), warnings=tuple(warnings))
    if mode == "F":
        raise UploadError("holds floating-point values, not class indices. Save the mask with integer classes 0..K−1 (8-bit PNG).")
    if mode in ("RGB", "RGBA", "RGBX", "RGBa"):
        return _decode_colour(image, warnings)
    described = {"CMYK": "a CMYK image (print colours)", "YCbCr": "a YCbCr image", "LAB": "a Lab colour image", "HSV": "an HSV image"}
    raise UploadError(
        f"is {described.get(mode, f'a {mode!r}-mode image')}, not a mask. Save the mask as a single-channel PNG "
        "holding class indices 0..K−1, or as an RGB PNG with one colour per class."
    )


def _decode_colour(image: Image.Image, warnings: list[str]) -> DecodedMask:
    rgba = image.convert("RGBA") if image.mode != "RGBA" else image
    colours = rgba.getcolors(MAX_COLOURS)
    if colours is None:
        seen = rgba.getcolors(100_000)
        pixels = image.size[0] * image.size[1]
        if seen is None:
            count, cover = "more than 100,000", ""
        else:
            counts = sorted((c for c, _ in seen), reverse=True)
            count = f"{len(seen):,}"
            cover = f"; its {MAX_COLOURS} most common colours cover {100 * sum(counts[:MAX_COLOURS]) / pixels:.1f} % of the pixels"
        jpeg = " JPEG compression blends colours too: save masks as PNG." if image.format in LOSSY_FORMATS else ""
        raise UploadError(
            f"is an RGB image with {count} distinct colours{cover}, but a colour mask has one colour per class "
            f"(at most {MAX_COLOURS}). Anti-aliased edges blend neighbouring class colours: export the mask without "
            f"anti-aliasing (nearest-neighbour) or as an index PNG.{jpeg} If this is a photo, upload it as an image."
        )
    keys = np.array(sorted(int(np.array(c, dtype=np.uint8).view("<u4")[0]) for _, c in colours), dtype=np.uint32)
    if all(((int(k) & 255) == ((int(k) >> 8) & 255) == ((int(k) >> 16) & 255)) and (int(k) >> 24) == 255 for k in keys):
        # Grey levels saved as RGB: the grey level is the class index.
        values = np.asarray(rgba)[..., 0]
        return DecodedMask("index", _index_values(values, "8-bit", warnings, image.format in LOSSY_FORMATS), warnings=tuple(warnings))
    packed = _pack(np.asarray(rgba))
    codes = np.searchsorted(keys, packed).astype(np.uint8)
    return DecodedMask("colour", codes, colours=tuple(int(k) for k in keys), warnings=tuple(warnings))


@dataclass(frozen=True, eq=False)
class MaskSet:
    """The masks of one upload, as codes (see the module docstring).

    ``colours``: for colour masks, each code's colour ('#rrggbb'); for index masks, the class
    colours of a P-mode palette when the masks had one, else empty. ``code_pixels``: pixels per
    code over all masks; ``void_code_pixels``: pixels of index masks that hold ``VOID`` itself
    (which has no code of its own: colour masks make a colour void through the mapping)."""

    names: tuple[str, ...]
    paths: tuple[str, ...]
    kind: str
    codes: tuple[np.ndarray, ...]
    colours: tuple[str, ...]
    code_pixels: np.ndarray
    warnings: tuple[Problem, ...] = ()
    keys: tuple[int, ...] = ()  # colour masks: each code's packed RGBA key
    void_code_pixels: int = 0

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def num_codes(self) -> int:
        return len(self.code_pixels)

    @property
    def total_pixels(self) -> int:
        """Every pixel of the masks, void ones included."""
        return int(self.code_pixels.sum()) + self.void_code_pixels

    def void_pixels(self, mapping: Sequence[int]) -> int:
        """Pixels that are void under ``mapping``: an index mask's VOID, or a colour mapped to VOID."""
        return self.void_code_pixels + int(self.code_pixels[np.asarray(mapping) == VOID].sum())

    def default_mapping(self) -> np.ndarray:
        """Code → class. Index masks: the identity. Colour masks: VOC_BOUNDARY (if present) is void,
        black (if present) class 0, then the other colours by decreasing pixel count."""
        if self.kind == "index":
            return np.arange(self.num_codes, dtype=np.int64)
        order = sorted(
            (c for c in range(self.num_codes) if self.colours[c] != VOC_BOUNDARY),
            key=lambda c: (self.colours[c] != "#000000", -int(self.code_pixels[c]), c),
        )
        mapping = np.full(self.num_codes, VOID, dtype=np.int64)
        mapping[order] = np.arange(len(order))
        return mapping

    def check_mapping(self, mapping: Sequence[int], requested_classes: int = 0) -> int:
        """The number of classes K for ``mapping`` (``requested_classes``, or the largest class + 1;
        VOID is no class); UploadError when a class is out of 0..K−1, K is outside 1..MAX_CLASSES or
        every pixel is void."""
        mapping = np.asarray(mapping, dtype=np.int64)
        if mapping.shape != (self.num_codes,):
            raise UploadError(f"The colour table has {mapping.shape[0] if mapping.ndim else 0} rows for {self.num_codes} colours: upload the masks again.")
        if mapping.size and mapping.min() < 0:
            raise UploadError("A class in the colour table is negative: classes are 0, 1, 2, …")
        used = mapping[(self.code_pixels > 0) & (mapping != VOID)]
        if not used.size:
            raise UploadError("Every colour is marked void, so no pixel has a class. Untick void for the colours of your classes.")
        largest = int(used.max())
        num_classes = int(requested_classes) if requested_classes else largest + 1
        if num_classes > MAX_CLASSES or largest >= MAX_CLASSES:
            raise UploadError(f"At most {MAX_CLASSES} classes are supported; these masks would need {max(num_classes, largest + 1)}. Merge classes.")
        if largest >= num_classes:
            code = int(np.flatnonzero((mapping >= num_classes) & (mapping != VOID) & (self.code_pixels > 0))[0])
            where = next(self.names[i] for i, c in enumerate(self.codes) if np.any(c == code))
            what = f"the colour {self.colours[code]} is mapped to class {mapping[code]}" if self.kind == "colour" else f"it holds class {code}"
            raise UploadError(
                f"'{where}': {what}, but the number of classes is {num_classes} (classes 0..{num_classes - 1}). "
                f"Raise the number of classes to at least {largest + 1} (or leave it at 0 to count them), or fix the mask."
            )
        return num_classes

    def class_mask(self, index: int, mapping: Sequence[int]) -> np.ndarray:
        """Mask ``index`` as classes (uint8), void pixels VOID."""
        return _lookup(mapping)[self.codes[index]]

    def class_masks(self, mapping: Sequence[int]) -> Iterator[np.ndarray]:
        lookup = _lookup(mapping)
        for codes in self.codes:
            yield lookup[codes]

    def counts(self, mapping: Sequence[int], num_classes: int) -> weights.ClassCounts:
        """Class statistics over every mask (sizes may differ), by explorer.weights; void pixels
        count nowhere."""
        return weights.count_pixels(self.class_masks(mapping), num_classes, ignore_index=VOID)

    def class_colours(self, mapping: Sequence[int], num_classes: int) -> tuple[str, ...]:
        """A colour per class: the first colour mapped to it (colour masks), the P palette (index
        masks that had one), else DEFAULT_COLOURS."""
        out = [DEFAULT_COLOURS[c % len(DEFAULT_COLOURS)] for c in range(num_classes)]
        if self.kind == "colour":
            for code in sorted(range(self.num_codes), key=lambda c: -int(self.code_pixels[c])):
                c = int(mapping[code])
                if c < num_classes and out[c] == DEFAULT_COLOURS[c % len(DEFAULT_COLOURS)]:
                    out[c] = self.colours[code][:7]
        elif self.colours:
            for c in range(min(num_classes, len(self.colours))):
                out[c] = self.colours[c]
        return tuple(out)


def _lookup(mapping: Sequence[int]) -> np.ndarray:
    """Code → class as a table over every uint8 code: codes past the mapping (an index mask's VOID,
    the only one there can be) stay VOID."""
    table = np.full(256, VOID, dtype=np.uint8)
    table[: len(mapping)] = np.asarray(mapping, dtype=np.int64)
    return table


def read_masks(entries: Sequence[Entry]) -> tuple[MaskSet, list[Problem]]:
    """Decode every mask of an upload: (the masks that could be read, the refused files).

    Index and colour masks are not mixed: the kind most files have wins and the others are refused.
    Colour masks share one palette (at most MAX_COLOURS colours over all of them). Raises
    UploadError when no mask could be read or the masks hold more than MAX_TOTAL_PIXELS pixels."""
    problems: list[Problem] = []
    decoded: list[tuple[Entry, DecodedMask]] = []
    total = 0
    for entry in entries:
        try:
            mask = decode_mask(entry.data, entry.name)
        except UploadError as error:
            problems.append(Problem(entry.name, error.message))
            continue
        total += mask.codes.size
        if total > MAX_TOTAL_PIXELS:
            raise UploadError(
                f"These masks hold more than {MAX_TOTAL_PIXELS / 1e6:.0f} million pixels in all (the limit per upload). "
                "Upload a representative subset, or downscale the masks (nearest-neighbour) first."
            )
        decoded.append((entry, mask))
    if not decoded:
        raise UploadError(_nothing_read("mask", problems))
    kinds = Counter(m.kind for _, m in decoded)
    kind = "index" if kinds["index"] >= kinds["colour"] else "colour"
    kept = []
    for entry, mask in decoded:
        if mask.kind != kind:
            other = "an RGB colour mask" if mask.kind == "colour" else "an index mask"
            problems.append(Problem(entry.name, f"is {other}, but most of these masks are {'index' if kind == 'index' else 'colour'} masks. Upload one kind at a time."))
        else:
            kept.append((entry, mask))
    notes = [Problem(e.name, w) for e, m in kept for w in m.warnings]
    if kind == "index":
        codes = [m.codes for _, m in kept]
        # VOID is not a class: the largest value below it gives the codes (every mask has one,
        # since a mask of VOID alone is read as binary).
        num_codes = max(int(c.max(initial=0, where=c != VOID)) for c in codes) + 1
        palette = next((m.palette for _, m in kept if m.palette), None)
        colours = tuple(palette[:num_codes]) if palette else ()
        if palette and len(palette) < num_codes:
            colours = ()
    else:
        union = sorted({k for _, m in kept for k in m.colours})
        if len(union) > MAX_COLOURS:
            # Refuse the files that bring in colours beyond the first MAX_COLOURS seen.
            allowed: set[int] = set()
            accepted = []
            for entry, mask in kept:
                new = set(mask.colours) - allowed
                if len(allowed | new) > MAX_COLOURS:
                    problems.append(Problem(entry.name, f"brings the colours over all masks to more than {MAX_COLOURS}: a colour mask has one colour per class. Check it for anti-aliased edges or another palette."))
                    continue
                allowed |= new
                accepted.append((entry, mask))
            kept = accepted
            union = sorted(allowed)
        index = {k: i for i, k in enumerate(union)}
        codes = []
        for _, mask in kept:
            lookup = np.array([index[k] for k in mask.colours], dtype=np.uint8)
            codes.append(lookup[mask.codes])
        num_codes = len(union)
        colours = tuple(_hex(k) for k in union)
    keys = tuple(union) if kind == "colour" else ()
    pixels = np.zeros(num_codes, dtype=np.int64)
    for c in codes:
        pixels += np.bincount(c.ravel(), minlength=num_codes)[:num_codes]
    void = sum(int(np.count_nonzero(c == VOID)) for c in codes)  # colour codes stay below MAX_COLOURS
    for c in codes:
        c.setflags(write=False)
    pixels.setflags(write=False)
    names = tuple(e.name for e, _ in kept)
    return MaskSet(names, tuple(e.path for e, _ in kept), kind, tuple(codes), colours, pixels, tuple(notes), keys, void), problems


def _nothing_read(what: str, problems: Sequence[Problem]) -> str:
    if not problems:
        return f"No {what} files in this upload. Upload {_FORMAT_HELP} files, or a zip of them."
    first = problems[0]
    more = f" ({len(problems) - 1} more refused, listed below)" if len(problems) > 1 else ""
    return f"None of these files could be read as a {what}. '{first.name}' {first.message}{more}"


# ---------------------------------------------------------------------------------------------
# Images and pairs


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images resized to SIZE×SIZE (bilinear) as uint8, with their original sizes (H, W) and, when
    read with ``keep_full``, the images themselves at their own resolution."""

    names: tuple[str, ...]
    paths: tuple[str, ...]
    small: np.ndarray  # (N, SIZE, SIZE, 3) uint8
    sizes: tuple[tuple[int, int], ...]
    full: tuple[np.ndarray, ...] = ()  # (H, W, 3) uint8 each, with keep_full

    def __len__(self) -> int:
        return len(self.names)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        scaled = np.nan_to_num((values - low) / (high - low if high > low else 1.0)) * 255
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "RGB":
        return image
    return image.convert("RGB")


def decode_image(data: bytes, name: str = "", size: int = SIZE, keep_full: bool = False) -> tuple[np.ndarray, tuple[int, int], np.ndarray | None]:
    """One image → (size×size×3 uint8, bilinear; its original (H, W); with ``keep_full`` the image
    at its own resolution as (H, W, 3) uint8, else None). Any mode is converted to RGB (CMYK,
    palette, grey, 16-bit grey scaled to its range)."""
    image = open_image(data, name, IMAGE_FORMATS)
    height, width = image.size[1], image.size[0]
    rgb = _to_rgb(image)
    small = np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    full = np.asarray(rgb, dtype=np.uint8) if keep_full else None
    return small, (height, width), full


def read_images(entries: Sequence[Entry], size: int = SIZE, keep_full: bool = False) -> tuple[ImageSet, list[Problem]]:
    problems: list[Problem] = []
    names, paths, smalls, sizes, fulls = [], [], [], [], []
    total = 0
    for entry in entries:
        try:
            small, shape, full = decode_image(entry.data, entry.name, size, keep_full)
        except UploadError as error:
            problems.append(Problem(entry.name, error.message))
            continue
        total += shape[0] * shape[1]
        if total > MAX_TOTAL_PIXELS:
            raise UploadError(f"These images hold more than {MAX_TOTAL_PIXELS / 1e6:.0f} million pixels in all (the limit per upload). Upload fewer or smaller images.")
        names.append(entry.name)
        paths.append(entry.path)
        smalls.append(small)
        sizes.append(shape)
        if full is not None:
            full.setflags(write=False)
            fulls.append(full)
    if not names:
        raise UploadError(_nothing_read("image", problems))
    array = np.stack(smalls)
    array.setflags(write=False)
    return ImageSet(tuple(names), tuple(paths), array, tuple(sizes), tuple(fulls)), problems


def match(left: Sequence[str], right: Sequence[str], left_suffixes: Sequence[str] = (), right_suffixes: Sequence[str] = MASK_SUFFIXES) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair paths by :func:`match_key`, then (for what is left) by the key's last part when that is
    unique on both sides. Returns (pairs (i, j), unpaired left, unpaired right)."""
    pairs: list[tuple[int, int]] = []
    left_keys = [match_key(p, left_suffixes) for p in left]
    right_keys = [match_key(p, right_suffixes) for p in right]
    by_key: dict[str, list[int]] = {}
    for j, key in enumerate(right_keys):
        by_key.setdefault(key, []).append(j)
    used_left, used_right = set(), set()
    for i, key in enumerate(left_keys):
        candidates = [j for j in by_key.get(key, []) if j not in used_right]
        if candidates:
            pairs.append((i, candidates[0]))
            used_left.add(i)
            used_right.add(candidates[0])
    rest_left = [i for i in range(len(left)) if i not in used_left]
    rest_right = [j for j in range(len(right)) if j not in used_right]
    base_left = Counter(_base_key(left_keys[i]) for i in rest_left)
    base_right: dict[str, list[int]] = {}
    for j in rest_right:
        base_right.setdefault(_base_key(right_keys[j]), []).append(j)
    for i in rest_left:
        base = _base_key(left_keys[i])
        if base_left[base] == 1 and len(base_right.get(base, [])) == 1:
            j = base_right[base][0]
            pairs.append((i, j))
            used_left.add(i)
            used_right.add(j)
    pairs.sort()
    return pairs, [i for i in range(len(left)) if i not in used_left], [j for j in range(len(right)) if j not in used_right]


@dataclass(frozen=True)
class Pairing:
    """Images matched to masks: ``pairs`` (image index, mask index) usable for training, and a
    problem for every image or mask left out."""

    pairs: tuple[tuple[int, int], ...]
    problems: tuple[Problem, ...]


def pair(images: ImageSet, masks: MaskSet) -> Pairing:
    matched, lone_images, lone_masks = match(images.paths, masks.paths, IMAGE_SUFFIXES, MASK_SUFFIXES)
    image_keys = [match_key(p, IMAGE_SUFFIXES) for p in images.paths]
    mask_keys = [match_key(p, MASK_SUFFIXES) for p in masks.paths]
    paired_image = {image_keys[i]: i for i, _ in matched}
    paired_mask = {mask_keys[j]: j for _, j in matched}
    problems = []
    for i in lone_images:
        twin = paired_image.get(image_keys[i])
        if twin is not None:
            problems.append(Problem(images.names[i], f"has the same name as '{images.names[twin]}', which is already paired; one image per mask is used. Rename or remove one of them."))
        else:
            problems.append(Problem(images.names[i], "has no mask with the same name. Name each mask like its image (0001.jpg ↔ 0001.png or 0001_mask.png), or put them in images/ and masks/ folders of one zip."))
    for j in lone_masks:
        twin = paired_mask.get(mask_keys[j])
        if twin is not None:
            problems.append(Problem(masks.names[j], f"has the same name as '{masks.names[twin]}', which is already paired; it counts in the statistics but is not trained on. Rename or remove one of them."))
        else:
            problems.append(Problem(masks.names[j], "has no image with the same name, so it counts in the statistics but is not trained on."))
    good = []
    for i, j in matched:
        image_size = images.sizes[i]
        mask_size = masks.codes[j].shape
        if tuple(image_size) != tuple(mask_size):
            problems.append(Problem(
                images.names[i],
                f"is {image_size[1]}×{image_size[0]} but its mask '{masks.names[j]}' is {mask_size[1]}×{mask_size[0]}: "
                "a mask must have its image's size. Resize the mask (nearest-neighbour) or re-export it from the annotation tool.",
            ))
            continue
        good.append((i, j))
    if len(good) > MAX_PAIRS:
        problems.append(Problem(f"{len(good) - MAX_PAIRS} pairs", f"are left out: at most {MAX_PAIRS} pairs are trained on (the first ones by name)."))
        good = good[:MAX_PAIRS]
    return Pairing(tuple(good), tuple(problems))


def resize_mask(classes: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Nearest-neighbour: a resized mask holds only classes that were there."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(classes, dtype=np.uint8)).resize((size, size), Image.Resampling.NEAREST))


def check_pairs(pairing: Pairing, num_classes: int) -> list[tuple[int, int]]:
    """The pairs to train on; UploadError when there are too few or a single class."""
    pairs = list(pairing.pairs)
    if len(pairs) < MIN_PAIRS:
        raise UploadError(
            f"{len(pairs)} image–mask pair{'s' if len(pairs) != 1 else ''} matched; at least {MIN_PAIRS} are needed to train "
            f"({MIN_PAIRS - MIN_VAL} to train on, {MIN_VAL} to validate). Upload more images with masks of the same names."
        )
    if num_classes < 2:
        raise UploadError("These masks hold a single class: there is nothing to segment. Set the number of classes to 2 or more, or check the masks.")
    return pairs


def split(count: int, seed: int, val_fraction: float = VAL_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) indices of ``count`` pairs by a seeded permutation: at least MIN_VAL
    validation pairs and at least one training pair, each part in its original order."""
    order = np.random.default_rng(seed).permutation(count)
    n_val = min(max(MIN_VAL, int(round(val_fraction * count))), count - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def build_dataset(
    images: ImageSet,
    masks: MaskSet,
    pairing: Pairing,
    mapping: Sequence[int],
    num_classes: int,
    class_names: Sequence[str],
    class_colours: Sequence[str],
    *,
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
    min_train: int = MIN_TRAIN,
    size: int = SIZE,
) -> Dataset:
    """A Dataset of the paired images (bilinear) and masks (nearest) at size×size, split into
    training and validation by a seeded permutation (at least MIN_VAL validation images). A training
    set smaller than ``min_train`` (the largest batch) is repeated whole, so every batch is full
    and the class shares stay exactly those of the training images. Void pixels stay VOID (nearest
    neighbour makes no new values), and the dataset's ``ignore_index`` is VOID when its masks hold any."""
    pairs = check_pairs(pairing, num_classes)
    lookup = _lookup(mapping)
    x = np.stack([images.small[i] for i, _ in pairs]).astype(np.float32) / 255.0
    y = np.stack([resize_mask(lookup[masks.codes[j]], size) for _, j in pairs])
    train, val = split(len(pairs), seed, val_fraction)
    n_val = len(val)
    repeats = max(1, math.ceil(min_train / len(train)))
    train = np.tile(train, repeats)
    arrays = [x[train], y[train], x[val], y[val]]
    for array in arrays:
        array.setflags(write=False)
    repeated = f" ×{repeats} to fill a batch of {min_train}" if repeats > 1 else ""
    return Dataset(
        name=f"your data ({len(train) // repeats} training pairs{repeated}, {n_val} validation pairs)",
        class_names=tuple(class_names),
        class_colors=tuple(class_colours),
        train_images=arrays[0],
        train_masks=arrays[1],
        val_images=arrays[2],
        val_masks=arrays[3],
        ignore_index=VOID if np.any(y == VOID) else None,
    )


def class_names_from(text: str, num_classes: int) -> tuple[tuple[str, ...], str | None]:
    """Class names from a comma-separated string (blank: 'class c'); a note when the count differs."""
    given = [n.strip() for n in str(text or "").split(",")] if str(text or "").strip() else []
    given = [display_name(n, 40) for n in given]
    names = [given[c] if c < len(given) and given[c] else f"class {c}" for c in range(num_classes)]
    note = None
    if given and len(given) != num_classes:
        note = f"{len(given)} names for {num_classes} classes: " + ("the missing ones are 'class c'." if len(given) < num_classes else "the extra names are ignored.")
    seen: Counter[str] = Counter()
    for c, n in enumerate(names):
        seen[n] += 1
        if seen[n] > 1:
            names[c] = f"{n} ({c})"
    return tuple(names), note


# ---------------------------------------------------------------------------------------------
# Predictions


@dataclass(frozen=True, eq=False)
class Prediction:
    """A prediction file: ``kind`` 'probabilities' (H, W, C) float, 'index' (H, W) classes,
    'colour' (H, W) codes into ``colours`` (packed RGBA keys), or 'binary' (H, W) float, the
    probability of class 1 of a two-class problem."""

    name: str
    path: str
    kind: str
    array: np.ndarray
    colours: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()


def read_npy(data: bytes) -> np.ndarray:
    """A .npy array, its header checked before any data is read, never unpickled."""
    if not data:
        raise UploadError("is empty (0 bytes). Save it again with np.save and upload the saved file.")
    if not data.startswith(b"\x93NUMPY"):
        what = _sniff(data)
        if what == "a zip archive":
            raise UploadError("is a .npz archive (or another zip), not a .npy array. Save one array per file with np.save('name.npy', probabilities).")
        if what == "a pickled Python object":
            raise UploadError("is a pickled Python object, which is never loaded (it could run code). Save a plain array of numbers with np.save('name.npy', probabilities).")
        raise UploadError(f"is not a .npy array: it is {what}. Save the probabilities with np.save('name.npy', probabilities).")
    handle = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle, max_header_size=MAX_NPY_HEADER)
        elif version in ((2, 0), (3, 0)):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle, max_header_size=MAX_NPY_HEADER)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except Exception as error:  # numpy parses the header with the tokenizer: many kinds of error
        raise UploadError(f"has a damaged .npy header ({type(error).__name__}: {error}). Save it again with np.save.") from None
    if dtype.hasobject:
        raise UploadError("holds Python objects (a pickled array), which are never loaded (they could run code). Save an array of numbers: np.save('name.npy', probabilities.astype('float32')).")
    if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None:
        raise UploadError(f"holds {dtype} values; a prediction holds numbers (float probabilities or integer classes). Convert it with .astype('float32').")
    values = math.prod(shape)
    if values > MAX_PREDICTION_VALUES:
        raise UploadError(f"has shape {shape} ({values:,} values); at most {MAX_PREDICTION_VALUES:,} per prediction (one image). Save one image per file, or a smaller image.")
    expected = values * dtype.itemsize
    available = len(data) - handle.tell()
    if available < expected:
        raise UploadError(f"is truncated: its header promises {expected:,} bytes of data, the file has {available:,}. Save it again with np.save.")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as error:
        raise UploadError(f"could not be read as a .npy array ({type(error).__name__}: {error}). Save it again with np.save.") from None
    return array


def read_prediction(entry: Entry) -> Prediction:
    """A predicted mask (an image) or per-class probabilities (.npy)."""
    if entry.path.lower().endswith(".npy") or entry.data.startswith(b"\x93NUMPY"):
        array = read_npy(entry.data)
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim not in (2, 3):
            raise UploadError(
                f"has shape {array.shape}; a prediction of one image is (H, W, C) probabilities or (H, W) classes. "
                "Save one image per file, named like its mask."
            )
        if array.ndim == 3 and array.shape[0] < min(MIN_SIDE, array.shape[-1]):
            raise UploadError(f"has shape {array.shape}: the classes seem to be on the first axis. Save it channels-last: np.moveaxis(p, 0, -1).")
        if min(array.shape[:2]) < MIN_SIDE:
            raise UploadError(f"has shape {array.shape}: at least {MIN_SIDE}×{MIN_SIDE} pixels are needed. Is the class axis first? Use (H, W, C).")
        if array.dtype.kind == "f":
            kind = "probabilities" if array.ndim == 3 else "binary"
            return Prediction(entry.name, entry.path, kind, array.astype(np.float32, copy=False))
        if array.ndim == 3:
            raise UploadError(f"holds integers of shape {array.shape}; (H, W, C) probabilities must be floats. Save probabilities as float32, or the predicted classes as (H, W).")
        if array.dtype.kind == "b":
            array = array.astype(np.uint8)
        if array.min() < 0 or array.max() >= MAX_CLASSES:
            raise UploadError(f"holds classes {int(array.min())}..{int(array.max())}; classes are 0..{MAX_CLASSES - 1}. Save the predicted class of each pixel.")
        return Prediction(entry.name, entry.path, "index", array.astype(np.uint8))
    mask = decode_mask(entry.data, entry.name)
    kind = "index" if mask.kind == "index" else "colour"
    return Prediction(entry.name, entry.path, kind, mask.codes, mask.colours, mask.warnings)


def match_predictions(predictions: Sequence[str], masks: Sequence[str]) -> tuple[list[tuple[int, int]], list[int]]:
    """Each prediction's truth mask by name (``0001_pred.npy`` ↔ ``0001.png``); a single
    prediction with a single mask are a pair whatever their names."""
    if len(predictions) == 1 and len(masks) == 1:
        return [(0, 0)], []
    pairs, lone, _ = match(predictions, masks, PREDICTION_SUFFIXES, MASK_SUFFIXES)
    return pairs, lone


def prediction_probabilities(
    prediction: Prediction,
    truth: np.ndarray,
    num_classes: int,
    masks: MaskSet | None = None,
    mapping: Sequence[int] | None = None,
) -> np.ndarray:
    """(H, W, K) float32 class probabilities of ``prediction`` checked against its truth (H, W).

    A predicted mask becomes probability 1 on its class. Probabilities must be finite, within
    [0, 1] and sum to 1 over the classes (to within 1e-3; float16: 1e-2)."""
    height, width = truth.shape
    array = prediction.array
    shape = array.shape
    if prediction.kind in ("index", "colour", "binary") and shape != truth.shape:
        raise UploadError(f"is {shape[1]}×{shape[0]} but its truth mask is {width}×{height}. A prediction must have its mask's size.")
    if prediction.kind == "probabilities":
        if shape[:2] != truth.shape:
            if shape[0] == num_classes and shape[1:] == truth.shape:
                raise UploadError(f"has shape {shape}: the classes are on the first axis. Save it channels-last: np.moveaxis(p, 0, -1), shape ({height}, {width}, {num_classes}).")
            raise UploadError(f"has shape {shape} but its truth mask is {height}×{width}: expected ({height}, {width}, {num_classes}).")
        if shape[2] != num_classes:
            raise UploadError(f"has {shape[2]} classes on its last axis, but the masks have {num_classes}. Set the number of classes on the Masks tab, or save all {num_classes} class probabilities.")
        if num_classes * height * width > MAX_PREDICTION_VALUES:
            raise UploadError(f"is too large to score ({height}×{width}×{num_classes} values; at most {MAX_PREDICTION_VALUES:,}). Crop or downscale it and its mask.")
        probabilities = _check_probabilities(array.astype(np.float64), array.dtype)
        return probabilities.astype(np.float32)
    if prediction.kind == "binary":
        if num_classes != 2:
            raise UploadError(f"is one (H, W) probability map, which only describes 2 classes; the masks have {num_classes}. Save (H, W, {num_classes}) probabilities.")
        p1 = _check_probabilities(array.astype(np.float64)[..., None], array.dtype, sums=False)[..., 0]
        return np.stack([1.0 - p1, p1], axis=-1).astype(np.float32)
    if num_classes * height * width > MAX_PREDICTION_VALUES:
        raise UploadError(f"is too large to score ({height}×{width}×{num_classes} values; at most {MAX_PREDICTION_VALUES:,}). Crop or downscale it and its mask.")
    if prediction.kind == "colour":
        if masks is None or masks.kind != "colour" or mapping is None:
            raise UploadError("is an RGB colour mask, but the truth masks are index masks. Save the prediction like the masks (class indices).")
        known = {key: int(mapping[c]) for c, key in enumerate(masks.keys)}
        unknown = [k for k in prediction.colours if k not in known]
        if unknown:
            raise UploadError(f"uses the colour {_hex(unknown[0])}, which is in none of the masks. Use the masks' colours only.")
        lookup = np.array([known[k] for k in prediction.colours], dtype=np.int64)
        classes = lookup[prediction.array]
    else:
        if masks is not None and masks.kind == "colour":
            raise UploadError("is an index mask, but the truth masks are colour masks. Save the prediction in the masks' colours, or as (H, W, C) probabilities.")
        classes = prediction.array.astype(np.int64)
    if np.any(classes == VOID):
        raise UploadError(f"marks pixels void ({VOID}, or a colour marked void); a prediction gives every pixel a class. Save the predicted class of each pixel.")
    if classes.max() >= num_classes:
        raise UploadError(f"predicts class {int(classes.max())}, but there are {num_classes} classes (0..{num_classes - 1}). Check the number of classes on the Masks tab.")
    return np.eye(num_classes, dtype=np.float32)[classes]


def _check_probabilities(p: np.ndarray, dtype: np.dtype, sums: bool = True) -> np.ndarray:
    finite = np.isfinite(p)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        what = "NaN" if np.isnan(p[tuple(bad)]) else "infinite"
        raise UploadError(
            f"holds {int((~finite).sum()):,} {what} values (the first at pixel row {bad[0]}, column {bad[1]}). "
            "The model's output overflowed or was divided by zero: check it, or replace them before saving (np.nan_to_num)."
        )
    low, high = float(p.min()), float(p.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise UploadError(
            f"holds values from {low:.3g} to {high:.3g}, outside [0, 1]: these look like logits. Apply softmax over the "
            "class axis (scipy.special.softmax(z, axis=-1)) before saving."
        )
    p = np.clip(p, 0.0, 1.0)
    if sums:
        tolerance = 1e-2 if dtype == np.float16 else 1e-3
        total = p.sum(axis=-1)
        error = np.abs(total - 1.0)
        if error.max() > tolerance:
            where = np.unravel_index(int(error.argmax()), error.shape)
            raise UploadError(
                f"does not sum to 1 over the classes (at pixel row {where[0]}, column {where[1]} the sum is {total[where]:.4g}). "
                "Per-class sigmoid outputs are not class probabilities: apply softmax over the class axis, or divide by the sum."
            )
        p = p / total[..., None]
    return p


@dataclass(frozen=True)
class LossScore:
    """One loss on one prediction: the loss value, the per-pixel loss (pixel-wise losses) and the
    |gradient| with respect to each pixel's logits (×H·W), as in explorer/maps.py."""

    loss_id: str
    name: str
    kind: str
    value: float
    per_pixel: np.ndarray | None
    gradient: np.ndarray


def score(truth: np.ndarray, probabilities: np.ndarray, *, class_weights: Sequence[float] | None = None, loss_ids: Sequence[str] | None = None) -> list[LossScore]:
    """Every loss of the registry (default parameters; class-weighted ones with ``class_weights``)
    on one prediction, with per-pixel maps. Void pixels of ``truth`` (VOID) count in no loss.

    Logits are built from the probabilities as explorer/surfaces.py does, clipped to
    [EPS, 1 − EPS]: log p for softmax losses (softmax(log p) = p), logit(p) for the sigmoid
    losses. Gradients are with respect to those logits, multiplied by H·W (explorer/maps.py's
    convention: the gradient as if the loss were a sum over pixels)."""
    from explorer import losses, maps, surfaces

    p = np.clip(np.asarray(probabilities, dtype=np.float64), surfaces.EPS, 1.0 - surfaces.EPS)
    softmax_logits = np.log(p)
    sigmoid_logits = np.log(p) - np.log1p(-p)
    weights_list = None if class_weights is None else [float(w) for w in class_weights]
    void = {"ignore_index": VOID} if np.any(np.asarray(truth) == VOID) else {}
    out = []
    for loss_id in loss_ids or list(losses.REGISTRY):
        spec = losses.REGISTRY[loss_id]
        params = {"class_weights": weights_list} if spec.uses_class_weights and weights_list is not None else {}
        params.update(void)
        loss = losses.get(loss_id, **params)
        logits = sigmoid_logits if loss_id in surfaces.SIGMOID_LOSSES else softmax_logits
        result = maps.logit_maps(loss, logits, truth)
        out.append(LossScore(loss_id, spec.name, spec.kind, result.value, result.loss, result.magnitude))
    return out
