"""The "Your data" section: the user's masks (class shares, weights under every scheme, the loss
planes at their shares), image–mask pairs the runs can train on, and predictions scored under
every loss with per-pixel maps.

Reading and checking is explorer/uploads.py; this module lays it out and keeps, per session:

- ``st.session_state["upload_state"]``: what was read from each uploader (cached on the files'
  ids, so a rerun decodes nothing again), the last good masks, images and dataset;
- ``st.session_state["upload_train"]``: the "Train on these images" switch.

app.py reads ``active_data.active_dataset`` (and ``active_counts``) *before* building the runs,
and calls ``active_data.drop_runs_on_other_data`` before ``session.sync_runs``, so the runs train on the
uploaded pairs only when the switch is on. A new Dataset object is made only when the pairs'
content changes (a fingerprint of the arrays), so a bad upload, or a good upload of the same data,
keeps the runs and their history (``session.sync_runs`` keeps a run while its dataset is the same
object). When this script run changed the dataset the runs should use, the section reruns the
page once. Every failure is an ``st.error`` inside this section.
"""

from __future__ import annotations

import base64
import hashlib
import logging

import numpy as np
import pandas as pd
import streamlit as st

from explorer import losses, owndata, plots, surface_plots, surfaces, uploads, weights
from explorer.data import Dataset
from explorer.training import Run
from explorer.ui import session
from explorer.ui.active_data import SERVED_KEY, STATE, TRAIN_KEY
from explorer.ui.dataset_view import training_void, void_share

_log = logging.getLogger(__name__)

RESOLUTION_KEY = "upload_resolution"
RARE_KEY = "upload_rare_crops"
MAX_LISTED = 25  # refused files listed one by one; the rest are counted
PLANE_RESOLUTION = 61
PREVIEW = 6
# Training at the images' own resolution: crops of these sizes (the first is the default), or the
# whole images resized to the model's 64×64 (RESIZE). The crop pool holds as many pixels as the
# largest resized upload (MAX_PAIRS images of 64×64), and the page validates on the first whole
# images that fit in VALIDATION_PIXELS, so a snapshot costs at most a few times the toy set's.
RESIZE = 0
CROP_SIZES = (64, 32, 128, RESIZE)
POOL_PIXELS = uploads.MAX_PAIRS * uploads.SIZE**2
VALIDATION_PIXELS = 2**20
RARE_SHARES = (0.0, 0.1, 0.25, 0.5)


# ---------------------------------------------------------------------------------------------
# The section


def show(runs: dict[str, Run]) -> None:
    state = st.session_state.setdefault(STATE, {})
    st.caption(
        "Bring your own masks to see your imbalance: each class's share, the weights under every scheme and the loss "
        "planes at your shares. Add the images to train the runs on them, or a prediction to score it under every loss. "
        "Files are read in memory and never stored; a file that cannot be used is refused with the reason, and nothing "
        "else on the page changes."
    )
    masks_tab, images_tab, prediction_tab = st.tabs(["Masks", "Images (train on them)", "Prediction"])
    with masks_tab:
        mask_files = st.file_uploader(
            "Masks: index masks (values 0..K−1, 255 void) or RGB colour masks; several files or a zip",
            type=list(uploads.MASK_EXTENSIONS), accept_multiple_files=True, key="upload_masks",
            max_upload_size=uploads.MAX_UPLOAD_MB,
            help=f"PNG, BMP or TIFF (JPEG is read with a warning: its compression corrupts labels). At most {uploads.MAX_FILES} files, "
            f"{uploads.MAX_IMAGE_PIXELS / 1e6:.1f} megapixels each, {uploads.MAX_TOTAL_PIXELS / 1e6:.0f} million pixels in all, "
            f"{uploads.MAX_CLASSES} classes. A zip may hold images/ and masks/ folders: both are read. Void pixels count in no "
            f"loss, metric, class share or weight: in an 8-bit index mask, {uploads.VOID} next to class values is void (PASCAL VOC's "
            "and Cityscapes' 'ignore'); in colour masks, tick void for a colour in the colour table.",
        )
    with images_tab:
        image_files = st.file_uploader(
            "Images, named like their masks (0001.jpg ↔ 0001.png or 0001_mask.png); several files or a zip",
            type=list(uploads.IMAGE_EXTENSIONS), accept_multiple_files=True, key="upload_images",
            max_upload_size=uploads.MAX_UPLOAD_MB,
            help="Read at their own resolution: the runs train on random crops and validate on whole images (or, if you choose, on the images resized to 64×64).",
        )
    with prediction_tab:
        prediction_files = st.file_uploader(
            "Predictions: a predicted mask, or per-class probabilities (H, W, C) as .npy; named like their masks",
            type=list(uploads.PREDICTION_EXTENSIONS), accept_multiple_files=True, key="upload_prediction",
            max_upload_size=uploads.MAX_UPLOAD_MB,
            help=".npy files are read without pickle. A single prediction with a single mask are paired whatever their names.",
        )
    try:
        _sections(state, runs, mask_files or [], image_files or [], prediction_files or [], masks_tab, images_tab, prediction_tab)
    except Exception as error:  # the last guard: an upload must never break the page
        _log.exception("upload section failed")
        st.error(f"Your files could not be processed ({type(error).__name__}: {error}). Nothing else on the page changed; try other files, and report this if it persists.")
    _follow_dataset(state)


