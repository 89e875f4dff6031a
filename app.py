"""Segmentation Loss Explorer: the page. Layout and widgets only; everything else lives in
explorer/ (models, losses and tf.functions must not be redefined on every rerun)."""

import streamlit as st

st.set_page_config(page_title="Segmentation Loss Explorer", page_icon="🧩", layout="wide")
st.title("Segmentation Loss Explorer")
st.caption("Train a small U-Net on deliberately imbalanced data and watch what each loss does to the rare classes.")
# Less empty space above the title than Streamlit's default, so the live view fits a 1440×900 screen;
# the live view's map captions on one line, cut short with an ellipsis where a class name is wider
# than its 48-pixel map (the class strip above names every class in full).
st.html(
    "<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }"
    " [class*='st-key-live_maps_'] [data-testid='stImageCaption'] * { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }</style>"
)

# The top of the page needs no TensorFlow: a fresh server's first visitor sees the sidebar and the
# class strip while it loads (its import, below, takes seconds; later script runs find it loaded).
from explorer.ui import active_data, capacity, dataset_view, link, sections, session, sidebar

try:
    capacity.slots()
except ValueError as error:  # a misconfigured server: say what to set rather than fail later
    st.error(str(error), icon=":material/settings:")
    st.stop()

session.mark_full_run()
# The user's image–mask pairs when "Train on these images" is on, else the toy dataset.
dataset = active_data.active_dataset() or session.toy_dataset()
counts = active_data.active_counts() or session.toy_counts()
active_data.drop_runs_on_other_data(dataset)
link.apply(counts)  # a shared link fills the sidebar's widgets before they exist
configs, settings = sidebar.settings(dataset, counts)

# Train, Step, Reset and the progress stay above the sections, so training goes on (and shows)
# whichever section is open. They are drawn once TensorFlow is in, into this container.
controls = st.container()

# Only the open section runs (on_change="rerun"), so a slider moved in the sidebar reruns the
# live view and nothing else. "Your data" always runs: its file uploaders keep the files only
# while they are drawn.
live, about_losses, surfaces, data, yours, which, traps, export = st.tabs(
    list(sections.NAMES), key=sections.KEY, on_change="rerun"
)
with live:
    if live.open:
        strip, slider = st.columns([4, 1])
        with strip:
            dataset_view.class_strip(dataset, counts)
        curves = st.container()  # filled by the progress line's fragment (one redraw for both)

with controls, st.spinner("Loading TensorFlow (a few seconds, once per server)…"):
    from explorer.training import describe_device
    from explorer.ui import compare_view, export_view, loss_view, surfaces_view, training_view, traps_view, upload_view
    from explorer.ui.streamlit_internals import keep_keras_state

    keep_keras_state()  # before the first script run ends: see explorer/ui/streamlit_internals.py

# The runs are built after the buttons (they act on the runs at the click), so a new session sees
# the page before its models exist; the progress after the runs.
with controls:
    drawn = training_view.controls(settings)
runs = session.sync_runs(configs, dataset)
training_view.status(drawn, settings, (curves, dataset) if live.open else None)
with live:
    if live.open:
        training_view.live(dataset, counts, slider)
        st.caption(f"Training on {describe_device()}. All runs start from the same weights and see the same batches.")
with about_losses:
    if about_losses.open:
        loss_view.show(runs)
with surfaces:
    if surfaces.open:
        surfaces_view.show(dataset, counts)
with data:
    if data.open:
        dataset_view.show(dataset, counts)
with yours:
    upload_view.show(runs)
with which:
    compare_view.show(dataset, counts, visible=which.open)
with traps:
    if traps.open:
        traps_view.show(session.toy_dataset())
with export:
    if export.open:
        export_view.show(runs, configs, settings, counts)
training_view.warm_up()
