"""The dataset panel: a few images with their masks, the class shares and the class weights
under every scheme, all measured from the training masks (void pixels left out, their share said)."""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
import streamlit as st

from explorer import plots, weights
from explorer.data import Dataset

PREVIEW_COUNT = 6


def class_strip(dataset: Dataset, counts: weights.ClassCounts) -> None:
    """One line for the live view: the dataset, and each class's colour and share of the training
    pixels. Needs no TensorFlow, so it shows before the runs are built. The names may be the user's
    (HTML is allowed here for the colours), so they are escaped."""
    shares = " · ".join(
        f'<span style="color:{escape(colour)}">■</span> {escape(name)} {100 * share:.{1 if share >= 0.01 else 2}f} %'
        for name, colour, share in zip(dataset.class_names, dataset.class_colors, counts.frequencies)
    )
    with st.container(key="class_strip"):
        st.markdown(
            f"**{escape(dataset.name)}** ({len(dataset.train_images)} training, {len(dataset.val_images)} validation images), "
            f"% of training pixels: {shares}",
            unsafe_allow_html=True,
        )


def show(dataset: Dataset, counts: weights.ClassCounts) -> None:
    st.subheader(f"{dataset.name}: {len(dataset.train_images)} training and {len(dataset.val_images)} validation images")
    images, masks = st.columns(2)
    chosen = range(PREVIEW_COUNT)
    images.image([plots.enlarge(_to_uint8(dataset.train_images[i])) for i in chosen], caption=[f"image {i}" for i in chosen], width=110)
    masks.image([plots.enlarge(plots.colorize(dataset.train_masks[i], dataset.class_colors, dataset.ignore_index)) for i in chosen], caption=[f"mask {i}" for i in chosen], width=110)
    if dataset.ignore_index is not None:
        st.caption(
            f"{training_void(dataset)} Void pixels (white) count in no loss, metric, class share or weight: the shares and "
            "weights below are of the other pixels."
        )
    left, right = st.columns([3, 2])
    image_share = counts.images_containing / max(counts.num_images, 1)
    left.plotly_chart(plots.class_frequencies(dataset.class_names, dataset.class_colors, counts.frequencies, image_share), key="class_frequencies")
    right.dataframe(class_table(dataset, counts), hide_index=True)
    st.caption("Class weights under every scheme, counted over the whole training set:")
    st.dataframe(weights_frame(dataset, counts))


def void_share(void: int, total: int) -> str:
    """How much of the pixels is void, for the statistics: 'void: 12.3 % of pixels (…), ignored'."""
    return f"void: {100 * void / max(total, 1):.1f} % of pixels ({void:,}), ignored"


def training_void(dataset: Dataset) -> str:
    """The void share of the training masks as a sentence; '' for a dataset without a void label."""
    if dataset.ignore_index is None:
        return ""
    void = int(np.count_nonzero(dataset.train_masks == dataset.ignore_index))
    return f"Training masks: {void_share(void, dataset.train_masks.size)}."


def class_table(dataset: Dataset, counts: weights.ClassCounts) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "class": dataset.class_names,
            "colour": dataset.class_colors,
            "% of pixels": np.round(100 * counts.frequencies, 3),
            "% of images": np.round(100 * counts.images_containing / max(counts.num_images, 1), 1),
        }
    )


def weights_frame(dataset: Dataset, counts: weights.ClassCounts) -> pd.DataFrame:
    table = weights.weights_table(counts)
    return pd.DataFrame(
        {weights.SCHEMES[s].name: np.round(w, 4) for s, w in table.items()},
        index=list(dataset.class_names),
    ).T


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)