def _sections(state, runs, mask_files, image_files, prediction_files, masks_tab, images_tab, prediction_tab) -> None:
    read = _read_uploads(state, mask_files, image_files)
    with masks_tab:
        _show_problems(read["mask_problems"], read["mask_error"])
        masks = _current(state, "masks", read["masks"], read["mask_error"], bool(mask_files) or bool(read["masks_from_images"]))
        classes = _masks_panel(state, masks, runs, read["class_table"]) if masks is not None else None
    with images_tab:
        _show_problems(read["image_problems"], read["image_error"])
        images = _current(state, "images", read["images"], read["image_error"], bool(image_files) or bool(read["images_from_masks"]))
        _images_panel(state, images, masks, classes)
    with prediction_tab:
        _prediction_panel(state, prediction_files, masks, classes)


# ---------------------------------------------------------------------------------------------
# Reading the uploaders (cached on the files' ids)


def _files_key(files) -> tuple:
    return tuple((f.file_id, f.name, f.size) for f in files)


def _expand(files, default: str) -> dict:
    """Open one uploader's files (zips included) and sort them into masks and images."""
    try:
        entries, problems = uploads.expand((f.name, f.getvalue()) for f in files)
        table, entries = uploads.take_class_table(entries)
    except uploads.UploadError as error:
        return {"masks": [], "images": [], "problems": [], "error": error.message, "class_table": None}
    masks, images = uploads.split_roles(entries, default)
    return {"masks": masks, "images": images, "problems": problems, "error": None, "class_table": table}


def _read_uploads(state: dict, mask_files, image_files) -> dict:
    """Masks and images of both uploaders. A zip on either may hold both (images/ and masks/
    folders), so both are opened; but a set is decoded again only when the files it comes from
    changed, so a bad upload on one uploader leaves the other's set (the same object) in place."""
    masks_key, images_key = _files_key(mask_files), _files_key(image_files)
    cached = state.get("read")
    if cached is not None and cached[0] == (masks_key, images_key):
        return cached[1]
    previous = cached[1] if cached is not None else {}
    from_masks = _expand(mask_files, "mask")
    from_images = _expand(image_files, "image")
    mask_source = (masks_key, images_key if from_images["masks"] else None)
    image_source = (images_key, masks_key if from_masks["images"] else None)
    result = {
        "mask_source": mask_source,
        "image_source": image_source,
        "masks_from_images": bool(from_images["masks"]),
        "images_from_masks": bool(from_masks["images"]),
        "class_table": from_masks["class_table"] or from_images["class_table"],
    }
    if previous.get("mask_source") == mask_source:
        result.update({k: previous[k] for k in ("masks", "mask_problems", "mask_error")})
    else:
        result.update(masks=None, mask_problems=list(from_masks["problems"]), mask_error=from_masks["error"])
        entries = from_masks["masks"] + from_images["masks"]
        if entries and result["mask_error"] is None:
            try:
                result["masks"], problems = uploads.read_masks(entries)
                result["mask_problems"] += problems
            except uploads.UploadError as error:
                result["mask_error"] = error.message
    if previous.get("image_source") == image_source:
        result.update({k: previous[k] for k in ("images", "image_problems", "image_error")})
    else:
        result.update(images=None, image_problems=list(from_images["problems"]), image_error=from_images["error"])
        entries = from_masks["images"] + from_images["images"]  # images that came with their masks first
        if entries and result["image_error"] is None:
            try:
                result["images"], problems = uploads.read_images(entries, keep_full=True)
                result["image_problems"] += problems
            except uploads.UploadError as error:
                result["image_error"] = error.message
    state["read"] = ((masks_key, images_key), result)
    return result


