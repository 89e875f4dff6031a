"""Which dataset the page trains on: the user's image–mask pairs when "Train on these images" is
on (explorer/ui/upload_view.py reads them in), else the toy set. Read at the top of the page,
before the sidebar, so no TensorFlow here."""

from __future__ import annotations

import streamlit as st

from explorer import weights
from explorer.data import Dataset
from explorer.ui import session

STATE = "upload_state"  # the Your data section's pairs, their dataset and class counts
TRAIN_KEY = "upload_train"  # the "Train the runs on these images" switch
SERVED_KEY = "upload_served"  # id() of the dataset active_dataset() gave this script run
PER_DATASET_KEYS = ("val_image", "surfaces_class")  # widgets whose values belong to one dataset


def active_dataset() -> Dataset | None:
    """The uploaded image–mask Dataset when "Train on these images" is on, else None. Call it once
    at the top of the page, before the runs are built."""
    state = st.session_state.get(STATE, {})
    dataset = state.get("dataset") if st.session_state.get(TRAIN_KEY) else None
    st.session_state[SERVED_KEY] = id(dataset) if dataset is not None else None
    return dataset


def active_counts() -> weights.ClassCounts | None:
    """Class counts over the training masks of :func:`active_dataset` (None when it is None)."""
    state = st.session_state.get(STATE, {})
    if not st.session_state.get(TRAIN_KEY) or state.get("dataset") is None:
        return None
    return state.get("dataset_counts")


def drop_runs_on_other_data(dataset: Dataset) -> None:
    """Call before ``session.sync_runs`` when the dataset may have changed (the switch, new pairs).

    Forgets the runs built on another dataset: sync_runs would rebuild them anyway, but it also
    hands a new run the initial weights of any run with the same architecture, and a run of a
    dataset with another number of classes has weights of the wrong shape. And resets the widgets
    whose values belong to the old dataset: the validation image index and the surfaces' class.
    (The sidebar's class weight boxes need nothing: their keys hold the dataset's class counts.)"""
    runs = st.session_state.get("runs")
    stale = [label for label, run in (runs or {}).items() if run.data is not dataset]
    if not stale:
        return
    with session.runs_lock():
        for label in stale:
            del runs[label]
    for key in PER_DATASET_KEYS:
        st.session_state.pop(key, None)
