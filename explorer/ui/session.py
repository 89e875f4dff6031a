"""Where the page keeps things: the shared read-only dataset (cached once per process) and each
browser session's runs (in `st.session_state`, so sessions never see each other's models).

The top of the page (the dataset, the sidebar) uses this module before TensorFlow is imported, so
the runs' and the worker's modules are imported only by the functions that build them."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import streamlit as st

from explorer import data as data_module
from explorer import weights
from explorer.run_config import RunConfig
from explorer.ui import capacity, streamlit_internals

if TYPE_CHECKING:
    from explorer import live
    from explorer.training import Run


@st.cache_resource(show_spinner="Loading the toy dataset…")
def toy_dataset() -> data_module.Dataset:
    return data_module.load_toy()


@st.cache_resource
def toy_counts() -> weights.ClassCounts:
    dataset = toy_dataset()
    return weights.count_pixels(dataset.train_masks, dataset.num_classes)


def mark_full_run() -> None:
    """Called at the top of app.py: fragment-only reruns never get here."""
    st.session_state.full_run = True


def is_full_run() -> bool:
    """True once per full run of the page (the first fragment call after mark_full_run)."""
    return st.session_state.pop("full_run", False)


def runs() -> dict[str, Run]:
    return st.session_state.setdefault("runs", {})


def runs_lock() -> threading.RLock:
    """Held around every change to the session's runs (reconfigure, train, reset, snapshot).

    Streamlit's fast reruns (its default) start the new script run at once in a new thread when a
    widget changes, while the interrupted run goes on until its next Streamlit call: a tick still
    training, or a sync still reconfiguring. Without the lock two threads would change the same
    runs at once (a slider moved twice quickly left the loss on one value and the sidebar on
    another). Created by the session's first run, before any rerun can overlap it."""
    return st.session_state.setdefault("_runs_lock", threading.RLock())


def worker() -> live.LiveTrainer:
    """The session's training worker (its thread runs only while it has work)."""
    if "live_worker" not in st.session_state:
        from explorer import live  # TensorFlow: see the module's docstring

        st.session_state.live_worker = live.LiveTrainer(
            runs(), runs_lock(), capacity.slots(), capacity.session_id(), page_open=streamlit_internals.page_open_check()
        )
    return st.session_state.live_worker


def sync_runs(configs: dict[str, RunConfig], dataset: data_module.Dataset) -> dict[str, Run]:
    """Make the session's runs match the sidebar: a new label or a new architecture/seed gets a
    fresh run from the shared initial weights; anything else carries on from the current weights
    (`Run.reconfigure` marks the change on the curves)."""
    with runs_lock():
        return _sync_runs(runs(), configs, dataset)


def _sync_runs(current: dict[str, Run], configs: dict[str, RunConfig], dataset: data_module.Dataset) -> dict[str, Run]:
    from explorer.training import Run  # TensorFlow: see the module's docstring

    for label in list(current):
        if label not in configs:
            del current[label]
    for label, config in configs.items():
        run = current.get(label)
        if run is None or run.data is not dataset or run.config.architecture() != config.architecture():
            current[label] = Run(config, dataset, initial_weights=_shared_initial_weights(current, config, dataset))
        else:
            run.reconfigure(config)
    return current


def _shared_initial_weights(current: dict[str, Run], config: RunConfig, dataset: data_module.Dataset):
    """Runs on one dataset with the same architecture and seed start from the very same weights
    (another dataset may have another number of classes, so another output layer)."""
    for run in current.values():
        if run.data is dataset and run.config.architecture() == config.architecture():
            return run.initial_weights
    return None