def _current(state: dict, what: str, fresh, error: str | None, uploaded: bool):
    """The set to show: the fresh one; after a failed upload the last good one (said so); nothing
    once the user has removed the files."""
    if fresh is not None:
        state[f"{what}_good"] = fresh
        return fresh
    if not uploaded and error is None:
        state.pop(f"{what}_good", None)
        return None
    previous = state.get(f"{what}_good")
    if previous is not None:
        st.info(f"Still using your previous {what} ({len(previous)} file{'s' if len(previous) != 1 else ''}) until a new upload can be read.")
    return previous


def _md(text: str) -> str:
    """A file name or message safe inside Markdown."""
    out = []
    for ch in str(text):
        out.append("\\" + ch if ch in "\\`*_[]<>#|~$" else ch)
    return "".join(out)


def _show_warnings(notes) -> None:
    """One warning per kind of note, naming the files it concerns (a hundred JPEG masks: one box)."""
    grouped: dict[str, list[str]] = {}
    for note in notes:
        grouped.setdefault(note.message, []).append(note.name)
    for message, names in grouped.items():
        shown = ", ".join(f"**{_md(n)}**" for n in names[:3])
        more = f" and {len(names) - 3} more files" if len(names) > 3 else ""
        st.warning(f"{shown}{more}: {_md(message)}", icon=":material/warning:")


def _show_problems(problems, error: str | None) -> None:
    if error:
        st.error(_md(error), icon=":material/error:")
    refused = [p for p in problems if p.message]
    if not refused:
        return
    lines = [f"- **{_md(p.name)}** {_md(p.message)}" for p in refused[:MAX_LISTED]]
    if len(refused) > MAX_LISTED:
        lines.append(f"- … and {len(refused) - MAX_LISTED} more files refused.")
    st.error(f"{len(refused)} file{'s' if len(refused) != 1 else ''} refused:\n" + "\n".join(lines), icon=":material/block:")


# ---------------------------------------------------------------------------------------------
# Masks: classes, shares, weights, planes


class Classes:
    """The classes of the current masks: mapping (code → class), K, names, colours, counts (void
    pixels left out) and the number of void pixels."""

    def __init__(self, masks: uploads.MaskSet, mapping: np.ndarray, num_classes: int, names: tuple[str, ...], colours: tuple[str, ...], counts: weights.ClassCounts):
        self.masks, self.mapping, self.num_classes = masks, mapping, num_classes
        self.names, self.colours, self.counts = names, colours, counts
        self.void_pixels = masks.void_pixels(mapping)

    def key(self) -> tuple:
        return (id(self.masks), tuple(int(m) for m in self.mapping), self.num_classes, self.names, self.colours)


def _swatch(colour: str) -> str:
    svg = f"<svg xmlns='http://www.w3.org/2000/svg' width='24' height='16'><rect width='24' height='16' fill='{colour[:7]}' stroke='#888'/></svg>"
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _masks_panel(state: dict, masks: uploads.MaskSet, runs: dict[str, Run], table: list[dict] | None) -> Classes | None:
    _show_warnings(masks.warnings)
    kind = "index masks" if masks.kind == "index" else f"RGB colour masks with {masks.num_codes} colours"
    st.markdown(f"**{len(masks)} mask{'s' if len(masks) != 1 else ''}** read: {kind}, {masks.total_pixels:,} pixels.")
    left, right = st.columns(2)
    requested = left.number_input(
        "Number of classes (0: the largest class in the masks + 1)", 0, uploads.MAX_CLASSES, 0, key="upload_num_classes",
        help="Set it when your last classes are absent from these masks, so they show up (with a warning).",
    )
    names_text = right.text_input("Class names, comma-separated (optional)", key="upload_class_names", placeholder="background, tumour, vessel")
    mapping = masks.default_mapping()
    if masks.kind == "colour":
        mapping = _colour_table(state, masks, mapping)
    try:
        num_classes = masks.check_mapping(mapping, int(requested))
    except uploads.UploadError as error:
        st.error(_md(error.message), icon=":material/error:")
        fallback = state.get("classes_good")
        if fallback is None or fallback.masks is not masks:
            return None
        st.info("Still showing the last valid classes.")
        classes = fallback
    else:
        from_table = table is not None and not names_text.strip()
        names, note = uploads.class_names_from(", ".join(c["name"] for c in table) if from_table else names_text, num_classes)
        if from_table:
            st.caption(f"Class names and colours from {uploads.CLASS_TABLE}" + (f" ({note})" if note else "."))
        elif note:
            st.caption(note)
        colours = tuple(c["color"] for c in table) if from_table and len(table) >= num_classes else None
        classes = _classes(state, masks, mapping, num_classes, names, colours)
        state["classes_good"] = classes
    _class_tables(classes)
    _planes_at_shares(state, classes, runs)
    return classes


def _colour_table(state: dict, masks: uploads.MaskSet, default: np.ndarray) -> np.ndarray:
    voc = " PASCAL VOC's boundary colour, " + uploads.VOC_BOUNDARY + ", starts as void." if uploads.VOC_BOUNDARY in masks.colours else ""
    st.markdown(
        "**Colour → class**: the palette found in your masks. Edit the class of a colour; give several colours one class to merge "
        f"them. Tick **void** for a colour to ignore (an 'ignore' or boundary colour): its pixels count in no loss, metric, class "
        f"share or weight.{voc}"
    )
    share = 100 * masks.code_pixels / max(masks.total_pixels, 1)
    void = default == uploads.VOID
    frame = pd.DataFrame({
        "swatch": [_swatch(c) for c in masks.colours],
        "colour": list(masks.colours),
        "% of pixels": np.round(share, 3),
        # A void colour shows the next free class, which it takes when void is unticked.
        "class": np.where(void, np.count_nonzero(~void), default).astype(int),
        "void": void,
    })
    palette_key = abs(hash((masks.keys, len(masks)))) % 10**10
    edited = st.data_editor(
        frame, key=f"upload_colour_table_{palette_key}", hide_index=True, disabled=["swatch", "colour", "% of pixels"],
        column_config={
            "swatch": st.column_config.ImageColumn(" ", width="small"),
            "class": st.column_config.NumberColumn("class", min_value=0, max_value=uploads.MAX_CLASSES - 1, step=1, required=True, help="0..K−1 (not used while void is ticked)"),
            "void": st.column_config.CheckboxColumn("void", help="Ignore this colour's pixels: no loss, metric, class share or weight counts them."),
        },
    )
    void = edited["void"].eq(True).to_numpy()  # an emptied cell is not void
    try:
        values = pd.to_numeric(edited["class"][~void], errors="raise").to_numpy()
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError
    except (ValueError, TypeError):
        st.error("Every colour that is not void needs a whole-number class (0, 1, 2, …): the table's defaults are used until it is fixed.")
        return default
    mapping = np.full(len(void), uploads.VOID, dtype=np.int64)
    mapping[~void] = values.astype(np.int64)
    return mapping


def _classes(state: dict, masks, mapping, num_classes, names, colours=None) -> Classes:
    """The classes of the masks; ``colours`` (e.g. from classes.json) or the masks' own."""
    colours = tuple(colours[:num_classes]) if colours else masks.class_colours(mapping, num_classes)
    key = (id(masks), tuple(int(m) for m in mapping), num_classes, names, colours)
    cached = state.get("classes")
    if cached is not None and cached.key() == key:
        return cached
    counts = masks.counts(mapping, num_classes)
    classes = Classes(masks, np.asarray(mapping), num_classes, names, colours, counts)
    state["classes"] = classes
    return classes


def _class_tables(classes: Classes) -> None:
    counts = classes.counts
    absent = [classes.names[c] for c in range(classes.num_classes) if counts.pixels[c] == 0]
    if absent:
        st.warning(
            f"No pixels of {', '.join(_md(a) for a in absent)} in these masks: every weighting scheme gives "
            f"{'it' if len(absent) == 1 else 'them'} weight 0, and no loss can learn a class it never sees. Check the number "
            "of classes" + (" and the colour table" if classes.masks.kind == "colour" else "") + ", or add masks that contain it.",
            icon=":material/warning:",
        )
    table = pd.DataFrame({
        "class": list(classes.names),
        "swatch": [_swatch(c) for c in classes.colours],
        "% of pixels": np.round(100 * counts.frequencies, 4),
        "% of images": np.round(100 * counts.images_containing / max(counts.num_images, 1), 1),
        "pixels": counts.pixels.astype(np.int64),
    })
    over = f"over all {counts.num_images} masks" if counts.num_images != 1 else "over your 1 mask"
    void = f"; {void_share(classes.void_pixels, counts.total_pixels + classes.void_pixels)}" if classes.void_pixels else ""
    st.markdown(f"**Your classes**, {over} ({counts.total_pixels:,} pixels{void}):")
    if classes.void_pixels:
        st.caption("Void pixels count in no loss, metric, class share or weight: the shares and weights here are of the other pixels.")
    st.dataframe(table, hide_index=True, column_config={"swatch": st.column_config.ImageColumn("colour", width="small")}, key="upload_class_table")
    st.markdown("**Class weights under every scheme**, counted over all these masks:")
    st.dataframe(_weights_frame(classes), key="upload_weights_table")


def _weights_frame(classes: Classes) -> pd.DataFrame:
    table = weights.weights_table(classes.counts)
    return pd.DataFrame({weights.SCHEMES[s].name: np.round(w, 4) for s, w in table.items()}, index=list(classes.names)).T


def _run_loss_at(label: str, run: Run, classes: Classes) -> losses.SegLoss:
    """The run's loss with its parameters; class weights (if it uses them) recomputed from these
    masks under the run's scheme, since the run's own weights belong to its dataset's classes."""
    params = dict(run.loss.params)
    params.pop("class_weights", None)
    if run.loss.spec.uses_class_weights:
        scheme = st.session_state.get(f"{label}_scheme", "balanced")
        scheme = scheme if scheme in weights.SCHEMES and weights.SCHEMES[scheme].dataset_level else "balanced"
        params["class_weights"] = list(weights.class_weights(classes.counts, scheme).weights)
    return losses.get(run.loss.loss_id, **params)


def _planes_at_shares(state: dict, classes: Classes, runs: dict[str, Run]) -> None:
    st.markdown("**Loss planes at your class shares**")
    shares = np.asarray(classes.counts.frequencies, dtype=np.float64)
    valid = [c for c in range(classes.num_classes) if 0 < shares[c] < 1]
    if not runs:
        st.info("Choose the runs' losses in the sidebar to see their planes here.")
        return
    if not valid:
        st.info("Every class is absent or covers every pixel: no class has a plane.")
        return
    rarest = min(valid, key=lambda c: shares[c])
    class_index = st.selectbox(
        "Class", valid, index=valid.index(rarest), key="upload_plane_class",
        format_func=lambda c: f"{classes.names[c]} ({100 * shares[c]:.3f} % of your pixels)",
        help="Defaults to your rarest class.",
    )
    fraction = float(shares[class_index])
    cache = state.setdefault("planes", {})
    columns = st.columns(len(runs))
    for column, (label, run) in zip(columns, runs.items()):
        try:
            loss = _run_loss_at(label, run, classes)
            key = (label, loss.loss_id, repr(sorted(loss.params.items())), class_index, tuple(shares))
            planes = cache.get(key)
            if planes is None:
                with st.spinner(f"Run {label}: computing the plane…"):
                    planes = surfaces.planes(loss, fraction, PLANE_RESOLUTION, class_index=class_index, class_shares=tuple(shares))
                cache[key] = planes
                while len(cache) > 24:
                    cache.pop(next(iter(cache)))
        except Exception as error:  # one run's plane failing must not hide the others
            _log.exception("plane at the uploaded shares failed")
            column.error(f"Run {label}: no plane at these shares ({type(error).__name__}: {_md(error)}).")
            continue
        with column:
            st.plotly_chart(
                surface_plots.loss_plane(planes.a, planes.b, planes.values, f"Run {label}: {run.loss.spec.name}"),
                key=f"upload_plane_{label}",
            )
    st.caption(
        f"The loss of each run over **a** (the share of {classes.names[class_index]}'s pixels found) and **b** (the share of "
        f"other pixels falsely claimed), at {classes.names[class_index]}'s share of your pixels, computed as in the Surfaces "
        f"section. {surfaces.describe_layout(surfaces.image_layout(fraction, class_index), fraction)} Class-weighted losses use "
        "the weights your masks give under the run's scheme."
    )


# ---------------------------------------------------------------------------------------------
# Images: pairs, the dataset, "Train on these images"


def _images_panel(state: dict, images: uploads.ImageSet | None, masks: uploads.MaskSet | None, classes: Classes | None) -> None:
    if images is None:
        for stale in ("dataset", "dataset_counts", "dataset_key", "dataset_error", "dataset_pairs", "dataset_description"):
            state.pop(stale, None)
        st.caption(
            "Upload images with the same names as your masks to train the runs on them at their own resolution (random crops), "
            f"{int(100 * uploads.VAL_FRACTION)} % kept for validation (a seeded split; train/ and val/ folders are kept as they are). "
            "A zip with images/ and masks/ folders works on either tab."
        )
        return
    if masks is None or classes is None:
        state.pop("dataset", None)
        state.pop("dataset_key", None)
        st.info(f"{len(images)} image{'s' if len(images) != 1 else ''} read. Upload their masks on the Masks tab to pair them.")
        return
    pairing = uploads.pair(images, masks)
    if pairing.problems:
        lines = [f"- **{_md(p.name)}** {_md(p.message)}" for p in pairing.problems[:MAX_LISTED]]
        if len(pairing.problems) > MAX_LISTED:
            lines.append(f"- … and {len(pairing.problems) - MAX_LISTED} more.")
        st.warning(f"{len(pairing.problems)} file{'s' if len(pairing.problems) != 1 else ''} left out of the pairs:\n" + "\n".join(lines), icon=":material/link_off:")
    crop, rare_share = _resolution_controls()
    key = (id(images), classes.key(), pairing.pairs, crop, rare_share)
    if state.get("dataset_key") != key:
        state["dataset_key"] = key
        state["dataset_error"] = None
        try:
            dataset, counts, description = _build(images, masks, pairing, classes, crop, rare_share)
        except uploads.UploadError as error:
            state["dataset_error"] = error.message
        else:
            fingerprint = _fingerprint(dataset)
            if state.get("dataset") is None or state.get("dataset_fingerprint") != fingerprint:
                # Only new data makes a new object: the runs restart only when what they train on changed.
                state["dataset"] = dataset
                state["dataset_counts"] = counts
                state["dataset_fingerprint"] = fingerprint
                state["dataset_pairs"] = len(pairing.pairs)
                state["dataset_description"] = description
    if state.get("dataset_error"):
        st.error(_md(state["dataset_error"]), icon=":material/error:")
        if state.get("dataset") is None:
            return
        st.info("Still using your previous image–mask pairs until these can be used.")
    dataset = state["dataset"]
    pairs = state.get("dataset_pairs", len(pairing.pairs))
    st.markdown(f"**{pairs} image–mask pairs**: {_md(state['dataset_description'])}. {training_void(dataset)}")
    st.toggle(
        "Train the runs on these images", key=TRAIN_KEY,
        help="The runs start afresh on your images (their curves on the other dataset are cleared); switching back starts them afresh on the toy dataset.",
    )
    shown = range(min(PREVIEW, len(dataset.train_images)))
    what = "training image" if crop == RESIZE else "crop"
    st.image([plots.enlarge(_uint8(dataset.train_images[i])) for i in shown], caption=[f"{what} {i}" for i in shown], width=96)
    st.image([plots.enlarge(plots.colorize(dataset.train_masks[i], dataset.class_colors, dataset.ignore_index)) for i in shown], caption=[f"its mask {i}" for i in shown], width=96)
    void = " Void pixels are white." if dataset.ignore_index is not None else ""
    if crop != RESIZE:
        st.caption(
            f"Trained on {crop}×{crop} crops cut from your images at their own resolution, validated on whole images padded with void to a "
            f"multiple of {owndata.STRIDE}.{void} Class shares and weights are counted on the full-resolution training masks."
        )
    else:
        st.caption(f"Resized to the model's {uploads.SIZE}×{uploads.SIZE}: images bilinear, masks nearest-neighbour; thin structures may vanish.{void}")


def _resolution_controls() -> tuple[int, float]:
    """The crop size (RESIZE: whole images resized to 64×64) and the share of rare-class crops."""
    left, right = st.columns(2)
    with left:
        crop = st.selectbox(
            "Train on", CROP_SIZES, key=RESOLUTION_KEY,
            format_func=lambda c: f"crops of {c}×{c} at the images' resolution" if c else f"whole images resized to {uploads.SIZE}×{uploads.SIZE}",
            help="Crops keep thin and tiny structures that resizing erases (a 2-pixel vessel in a 512×512 image is gone at 64×64). "
            "The U-Net is fully convolutional: validation predicts whole images at their resolution.",
        )
    with right:
        rare_share = st.select_slider(
            "Crops centred on a rare class", RARE_SHARES, key=RARE_KEY, format_func=lambda share: f"{share:.0%}",
            disabled=crop == RESIZE,
            help="0 % (the default): uniform random crops, so the crops have the images' class shares. Above 0, that share of the crops "
            "is centred on a pixel of a rare class (every class but the most frequent, in equal parts): an oversampling of the rare "
            "classes you asked for, which changes what the losses see.",
        )
    return crop, (rare_share if crop != RESIZE else 0.0)


def _build(images, masks, pairing, classes: Classes, crop: int, rare_share: float) -> tuple[Dataset, weights.ClassCounts, str]:
    """The dataset the runs would train on, its class counts and a line that describes it."""
    if crop == RESIZE:
        dataset = uploads.build_dataset(images, masks, pairing, classes.mapping, classes.num_classes, classes.names, classes.colours)
        return dataset, weights.count_pixels(dataset.train_masks, dataset.num_classes, dataset.ignore_index), dataset.name
    own = owndata.at_resolution(
        images, masks, pairing, classes.mapping, classes.num_classes, classes.names, classes.colours,
        crop=crop, pool=POOL_PIXELS // crop**2, rare_share=rare_share, validation_pixels=VALIDATION_PIXELS,
    )
    return own.dataset, own.counts, own.describe()


def _fingerprint(dataset: Dataset) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for array in (dataset.train_images, dataset.train_masks, dataset.val_images, dataset.val_masks):
        digest.update(repr(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr((dataset.name, dataset.class_names, dataset.class_colors)).encode())
    return digest.hexdigest()


def _uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def _follow_dataset(state: dict) -> None:
    """When this run changed which dataset the runs should use (new pairs, an edited colour table,
    the switch), rerun once so app.py builds the runs on it."""
    wanted = state.get("dataset") if st.session_state.get(TRAIN_KEY) else None
    wanted_id = id(wanted) if wanted is not None else None
    if wanted_id != st.session_state.get(SERVED_KEY):
        st.rerun()


# ---------------------------------------------------------------------------------------------
# Predictions


def _prediction_panel(state: dict, files, masks: uploads.MaskSet | None, classes: Classes | None) -> None:
    if not files:
        st.caption("Upload a predicted mask or per-class probabilities to score them against your masks under every loss.")
        return
    if masks is None or classes is None:
        st.info("Upload the truth masks on the Masks tab first: a prediction is scored against the mask of the same name.")
        return
    read = _read_predictions(state, files)
    predictions = read["predictions"]
    if not predictions:
        _show_problems(read["problems"], read["error"])
        return
    pairs, lone = uploads.match_predictions([p.path for p in predictions], list(masks.paths))
    problems = list(read["problems"]) + [uploads.Problem(predictions[i].name, "has no mask with the same name. Name it like its mask (0001.png → 0001.npy or 0001_pred.png).") for i in lone]
    ready = []
    for i, j in pairs:
        prediction = predictions[i]
        truth = masks.class_mask(j, classes.mapping)
        try:
            probabilities = uploads.prediction_probabilities(prediction, truth, classes.num_classes, masks, classes.mapping)
        except uploads.UploadError as error:
            problems.append(uploads.Problem(prediction.name, error.message))
            continue
        ready.append((prediction, masks.names[j], truth, probabilities))
    _show_problems(problems, read["error"])
    _show_warnings([uploads.Problem(prediction.name, w) for prediction, *_ in ready for w in prediction.warnings])
    if not ready:
        return
    names = [f"{p.name} ↔ {m}" for p, m, *_ in ready]
    chosen = st.selectbox("Prediction", range(len(ready)), format_func=lambda i: names[i], key="upload_prediction_choice") if len(ready) > 1 else 0
    prediction, mask_name, truth, probabilities = ready[int(chosen)]
    class_weights = weights.class_weights(classes.counts, "balanced").weights
    if not np.any(class_weights > 0):
        class_weights = None
    key = (id(prediction), classes.key())
    scores_cache = state.setdefault("scores", {})
    scores = scores_cache.get(key)
    if scores is None:
        with st.spinner("Scoring under every loss…"):
            scores = uploads.score(truth, probabilities, class_weights=None if class_weights is None else list(class_weights))
        scores_cache.clear()
        scores_cache[key] = scores
    hard = prediction.kind in ("index", "colour")
    st.markdown(f"**{_md(prediction.name)}** against **{_md(mask_name)}** ({truth.shape[1]}×{truth.shape[0]}):")
    table = pd.DataFrame({
        "loss": [s.name for s in scores],
        "id": [s.loss_id for s in scores],
        "kind": [s.kind + "-wise" for s in scores],
        "value": [s.value for s in scores],
    })
    st.dataframe(table, hide_index=True, key="upload_scores_table", height=35 * (len(table) + 1) + 3, column_config={"value": st.column_config.NumberColumn(format="%.5g")})
    st.caption(
        "Every loss at its default parameters; class-weighted losses with the balanced weights of your masks. "
        + ("A predicted mask is probability 1 on its class; probabilities" if hard else "Probabilities")
        + f" are clipped to [{surfaces.EPS:g}, 1 − {surfaces.EPS:g}] before the logits are taken (log p; logit p for the "
        "sigmoid losses), as in the Surfaces section"
        + (f", so a wrong pixel costs about −ln {surfaces.EPS:g} ≈ {-np.log(surfaces.EPS):.1f} in cross-entropy." if hard else ".")
    )
    ids = [s.loss_id for s in scores]
    loss_id = st.selectbox("Per-pixel maps of", ids, format_func=lambda i: losses.REGISTRY[i].name, key="upload_maps_loss")
    result = scores[ids.index(loss_id)]
    left, right = st.columns([1, 2])
    with left:
        st.image(
            [plots.enlarge(plots.colorize(truth, classes.colours, uploads.VOID), 160), plots.enlarge(plots.colorize(probabilities.argmax(-1), classes.colours), 160)],
            caption=["truth", "prediction (most probable class)"],
            width=160,
        )
    with right:
        st.plotly_chart(surface_plots.pixel_maps(result.per_pixel, result.gradient, f"{result.name}: {result.value:.4g}", None, None), key="upload_pixel_maps")
    st.caption(
        "Per-pixel loss (pixel-wise losses only; a region loss has none) and the L2 norm over the classes of the gradient of the "
        "image's loss with respect to each pixel's logits, ×H·W (as in the per-pixel maps of the runs), both on log scales."
    )


def _read_predictions(state: dict, files) -> dict:
    key = _files_key(files)
    cached = state.get("predictions")
    if cached is not None and cached[0] == key:
        return cached[1]
    result = {"predictions": [], "problems": [], "error": None}
    try:
        entries, problems = uploads.expand((f.name, f.getvalue()) for f in files)
    except uploads.UploadError as error:
        result["error"] = error.message
        entries, problems = [], []
    result["problems"] = problems
    total = 0
    for entry in entries:
        try:
            prediction = uploads.read_prediction(entry)
        except uploads.UploadError as error:
            result["problems"].append(uploads.Problem(entry.name, error.message))
            continue
        total += prediction.array.size
        if total > uploads.MAX_TOTAL_PIXELS:
            result["error"] = f"These predictions hold more than {uploads.MAX_TOTAL_PIXELS / 1e6:.0f} million values in all. Upload fewer at a time."
            break
        result["predictions"].append(prediction)
    state["predictions"] = (key, result)
    return result
